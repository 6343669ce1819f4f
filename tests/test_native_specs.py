"""The native spec format: the shipped specs load, and the shorthands build the loop
nests and tensors that Timeloop's conv/matmul definitions would."""

from __future__ import annotations

from math import prod
from pathlib import Path

import pytest

from mapper.mapping import Loop
from mapper.problem import Problem
from mapper.specs.load import load_specs
from mapper.specs.files import find_spec_file, load_yaml, shipped_specs_dir
from mapper.specs.native import SPEC_DOCUMENT, detect_format, load_native
from mapper.specs.native.architecture import parse_architecture
from mapper.specs.native.energy_tables import load_energy_table
from mapper.specs.native.mapping import parse_mapping
from mapper.specs.native.problem import parse_problem
from timeloop_reference import REFERENCE

SPECS = shipped_specs_dir()
ARCHS = sorted((SPECS / "arch").glob("*.yaml"))
WORKLOADS = sorted((SPECS / "workloads").glob("*.yaml"))
TOY = [SPECS / "arch/toy-3level.yaml", SPECS / "workloads/tiny-conv.yaml", SPECS / "mappings/toy-3level-tiny-conv.yaml"]


def sizes(problem: Problem) -> dict[str, int]:
    return {t.name: problem.tensor_size(t) for t in problem.tensors}


def conv(**fields: object) -> Problem:
    return parse_problem({"conv": {"name": "c", **fields}})


@pytest.mark.parametrize("path", ARCHS + WORKLOADS, ids=lambda p: p.name)
def test_every_shipped_spec_loads(path: Path) -> None:
    specs = load_native([path])
    assert specs["architecture"] is not None or specs["problems"]


@pytest.mark.parametrize("path", ARCHS + WORKLOADS + sorted((SPECS / "mappings").glob("*.yaml"))
                         + sorted((SPECS / "energy").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_opens_with_a_comment_on_its_source(path: Path) -> None:
    head = path.read_text().split("\n\n")[0].split("\n")
    comment = " ".join(line for line in head if line.startswith("#"))
    assert head[0].startswith("#")
    assert any(word in comment for word in ("Source", "made up", "written by hand"))


def test_every_shipped_energy_table_loads() -> None:
    assert load_energy_table(SPECS / "energy/eyeriss-normalized.yaml") == {
        "mac": 1, "rf": 1, "inter_pe": 2, "global_buffer": 6, "dram": 200}
    horowitz = load_energy_table(SPECS / "energy/horowitz-45nm.yaml")
    assert horowitz["mult_int8"] == 0.2 and horowitz["dram_read_32b"] == 640 and len(horowitz) == 11


def test_eyeriss() -> None:
    arch = load_native([SPECS / "arch/eyeriss.yaml"])["architecture"]
    assert [lv.name for lv in arch.levels] == ["DRAM", "GlobalBuffer", "ifmap_spad", "weights_spad", "psum_spad"]
    assert [lv.capacity for lv in arch.levels] == [None, 108 * 1024 // 2, 12, 224, 24]
    assert [lv.instances for lv in arch.levels] == [1, 1, 168, 168, 168]
    assert (arch.levels[2].mesh_x, arch.levels[2].mesh_y) == (14, 12)
    assert arch.fanout(1) == (14, 12) and arch.fanout(2) == (1, 1) and arch.fanout(4) == (1, 1)
    assert [lv.read_energy for lv in arch.levels] == [200, 6, 1, 1, 1]
    assert arch.levels[1].network_energy == 2
    assert arch.levels[1].keeps == {"Inputs", "Outputs"}
    assert [lv.keeps for lv in arch.levels[2:]] == [{"Inputs"}, {"Weights"}, {"Outputs"}]
    assert (arch.compute.instances, arch.compute.energy) == (168, 1)


@pytest.mark.parametrize(("name", "spad_keeps"), [("ws-16x16", "Weights"), ("os-16x16", "Outputs")])
def test_16x16_arrays(name: str, spad_keeps: str) -> None:
    arch = load_native([SPECS / f"arch/{name}.yaml"])["architecture"]
    glb = arch.levels[1]
    assert (glb.depth, glb.block_size, glb.capacity, glb.read_bandwidth) == (16384, 4, 65536, 16)
    assert glb.read_energy == 4 * 6 and arch.levels[0].read_energy == 4 * 200
    assert arch.levels[2].keeps == {spad_keeps} and arch.levels[2].capacity == 192
    assert arch.compute.instances == 256 and arch.fanout(1) == (16, 16)


def test_toy_fanout_of_an_int_is_a_row() -> None:
    arch = load_native([SPECS / "arch/toy-3level.yaml"])["architecture"]
    assert arch.fanout(1) == (4, 1)
    assert (arch.levels[2].instances, arch.levels[2].mesh_x, arch.levels[2].mesh_y) == (4, 4, 1)


def test_alexnet_conv3() -> None:
    (problem,) = load_native([SPECS / "workloads/alexnet-conv3.yaml"])["problems"]
    assert problem.dims == ("N", "M", "C", "P", "Q", "R", "S")
    assert problem.macs == 256 * 384 * 13 * 13 * 9
    assert sizes(problem) == {"Weights": 384 * 256 * 9, "Inputs": 256 * 15 * 15, "Outputs": 384 * 13 * 13}
    assert problem.output.name == "Outputs"


def test_alexnet_workload_has_grouped_layers() -> None:
    layers = load_native([SPECS / "workloads/alexnet.yaml"])["problems"]
    assert [p.name for p in layers] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    assert layers[0].bounds["P"] == 55 and sizes(layers[0])["Inputs"] == 3 * 227 * 227
    assert layers[1].bounds == {"G": 2, "N": 1, "M": 128, "C": 48, "P": 27, "Q": 27, "R": 5, "S": 5}
    assert layers[1].macs == 27 * 27 * 256 * 48 * 25


def test_depthwise_conv_has_a_group_dimension() -> None:
    (problem,) = load_native([SPECS / "workloads/mobilenet-v1-dw.yaml"])["problems"]
    assert problem.dims[0] == "G"
    assert problem.bounds == {"G": 32, "N": 1, "M": 1, "C": 1, "P": 112, "Q": 112, "R": 3, "S": 3}
    assert all("G" in t.dims for t in problem.tensors)
    assert problem.macs == 32 * 112 * 112 * 9
    assert sizes(problem) == {"Weights": 32 * 9, "Inputs": 32 * 114 * 114, "Outputs": 32 * 112 * 112}


def test_matmul_batches_both_operands_and_linear_shares_weights() -> None:
    layers = {p.name: p for p in load_native([SPECS / "workloads/bert-base.yaml"])["problems"]}
    scores, ffn = layers["attention_scores"], layers["ffn_up"]
    assert scores.dims == ("B", "M", "N", "K")
    assert sizes(scores) == {"Inputs": 12 * 512 * 64, "Weights": 12 * 64 * 512, "Outputs": 12 * 512 * 512}
    assert ffn.dims == ("M", "N", "K") and ffn.macs == 512 * 768 * 3072
    linear = parse_problem({"linear": {"name": "l", "B": 4, "M": 2, "N": 3, "K": 5}})
    assert sizes(linear) == {"Inputs": 4 * 2 * 5, "Weights": 5 * 3, "Outputs": 4 * 2 * 3}


def test_conv_output_size_from_input_size() -> None:
    resnet_conv1 = conv(C=3, M=64, H=224, W=224, R=7, S=7, stride=2, padding=3)
    assert (resnet_conv1.bounds["P"], resnet_conv1.bounds["Q"]) == (112, 112)
    # Inputs holds what the filter windows touch: stride*(P-1) + R
    assert resnet_conv1.tensor("Inputs").ranks[2] == ((2, "P"), (1, "R"))
    assert sizes(resnet_conv1)["Inputs"] == 3 * 229 * 229


def test_conv_stride_and_dilation_per_axis() -> None:
    problem = conv(C=1, M=1, P=4, Q=4, R=3, S=3, stride=[1, 2], dilation=[2, 1])
    assert problem.tensor("Inputs").ranks[2:] == (((1, "P"), (2, "R")), ((2, "Q"), (1, "S")))
    assert sizes(problem)["Inputs"] == (3 + 4 + 1) * (6 + 2 + 1)


def test_conv_with_both_output_and_input_sizes_that_agree() -> None:
    assert conv(C=1, M=1, P=13, H=13, Q=13, W=13, R=3, S=3, padding=1).bounds["P"] == 13


def test_einsum_ranks_as_strings_or_pairs() -> None:
    as_text = parse_problem({"name": "c1d", "dimensions": {"P": 16, "R": 3}, "tensors": [
        {"name": "Weights", "ranks": ["R"]},
        {"name": "Inputs", "ranks": ["2*P + R"], "word_bits": 8},
        {"name": "Outputs", "ranks": ["P"], "read_write": True}]})
    as_pairs = parse_problem({"name": "c1d", "dimensions": {"P": 16, "R": 3}, "tensors": [
        {"name": "Weights", "ranks": [[[1, "R"]]]},
        {"name": "Inputs", "ranks": [[[2, "P"], [1, "R"]]], "word_bits": 8},
        {"name": "Outputs", "ranks": [[[1, "P"]]], "read_write": True}]})
    assert as_text == as_pairs
    assert as_text.tensor("Inputs").word_bits == 8
    assert sizes(as_text) == {"Weights": 3, "Inputs": 2 * 15 + 2 + 1, "Outputs": 16}


def test_toy_mapping() -> None:
    specs = load_native(TOY)
    mapping = specs["mapping"]
    assert len(mapping.levels) == 3
    assert mapping.levels[0].temporal == (Loop("C", 2), Loop("P", 2))
    assert mapping.levels[1].spatial == (Loop("M", 4, "X"),)
    assert [lm.keep for lm in mapping.levels] == [
        {"Weights", "Inputs", "Outputs"}, {"Inputs", "Weights"}, {"Outputs"}]
    problem = specs["problems"][0]
    assert all(mapping.factor(d) == problem.bounds[d] for d in problem.dims)


def test_mapping_loops_as_strings_or_lists_and_keep_rules() -> None:
    specs = load_native(TOY[:2])
    problem, arch = specs["problems"][0], specs["architecture"]
    as_text = parse_mapping([
        {"level": "DRAM", "temporal": "C2 P=4 Q4"},
        {"level": "Buffer", "temporal": "R3 S3", "spatial": "M4X", "bypass": ["Outputs"]},
        {"level": "Register", "keep": ["Weights"], "bypass": ["Inputs"]},
    ], problem, arch)
    as_lists = parse_mapping([
        {"level": "DRAM", "temporal": [["C", 2], ["P", 4], ["Q", 4]]},
        {"level": "Buffer", "temporal": [["R", 3], ["S", 3]], "spatial": [["M", 4, "X"]], "bypass": ["Outputs"]},
        {"level": "Register", "keep": ["Weights"], "bypass": ["Inputs"]},
    ], problem, arch)
    assert as_text == as_lists
    # bypass: all but those; keep + bypass: all but the bypassed (the rest is kept)
    assert [lm.keep for lm in as_text.levels[1:]] == [{"Inputs", "Weights"}, {"Weights", "Outputs"}]


def test_levels_left_out_of_a_mapping_keep_what_the_architecture_allows() -> None:
    specs = load_native([SPECS / "arch/eyeriss.yaml", SPECS / "workloads/alexnet-conv3.yaml"])
    mapping = parse_mapping([{"level": "DRAM", "temporal": "M384 C256 P13 Q13 R3 S3"}],
                            specs["problems"][0], specs["architecture"])
    assert [lm.keep for lm in mapping.levels[1:]] == [{"Inputs", "Outputs"}, {"Inputs"}, {"Weights"}, {"Outputs"}]
    assert all(lm.temporal == () for lm in mapping.levels[1:])


def test_energy_expressions_and_a_table_next_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "local.yaml").write_text(
        "name: local\nunit: pJ\nsource: a test\nentries: {sram: 2.5}\n")
    raw = {"name": "a", "energy_table": "horowitz-45nm", "levels": [
        {"name": "DRAM", "size": None, "energy": {"read": "0.5*dram_read_32b", "write": 7}},
        {"name": "L1", "size": 8, "energy_table": "local", "energy": {"read": "sram", "write": "2*sram + sram"}},
    ], "compute": {"energy": "mult_int8 + add_int16"}}
    arch = parse_architecture(raw, tmp_path / "arch.yaml")
    assert [(lv.read_energy, lv.write_energy) for lv in arch.levels] == [(320, 7), (2.5, 7.5)]
    assert arch.compute.energy == pytest.approx(0.25)
    assert arch.levels[0].capacity is None


def test_files_merge_at_top_level() -> None:
    specs = load_native(TOY)
    assert specs["architecture"].name == "toy-3level" and specs["problems"][0].name == "tiny_conv"
    merged = load_specs(TOY)  # the format-agnostic entry point routes native files here
    assert (merged.problems, merged.architecture, merged.mapping) == (
        specs["problems"], specs["architecture"], specs["mapping"])


def test_detect_format() -> None:
    assert detect_format({"architecture": {"subtree": []}}) == "timeloop"
    assert detect_format({"architecture": {"version": 0.4, "nodes": []}}) == "timeloop"
    assert detect_format({"problem": {"shape": {}, "instance": {}}}) == "timeloop"
    assert detect_format({"mapping": [{"target": "DRAM", "type": "temporal"}]}) == "timeloop"
    assert detect_format({"mapper": {}}) == "timeloop"
    for path in ARCHS + WORKLOADS + TOY:
        assert detect_format(load_yaml(path, SPEC_DOCUMENT)) == "native"


def test_timeloop_files_load_together_a_mapper_yaml_among_them() -> None:
    """A Timeloop problem with its mapper.yaml (only `mapper:`): both Timeloop's, so
    read as Timeloop, not refused as a Timeloop file among native ones."""
    inputs = REFERENCE / "cases/t05_mapper_conv1d_oc_null/inputs"
    specs = load_specs([inputs / "conv1d+oc.prob.yaml", inputs / "exhaustive.mapper.yaml"])
    assert [p.name for p in specs.problems] == ["Conv1D_OC"] and specs.architecture is None


def test_find_spec_file() -> None:
    assert find_spec_file("eyeriss") == SPECS / "arch/eyeriss.yaml"
    assert find_spec_file("workloads/tiny-conv.yaml") == SPECS / "workloads/tiny-conv.yaml"
    assert find_spec_file(TOY[2]) == TOY[2]


def test_macs_of_shorthands_are_products_of_bounds() -> None:
    problem = conv(N=2, C=4, M=6, P=3, Q=5, R=1, S=2, groups=2)
    assert problem.macs == prod(problem.bounds.values()) == 2 * 4 * 6 * 3 * 5 * 2 // 2


def test_a_dimension_may_be_unrolled_along_x_and_along_y_of_one_fan_out(tmp_path) -> None:
    """The search emits such mappings (M 2 on the rows, M 2 on the columns); they load back."""
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "mapping:\n"
        "  - {level: DRAM, temporal: C2 P4 Q4 R3 S3}\n"
        "  - {level: GlobalBuffer, spatial: M2Y M2X}\n"
        "  - {level: ifmap_spad}\n  - {level: weights_spad}\n  - {level: psum_spad}\n")
    specs = load_specs([SPECS / "arch" / "eyeriss.yaml", SPECS / "workloads" / "tiny-conv.yaml", mapping])
    spatial = specs.mapping.levels[1].spatial
    assert [(l.dim, l.factor, l.spatial) for l in spatial] == [("M", 2, "Y"), ("M", 2, "X")]


def test_a_timeloop_mapping_may_say_dataspace_for_datatype(tmp_path: Path) -> None:
    """The v0.4 front end's word (its t03 mappings): the same keep and bypass."""
    case = Path(__file__).resolve().parent / "data" / "timeloop-conv1d-p8.yaml"
    renamed = tmp_path / "dataspace.yaml"
    renamed.write_text(case.read_text().replace("type: datatype", "type: dataspace"))
    assert "type: dataspace" in renamed.read_text()
    assert load_specs([renamed]).mapping == load_specs([case]).mapping
