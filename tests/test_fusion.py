"""Fused groups (mapper/fusion.py, mapper/model/fused.py): the rows each layer computes
per tile, the rules a fused layer's mapping follows, and the model's counts against the
brute-force simulator run tile by tile (tests/brute_force.py, simulate_fused)."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from brute_force import simulate_fused  # noqa: E402

from mapper import api  # noqa: E402
from mapper.architecture import Architecture, ComputeUnit, StorageLevel  # noqa: E402
from mapper.cli import main  # noqa: E402
from mapper.fusion import FusedGroup, NotFusable, Window, candidate_groups, violations, window  # noqa: E402
from mapper.mapping import LevelMapping, Loop, Mapping  # noqa: E402
from mapper.model.fused import evaluate_fused  # noqa: E402
from mapper.model.reference import evaluate_reference  # noqa: E402
from mapper.model.vectorized import evaluate_mapping  # noqa: E402
from mapper.problem import Problem, Tensor  # noqa: E402
from mapper.runs import read_runs  # noqa: E402
from mapper.safe_names import file_in  # noqa: E402
from mapper.search.fused import Option, choose_groups  # noqa: E402
from mapper.specs.errors import SpecError  # noqa: E402
from mapper.specs.load import load_specs  # noqa: E402
from mapper.specs.files import shipped_specs_dir
from mapper.specs.native import load_workload_inputs
from mapper.specs.native.mapping import parse_mapping  # noqa: E402
from mapper.workload_graph import workload_graph  # noqa: E402

ALL = frozenset({"Weights", "Inputs", "Outputs"})
SPECS = shipped_specs_dir()


def conv(name: str, C: int, M: int, P: int, Q: int, R: int = 1, S: int = 1, stride: int = 1, G: int = 1) -> Problem:
    """A convolution as the native specs write it (G: groups, depthwise with C = M = 1)."""
    g = (((1, "G"),),) if G > 1 else ()
    bounds = ({"G": G} if G > 1 else {}) | {"M": M, "C": C, "P": P, "Q": Q, "R": R, "S": S}
    return Problem(name, tuple(bounds), bounds, (
        Tensor("Weights", (*g, ((1, "M"),), ((1, "C"),), ((1, "R"),), ((1, "S"),))),
        Tensor("Inputs", (*g, ((1, "C"),), ((stride, "P"), (1, "R")), ((stride, "Q"), (1, "S")))),
        Tensor("Outputs", (*g, ((1, "M"),), ((1, "P"),), ((1, "Q"),)), read_write=True)))


# An inverted bottleneck scaled down: expand 1x1 (4 -> 8 channels), depthwise 3x3
# (padding 1), project 1x1 (8 -> 4), 4 x 4 outputs.
EXPAND = conv("expand", 4, 8, 4, 4)
DEPTHWISE = conv("depthwise", 1, 1, 4, 4, 3, 3, G=8)
PROJECT = conv("project", 8, 4, 4, 4)

ARCH = Architecture("fused", (
    StorageLevel("DRAM", read_energy=200, write_energy=200),
    StorageLevel("Buffer", depth=352, read_energy=6, write_energy=6),
    StorageLevel("RF", instances=2, mesh_x=2, depth=32, read_energy=1, write_energy=1),
), ComputeUnit("MAC", 2, 2, 1, energy=1))


def level(temporal: str = "", spatial: str = "", keep: frozenset[str] = ALL) -> LevelMapping:
    loops = [(token[0], int(token[1:])) for token in temporal.split()]
    return LevelMapping(tuple(Loop(d, f) for d, f in loops),
                        tuple(Loop(token[0], int(token[1:]), "X") for token in spatial.split()), frozenset(keep))


def bottleneck_mappings(group: FusedGroup) -> list[Mapping]:
    """A mapping of each layer's tallest tile: the intermediates whole in the Buffer,
    only loops over other dimensions above it; two PEs."""
    rows = [group.tile_problem(i).bounds["P"] for i in range(3)]
    return [
        Mapping((level("C2", keep={"Weights", "Inputs"}), level(f"P{rows[0]} Q4", "M2", {"Inputs", "Outputs"}),
                 level("M4 C2", keep={"Weights", "Outputs"}))),
        Mapping((level(keep={"Weights"}), level(f"G4 P{rows[1]} Q4", "G2", {"Inputs", "Outputs"}),
                 level("R3 S3"))),
        Mapping((level("M2", keep={"Weights", "Outputs"}), level(f"P{rows[2]} Q4 C4", "C2", {"Inputs", "Outputs"}),
                 level("M2", keep={"Weights", "Outputs"}))),
    ]


# -- the rows of each tile ---------------------------------------------------------


def test_a_3x3_window_makes_the_tile_before_it_one_row_taller_on_each_side() -> None:
    group = FusedGroup((EXPAND, DEPTHWISE, PROJECT), level=1, rows=2)
    assert group.row_ranges[2] == ((0, 2), (2, 4))
    assert group.row_ranges[1] == ((0, 2), (2, 4))  # the 1x1 projection reads its rows only
    assert group.row_ranges[0] == ((0, 3), (1, 4))  # the window's padding row falls off each edge
    assert group.tile_shapes(0) == [(3, 2)]
    assert group.intermediates(0) == ("Outputs",) and group.intermediates(1) == ("Inputs", "Outputs")


def test_the_halo_is_recomputed_in_every_tile_that_reads_it() -> None:
    group = FusedGroup((conv("a", 2, 2, 8, 4), conv("b", 2, 2, 8, 4, 3, 3)), level=1, rows=2)
    assert group.row_ranges[0] == ((0, 3), (1, 5), (3, 7), (5, 8))
    assert group.tile_shapes(0) == [(4, 2), (3, 2)]
    assert group.macs == (4 + 4 + 3 + 3) * 2 * 2 * 4 + 8 * 2 * 2 * 4 * 9  # 14 rows of a computed for its 8


def test_a_strided_window_reads_twice_the_rows() -> None:
    producer, consumer = conv("a", 2, 2, 8, 8), conv("b", 2, 2, 4, 4, 3, 3, stride=2)
    assert window(producer, consumer).padding == 1
    assert FusedGroup((producer, consumer), level=1, rows=1).row_ranges[0] == ((0, 2), (1, 4), (3, 6), (5, 8))


@pytest.mark.parametrize("layers, message", [
    ((conv("a", 2, 4, 8, 8), conv("b", 2, 2, 8, 8)), "b reads 2 channels, a writes 4"),
    ((conv("a", 2, 2, 8, 8), conv("b", 2, 2, 2, 2, 3, 3, stride=2)), "may sit between them"),
    ((conv("a", 2, 2, 8, 8),), "two layers or more"),
])
def test_layers_that_do_not_connect_do_not_fuse(layers, message) -> None:
    with pytest.raises(NotFusable, match=message):
        FusedGroup(layers, level=1, rows=1)


def matmul(name: str, M: int, K: int, N: int) -> Problem:
    """A linear layer as the native specs write it: Inputs[M, K] x Weights[K, N]."""
    return Problem(name, ("M", "N", "K"), {"M": M, "N": N, "K": K}, (
        Tensor("Inputs", (((1, "M"),), ((1, "K"),))), Tensor("Weights", (((1, "K"),), ((1, "N"),))),
        Tensor("Outputs", (((1, "M"),), ((1, "N"),)), read_write=True)))


UP, DOWN = matmul("up", 6, 4, 8), matmul("down", 6, 8, 4)  # a transformer's feed-forward pair, scaled down


def test_a_matrix_product_reads_its_producers_rows_row_for_row() -> None:
    """A transformer's tokens: no window, no halo."""
    assert window(UP, DOWN) == Window(1, 1, 1, 0)
    group = FusedGroup((UP, DOWN), level=1, rows=4)
    assert group.row_ranges == (((0, 4), (4, 6)), ((0, 4), (4, 6)))
    assert group.macs == UP.macs + DOWN.macs
    with pytest.raises(NotFusable, match="not both convolutions or both matrix products"):
        FusedGroup((EXPAND, DOWN), level=1, rows=1)


def test_the_candidates_in_a_transformer_layer_follow_its_feed_forward_chain() -> None:
    """BERT's attention mixes two inputs per product; the output projection reads the
    heads' outputs concatenated (768 channels, 64 per head in the batched product)."""
    problems, inputs = load_workload_inputs(SPECS / "workloads/bert-base.yaml")
    arch = load_specs([SPECS / "arch/eyeriss-like.yaml"]).architecture
    groups = candidate_groups(workload_graph(problems, inputs), arch)
    assert sorted({g.name.split(",")[0] for g in groups}) == [
        "ffn_up..ffn_down", "output_projection..ffn_down", "output_projection..ffn_up"]


def test_a_candidate_groups_intermediates_fit_what_one_of_the_levels_buffers_holds() -> None:
    """Double buffering halves the Buffer's 352 words: the depthwise layer's input tile
    of 4 output rows (8 channels x 6 x 6 padded, 288 words) no longer fits."""
    graph = workload_graph([EXPAND, DEPTHWISE, PROJECT], {})
    single = [g.name for g in candidate_groups(graph, ARCH)]
    double = replace(ARCH, levels=(ARCH.levels[0], replace(ARCH.levels[1], multiple_buffering=2), ARCH.levels[2]))
    assert "expand..depthwise, 4 rows" in single
    assert [g.name for g in candidate_groups(graph, double)] == [
        "expand..depthwise, 1 row", "depthwise..project, 4 rows", "depthwise..project, 2 rows",
        "expand..project, 1 row"]


# -- the rules of a fused layer's mapping --------------------------------------------


def test_an_intermediate_stays_whole_in_the_groups_level_and_nowhere_above() -> None:
    group = FusedGroup((EXPAND, DEPTHWISE, PROJECT), level=1, rows=2)
    good = bottleneck_mappings(group)
    assert all(violations(group, ARCH, i, m) == [] for i, m in enumerate(good))
    dram_keeps = Mapping((level("C2", keep=ALL),) + good[0].levels[1:])
    assert violations(group, ARCH, 0, dram_keeps) == ["Outputs of expand stays in Buffer, but DRAM keeps it"]
    moving = Mapping((level("G2", keep={"Weights"}), level("G4 P2 Q4", keep={"Inputs", "Outputs"}),
                      level("R3 S3")))
    assert violations(group, ARCH, 1, moving) == [
        f"{name} of depthwise must stay whole in Buffer, but loops above it run over G"
        for name in ("Inputs", "Outputs")]
    with pytest.raises(ValueError, match="DRAM keeps it"):
        evaluate_fused(group, ARCH, [dram_keeps] + good[1:])


# -- the counts ---------------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_fused_bottleneck_counts_match_the_simulator_tile_by_tile(rows: int) -> None:
    """Energy, cycles and MACs of the expand -> depthwise -> project group, each layer's
    tiles counted by the reference model, equal to the simulator's run of every tile;
    3 rows leave a short last tile, which runs the tallest tile's mapping with a
    remainder."""
    group = FusedGroup((EXPAND, DEPTHWISE, PROJECT), level=1, rows=rows)
    mappings = bottleneck_mappings(group)
    model = evaluate_fused(group, ARCH, mappings, link_transfers=False)
    sim = simulate_fused(list(group.layers), [0, 1, 0], 1, rows, ARCH, mappings)
    assert [sorted(n for n, _ in tiles) for tiles in sim.tiles] == [
        sorted(n for n, count in group.tile_shapes(i) for _ in range(count)) for i in range(3)]
    assert math.isclose(model.energy_pJ, sim.energy_pJ, rel_tol=1e-9)
    assert model.cycles == sim.cycles
    assert model.computes == sim.macs == group.macs


def test_a_conv_pair_with_a_strided_window_matches_the_simulator() -> None:
    producer, consumer = conv("a", 2, 4, 6, 3), conv("b", 4, 2, 3, 3, 3, 1, stride=2)
    group = FusedGroup((producer, consumer), level=1, rows=1)
    tall = group.tile_problem(0).bounds["P"]
    mappings = [Mapping((level("C2", keep={"Weights", "Inputs"}), level(f"P{tall} Q3", "M2", {"Inputs", "Outputs"}),
                         level("M2", keep={"Weights", "Outputs"}))),
                Mapping((level("M2", keep={"Weights", "Outputs"}), level("P1 Q3 R3", "C2", {"Inputs", "Outputs"}),
                         level("C2", keep={"Weights", "Inputs"})))]
    model = evaluate_fused(group, ARCH, mappings, link_transfers=False)
    sim = simulate_fused([producer, consumer], [0, 1], 1, 1, ARCH, mappings)
    assert math.isclose(model.energy_pJ, sim.energy_pJ, rel_tol=1e-9)
    assert model.cycles == sim.cycles


def test_every_tensor_a_fused_layer_holds_at_once_must_fit() -> None:
    """The whole group in one tile: the depthwise layer would hold its 6 x 6 input rows
    and columns and its 4 x 4 outputs, 8 channels each, in the 352-word Buffer."""
    group = FusedGroup((EXPAND, DEPTHWISE, PROJECT), level=1, rows=4)
    with pytest.raises(ValueError, match="layer depthwise: Buffer holds 352 words; the tiles need Inputs 288 "
                                         r"\+ Outputs 128 = 416"):
        evaluate_fused(group, ARCH, bottleneck_mappings(group))


@pytest.mark.parametrize("rows", [2, 4])
def test_a_fused_feed_forward_pair_matches_the_simulator(rows: int) -> None:
    group = FusedGroup((UP, DOWN), level=1, rows=rows)
    mappings = [Mapping((level("K2", keep={"Weights", "Inputs"}), level(f"M{rows} N4", "N2", {"Inputs", "Outputs"}),
                         level("K2", keep={"Weights", "Outputs"}))),
                Mapping((level("N2", keep={"Weights", "Outputs"}), level(f"M{rows} K4", "K2", {"Inputs", "Outputs"}),
                         level("N2", keep={"Weights", "Outputs"})))]
    model = evaluate_fused(group, ARCH, mappings, link_transfers=False)
    sim = simulate_fused([UP, DOWN], [0, 0], 1, rows, ARCH, mappings)
    assert math.isclose(model.energy_pJ, sim.energy_pJ, rel_tol=1e-9)
    assert model.cycles == sim.cycles and model.computes == sim.macs == UP.macs + DOWN.macs


def test_intermediates_never_reach_dram() -> None:
    """DRAM serves the weights, the group's input rows (the halo again in every tile
    that reads it) and takes the last layer's outputs once; nothing else."""
    group = FusedGroup((EXPAND, DEPTHWISE, PROJECT), level=1, rows=2)
    fused = evaluate_fused(group, ARCH, bottleneck_mappings(group))
    dram = [[t.evaluation.levels[0].tensors for t in tiles] for tiles in fused.layers]
    assert all(set(tensors) == {"Weights", "Inputs"} for tensors in dram[0])
    assert all(set(tensors) == {"Weights"} for tensors in dram[1])
    assert all(set(tensors) == {"Weights", "Outputs"} for tensors in dram[2])
    inputs = sum(t.evaluation.levels[0].tensors["Inputs"].reads * t.tiles for t in fused.layers[0])
    assert inputs == 4 * (3 + 3) * 4  # channels x the rows of both tiles x columns
    assert sum(t.evaluation.levels[0].tensors["Outputs"].updates * t.tiles for t in fused.layers[2]) == 4 * 4 * 4


def test_a_layers_energy_is_split_by_level_over_its_tiles() -> None:
    group = FusedGroup((EXPAND, DEPTHWISE, PROJECT), level=1, rows=2)
    fused = evaluate_fused(group, ARCH, bottleneck_mappings(group))
    for i in range(3):
        assert math.isclose(sum(fused.energy_by_level_pJ(i).values()), fused.layer_energy_pJ(i), rel_tol=1e-12)
        assert math.isclose(sum(fused.energy_by_tensor_pJ(i).values()), fused.layer_energy_pJ(i), rel_tol=1e-12)
    single = evaluate_reference(group.tile_problem(1), ARCH, bottleneck_mappings(group)[1])
    assert math.isclose(fused.layer_energy_pJ(1), single.energy_pJ * group.tiles, rel_tol=1e-12)


def test_the_vectorized_model_counts_a_fused_layers_tile_as_the_reference_does() -> None:
    """An intermediate's outermost keeper below DRAM: no fills, no write-back, in both."""
    group = FusedGroup((EXPAND, DEPTHWISE, PROJECT), level=1, rows=2)
    for i, mapping in enumerate(bottleneck_mappings(group)):
        problem = group.tile_problem(i)
        assert evaluate_mapping(problem, ARCH, mapping) == evaluate_reference(problem, ARCH, mapping)


# -- which groups a network runs fused --------------------------------------------------


def test_groups_are_chosen_for_the_least_network_energy() -> None:
    unfused = [(10.0, 5), (10.0, 5), (10.0, 5), (10.0, 5)]
    options = [Option(0, 2, 12.0, 12), Option(1, 3, 11.0, 11), Option(2, 4, 15.0, 11), Option(0, 3, 25.0, 16)]
    assert choose_groups(unfused, options, "energy") == [0, 2]  # 27 against 31 with (1, 2) and 40 alone
    assert choose_groups(unfused, options, "delay") == []  # fusing never saves cycles here


def test_groups_are_chosen_for_the_least_network_energy_times_cycles() -> None:
    """Energy x cycles is not a sum over the layers: (0, 2) alone makes the network's
    40 pJ x 20 cycles 32 x 20; with (2, 4) too, 26 pJ, but 30 cycles: 780 > 640."""
    unfused = [(10.0, 5), (10.0, 5), (10.0, 5), (10.0, 5)]
    options = [Option(0, 2, 12.0, 10), Option(2, 4, 14.0, 20)]
    assert choose_groups(unfused, options, "energy") == [0, 1]
    assert choose_groups(unfused, options, "edp") == [0]
    with pytest.raises(ValueError, match="one objective"):
        choose_groups(unfused, options, "pareto")


def test_the_choice_for_energy_times_cycles_is_exact() -> None:
    """From the totals of no fusion, (1, 3) saves more energy x cycles to first order
    than (0, 2); but (0, 2) ends lower: 305 x 2,832 = 863,760 against 358 x 2,448 =
    876,384 (a search run into this)."""
    unfused = [(100.0, 576), (200.0, 1296), (101.0, 576)]
    options = [Option(0, 2, 204.0, 2256), Option(1, 3, 258.0, 1872)]
    assert choose_groups(unfused, options, "edp") == [0]
    assert choose_groups(unfused, options, "delay") == [1]  # as fast as none, for less energy


# -- `mapper search --fusion` -------------------------------------------------------------

FUSION_ARCH = """\
architecture:
  name: small-fused
  levels:
    - {name: DRAM, size: unbounded, energy: {read: 200, write: 200}}
    - {name: Buffer, size: 256, energy: {read: 6, write: 6}, fanout: 2}
    - {name: Register, size: 16, energy: {read: 1, write: 1}}
  compute: {energy: 1}
"""
BOTTLENECK = """\
workload:
  name: bottleneck
  layers:
    - conv: {name: expand, C: 4, M: 8, H: 6, W: 6, R: 1, S: 1}
    - conv: {name: depthwise, C: 8, M: 8, H: 6, W: 6, R: 3, S: 3, padding: 1, groups: 8}
    - conv: {name: project, C: 8, M: 4, H: 6, W: 6, R: 1, S: 1}
"""
FUSION_BUDGET = ["--trials", "6", "--patience", "3", "--no-remainders", "--jobs", "1"]


@pytest.fixture(scope="module")
def fused_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path, Path]:
    """The bottleneck searched with --fusion and without: (its files, both folders)."""
    tmp = tmp_path_factory.mktemp("fusion")
    (tmp / "arch.yaml").write_text(FUSION_ARCH)
    (tmp / "net.yaml").write_text(BOTTLENECK)
    files = [str(tmp / "arch.yaml"), str(tmp / "net.yaml")]
    assert main(["search", *files, "-o", str(tmp / "fused"), *FUSION_BUDGET, "--fusion"]) == 0
    assert main(["search", *files, "-o", str(tmp / "alone"), *FUSION_BUDGET]) == 0
    return files, tmp / "fused", tmp / "alone"


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_fusion_runs_a_group_fused_where_it_lowers_the_network_edp(fused_run) -> None:
    _, fused, alone = fused_run
    with_groups, without = summary_of(fused), summary_of(alone)
    names = [c["group"] for c in with_groups["fusion_candidates"]]
    assert {"expand..depthwise, 2 rows", "depthwise..project, 3 rows", "expand..project, 1 row"} <= set(names)
    (group,) = with_groups["fusion_groups"]
    rows = {r["layer"]: r for r in with_groups["layers"]}
    assert [rows[name].get("fusion_group") for name in group["layers"]] == [group["group"]] * len(group["layers"])
    assert sum(rows[name]["energy_pJ"] for name in group["layers"]) == pytest.approx(group["energy_pJ"])
    assert group["alone"]["energy_pJ"] == pytest.approx(sum(r["energy_pJ"] for r in without["layers"]
                                                            if r["layer"] in group["layers"]))
    assert group["dram_energy_pJ"] < group["alone"]["dram_energy_pJ"]
    assert group["dram_accesses"] < group["alone"]["dram_accesses"]
    assert sum(rows[name]["accesses_by_level"]["DRAM"] for name in group["layers"]) == group["dram_accesses"]
    totals = with_groups["totals"]
    assert totals["network_edp_J_cycles"] < without["totals"]["network_edp_J_cycles"]
    assert with_groups["totals_unfused"] == without["totals"]
    assert totals["macs"] == without["totals"]["macs"]  # the layers' own; `macs_run` counts the recomputed rows


def test_a_fused_groups_figures_are_its_tiles_counted_again(fused_run) -> None:
    files, fused, _ = fused_run
    specs = load_specs(files)
    (entry,) = summary_of(fused)["fusion_groups"]
    group = FusedGroup(tuple(p for p in specs.problems if p.name in entry["layers"]), 1, entry["rows"])
    folders = [file_in(fused / "layers", f"{group.name}: {p.name}") for p in group.layers]
    mappings = [parse_mapping(json.loads((f / "best.json").read_text())["mapping"], group.tile_problem(i),
                              specs.architecture) for i, f in enumerate(folders)]
    counted = evaluate_fused(group, specs.architecture, mappings)
    assert counted.energy_pJ == pytest.approx(entry["energy_pJ"]) and counted.cycles == entry["cycles"]


def test_without_fusion_nothing_else_is_searched_and_the_layers_come_out_the_same(fused_run) -> None:
    _, fused, alone = fused_run
    assert sorted(p.name for p in (alone / "layers").iterdir()) == ["depthwise", "expand", "project"]
    assert "fusion_groups" not in summary_of(alone)
    for layer in ("expand", "depthwise", "project"):
        a, b = (json.loads((f / "layers" / layer / "best.json").read_text()) for f in (fused, alone))
        assert a["mapping"] == b["mapping"] and a["energy_pJ"] == b["energy_pJ"]


def test_compare_and_explain_read_a_fused_run_as_its_summary_has_it(fused_run) -> None:
    """The network's layers with their figures over every tile where they run fused,
    never the tiles searched for the candidate groups as layers of their own."""
    _, fused, _ = fused_run
    summary = summary_of(fused)
    (run,) = read_runs(fused)
    assert [layer.name for layer in run.layers] == [r["layer"] for r in summary["layers"]]
    assert run.energy_pJ == pytest.approx(summary["totals"]["energy_pJ"])
    assert run.cycles == summary["totals"]["cycles"]
    (group,) = summary["fusion_groups"]
    for layer in run.layers:
        assert layer.fused_in == (group["group"] if layer.name in group["layers"] else None)
        folder = file_in(fused / "layers", f"{layer.fused_in}: {layer.name}" if layer.fused_in else layer.name)
        assert layer.path == folder / "best.json"


def test_a_fused_run_without_its_summary_yet_reads_as_its_layers_searched_alone(fused_run, tmp_path: Path) -> None:
    _, fused, _ = fused_run
    copy = tmp_path / "unfinished"
    shutil.copytree(fused, copy)
    (copy / "summary.json").unlink()
    (run,) = read_runs(copy)
    assert [(layer.name, layer.fused_in) for layer in run.layers] == [
        ("expand", None), ("depthwise", None), ("project", None)]


def test_a_fused_search_run_again_resumes_to_the_same_summary(fused_run, tmp_path: Path) -> None:
    files, fused, _ = fused_run
    shutil.copytree(fused, tmp_path / "out")
    for journal in (tmp_path / "out" / "layers").glob("*/study.journal"):
        journal.unlink()  # a search that ran again would start anew from nothing
    assert main(["search", *files, "-o", str(tmp_path / "out"), *FUSION_BUDGET, "--fusion"]) == 0
    assert summary_of(tmp_path / "out") == summary_of(fused)


def test_a_folder_searched_with_fusion_is_not_taken_for_one_without(fused_run, capsys) -> None:
    files, fused, _ = fused_run
    assert main(["search", *files, "-o", str(fused), *FUSION_BUDGET]) != 0
    assert "found the results of another job (it differs in fusion)" in capsys.readouterr().err


def test_an_experiment_searches_fused_groups_in_every_cell(fused_run, tmp_path: Path) -> None:
    """`search: {fusion: true}` in `mapper run`: the cell is the network `mapper search
    --fusion` makes, with the same settings."""
    files, fused, _ = fused_run
    experiment = tmp_path / "fusion.yaml"
    experiment.write_text(f"""name: fused
architectures: [{files[0]}]
workloads: [{files[1]}]
search: {{trials: 6, patience: 3, remainders: false, fusion: true}}
""")
    assert main(["run", str(experiment), "-o", str(tmp_path / "out"), "--jobs", "1"]) == 0
    (cell,) = (tmp_path / "out" / "cells").glob("*/*/*/*/summary.json")
    found, expected = json.loads(cell.read_text()), summary_of(fused)
    assert found["fusion_groups"] == expected["fusion_groups"] and found["totals"] == expected["totals"]


@pytest.mark.parametrize("arch, workload, reason", [
    (FUSION_ARCH, BOTTLENECK.split("    - conv: {name: depthwise")[0], "one layer to search (expand)"),
    (FUSION_ARCH.replace("size: 256", "size: 16"), BOTTLENECK, "no run of two layers or more"),
])
def test_an_experiment_cell_with_no_group_to_consider_says_why(tmp_path: Path, capsys, arch, workload,
                                                                reason) -> None:
    (tmp_path / "arch.yaml").write_text(arch)
    (tmp_path / "net.yaml").write_text(workload)
    experiment = tmp_path / "fusion.yaml"
    experiment.write_text(f"""name: unfused
architectures: [{tmp_path / "arch.yaml"}]
workloads: [{tmp_path / "net.yaml"}]
search: {{trials: 2, patience: 1, remainders: false, fusion: true}}
""")
    assert main(["run", str(experiment), "-o", str(tmp_path / "out"), "--jobs", "1"]) == 0
    out = capsys.readouterr()
    assert f"fusion: no fused group to consider: {reason}" in out.out + out.err


@pytest.mark.parametrize("extra, message", [
    (["--objective", "pareto"], "fused groups are chosen for one objective"),
    (["--layer", "expand"], "one layer to search"),
])
def test_fusion_refuses_what_it_cannot_do_in_one_line(fused_run, tmp_path: Path, capsys, extra, message) -> None:
    files, _, _ = fused_run
    assert main(["search", *files, "-o", str(tmp_path / "out"), "--fusion", *extra]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_fusion_with_no_group_to_consider_says_why_and_searches_the_layers_alone(tmp_path: Path, capsys) -> None:
    """A 16-word Buffer holds no intermediate whole, even of one output row a tile."""
    (tmp_path / "arch.yaml").write_text(FUSION_ARCH.replace("size: 256", "size: 16"))
    (tmp_path / "net.yaml").write_text(BOTTLENECK)
    files = [str(tmp_path / "arch.yaml"), str(tmp_path / "net.yaml")]
    assert main(["search", *files, "-o", str(tmp_path / "out"), *FUSION_BUDGET, "--fusion"]) == 0
    err = capsys.readouterr().err
    assert "--fusion: no fused group to consider: no run of two layers or more" in err
    assert "fit Buffer whole" in err and summary_of(tmp_path / "out")["layers"]


def test_a_mapping_file_may_bypass_dram_only_for_a_tensor_held_whole_below() -> None:
    """As a fused layer's best.json writes it: DRAM without the expand layer's outputs,
    which the Buffer holds whole; with a loop over M above the Buffer, refused."""
    group = FusedGroup((EXPAND, DEPTHWISE, PROJECT), level=1, rows=2)
    problem = group.tile_problem(0)
    entries = [{"level": "DRAM", "temporal": "C2", "keep": ["Weights", "Inputs"]},
               {"level": "Buffer", "temporal": "P3 Q4", "spatial": "M2X", "keep": ["Inputs", "Outputs"]},
               {"level": "RF", "temporal": "M4 C2", "keep": ["Weights", "Outputs"]}]
    assert parse_mapping(entries, problem, ARCH) == bottleneck_mappings(group)[0]
    entries[0]["temporal"] = "C2 M2"
    entries[2]["temporal"] = "M2 C2"
    with pytest.raises(SpecError, match=r"the outermost level bypassing Outputs \(Buffer keeps it, but loops above "
                                        "it run over M\\)"):
        parse_mapping(entries, problem, ARCH)


def test_the_python_api_searches_fused_groups_too(fused_run, tmp_path: Path) -> None:
    files, fused, _ = fused_run
    shutil.copytree(fused, tmp_path / "out")
    result = api.search_network(api.load(*files), tmp_path / "out", fusion=True, trials=6, patience=3,
                                remainders=False)
    assert result.summary == summary_of(fused)
