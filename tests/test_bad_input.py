"""Every kind of user mistake in a native spec is a SpecError naming the file, the key
path, what was found and what is allowed (with a suggestion for misspelt names), and
the CLI turns it into exit status 2 without a traceback."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from timeloop_reference import REFERENCE, load_input

from mapper.cli import main
from mapper.specs.errors import SpecError
from mapper.specs.load import load_specs
from mapper.specs.files import shipped_specs_dir
from mapper.specs.native import load_native

SPECS = shipped_specs_dir()
TOY_ARCH = SPECS / "arch/toy-3level.yaml"
TINY_CONV = SPECS / "workloads/tiny-conv.yaml"
EYERISS = SPECS / "arch/eyeriss.yaml"
CONV3 = SPECS / "workloads/alexnet-conv3.yaml"

CONV_FIELDS = {"name": "c", "C": "3", "M": "4", "P": "2", "Q": "2", "R": "1", "S": "1"}


def conv(**fields: str) -> str:
    """A conv shorthand in YAML, with some fields replaced or added (values as YAML text)."""
    body = ", ".join(f"{k}: {v}" for k, v in (CONV_FIELDS | fields).items())
    return f"problem:\n  conv: {{{body}}}\n"


ARCH = textwrap.dedent("""\
    architecture:
      name: a
      levels:
        - {name: DRAM, size: unbounded, energy: {read: 1, write: 1}}
        - {name: Buffer, %s, energy: {read: 1, write: 1}}
      compute: {energy: 1}
    """)
EINSUM = textwrap.dedent("""\
    problem:
      name: c1d
      dimensions: {P: 4, R: 3}
      tensors:
        - {name: Weights, ranks: [R]}
        - {name: Inputs, ranks: ["%s"]}
        - {name: Outputs, ranks: [P]%s}
    """)
GOOD_MAPPING = "  - {level: DRAM, temporal: C2 P4 Q4 R3 S3 M4}\n"


def spec_error(tmp_path: Path, text: str, *others: Path) -> tuple[SpecError, Path]:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_native([*others, path])
    return info.value, path


def mapping_error(tmp_path: Path, entries: str, arch: Path = TOY_ARCH, problem: Path = TINY_CONV) -> SpecError:
    return spec_error(tmp_path, "mapping:\n" + entries, arch, problem)[0]


def check(error: SpecError, file: Path, key_path: str, *fragments: str) -> None:
    message = str(error)
    assert message.startswith(f"{file}") and error.key_path == key_path
    assert f": {key_path}: " in message or not key_path
    for fragment in fragments:
        assert fragment in message


# --- the file itself


def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, "problem:\n  conv: {name: c, C: 3\n  M: 4\n")
    assert (error.line, error.column) == (3, 4)
    assert str(error).startswith(f"{path}:3:4: found invalid YAML")


def test_timeloop_v04_tags_are_pointed_at_the_timeloop_loader(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, "architecture:\n  nodes:\n  - !Component\n    name: DRAM\n")
    assert str(error).startswith(f"{path}:3:") and "Timeloop" in str(error)


@pytest.mark.parametrize(("text", "found"), [("", "an empty document"), ("- a\n- b\n", "a list, not a YAML mapping"),
                                             ("42\n", "an integer, not a YAML mapping")])
def test_a_document_that_is_not_a_mapping_is_named_by_its_type_only(tmp_path: Path, text: str, found: str) -> None:
    error, path = spec_error(tmp_path, text)
    check(error, path, "", f"found {found}; allowed: a spec: a mapping")


def test_missing_file_suggests_a_neighbour(tmp_path: Path) -> None:
    (tmp_path / "eyeriss.yaml").write_text("{}")
    with pytest.raises(SpecError) as info:
        load_native([tmp_path / "eyeris.yaml"])
    assert "no such file" in str(info.value) and "did you mean 'eyeriss.yaml'?" in str(info.value)


def test_duplicate_key_in_one_mapping(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, EINSUM.replace("{P: 4, R: 3}", "{P: 4, R: 3, P: 5}") % ("P+R", ""))
    check(error, path, "problem.dimensions.P", "the key 'P' a second time")
    assert error.line == 3


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, "architcture: {}\n")
    check(error, path, "architcture", "did you mean 'architecture'?")


def test_timeloop_file_among_native_ones(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, "problem: {shape: {}, instance: {}}\n", TOY_ARCH)
    check(error, path, "", "Timeloop")


def test_a_file_not_in_timeloops_format_among_timeloop_ones_is_the_one_named(tmp_path: Path) -> None:
    """An emptied `problem:` beside a Timeloop architecture: the empty file is named,
    not the architecture."""
    arch, empty = tmp_path / "arch.yaml", tmp_path / "prob.yaml"
    arch.write_text("architecture: {version: 0.2, subtree: []}\n")
    empty.write_text("problem:\n")
    with pytest.raises(SpecError) as info:
        load_specs([arch, empty])
    check(info.value, empty, "", "not in Timeloop's format (top-level keys: problem (empty))", f"Timeloop's {arch}")


def test_a_mistake_in_one_of_several_timeloop_files_names_that_file(tmp_path: Path) -> None:
    """Timeloop's files are merged at the top level; the error names the file whose key
    it is, not all of them."""
    case = REFERENCE / "v303-generated/04-model-conv1d+oc-3levelspatial_cp/inputs"
    good = {"arch": case / "3levelspatial.arch.yaml", "problem": case / "conv1d+oc+ic.prob.yaml",
            "map": case / "conv1d+oc+ic-3levelspatial-cp-ws.map.yaml", "ert": case / "timeloop-model.ERT.yaml"}
    bad = {"map": tmp_path / "map.yaml", "ert": tmp_path / "ert.yaml"}
    bad["map"].write_text('mapping: [{target: GlobalBuffer, type: temporal, factors: "Q=3"}]\n')
    bad["ert"].write_text("ERT: {tables: [{name: X, actions: [{name: read, energy: x}]}]}\n")
    for part, key_path in (("map", "mapping[0].factors"), ("ert", "ERT.tables[0].actions[0].energy")):
        with pytest.raises(SpecError) as info:
            load_specs(list({**good, part: bad[part]}.values()))
        check(info.value, bad[part], key_path)


def test_top_level_key_in_two_files(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, conv(), TINY_CONV)
    check(error, path, "problem", f"already in {TINY_CONV}")


def test_problem_and_workload_together(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, "workload: {layers: [{linear: {name: l, M: 1, N: 1, K: 1}}]}\n", TINY_CONV)
    check(error, path, "workload", "not both")


# --- workloads


@pytest.mark.parametrize(("field", "value", "found", "allowed"), [
    ("C", "0", "0", "a positive integer"),
    ("N", "-2", "-2", "a positive integer"),
    ("M", '"4"', "'4'", "a positive integer"),
    ("groups", "1.5", "1.5", "a positive integer"),
    ("R", "true", "true", "a positive integer"),
    ("stride", "[1, 2, 3]", "[1, 2, 3]", "a positive integer, or a list of two such, one per axis"),
    ("padding", "-1", "-1", "an integer >= 0, or a list of two such, one per axis"),
    ("name", "7", "7", "a non-empty string"),
])
def test_conv_field_of_the_wrong_type_or_range(tmp_path: Path, field: str, value: str, found: str,
                                               allowed: str) -> None:
    error, path = spec_error(tmp_path, conv(**{field: value}))
    check(error, path, f"problem.conv.{field}", f"found {found}; allowed: {allowed}")


def test_misspelt_conv_key(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, conv(strid="2"))
    check(error, path, "problem.conv.strid", "found an unknown key", "did you mean 'stride'?")


def test_misspelt_shorthand(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, "problem:\n  cnov: {name: c}\n")
    check(error, path, "problem.cnov", "did you mean 'conv'?")


def test_required_key_missing(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, "problem:\n  linear: {name: l, M: 1, K: 1}\n")
    check(error, path, "problem.linear.N", "the key is missing")


def test_conv_output_size_disagrees_with_input_size(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, conv(H="4", padding="1"))
    check(error, path, "problem.conv.P", "found 2; allowed: 6, from (H + 2*padding")


def test_conv_padding_without_input_size(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, conv(padding="1"))
    check(error, path, "problem.conv.padding", "give H instead of P")


def test_conv_channels_not_divisible_by_groups(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, conv(groups="2"))
    check(error, path, "problem.conv.C", "a multiple of groups (2)")


def test_unknown_dimension_in_a_tensor(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, EINSUM % ("P + Rr", ", read_write: true"))
    check(error, path, "problem.tensors[1].ranks[0]", "found dimension 'Rr'", "did you mean 'R'?")


@pytest.mark.parametrize("rank", ["P - R", "2.5*P", "P + P", "P*"])
def test_malformed_rank(tmp_path: Path, rank: str) -> None:
    error, path = spec_error(tmp_path, EINSUM % (rank, ", read_write: true"))
    check(error, path, "problem.tensors[1].ranks[0]", "allowed: a sum of dimensions")


@pytest.mark.parametrize(("outputs", "found"), [("", "no read_write tensor"),
                                                (", read_write: true", "read_write tensors Inputs, Outputs")])
def test_not_exactly_one_read_write_tensor(tmp_path: Path, outputs: str, found: str) -> None:
    text = EINSUM % ("P+R", outputs)
    if outputs:
        text = text.replace('ranks: ["P+R"]}', 'ranks: ["P+R"], read_write: true}')
    error, path = spec_error(tmp_path, text)
    check(error, path, "problem.tensors", found, "exactly one tensor with read_write: true")


def test_two_layers_with_one_name(tmp_path: Path) -> None:
    layer = "{linear: {name: fc, M: 1, N: 1, K: 1}}"
    error, path = spec_error(tmp_path, f"workload: {{layers: [{layer}, {layer}]}}\n")
    check(error, path, "workload.layers[1]", "'fc' again")


# --- architectures


@pytest.mark.parametrize(("fields", "key_path", "fragment"), [
    ("size: 0", "architecture.levels[1].size", "found 0; allowed: a positive whole number of words"),
    ("depth: -4", "architecture.levels[1].depth", "found -4; allowed: a positive integer"),
    ("size: unbounded", "architecture.levels[1].size", "only the outermost level may be unbounded"),
    ("size: 6, block_size: 4", "architecture.levels[1].size", "a multiple of block_size (4)"),
    ("size: 4, depth: 4", "architecture.levels[1]", "found both size and depth"),
    ("word_bits: 16", "architecture.levels[1]", "found neither size nor depth"),
    ("size: 4, fanout: [2, 0]", "architecture.levels[1].fanout", "found [2, 0]"),
    ("size: 4, read_bandwidth: 0", "architecture.levels[1].read_bandwidth", "a number > 0"),
    ("size: 4, multiple_buffering: 0.5", "architecture.levels[1].multiple_buffering", "a number >= 1"),
    ("size: 4, keeps: Inputs", "architecture.levels[1].keeps", "allowed: a list"),
    ("size: 4, dpeth: 4", "architecture.levels[1].dpeth", "did you mean 'depth'?"),
    ("size: 4, name: DRAM", "architecture.levels[1].name", "'DRAM' a second time"),
    ("size: 4, cluster_size: 2", "architecture.levels[1].cluster_size",
     "found 2, which does not divide the level's 1 instances; allowed: a divisor of 1"),
])
def test_bad_level(tmp_path: Path, fields: str, key_path: str, fragment: str) -> None:
    text = ARCH % fields
    if "name: DRAM" in fields:
        text = text.replace("{name: Buffer, ", "{")
    error, path = spec_error(tmp_path, text)
    check(error, path, key_path, fragment)


def test_negative_energy(tmp_path: Path) -> None:
    text = (ARCH % "size: 4").replace("{name: Buffer, size: 4, energy: {read: 1, write: 1}}",
                                      "{name: Buffer, size: 4, energy: {read: 1, write: -1}}")
    error, path = spec_error(tmp_path, text)
    check(error, path, "architecture.levels[1].energy.write",
          "found -1; allowed: a number from 0 to 1e+12 (in the energy table's unit, pJ without a table)")


def test_unknown_energy_table(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, (ARCH % "size: 4").replace("name: a\n", "name: a\n  energy_table: eyeriss\n"))
    check(error, path, "architecture.energy_table", "energy table 'eyeriss'", "eyeriss-normalized")


def test_a_table_outside_the_repository_says_where_tables_are_found(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed mapper run away from the repository has no shipped tables: the
    error says so instead of listing none."""
    monkeypatch.setattr("mapper.specs.files.SHIPPED_SPECS", tmp_path / "nowhere")
    monkeypatch.chdir(tmp_path)
    error, path = spec_error(tmp_path, (ARCH % "size: 4").replace("name: a\n", "name: a\n  energy_table: eyeriss\n"))
    check(error, path, "architecture.energy_table", "nor in ../energy/ beside it, and no specs/energy/ here",
          "copy the table next to the spec")


def test_a_table_in_the_energy_folder_beside_the_specs_folder_is_found_from_anywhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """specs/arch/X.yaml naming a table of specs/energy/: the shipped layout, which an
    installed mapper finds by the spec's path alone, run from any folder."""
    monkeypatch.setattr("mapper.specs.files.SHIPPED_SPECS", tmp_path / "nowhere")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (tmp_path / "specs" / "arch").mkdir(parents=True)
    (tmp_path / "specs" / "energy").mkdir()
    shutil.copy(SPECS / "energy" / "eyeriss-normalized.yaml", tmp_path / "specs" / "energy")
    arch = tmp_path / "specs" / "arch" / "a.yaml"
    arch.write_text((ARCH % "size: 4").replace("name: a\n", "name: a\n  energy_table: eyeriss-normalized\n")
                    .replace("compute: {energy: 1}", "compute: {energy: mac}"))

    specs = load_native([arch])

    assert specs["architecture"].energy_unit == "MAC"  # the table's symbol: it was read


def test_a_named_table_that_does_not_load_is_refused_where_it_is_named_with_its_own_mistake(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("entries: {rf: 1}\n")  # no name
    error, path = spec_error(tmp_path, (ARCH % "size: 4").replace("name: a\n", "name: a\n  energy_table: mine\n"))
    check(error, path, "architecture.energy_table", "energy table 'mine' in a file that does not load",
          f"({tmp_path / 'mine.yaml'}: name: found nothing")


def test_unknown_energy_table_entry(tmp_path: Path) -> None:
    text = (ARCH % "size: 4").replace("name: a\n", "name: a\n  energy_table: eyeriss-normalized\n")
    error, path = spec_error(tmp_path, text.replace("compute: {energy: 1}", "compute: {energy: macc}"))
    check(error, path, "architecture.compute.energy", "entry 'macc'", "did you mean 'mac'?")


def test_energy_entry_without_a_table(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, (ARCH % "size: 4").replace("compute: {energy: 1}", "compute: {energy: mac}"))
    check(error, path, "architecture.compute.energy", "but no energy_table")


def test_several_errors_are_counted(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, ARCH % "size: 0, word_bits: 0, block_size: 0")
    check(error, path, "architecture.levels[1].size", "found 0", "(2 more errors here after this one)")


def test_architecture_keeps_a_tensor_the_problem_lacks(tmp_path: Path) -> None:
    error, _ = spec_error(tmp_path, (EINSUM % ("P+R", ", read_write: true")).replace("Inputs", "Ifmap"), EYERISS)
    check(error, EYERISS, "architecture.levels[1].keeps", "found 'Inputs'", "Weights, Ifmap, Outputs")


# --- mappings


def test_unknown_level(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, "  - {level: Bufer, temporal: C2}\n")
    check(error, tmp_path / "spec.yaml", "mapping[0].level", "found 'Bufer'", "did you mean 'Buffer'?")


def test_levels_out_of_order(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, "  - {level: Buffer}\n  - {level: DRAM}\n")
    check(error, tmp_path / "spec.yaml", "mapping[1].level", "outermost first")


def test_unknown_dimension(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, "  - {level: DRAM, temporal: [[C, 2], [PP, 4]]}\n")
    check(error, tmp_path / "spec.yaml", "mapping[0].temporal[1]", "dimension 'PP'", "did you mean 'P'?")


@pytest.mark.parametrize(("loops", "key_path", "found"), [
    ("temporal: C2 P0", "mapping[0].temporal[1]", "'P0'"),
    ("temporal: [[C, -2]]", "mapping[0].temporal[0]", "['C', -2]"),
    ("spatial: [[M, 4, Z]]", "mapping[0].spatial[0]", "['M', 4, 'Z']"),
    ("temporal: {C: 2}", "mapping[0].temporal", "a mapping with keys C"),
])
def test_malformed_loops(tmp_path: Path, loops: str, key_path: str, found: str) -> None:
    error = mapping_error(tmp_path, f"  - {{level: DRAM, {loops}}}\n")
    check(error, tmp_path / "spec.yaml", key_path, f"found {found}; allowed: loops like")


def test_dimension_twice_in_one_level(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, "  - {level: DRAM, temporal: C2 P2 P2 Q4 R3 S3 M4}\n")
    check(error, tmp_path / "spec.yaml", "mapping[0].temporal[2]", "dimension P a second time")


@pytest.mark.parametrize(("loops", "product", "hint"), [
    ("C2 P2 Q4 R3 S3 M4", 2, "add a factor of 2 for P"), ("C2 P3 Q4 R3 S3 M4", 3, "add a factor of 2 for P")])
def test_factors_not_reaching_the_bound(tmp_path: Path, loops: str, product: int, hint: str) -> None:
    error = mapping_error(tmp_path, f"  - {{level: DRAM, temporal: {loops}}}\n")
    check(error, tmp_path / "spec.yaml", "mapping", f"factors of dimension P that multiply to {product}",
          "factors that multiply to 4, the bound of P, or to more (a remainder", hint)


def test_spatial_factors_over_the_fanout(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, "  - {level: GlobalBuffer, spatial: Q13X C32Y}\n", EYERISS, CONV3)
    check(error, tmp_path / "spec.yaml", "mapping[0].spatial",
          "spatial Y factors at GlobalBuffer that multiply to 32",
          "at most 12, the fan-out GlobalBuffer -> ifmap_spad along Y")


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")
def test_a_timeloop_mapping_over_a_fanout_names_both_its_ends(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """As Timeloop does: the fan-out from the PE array's parent to the buffers it feeds."""
    spec = load_input("cases/t04_conv1d_oc_ic_spatial_kp")  # K16 over 16 GlobalBuffers
    for directive in spec["mapping"]:
        if directive["type"] == "spatial":
            directive["factors"] = "R=1,P=1,K=16,C=2"
        elif directive["target"] == "GlobalBuffer":
            directive["factors"] = "R=3,P=1,K=2,C=16"
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(spec))
    assert main(["evaluate", str(tmp_path / "wide.yaml")]) == 2
    assert ("spatial X factors of the fan-out inter_PE_spatial -> GlobalBuffer multiply to 32; it has 16 along X"
            in capsys.readouterr().err)


def test_spatial_factors_where_there_is_no_fanout(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, GOOD_MAPPING.replace("M4", "") + "  - {level: Register, spatial: M4X}\n")
    check(error, tmp_path / "spec.yaml", "mapping[1].spatial", "at most 1")


def test_unknown_tensor(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, GOOD_MAPPING + "  - {level: Buffer, keep: [Weight]}\n")
    check(error, tmp_path / "spec.yaml", "mapping[1].keep[0]", "tensor 'Weight'", "did you mean 'Weights'?")


def test_keeping_what_the_level_cannot_hold(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, "  - {level: GlobalBuffer, keep: [Weights]}\n", EYERISS, CONV3)
    check(error, tmp_path / "spec.yaml", "mapping[0].keep[0]", "GlobalBuffer keep: Inputs, Outputs")


def test_tensor_both_kept_and_bypassed(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, GOOD_MAPPING + "  - {level: Buffer, keep: [Inputs], bypass: [Inputs]}\n")
    check(error, tmp_path / "spec.yaml", "mapping[1].bypass[0]", "not both")


def test_outermost_level_bypassing(tmp_path: Path) -> None:
    error = mapping_error(tmp_path, GOOD_MAPPING.replace("}", ", bypass: [Weights]}"))
    check(error, tmp_path / "spec.yaml", "mapping[0]", "bypassing Weights")


def test_mapping_without_an_architecture(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, "mapping:\n" + GOOD_MAPPING, TINY_CONV)
    check(error, path, "mapping", "without an architecture")


def test_mapping_with_several_layers(tmp_path: Path) -> None:
    error, path = spec_error(tmp_path, "mapping:\n" + GOOD_MAPPING, TOY_ARCH, SPECS / "workloads/alexnet.yaml")
    check(error, path, "mapping", "a mapping with 8 layers")


# --- the command line


def test_cli_exits_2_with_one_line_and_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(conv(groups="0"))
    assert main(["evaluate", str(TOY_ARCH), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{bad}: problem.conv.groups: found 0" in err


def test_output_whose_reader_has_gone_ends_quietly_as_unix_tools_do() -> None:
    """`mapper evaluate ... | head -1`: the pipe closes under the report; no error line."""
    files = [str(TOY_ARCH), str(SPECS / "workloads/tiny-conv.yaml"), str(SPECS / "mappings/toy-3level-tiny-conv.yaml")]
    closed_pipe = ("import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
                   "from mapper.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", closed_pipe, "evaluate", *files], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 128 + signal.SIGPIPE
    assert done.stderr == ""


def test_a_mistake_in_the_options_names_the_option_not_a_file(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    args = ["search", str(TOY_ARCH), str(SPECS / "workloads/tiny-conv.yaml"), "-o", str(tmp_path / "out")]
    assert main([*args, "--seeds", "2", "--exhaustive"]) == 2
    assert capsys.readouterr().err.startswith("error: --seeds: found 2 with --exhaustive")


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")
def test_stats_reads_a_timeloop_problem_alone(capsys: pytest.CaptureFixture[str]) -> None:
    problem = REFERENCE / "cases/ed_eyeriss_like_default/inputs/default_problem.yaml"
    assert main(["stats", str(problem)]) == 0
    assert "C3 M32 R3 S3 N1 P112 Q112" in capsys.readouterr().out


def test_stats_of_a_directory_says_it_is_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path}: found a directory;")
