"""The constraint language: native YAML and Timeloop's targets read into the same
constraints; Timeloop's reference mappings satisfy the constraints they were found
under; each dataflow preset yields the loop nest its documentation describes, on every
shipped architecture; and a mistaken constraint file is a SpecError with its key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from constraint_oracle import chain, conv1d, matmul, problems
from timeloop_reference import REFERENCE

from mapper.architecture import Architecture
from mapper.constraints import PRESETS, Constraints, Factor, LevelConstraints, preset
from mapper.mapping import Mapping
from mapper.mapspace import Mapspace, NoValidMapping
from mapper.model.batch import batch_from_mappings
from mapper.problem import Problem
from mapper.specs.constraints import parse_factor_words, parse_native
from mapper.specs.errors import SpecError
from mapper.specs.load import load_specs
from mapper.specs.files import shipped_specs_dir

SPECS = shipped_specs_dir()
CASES = REFERENCE / "cases"
needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")
EYERISS, TINY_CONV = SPECS / "arch/eyeriss.yaml", SPECS / "workloads/tiny-conv.yaml"
CONV3 = SPECS / "workloads/alexnet-conv3.yaml"


def write(tmp_path: Path, text: str, name: str = "constraints.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------------------
# The factor syntax


def test_factor_bounds_read_the_same_in_every_form() -> None:
    want = {"C": Factor(exact=1), "M": Factor(min=2, max=8), "P": Factor(rest=True), "Q": Factor(exact=14)}
    assert parse_factor_words("C=1 M<=8 M>=2 P=0 Q=14") == want
    assert parse_factor_words("C1,M>=2,M<=8, P0 Q14") == want  # Timeloop's "C1" and commas
    path_forms = [
        'temporal: "C=1 M<=8 M>=2 P=0 Q=14"',
        'temporal: [C=1, M<=8, M>=2, P=0, Q=14]',
        'temporal: {C: 1, M: ">=2", P: 0, Q: 14}',
    ]
    for form in path_forms[:2]:
        assert _native_level(form).temporal == want
    assert _native_level(path_forms[2]).temporal == want | {"M": Factor(min=2)}


def _native_level(line: str) -> LevelConstraints:
    raw = yaml.safe_load(f"levels:\n  Buffer:\n    {line}\n")
    return parse_native(raw, None).level("Buffer")


def test_the_rest_takes_what_the_other_fixed_factors_leave() -> None:
    """`=0` at one level: all of the dimension but the exact factors elsewhere; every
    other factor of it is 1."""
    problem, arch = conv1d(8, 3, 4), chain([None, 64, 16], [(1, 1), (2, 1), (1, 1)])
    c = Constraints({"L0": LevelConstraints(temporal={"K": Factor(exact=2)}),
                     "L1": LevelConstraints(temporal={"K": Factor(rest=True)})})
    space = Mapspace(problem, arch, c)
    for batch in space.enumerate():
        assert (batch.temporal[:, :, 0] == [2, 4, 1]).all() and (batch.spatial_x[:, :, 0] == 1).all()
    whole = Constraints({"L2": LevelConstraints(temporal={"K": Factor(rest=True)})})
    for batch in Mapspace(problem, arch, whole).enumerate():
        assert (batch.temporal[:, 2, 0] == 8).all()  # Timeloop's reading: the full dimension


# ---------------------------------------------------------------------------
# Timeloop's format


@needs_reference
def test_timeloop_constraints_of_the_eyeriss_mapper_case_read_as_timeloop_means_them() -> None:
    specs = load_specs([CASES / "t06_mapper_eyeriss_vgg02_l5/ref-output/parsed-processed-input.yaml",
                        CASES / "t06_mapper_eyeriss_vgg02_l5/ref-output/timeloop-mapper.ERT.yaml"])
    c = specs.constraints
    assert c.level("DRAM").innermost == ("N",)
    assert c.level("shared_glb").keep == {"Inputs", "Outputs"} and c.level("shared_glb").bypass == {"Weights"}
    column = c.level("inter_PE_column_spatial")  # permutation NCPRSQM, split 7: every dimension on X
    assert column.y_dims == frozenset() and column.x_dims is None
    assert column.spatial == {d: Factor(exact=1) for d in "NCPRS"}
    pe = c.level("inter_PE_spatial")  # permutation NPQRSCM, split 4
    assert pe.x_dims == {"N", "P", "Q", "R"} and pe.y_dims == {"S", "C", "M"}
    assert pe.spatial_order == tuple("MCSRQPN")
    weights = c.level("weights_spad")  # permutation NMPQSCR: R outside C, the rest unit
    assert weights.innermost == tuple("RCSQPMN")
    assert weights.temporal == {d: Factor(exact=1) for d in "NMPQS"}
    assert weights.keep == {"Weights"} and weights.bypass == {"Outputs", "Inputs"}


@needs_reference
@pytest.mark.parametrize("case", ["t06_mapper_eyeriss_vgg02_l5", "ed_eyeriss_like_default",
                                  "t05_mapper_conv1d_oc_baked", "t05_mapper_conv1d_oc_freebypass"])
def test_timeloop_reference_mapping_satisfies_the_constraints_it_was_found_under(case: str) -> None:
    out = CASES / case / "ref-output"
    specs = load_specs([out / "parsed-processed-input.yaml", out / "timeloop-mapper.ERT.yaml",
                        out / "timeloop-mapper.map.yaml"])
    problem, arch, c = specs.problems[0], specs.architecture, specs.constraints
    assert problems(c, problem, arch, specs.mapping) == []
    space = Mapspace(problem, arch, c)
    space.check()
    batch = batch_from_mappings(problem, arch, [specs.mapping])
    assert space.valid(batch).all() and space.broken_constraints(batch) == []


@needs_reference
def test_fully_fixed_timeloop_constraints_leave_one_factorization() -> None:
    specs = load_specs([CASES / "t05_mapper_conv1d_oc_baked/ref-output/parsed-processed-input.yaml",
                        CASES / "t05_mapper_conv1d_oc_baked/ref-output/timeloop-mapper.ERT.yaml"])
    sizes = Mapspace(specs.problems[0], specs.architecture, specs.constraints).sizes()
    assert sizes == {"factorizations": 1, "permutations": 1, "spatial": 1, "bypass": 1, "total": 1}


@needs_reference
@pytest.mark.parametrize("inputs, total", [
    ("t05_mapper_conv1d_oc_baked/inputs/conv1d+oc-3level-1mapping.constraints.yaml", 1),
    ("t05_mapper_conv1d_oc_freebypass/inputs/conv1d+oc-3level-freebypass.constraints.yaml", 2 ** (2 * 3)),
])
def test_timeloop_constraint_files_give_the_mapspace_size_their_comments_state(inputs: str, total: int) -> None:
    """baked: "reducing the space down to single degenerate mapping"; freebypass: only
    the bypass of 3 tensors at 2 levels is open, "the total number of choices =
    2^(2*3) = 64, which is the size of the mapspace"."""
    specs = load_specs([CASES / "t05_mapper_conv1d_oc_null/ref-output/parsed-processed-input.yaml",
                        CASES / "t05_mapper_conv1d_oc_null/ref-output/timeloop-mapper.ERT.yaml", CASES / inputs])
    assert Mapspace(specs.problems[0], specs.architecture, specs.constraints).sizes()["total"] == total


def test_timeloop_constraint_file_applies_to_a_native_architecture() -> None:
    specs = load_specs([EYERISS, CONV3, SPECS / "constraints/eyeriss-timeloop-format.yaml"])
    space = Mapspace(specs.problems[0], specs.architecture, specs.constraints)
    space.check()
    assert specs.constraints.level("psum_spad").temporal["C"] == Factor(exact=1)


# ---------------------------------------------------------------------------
# Presets


def roles(arch: Architecture, tensor: str | None = None, bypassed: Constraints | None = None) -> tuple:
    """(fan-out levels, PE-local levels, stationary level of `tensor`), derived here
    from the definitions in mapper/constraints.py."""
    array = [i for i in range(len(arch.levels)) if arch.fanout(i) != (1, 1)]
    local = list(range((array[0] if array else 0) + 1, len(arch.levels)))
    stationary = None
    if tensor:
        user = bypassed or Constraints()
        stationary = max(i for i in local if (arch.levels[i].keeps is None or tensor in arch.levels[i].keeps)
                         and tensor not in user.level(arch.levels[i].name).bypass)
    return array, local, stationary


def nest_breaks(name: str, problem: Problem, arch: Architecture, mapping: Mapping) -> list[str]:
    """How `mapping` departs from the loop nest documented for preset `name`."""
    found = []

    def live(lm, spatial: str | None = None) -> set[str]:
        loops = lm.temporal if spatial is None else [l for l in lm.spatial if l.spatial == spatial]
        return {l.dim for l in loops if l.factor > 1}

    if name in ("weight-stationary", "output-stationary", "input-stationary"):
        tensor = {"weight-stationary": "Weights", "input-stationary": "Inputs"}.get(name, problem.output.name)
        dims = problem.tensor(tensor).dims
        array, _, stationary = roles(arch, tensor)
        for i in array:
            if i < stationary and (live(mapping.levels[i], "X") | live(mapping.levels[i], "Y")) - dims:
                found.append(f"spatial loops over dimensions without {tensor} above the stationary level")
        if tensor not in mapping.levels[stationary].keep:
            found.append(f"the stationary level does not keep {tensor}")
        for lm in mapping.levels[stationary:]:
            if live(lm) & dims:
                found.append(f"loops over {tensor}'s dimensions at or below the stationary level")
    elif name == "row-stationary":
        array, local, _ = roles(arch)
        for i in array:
            if live(mapping.levels[i], "X") - {"Q", "M"} or live(mapping.levels[i], "Y") - {"S", "C", "M"}:
                found.append("spatial loops other than Q, M on X and S, C, M on Y")
        for i in local:
            if live(mapping.levels[i]) - {"R", "C", "M"}:
                found.append("PE-local loops other than R, C, M")
        for tensor in problem.tensors:
            if not any(tensor.name in mapping.levels[i].keep for i in local):
                found.append(f"no PE-local level keeps {tensor.name}")
    else:
        _, local, _ = roles(arch)
        for i in local:
            if mapping.levels[i].keep or live(mapping.levels[i]):
                found.append("a PE-local level that keeps something or loops")
    return found


SHIPPED_ARCHS = sorted(p.stem for p in (SPECS / "arch").glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("arch_name", SHIPPED_ARCHS)
def test_every_preset_yields_its_documented_nest_on_every_shipped_architecture(name: str, arch_name: str) -> None:
    specs = load_specs([SPECS / f"arch/{arch_name}.yaml", TINY_CONV])
    problem, arch = specs.problems[0], specs.architecture
    space = Mapspace(problem, arch, Constraints(preset=name))
    if (arch_name, name) == ("toy-3level", "row-stationary"):
        # RS holds a row of every tensor in the PE: the toy's one-word register cannot, and the check says so
        with pytest.raises(NoValidMapping, match="Register holds 1 words; the smallest tiles"):
            space.check()
        return
    space.check()
    rng = np.random.default_rng(0)
    combos = list(space.spatial_combinations())
    keeps = space.keep_choices()
    valid = 0
    for k in range(8):
        sx, sy = combos[rng.integers(len(combos))]
        orders = [space.permutation_choices(l)[0] for l in range(space.L)]
        batch = space.sample_tilings(space.structure(orders, list(zip(sx, sy)), keeps[rng.integers(len(keeps))]),
                                     16, rng)
        for b in np.nonzero(space.valid(batch))[0]:
            assert nest_breaks(name, problem, arch, batch.mapping(int(b), problem)) == []
            valid += 1
    assert valid > 0


@needs_reference
def test_the_eyeriss_reference_mapping_is_row_stationary() -> None:
    out = CASES / "t06_mapper_eyeriss_vgg02_l5/ref-output"
    specs = load_specs([out / "parsed-processed-input.yaml", out / "timeloop-mapper.ERT.yaml",
                        out / "timeloop-mapper.map.yaml"])
    problem, arch = specs.problems[0], specs.architecture
    assert nest_breaks("row-stationary", problem, arch, specs.mapping) == []
    rs = Constraints(preset="row-stationary").refined_by(specs.constraints)
    assert Mapspace(problem, arch, rs).valid(batch_from_mappings(problem, arch, [specs.mapping])).all()
    assert problems(rs.resolve(problem, arch), problem, arch, specs.mapping) == []


def test_a_preset_that_does_not_apply_says_why() -> None:
    with pytest.raises(ValueError, match="row-stationary needs a convolution"):
        preset("row-stationary", matmul(4, 4, 4), chain([None, 16, 4], [(1, 1), (2, 1), (1, 1)]))
    with pytest.raises(ValueError, match="unknown dataflow preset 'weight-stationery'"):
        preset("weight-stationery", matmul(4, 4, 4), chain([None, 16], [(1, 1), (1, 1)]))
    no_weights_in_pe = chain([None, 16, 4], [(1, 1), (2, 1), (1, 1)], keeps=[None, None, {"Inputs"}])
    with pytest.raises(ValueError, match="needs a level inside the PE that may keep Weights"):
        preset("weight-stationary", conv1d(4, 3, 4), no_weights_in_pe)


def test_user_entries_refine_a_preset(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        constraints:
          preset: weight-stationary
          min_utilization: 0.5
          levels:
            GlobalBuffer: {spatial_x: "C<=4"}
        """)
    specs = load_specs([EYERISS, CONV3, path])
    resolved = specs.constraints.resolve(specs.problems[0], specs.architecture)
    glb = resolved.level("GlobalBuffer")
    assert glb.spatial_x == {"C": Factor(max=4)} and glb.spatial["P"] == Factor(exact=1)  # preset kept
    assert resolved.min_utilization == 0.5


# ---------------------------------------------------------------------------
# Shipped example files


EXAMPLES = {  # shipped constraint file: (architecture, workload) it is written for
    "eyeriss-row-stationary": ("eyeriss", "alexnet-conv3"),
    "eyeriss-timeloop-format": ("eyeriss", "alexnet-conv3"),
    "ws-16x16-weight-stationary": ("ws-16x16", "alexnet-conv3"),
    "os-16x16-output-stationary": ("os-16x16", "alexnet-conv3"),
    "toy-3level-custom": ("toy-3level", "tiny-conv"),
}


def test_every_shipped_constraint_file_is_exercised() -> None:
    assert sorted(p.stem for p in (SPECS / "constraints").glob("*.yaml")) == sorted(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_shipped_constraint_files_load_with_their_architecture(name: str) -> None:
    arch, workload = EXAMPLES[name]
    specs = load_specs([SPECS / f"arch/{arch}.yaml", SPECS / f"workloads/{workload}.yaml",
                        SPECS / f"constraints/{name}.yaml"])
    problem, architecture, c = specs.problems[0], specs.architecture, specs.constraints
    space = Mapspace(problem, architecture, c)
    space.check()
    structure = space.structure([o[0] for o in (space.permutation_choices(l) for l in range(space.L))],
                                list(zip(*next(space.spatial_combinations()))), space.keep_choices()[0])
    batch = space.sample_tilings(structure, 64, np.random.default_rng(0))
    fitting = np.nonzero(space.valid(batch))[0]
    assert len(fitting) > 0
    for b in fitting[:8]:
        assert problems(c.resolve(problem, architecture), problem, architecture,
                        batch.mapping(int(b), problem)) == []


# ---------------------------------------------------------------------------
# Mistakes


BAD_NATIVE = {
    "unknown key": ("levels: {GlobalBuffer: {tempral: C=1}}", "constraints.levels.GlobalBuffer.tempral",
                    "did you mean 'temporal'?"),
    "unreadable factor": ('levels: {GlobalBuffer: {temporal: "C=1 M<8"}}', "constraints.levels.GlobalBuffer.temporal",
                          "cannot read 'M<8'"),
    "two bounds of one kind": ('levels: {GlobalBuffer: {temporal: "M<=8 M<=4"}}',
                               "constraints.levels.GlobalBuffer.temporal", "'M<=4' is a second bound on M"),
    "unknown level": ("levels: {GlobalBufer: {temporal: C=1}}", "constraints.levels.GlobalBufer",
                      "did you mean 'GlobalBuffer'?"),
    "unknown dimension": ("levels: {GlobalBuffer: {temporal: K=1}}", "constraints.levels.GlobalBuffer.temporal",
                          "dimension 'K'"),
    "unknown tensor": ("levels: {psum_spad: {keep: [Output]}}", "constraints.levels.psum_spad.keep",
                       "did you mean 'Outputs'?"),
    "misspelt preset": ("preset: row_stationary", "constraints.preset", "did you mean 'row-stationary'?"),
    "kept and bypassed": ("levels: {GlobalBuffer: {keep: [Inputs], bypass: [Inputs]}}",
                          "constraints.levels.GlobalBuffer.bypass", "kept or bypassed, not both"),
    "utilization above 1": ("min_utilization: 1.5", "constraints.min_utilization", "at most 1"),
    "innermost and outermost": ("levels: {DRAM: {innermost: [C], outermost: [C]}}",
                                "constraints.levels.DRAM.outermost", "not both"),
    "repeated dimension": ("levels: {DRAM: {innermost: [C, M, C]}}", "constraints.levels.DRAM.innermost[2]",
                           "a second time"),
}


@pytest.mark.parametrize("case", BAD_NATIVE)
def test_a_mistaken_native_constraint_is_a_spec_error_with_its_key_path(tmp_path: Path, case: str) -> None:
    body, key_path, detail = BAD_NATIVE[case]
    path = write(tmp_path, "constraints:\n" + textwrap.indent(body, "  ") + "\n")
    with pytest.raises(SpecError) as info:
        load_specs([EYERISS, TINY_CONV, path])
    assert info.value.file == str(path) and info.value.key_path == key_path
    assert detail in str(info.value)


BAD_TIMELOOP = {
    "unknown type": ("- {target: DRAM, type: temporl, factors: C=1}", "mapspace_constraints.targets[0].type",
                     "did you mean 'temporal'?"),
    "unknown level": ("- {target: GLB, type: temporal, factors: C=1}", "mapspace_constraints.targets[0].target",
                      "a storage level of architecture 'eyeriss'"),
    "factor given twice": (("- {target: DRAM, type: temporal, factors: C=1}\n"
                            "- {target: DRAM, type: temporal, factors: C=2}"), "mapspace_constraints.targets[1].factors",
                           "re-specification"),
    "unknown dimension in a permutation": ("- {target: DRAM, type: temporal, permutation: NKC}",
                                           "mapspace_constraints.targets[0].permutation", "dimension 'K'"),
    "split on a temporal target": ("- {target: DRAM, type: temporal, split: 2}",
                                   "mapspace_constraints.targets[0].split", "on a spatial target"),
    "utilization without min": ("- {target: psum_spad, type: utilization, max: 0.5}",
                                "mapspace_constraints.targets[0].max", "an unknown key"),
}


@pytest.mark.parametrize("case", BAD_TIMELOOP)
def test_a_mistaken_timeloop_constraint_is_a_spec_error_with_its_key_path(tmp_path: Path, case: str) -> None:
    body, key_path, detail = BAD_TIMELOOP[case]
    path = write(tmp_path, "mapspace_constraints:\n  targets:\n" + textwrap.indent(body, "  ") + "\n")
    with pytest.raises(SpecError) as info:
        load_specs([EYERISS, TINY_CONV, path])
    assert info.value.file == str(path) and info.value.key_path == key_path
    assert detail in str(info.value)


def test_constraints_that_rule_everything_out_say_why_from_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        constraints:
          levels:
            psum_spad: {temporal: "M>=32", keep: [Outputs]}
        """)
    specs = load_specs([EYERISS, CONV3, path])
    with pytest.raises(NoValidMapping) as info:
        Mapspace(specs.problems[0], specs.architecture, specs.constraints).check()
    assert info.value.reasons == [
        "psum_spad holds 24 words; the smallest Outputs tile the constraints allow is 32 (M 32)"]
