"""The designer's view: `mapper explain` (reuse, stationarity, accesses per MAC, where
the cycles go), `mapper compare`, and what searches write of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_network import write_specs

from mapper.architecture import Architecture, StorageLevel
from mapper.cli import main
from mapper.compare import comparison, comparison_text
from mapper.explain import Explanation, explain
from mapper.mapping import LevelMapping, Loop, Mapping
from mapper.model import vectorized
from mapper.model.reference import evaluate_reference
from mapper.plots import comparison_figure, energy_breakdown, energy_delay
from mapper.runs import LayerRun, Run
from mapper.specs.load import load_specs
from mapper.specs.files import shipped_specs_dir

SPECS = shipped_specs_dir()
# The hand-written output-stationary mapping of tiny-conv on the toy (its file says how
# it works): DRAM C2 P2 / Buffer P2 Q4, M4 across the PEs, keeps Inputs and Weights /
# Register R3 S3, keeps Outputs.
TOY = [str(SPECS / "arch/toy-3level.yaml"), str(SPECS / "workloads/tiny-conv.yaml"),
       str(SPECS / "mappings/toy-3level-tiny-conv.yaml")]
QUICK = ["--trials", "3", "--patience", "0"]


@pytest.fixture(scope="module")
def toy() -> Explanation:
    specs = load_specs(TOY)
    problem, arch, mapping = specs.problems[0], specs.architecture, specs.mapping
    return explain(problem, arch, mapping, evaluate_reference(problem, arch, mapping))


def row(ex: Explanation, level: str, tensor: str):
    return next(t for lv in ex.levels if lv.name == level for t in lv.tensors if t.tensor == tensor)


def test_accesses_per_mac_are_the_counts_of_evaluate_json_exactly(tmp_path: Path) -> None:
    assert main(["evaluate", *TOY, "--json", str(tmp_path / "ev.json")]) == 0
    assert main(["explain", *TOY, "--json", str(tmp_path / "ex.json")]) == 0
    ev = json.loads((tmp_path / "ev.json").read_text())
    ex = json.loads((tmp_path / "ex.json").read_text())["explanations"][0]
    expected = {(lv["name"], name): (t["reads"] + t["fills"] + t["updates"]) * t["utilized_instances"] / ev["computes"]
                for lv in ev["levels"] for name, t in lv["tensors"].items()}
    found = {(lv["name"], t["tensor"]): t["accesses_per_mac"] for lv in ex["levels"] for t in lv["tensors"]}
    assert found == expected


def test_reuse_is_read_off_the_loops_that_cause_it(toy: Explanation) -> None:
    # M4 across the PEs: each input the Buffer reads reaches all four (multicast); each PE
    # has weights of its own
    assert row(toy, "Buffer", "Inputs").spatial_reuse == 4
    assert row(toy, "Buffer", "Weights").spatial_reuse == 1
    # R3 S3 in the register: each output accumulates 9 partial sums in place
    assert row(toy, "Register", "Outputs").temporal_reuse == 9
    # C2 at DRAM outside P2: the partial sums go out and come back once per input channel
    outputs = next(r for r in toy.reuse if r.tensor == "Outputs")
    assert outputs.refetch_loops == ("C2 at DRAM",)
    assert outputs.uses_per_word == 18  # C x R x S
    assert outputs.outer_accesses_per_word == 3  # written twice, read back once
    weights = next(r for r in toy.reuse if r.tensor == "Weights")
    assert weights.refetch_loops == () and weights.outer_accesses_per_word == 1


def test_the_reuse_a_layer_offers_is_named_by_its_own_dimensions() -> None:
    def kinds(workload: str, layer: str) -> dict[str, str]:
        problem = load_specs([SPECS / f"workloads/{workload}.yaml"]).problems
        found = next(p for p in problem if p.name == layer)
        return {r.tensor: r.kinds for r in explain(found, *_toy_arch_and_mapping(found)).reuse}

    assert kinds("alexnet", "conv3") == {
        "Weights": "convolutional reuse across P, Q",
        "Inputs": "reuse across M and convolutional reuse within overlapping windows (P+R, Q+S)",
        "Outputs": "partial-sum accumulation across C, R, S"}
    # fc8 at batch 1: each weight serves one MAC; no window, no batch to reuse across
    assert kinds("alexnet", "fc8") == {"Weights": "none: each word is used by one MAC", "Inputs": "reuse across M",
                                       "Outputs": "partial-sum accumulation across C"}


def _toy_arch_and_mapping(problem):
    """An architecture of one unbounded level, and the mapping of every loop there."""
    arch = Architecture("one-level", (StorageLevel("memory"),))
    mapping = Mapping((LevelMapping(tuple(Loop(d, problem.bounds[d]) for d in problem.dims)),))
    return arch, mapping, evaluate_reference(problem, arch, mapping)


def test_stationarity_is_the_tile_that_changes_least(toy: Explanation) -> None:
    assert toy.pe_keeps == ("Outputs",) and toy.pe_stationary == "Outputs"
    buffer = next(lv for lv in toy.levels if lv.name == "Buffer")
    assert buffer.stationary == "Weights"  # 2 weight tiles over the run, 3 input tiles
    assert next(lv for lv in toy.levels if lv.name == "DRAM").stationary is None  # it holds everything


def test_outer_traffic_is_measured_against_no_reuse(toy: Explanation) -> None:
    dram = sum(t.accesses for t in toy.levels[0].tensors)
    assert toy.outer_accesses_per_mac == dram / toy.macs
    assert toy.no_reuse_accesses_per_mac == 4  # an input and a weight read, a partial sum read and written
    assert toy.fewer_than_no_reuse == pytest.approx(4 / toy.outer_accesses_per_mac)


def test_a_compute_bound_mapping_says_so_and_its_cycles_add_up(toy: Explanation) -> None:
    c = toy.cycles
    assert (c.bound, c.bottleneck, c.compute_bound, c.temporal, c.total) == ("compute", None, 288, 288, 288)


def test_a_bandwidth_bound_mapping_names_the_level_and_its_demand(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    files = write_specs(tmp_path)  # a DRAM of one word per cycle each way
    assert main(["search", *files, "-o", str(tmp_path / "out"), *QUICK]) == 0
    capsys.readouterr()
    assert main(["explain", str(tmp_path / "out"), "--json", str(tmp_path / "ex.json")]) == 0
    text = capsys.readouterr().out
    bound = [e for e in json.loads((tmp_path / "ex.json").read_text())["explanations"]
             if e["cycles"]["bound"] == "bandwidth"]
    assert bound, "the tiny network's one-word DRAM port limits some layer"
    for e in bound:
        level = next(lv for lv in e["levels"] if lv["name"] == e["cycles"]["bottleneck"])
        need = level[f"{e['cycles']['limit']}_words_per_cycle"] / level[f"{e['cycles']['limit']}_bandwidth"]
        assert level["bandwidth_throttling"] == pytest.approx(1 / need)
        assert e["cycles"]["total"] > e["cycles"]["temporal"]
    assert "bandwidth-bound: DRAM" in text


def test_a_search_writes_its_explanation_and_a_network_a_line_per_layer(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["search", *write_specs(tmp_path), "-o", str(out), *QUICK]) == 0
    assert "why" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert all(layer["why"] for layer in summary["layers"])
    best = json.loads((out / "layers/mm_a/best.json").read_text())
    assert Explanation.from_json(best["explanation"]).macs == best["computes"]
    assert "temporal reuse" in (out / "layers/mm_a/best.txt").read_text()


def test_a_weight_stationary_search_explains_itself_as_one(tmp_path: Path) -> None:
    (tmp_path / "ws.yaml").write_text("constraints: {preset: weight-stationary}\n")
    out = tmp_path / "out"
    assert main(["search", str(SPECS / "arch/ws-16x16.yaml"), str(SPECS / "workloads/tiny-conv.yaml"),
                 str(tmp_path / "ws.yaml"), "-o", str(out), *QUICK]) == 0
    best = json.loads((out / "best.json").read_text())
    assert best["explanation"]["pe_stationary"] == "Weights"


def test_a_result_written_before_explanations_gets_a_one_line_error(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["search", *TOY[:2], "-o", str(out), *QUICK]) == 0
    best = json.loads((out / "best.json").read_text())
    del best["explanation"]
    (out / "best.json").write_text(json.dumps(best))
    capsys.readouterr()
    assert main(["explain", str(out)]) == 2
    err = capsys.readouterr().err
    assert "best.json" in err and "run the search's command again" in err and "Traceback" not in err


def test_explain_takes_several_run_folders_and_says_which_layers_it_has(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["search", *write_specs(tmp_path), "-o", str(out), *QUICK]) == 0
    capsys.readouterr()
    assert main(["explain", str(out), str(out), "--layer", "mm_a"]) == 0
    assert capsys.readouterr().out.count("# mm_a") == 2
    assert main(["explain", str(out), "--layer", "mm_aa"]) == 2
    assert "a finished layer: mm_a" in capsys.readouterr().err
    assert main(["explain", *TOY, "--layer", "mm_a"]) == 2  # spec files give one layer
    assert "--layer with run folders only" in capsys.readouterr().err
    assert main(["explain", str(out), TOY[0]]) == 2
    assert "run folders and spec files together" in capsys.readouterr().err


def test_compare_puts_runs_side_by_side_with_ratios_to_the_first(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    files = write_specs(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["search", *files, "-o", str(a), *QUICK]) == 0
    assert main(["search", *files, "-o", str(b), "--trials", "1", "--patience", "0", "--seed", "3"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "-o", str(tmp_path / "cmp")]) == 0
    assert "EDP x" in capsys.readouterr().out
    data = json.loads((tmp_path / "cmp/compare.json").read_text())
    first, second = data["runs"]
    assert first["ratio_to_first"] == {"energy_pJ": 1.0, "cycles": 1.0, "edp_J_cycles": 1.0}
    assert second["ratio_to_first"]["edp_J_cycles"] == pytest.approx(second["edp_J_cycles"] / first["edp_J_cycles"])
    summary = json.loads((a / "summary.json").read_text())
    assert first["edp_J_cycles"] == pytest.approx(summary["totals"]["edp_J_cycles"])
    assert [l["layer"] for l in data["layers"]] == [l["layer"] for l in summary["layers"]]
    assert (tmp_path / "cmp/compare.png").stat().st_size > 0


def test_compare_gives_each_edp_its_own_unit_and_ratios_only_within_the_first_runs_unit() -> None:
    def run(name: str, unit: str, energy: float) -> Run:
        layer = LayerRun("conv", energy, 10, energy * 1e-12 * 10, Path(name), {})
        return Run(name, Path(name), "arch", unit, (layer,))

    data = comparison([run("a", "pJ", 1e12), run("b", "MAC", 2e12), run("c", "pJ", 3e12)])
    a, b, c = data["runs"]
    assert not data["comparable_energy"]
    assert c["ratio_to_first"] == {"energy_pJ": 3.0, "cycles": 1.0, "edp_J_cycles": 3.0}
    assert b["ratio_to_first"] == {"energy_pJ": None, "cycles": 1.0, "edp_J_cycles": None}
    rows = {line.split()[0]: line for line in comparison_text(data).splitlines()[2:5]}
    assert "10 J*cycles" in rows["a"] and "2e+13 MAC*cycles" in rows["b"] and "30 J*cycles" in rows["c"]


def test_compare_gives_no_ratio_between_layers_or_networks_of_other_work() -> None:
    """Two runs' layer "conv" of other shapes (800 and 400 MACs): no ratio between them,
    nor between the runs' totals, and the text says why; a layer run fused (its MACs
    not known from one tile) does not stop the ratios."""
    def run(name: str, macs: int, fused_in: str | None = None) -> Run:
        layer = LayerRun("conv", 2e12, 10, 20.0, Path(name), {"computes": macs}, fused_in)
        return Run(name, Path(name), "arch", "pJ", (layer,))

    data = comparison([run("a", 800), run("b", 400), run("c", 800), run("d", 1, "group")])
    ratios = [r["ratio_to_first"]["edp_J_cycles"] for r in data["runs"]]
    assert ratios == [1.0, None, 1.0, 1.0]
    assert [c["ratio_to_first"]["cycles"] for c in data["layers"][0]["runs"]] == [1.0, None, 1.0, 1.0]
    text = comparison_text(data)
    assert "b computes 400 MACs against a's 800: other layers, no ratios of totals" in text
    assert "layer conv: b computes 400 MACs against 800 in a: another shape, no ratios" in text


def seeded_layer(name: str, edps: list[float], objective: str = "edp", first_seed: int = 0) -> LayerRun:
    """A layer searched from len(edps) seeds (best.json's search.seeds), each ending at
    one of `edps` (energy 1e12 pJ, 1 cycle); its answer is the least."""
    records = [{"seed": first_seed + i, "energy_pJ": edp * 1e12, "cycles": 1, "edp_J_cycles": edp}
               for i, edp in enumerate(edps)]
    best = min(edps)
    return LayerRun(name, best * 1e12, 1, best, Path(name), {"search": {"objective": objective, "seeds": records}})


def test_compare_marks_a_difference_within_how_far_apart_the_seeds_ended() -> None:
    """conv1's seeds ended 5% apart in run a, so b's 3% more is within the search's noise;
    conv2's agree, so 50% more is not. The totals' spread is that of each seed's
    answers summed over the layers: a's seed 1 gives 20 + 10.5, 1.67% above seed 0's 30."""
    a = Run("a", Path("a"), "arch", "pJ", (seeded_layer("conv1", [10, 10.5]), seeded_layer("conv2", [20, 20])))
    b = Run("b", Path("b"), "arch", "pJ", (seeded_layer("conv1", [10.3, 10.3]), seeded_layer("conv2", [30, 30])))
    data = comparison([a, b])
    (conv1_a, conv1_b), (conv2_a, conv2_b) = (layer["runs"] for layer in data["layers"])
    assert (conv1_a["seed_spread"], conv1_b["seed_spread"]) == (pytest.approx(0.05), 0.0)
    assert conv1_b["within_seed_spread"] and not conv2_b["within_seed_spread"]
    total_a, total_b = data["runs"]
    assert total_a["seed_spread"] == pytest.approx(0.5 / 30) and total_b["seed_spread"] == 0.0
    assert total_b["within_seed_spread"] is False  # 40.3 against 30
    text = comparison_text(data)
    assert "1.030~" in text and "1.500~" not in text and "~: within how far apart" in text
    assert "5.00%" in text and "1.67%" in text
    per_layer = comparison_figure(data).axes[1].patches  # run a's two bars, then b's
    assert [bar.get_hatch() or "" for bar in per_layer] == ["", "", "//", ""]


def test_compare_judges_no_noise_without_seeds_or_across_objectives() -> None:
    def run(name: str, layer: LayerRun) -> Run:
        return Run(name, Path(name), "arch", "pJ", (layer,))

    by_edp, by_energy = run("a", seeded_layer("conv", [10, 11])), run("b", seeded_layer("conv", [10.5], "energy"))
    data = comparison([by_edp, by_energy])
    assert data["runs"][1]["within_seed_spread"] is None  # what was searched for differs
    layers = (seeded_layer("x", [1, 2]), seeded_layer("y", [1, 2], first_seed=5))
    other_seeds = Run("c", Path("c"), "arch", "pJ", layers)
    assert comparison([other_seeds])["runs"][0]["seed_spread"] is None  # no seed's answers to sum
    single = [run(n, LayerRun("conv", 1e12, 1, 1.0, Path(n), {"search": {"objective": "edp"}})) for n in "de"]
    data = comparison(single)
    assert data["runs"][1]["within_seed_spread"] is None
    assert "searched from one seed" in comparison_text(data)


def test_compare_of_a_folder_that_holds_no_run_says_what_it_wants(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "a folder of `mapper search`" in err and "Traceback" not in err


def test_plots_leave_out_what_costs_nothing_and_start_linear_axes_at_zero(tmp_path: Path) -> None:
    layers = [{"layer": name, "energy_pJ": e, "cycles": c, "energy_by_level_pJ": {"DRAM": e, "spad": 0.0},
               "energy_by_tensor_pJ": {"Weights": e}} for name, e, c in (("a", 100.0, 50), ("b", 104.0, 52))]
    cell = {"architecture": "x", "workload": "w", "dataflow": "d", "objective": "edp", "folder": "cell",
            "energy_unit": "pJ", "layers": layers}
    legend = [t.get_text() for t in energy_breakdown(cell).axes[0].get_legend().get_texts()]
    assert legend == ["DRAM"]  # spad costs nothing in every layer
    ax = energy_delay([cell], tmp_path).axes[0]
    assert ax.get_xlim()[0] == 0 and ax.get_ylim()[0] == 0  # 4% apart looks like 4%


def test_the_kernels_are_compiled_once_and_a_later_load_says_nothing_of_it(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    vectorized.load_kernels()  # compiled now, or loaded from the cache
    assert vectorized.load_kernels() is False
    assert main(["evaluate", *TOY]) == 0 and main(["search", *TOY[:2], "-o", str(tmp_path / "out"), *QUICK]) == 0
    assert "compiled the model's kernels" not in capsys.readouterr().err
