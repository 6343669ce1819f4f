"""Mappings with a remainder (imperfect factorization) as a user meets them: written
in the native or Timeloop format, evaluated by `mapper evaluate`, written back.
Their counts are checked against the brute-force simulator in test_brute_force.py."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest

from mapper import api
from mapper.cli import main
from mapper.explain import Explanation
from mapper.mapping import LevelMapping, Loop, Mapping, merged_end
from mapper.mapspace.padding import paddings
from mapper.model.batch import batch_from_mappings
from mapper.model.reference import evaluate_reference
from mapper.model.stats import Evaluation
from mapper.problem import Problem, Tensor
from mapper.report import loop_nest
from mapper.search import run
from mapper.search.engine import Outcome
from mapper.search.outputs import timeloop_mapping
from mapper.search.run import MIN_REMAINDER_GAIN, screened
from mapper.search.tilings import Effort, score
from mapper.specs.errors import SpecError
from mapper.specs.files import shipped_specs_dir
from mapper.specs.native.mapping import parse_mapping as parse_native
from mapper.specs.timeloop import parse_factors as parse_timeloop_factors
from mapper.specs.timeloop import parse_mapping as parse_timeloop
from run_details import without_run_details

SPECS = shipped_specs_dir()
TOY_ARCH, TINY_CONV = SPECS / "arch/toy-3level.yaml", SPECS / "workloads/tiny-conv.yaml"
# tiny-conv is C2 M4 P4 Q4 R3 S3. P runs as 2 x 3 = 6 > 4: the second DRAM step covers
# the P left; M runs as 2 x 3 over 3 PEs: the second step uses one of them (M 4 of 6).
REMAINDER = """mapping:
  - level: DRAM
    temporal: C2 P2 M2
  - level: Buffer
    temporal: P3 Q4
    spatial: M3X
    keep: [Inputs, Weights]
  - level: Register
    temporal: R3 S3
    keep: [Outputs]
"""


@pytest.fixture
def remainder_files(tmp_path: Path) -> list[Path]:
    mapping = tmp_path / "remainder.yaml"
    mapping.write_text(REMAINDER)
    return [TOY_ARCH, TINY_CONV, mapping]


def test_mapper_evaluate_walks_a_mapping_with_a_remainder(remainder_files: list[Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    loaded = api.load(*remainder_files)
    problem, arch, mapping = loaded.problems[0], loaded.architecture, loaded.mapping
    assert mapping.overshoots(problem.bounds)
    ev = api.evaluate(problem, arch, mapping)
    assert ev == evaluate_reference(problem, arch, mapping)
    assert ev.computes == problem.macs
    # PE0 computes 2 output channels of every output position, the others 1 each.
    register = ev.levels[-1].tensors["Outputs"]
    assert register.updates == Fraction(problem.macs, 3) and register.utilized_instances == 3
    assert register.partition_size == Fraction(64, 3)  # 64 outputs over 3 PEs, on average
    out = tmp_path / "ev.json"
    assert main(["evaluate", *map(str, remainder_files), "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["cycles"] == ev.cycles and written["energy_pJ"] == pytest.approx(ev.energy_pJ)
    assert "Traceback" not in capsys.readouterr().err


def test_constraints_read_a_remainders_factors_as_written(remainder_files: list[Path]) -> None:
    """P3 at the buffer overshoots P's bound 4 with DRAM's P2; a constraint on that
    factor judges the 3 written, not what is left of P in the last step."""
    loaded = api.load(*remainder_files)
    problem, arch, mapping = loaded.problems[0], loaded.architecture, loaded.mapping
    exactly_three = api.load(*_constraints_file(remainder_files[2].parent, "P=3")).constraints
    assert api.broken_constraints(problem, arch, mapping, exactly_three) == []
    at_most_two = api.load(*_constraints_file(remainder_files[2].parent, "P<=2")).constraints
    assert api.broken_constraints(problem, arch, mapping, at_most_two) == [
        "P at Buffer: a factor of 3, where the constraints allow at most 2"]


def _constraints_file(folder: Path, buffer_temporal: str) -> list[Path]:
    path = folder / "constraints.yaml"
    path.write_text(f"constraints:\n  levels:\n    Buffer:\n      temporal: \"{buffer_temporal}\"\n")
    return [path]


def test_factors_short_of_a_bound_are_refused_with_the_factor_missing(tmp_path: Path) -> None:
    short = tmp_path / "short.yaml"
    short.write_text(REMAINDER.replace("P3 Q4", "P1 Q4"))
    with pytest.raises(SpecError, match="factors of dimension P that multiply to 2.*add a factor of 2 for P"):
        api.load(TOY_ARCH, TINY_CONV, short)


def test_the_timeloop_mapping_writes_residual_ends_and_reads_back(remainder_files: list[Path]) -> None:
    loaded = api.load(*remainder_files)
    problem, arch, mapping = loaded.problems[0], loaded.architecture, loaded.mapping
    directives = timeloop_mapping(problem, arch, mapping)
    factors = {(d["target"], d["type"]): d["factors"] for d in directives if "factors" in d}
    # P: DRAM's 2 outside the Buffer's 3, 4 points: 3 + 1; M: 2 outside 3 PEs, 4 = 3 + 1.
    assert "P2 " in factors["DRAM", "temporal"] and "M2" in factors["DRAM", "temporal"]
    assert "P3,1" in factors["Buffer", "temporal"] and "M3,1" in factors["Buffer", "spatial"]
    assert parse_timeloop(directives, problem, arch) == mapping


def test_a_timeloop_residual_end_other_than_the_bound_leaves_is_refused(remainder_files: list[Path]) -> None:
    loaded = api.load(*remainder_files)
    problem, arch, mapping = loaded.problems[0], loaded.architecture, loaded.mapping
    directives = timeloop_mapping(problem, arch, mapping)
    for d in directives:
        if d.get("factors") and "P3,1" in d["factors"]:
            d["factors"] = d["factors"].replace("P3,1", "P3,2")
    with pytest.raises(SpecError, match=r"P=3,2.*P=3,1: the iterations left for the last"):
        parse_timeloop(directives, problem, arch)


@pytest.mark.parametrize(("factors", "found"), [
    ("M7,-1", "'-1'"), ("M7,6,5", "'5'"), ("R1x", "'R1x'"), ("Q1 garbage!! 7", "'garbage!!'"),
    ("M7,6 M1", "M a second time"),
])
def test_timeloop_factors_that_do_not_read_are_refused_not_left_out(factors: str, found: str) -> None:
    with pytest.raises(SpecError, match=re.escape(found)):
        parse_timeloop_factors(factors)
    assert parse_timeloop_factors("C=1,K=1 P4") == {"C": 1, "K": 1, "P": 4}  # Timeloop writes both


def test_residual_ends_are_the_digits_of_the_last_point() -> None:
    """P7 as 2 (time) x 4 (space): the last point, 6, is 1 x 4 + 2: the DRAM loop
    runs 2, the fan-out 3 in its last step. Taken as one loop of 8, as Timeloop
    writes a level's loops of one dimension, it runs 7."""
    mapping = Mapping((LevelMapping((Loop("P", 2),), (Loop("P", 4, "X"),)), LevelMapping()))
    assert mapping.residual_ends({"P": 7}) == (((2,), (3,)), ((), ()))
    assert merged_end([(2, 2), (4, 3)]) == (8, 7)


def test_the_loop_nest_shows_residual_ends(remainder_files: list[Path]) -> None:
    loaded = api.load(*remainder_files)
    nest = loop_nest(loaded.problems[0], loaded.architecture, loaded.mapping)
    assert "for P in [0:3,1)" in nest and "for M in [0:3,1) (Spatial-X)" in nest and "for P in [0:2)" in nest


def test_the_vectorized_model_refuses_a_remainder_rather_than_miscount(remainder_files: list[Path]) -> None:
    loaded = api.load(*remainder_files)
    with pytest.raises(ValueError, match="counts perfect factorizations only"):
        batch_from_mappings(loaded.problems[0], loaded.architecture, [loaded.mapping])


def test_a_remainder_needs_outputs_indexed_by_single_dimensions() -> None:
    """A read-write tensor's share per instance is counted where each rank is one
    dimension; a sliding window over it is refused under a remainder."""
    problem = Problem("p", ("P", "R"), {"P": 3, "R": 2}, (
        Tensor("A", (((1, "P"),),)), Tensor("Z", (((1, "P"), (1, "R")),), read_write=True)))
    arch = api.load(TOY_ARCH).architecture
    raw = [{"level": "DRAM", "temporal": "P2 R2"}, {"level": "Buffer", "temporal": "P2"}]
    with pytest.raises(SpecError, match="read-write tensor Z has a rank that is not one dimension"):
        parse_native(raw, problem, arch)


def test_the_shipped_remainder_mapping_busies_every_pe_but_in_its_last_channel_step() -> None:
    """AlexNet conv3 on the Eyeriss-like array (specs/mappings/): 56 channels a step over
    14 x 12 PEs, 5 steps for 256 channels, the last one 32 channels on 8 columns."""
    loaded = api.load(SPECS / "arch/eyeriss-like.yaml", SPECS / "workloads/alexnet-conv3.yaml",
                      SPECS / "mappings/eyeriss-like-alexnet-conv3-remainder.yaml")
    problem = loaded.problems[0]
    ev = api.evaluate(problem, loaded.architecture, loaded.mapping)
    assert ev.computes == problem.macs and ev.utilized_macs == 168
    assert ev.cycles == 5 * 3 * 13 * 13 * 128 * 3  # C5 S3 Q13 P13 M128 M3
    assert ev.utilization == pytest.approx(256 / 280)


def test_idle_pes_of_a_spatial_remainder_cost_nothing(tmp_path: Path) -> None:
    """C100 M100 on tpu-like's 128 x 128 array, as 100 x 100 and as 128 x 128 with the
    last 28 of each axis idle: the same MACs on the same PEs move the same data."""
    (tmp_path / "fc100.yaml").write_text("problem:\n  conv: {name: fc100, C: 100, M: 100, P: 1, Q: 1, R: 1, S: 1}\n")
    loaded = api.load(SPECS / "arch/tpu-like.yaml", tmp_path / "fc100.yaml")
    problem, arch = loaded.problems[0], loaded.architecture

    def unrolled(factor: int) -> Evaluation:
        entries = [{"level": "DRAM"}, {"level": "UnifiedBuffer"}, {"level": "WeightFIFO", "spatial": f"M{factor}X"},
                   {"level": "Accumulators", "spatial": f"C{factor}Y"}]
        return api.evaluate(problem, arch, parse_native(entries, problem, arch))

    exact, padded = unrolled(100), unrolled(128)
    assert padded.energy_pJ == pytest.approx(exact.energy_pJ, rel=1e-12) and padded.cycles == exact.cycles
    weights = next(lv for lv in padded.levels if lv.name == "WeightRegister").tensors["Weights"]
    assert (weights.reads, weights.utilized_instances) == (Fraction(10_000, 128 * 128), 128 * 128)  # over 16,384 PEs


def test_mapper_explain_takes_a_remainder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [SPECS / "arch/eyeriss-like.yaml", SPECS / "workloads/alexnet-conv3.yaml",
             SPECS / "mappings/eyeriss-like-alexnet-conv3-remainder.yaml"]
    assert main(["explain", *map(str, files), "--json", str(tmp_path / "ex.json")]) == 0
    assert "cycles 973,440 = compute bound 890,003" in capsys.readouterr().out
    assert json.loads((tmp_path / "ex.json").read_text())


# -- the search -------------------------------------------------------------------------
# C3 M15 on 4 PEs: a perfect factorization busies 3 of them (45 MACs in 15 steps); M as
# 16 = 4 x 4 busies all 4 (the last M step with 3 output channels): 12 steps.
FIFTEEN_CHANNELS = "problem:\n  conv: {name: fifteen, C: 3, M: 15, P: 1, Q: 1, R: 1, S: 1}\n"
QUICK = {"trials": 12, "patience": 6}


@pytest.fixture
def fifteen(tmp_path: Path) -> api.Loaded:
    (tmp_path / "fifteen.yaml").write_text(FIFTEEN_CHANNELS)
    return api.load(TOY_ARCH, tmp_path / "fifteen.yaml")


def test_padded_layers_are_the_multiples_of_the_fanout_within_an_eighth(fifteen: api.Loaded) -> None:
    found = paddings(fifteen.problems[0], fifteen.architecture, None)
    assert [(p.dim, p.bound) for p in found] == [("M", 16)]  # C3 as 4 would be a third more
    assert found[0].mapspace.problem.bounds["M"] == 16 and found[0].cycles_at_best == 3 * 16 / 4


def test_a_padded_bound_is_exact_however_large_the_bound(fifteen: api.Loaded) -> None:
    """Integer arithmetic: 2**61 + 1 / 4 as a float rounds to a multiple that is not."""
    problem = fifteen.problems[0]
    huge = replace(problem, bounds={**problem.bounds, "M": 2**61 + 1})
    padded = [p.bound for p in paddings(huge, fifteen.architecture, None) if p.dim == "M"]
    assert sorted(padded) == [2**61 + 2, 2**61 + 4]  # the next multiples of 2 and of 4 (the 4 PEs and a divisor)


def test_the_search_finds_a_remainder_where_perfect_factors_leave_pes_idle(fifteen: api.Loaded,
                                                                          tmp_path: Path) -> None:
    problem, arch = fifteen.problems[0], fifteen.architecture
    perfect = api.search(problem, arch, tmp_path / "perfect", remainders=False, **QUICK)
    best = api.search(problem, arch, tmp_path / "best", **QUICK)
    (mapping, ev), (perfect_mapping, perfect_ev) = best.points[0], perfect.points[0]
    assert not perfect_mapping.overshoots(problem.bounds) and perfect.remainder_searches == []
    assert mapping.overshoots(problem.bounds) and mapping.factor("M") == 16
    assert ev == evaluate_reference(problem, arch, mapping)  # counted exactly, not as the padded layer
    assert (perfect_ev.cycles, ev.cycles) == (15, 12) and ev.computes == problem.macs
    assert ev.edp_J_cycles < perfect_ev.edp_J_cycles
    recorded = json.loads((tmp_path / "best" / "best.json").read_text())["search"]["remainder_searches"]
    assert [(r["dimension"], r["padded_bound"], r["cycles"]) for r in recorded] == [("M", 16, ev.cycles)]
    # The one padded layer searched: begun from its screen, it searches on with the
    # layer's budget (nothing is searched after it); what it cost is said apart from the layer's search.
    assert recorded[0]["trials"] > 1
    assert recorded[0]["mappings_scored_this_run"] > 0 and recorded[0]["seconds_this_run"] > 0


def test_where_the_layers_search_meets_no_mapping_the_padded_layers_are_still_searched(
        fifteen: api.Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mapspace's checks pass, but the budget ends before a trial fits (here: the
    layer's search made to meet none): its padded layers may still map it."""
    problem, arch = fifteen.problems[0], fifteen.architecture
    searching = run.make_search

    def meeting_nothing_unpadded(mapspace, settings, folder, begin=None):
        search = searching(mapspace, settings, folder, begin)
        if mapspace.problem.bounds != problem.bounds:
            return search
        return SimpleNamespace(run=lambda budget, progress=None: Outcome(settings.objective, None, 1, 0, 0.0))

    monkeypatch.setattr(run, "make_search", meeting_nothing_unpadded)
    best = api.search(problem, arch, tmp_path / "best", **QUICK)
    mapping, ev = best.points[0]
    assert mapping.factor("M") == 16 and ev.cycles == 12
    monkeypatch.setattr(run, "padded_searches", lambda *args: [])
    with pytest.raises(run.NotFoundInBudget, match="none of the 0 mappings scored"):
        api.search(problem, arch, tmp_path / "none", **QUICK)


def test_a_remainder_search_resumes_to_the_same_answer(fifteen: api.Loaded, tmp_path: Path) -> None:
    problem, arch = fifteen.problems[0], fifteen.architecture
    first = api.search(problem, arch, tmp_path / "out", **QUICK)
    again = api.search(problem, arch, tmp_path / "out", **QUICK)
    assert again.points == first.points
    assert without_run_details(again.remainder_searches) == without_run_details(first.remainder_searches)


def test_remainder_searches_bounds_the_padded_layers_searched(tmp_path: Path) -> None:
    """C15 M15 on 4 PEs: C and M each as 16 keep them busy; both are searched by
    default, one of them (the screen's best, begun from it) with
    `remainder_searches=1`. The screen's best is its mapping's structure tiled in one
    trial, then polished, where another is searched after it; alone, it searches on
    with the layer's budget (ws-16x16's bneck9_depthwise: docs/search-measurements.md,
    "What remainders gain, and cost")."""
    (tmp_path / "layer.yaml").write_text("problem:\n  conv: {name: l, C: 15, M: 15, P: 1, Q: 1, R: 1, S: 1}\n")
    loaded = api.load(TOY_ARCH, tmp_path / "layer.yaml")
    problem, arch = loaded.problems[0], loaded.architecture
    assert [(p.dim, p.bound) for p in paddings(problem, arch, None)] == [("M", 16), ("C", 16)]
    both = api.search(problem, arch, tmp_path / "both", **QUICK)
    one = api.search(problem, arch, tmp_path / "one", remainder_searches=1, **QUICK)
    assert [r["dimension"] for r in both.remainder_searches] == ["M", "C"]
    assert len(one.remainder_searches) == 1 and one.remainder_searches[0]["dimension"] in ("M", "C")
    assert [r["trials"] > 1 for r in both.remainder_searches] == [False, True]
    assert one.remainder_searches[0]["trials"] > 1
    again = api.search(problem, arch, tmp_path / "one", remainder_searches=1, **QUICK)  # resumed: begun alike
    assert again.points == one.points
    assert without_run_details(again.remainder_searches) == without_run_details(one.remainder_searches)


def test_the_screens_best_is_tiled_in_one_trial_and_polished_and_the_fewest_cycles_searched_on(
        tmp_path: Path) -> None:
    """C15 M15 P15 on 4 PEs: three padded layers worth it, of which a screen picks two. The
    screen's best begins from the mapping the screen found it, and needs only the
    polish; the fewest cycles' begins from a mapping the screen ranked lower, and its
    trials search on (MobileNetV3-Large's bneck1_project: docs/search-measurements.md,
    "What remainders gain, and cost")."""
    (tmp_path / "layer.yaml").write_text("problem:\n  conv: {name: l, C: 15, M: 15, P: 15, Q: 1, R: 1, S: 1}\n")
    loaded = api.load(TOY_ARCH, tmp_path / "layer.yaml")
    problem, arch = loaded.problems[0], loaded.architecture
    assert [(p.dim, p.bound) for p in paddings(problem, arch, None)] == [("M", 16), ("C", 16), ("P", 16)]
    result = api.search(problem, arch, tmp_path / "out", **QUICK)
    screens_best, fewest_cycles = result.remainder_searches
    assert screens_best["trials"] == 1 and fewest_cycles["trials"] > 1
    assert fewest_cycles["dimension"] == "M"  # the first of the three by cycles at best


# ResNet-50's res4a_branch1 on eyeriss-like: the perfect search's answer (seed 0), 112 of
# the 168 PEs busy (P7 C2 across the 14 columns, C8 down 8 of the 12 rows).
RES4A_BRANCH1 = "problem:\n  conv: {name: res4a_branch1, C: 512, M: 1024, P: 14, Q: 14, R: 1, S: 1}\n"
RES4A_BRANCH1_PERFECT = """
mapping:
  - {level: DRAM, temporal: M2 C16, keep: [Weights, Inputs, Outputs]}
  - {level: shared_glb, keep: [Outputs]}
  - {level: inter_PE_column_spatial, spatial: P7X C2X, keep: []}
  - {level: inter_PE_spatial, temporal: M2 C2 P2 Q14, spatial: C8Y, keep: []}
  - {level: ifmap_spad, keep: [Inputs]}
  - {level: weights_spad, temporal: M4, keep: [Weights]}
  - {level: psum_spad, temporal: M64, keep: []}
"""


def test_the_screen_ranks_the_padded_layers_by_what_the_answer_costs_under_them(tmp_path: Path) -> None:
    """C as 516 fills the 12 rows (43 steps of 12) with a few more cycles at best than
    M as 1,026, C as 513, M as 1,029 and M as 1,032, and maps the layer best (142.1
    J*cycles searched, against 167.9-171.8 for those: docs/search-measurements.md,
    "What remainders gain, and cost"); under it, the perfect answer's keep table and loop orders cost least."""
    (tmp_path / "layer.yaml").write_text(RES4A_BRANCH1)
    (tmp_path / "mapping.yaml").write_text(RES4A_BRANCH1_PERFECT)
    loaded = api.load(SPECS / "arch/eyeriss-like.yaml", tmp_path / "layer.yaml", tmp_path / "mapping.yaml")
    problem, arch = loaded.problems[0], loaded.architecture
    answer = batch_from_mappings(problem, arch, [loaded.mapping])
    cycles = api.evaluate(problem, arch, loaded.mapping).cycles
    worth = [p for p in paddings(problem, arch, None) if p.cycles_at_best < cycles * (1 - MIN_REMAINDER_GAIN)]
    assert [(p.dim, p.bound) for p in worth][:5] == [("M", 1026), ("C", 513), ("M", 1029), ("M", 1032), ("C", 516)]

    begins = screened(worth, answer, "edp", Effort())

    ranked = list(begins)
    assert (ranked[0].dim, ranked[0].bound) == ("C", 516)
    assert sorted(ranked, key=lambda p: (p.dim, p.bound)) == sorted(worth, key=lambda p: (p.dim, p.bound))
    assert len(score(ranked[0].mapspace, begins[ranked[0]])[0]) == 1  # where its search begins: a mapping that fits


def test_energy_alone_searches_no_padded_layer(fifteen: api.Loaded, tmp_path: Path) -> None:
    """A padded layer does more work: only fewer cycles can repay it."""
    result = api.search(fifteen.problems[0], fifteen.architecture, tmp_path / "out", objective="energy", **QUICK)
    assert result.remainder_searches == []


def test_mapper_search_says_what_the_padded_layers_found(fifteen: api.Loaded, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    layer = tmp_path / "fifteen.yaml"
    args = ["search", str(TOY_ARCH), str(layer), "--trials", "12", "--patience", "6"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert "searched with remainders: M padded to 16" in capsys.readouterr().out
    assert main([*args, "-o", str(tmp_path / "b"), "--no-remainders"]) == 0
    assert "remainders" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        main([*args, "-o", str(tmp_path / "c"), "--remainder-searches", "0"])
    assert refused.value.code == 2 and "--remainder-searches" in capsys.readouterr().err


def test_resnet18_fc_maps_with_32_columns_over_its_1000_output_channels(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """ZigZag's example of an uneven mapping: M1000 over 32 columns as 32 x 32 (the last
    column step with 8 channels), which no perfect factorization can write."""
    arch = tmp_path / "ws-32x32.yaml"
    arch.write_text((SPECS / "arch/ws-16x16.yaml").read_text().replace("fanout: [16, 16]", "fanout: [32, 32]"))
    layer = tmp_path / "fc.yaml"
    layer.write_text("problem:\n  conv: {name: resnet18_fc, C: 512, M: 1000, P: 1, Q: 1, R: 1, S: 1}\n")
    constraints = tmp_path / "columns.yaml"
    constraints.write_text("constraints:\n  levels:\n"
                           "    GlobalBuffer: {spatial: M=32 C=32, x_dims: [M], y_dims: [C]}\n")
    args = ["search", str(arch), str(layer), "--constraints", str(constraints), "--trials", "12", "--patience", "6"]
    assert main([*args, "-o", str(tmp_path / "perfect"), "--no-remainders"]) == 2  # no valid mapping
    err = capsys.readouterr().err
    assert "M=32 spatially below GlobalBuffer does not divide the bound 1000 of M" in err
    assert "a mapping with a remainder may fit: search without --no-remainders" in err
    assert main([*args, "-o", str(tmp_path / "out")]) == 0
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    loaded = api.load(arch, layer, tmp_path / "out" / "best.mapping.yaml")
    mapping = loaded.mapping
    assert [(loop.dim, loop.factor, loop.spatial) for loop in mapping.levels[1].spatial] == [("C", 32, "Y"),
                                                                                              ("M", 32, "X")]
    assert mapping.factor("M") == 1024 and best["computes"] == 512 * 1000
    assert best["cycles"] == 32 * 16  # 32 M steps of 32 channels (the last of 8) x C16
    # With no perfect answer to screen with, the padded layer is searched as a layer is.
    assert [r["trials"] > 1 for r in best["search"]["remainder_searches"]] == [True]


def test_the_explanation_of_a_remainder_reads_back_from_json(tmp_path: Path) -> None:
    """Its counts are averages over instances that differ, and need not make whole
    numbers times the instances (network summaries read each layer's explanation back
    from best.json): P5 as 3 columns x 2 PEs of a column."""
    (tmp_path / "layer.yaml").write_text("problem:\n  conv: {name: c, C: 2, M: 2, P: 5, Q: 4, R: 2, S: 1}\n")
    (tmp_path / "mapping.yaml").write_text("""mapping:
  - {level: DRAM, temporal: M2}
  - {level: shared_glb, temporal: Q4, keep: [Inputs]}
  - {level: inter_PE_column_spatial, spatial: P3X}
  - {level: inter_PE_spatial, temporal: C2 R2, spatial: P2Y}
  - {level: ifmap_spad, keep: [Inputs]}
  - {level: weights_spad, keep: []}
  - {level: psum_spad, keep: [Outputs]}
""")
    loaded = api.load(SPECS / "arch/eyeriss-like.yaml", tmp_path / "layer.yaml", tmp_path / "mapping.yaml")
    explanation = api.explain(loaded.problems[0], loaded.architecture, loaded.mapping)
    data = json.loads(json.dumps(explanation.to_json()))
    assert any(not float(t["accesses"]).is_integer() for level in data["levels"] for t in level["tensors"])
    assert Explanation.from_json(data) == explanation


def test_a_network_search_reports_a_layer_mapped_with_a_remainder(tmp_path: Path) -> None:
    """The network's summary reads each layer's results back from its best.json, the
    explanation of a remainder's averaged counts included."""
    (tmp_path / "net.yaml").write_text("workload:\n  name: net\n  layers:\n"
                                       "    - conv: {name: fifteen, C: 3, M: 15, P: 1, Q: 1, R: 1, S: 1}\n"
                                       "    - conv: {name: sixteen, C: 3, M: 16, P: 1, Q: 1, R: 1, S: 1}\n")
    args = ["search", str(TOY_ARCH), str(tmp_path / "net.yaml"), "-o", str(tmp_path / "out"), "--jobs", "1",
            "--trials", "12", "--patience", "6"]
    assert main(args) == 0
    rows = {row["layer"]: row for row in json.loads((tmp_path / "out" / "summary.json").read_text())["layers"]}
    assert rows["fifteen"]["cycles"] == rows["sixteen"]["cycles"] == 12  # M as 16 on the 4 PEs, 3 channels idle once
    assert rows["fifteen"]["utilization"] == pytest.approx(45 / 48) and rows["fifteen"]["why"]


def test_no_valid_mapping_says_no_padded_layer_has_one_either(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """M=32 over 16 columns: neither M1000 nor M as 1,024 can take it."""
    layer = tmp_path / "fc.yaml"
    layer.write_text("problem:\n  conv: {name: resnet18_fc, C: 512, M: 1000, P: 1, Q: 1, R: 1, S: 1}\n")
    constraints = tmp_path / "columns.yaml"
    constraints.write_text("constraints:\n  levels:\n    GlobalBuffer: {spatial: M=32, x_dims: [M]}\n")
    assert main(["search", str(SPECS / "arch/ws-16x16.yaml"), str(layer), "--constraints", str(constraints),
                 "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "M=32 spatially below GlobalBuffer does not divide the bound 1000 of M" in err
    assert "no padded layer has a mapping either" in err
