"""Specs written to hurt: a path to a file that is not a spec never gets that file's
content printed; huge files, devices and FIFOs are refused before they are read;
huge bounds are factored at once and counted exactly, or refused with the limit;
mapspaces too large to build are refused with the limit; energies and command-line
numbers must be finite; every JSON output is strict JSON; a Timeloop architecture
needs its ERT. The limits are in mapper/specs/limits.py (and README, "Bad input").

No test here measures time: subprocesses get generous timeouts only so that a
regression hangs no run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from mapper.cli import main
from mapper.factorize import divisors, is_prime, prime_factors
from mapper.json_output import json_text
from mapper.mapspace import Mapspace
from mapper.model.reference import evaluate_reference
from mapper.model.vectorized import evaluate_batch
from mapper.specs.errors import SpecError
from mapper.specs.limits import MAX_FILE_BYTES, MAX_LEVELS
from mapper.specs.load import load_specs
from mapper.specs.files import shipped_specs_dir
from mapper.specs.native import SPEC_DOCUMENT

sys.path.insert(0, os.path.dirname(__file__))

from timeloop_reference import REFERENCE  # noqa: E402

SPECS = shipped_specs_dir()
TOY_ARCH = SPECS / "arch/toy-3level.yaml"
TINY_CONV = SPECS / "workloads/tiny-conv.yaml"
TOY_MAPPING = SPECS / "mappings/toy-3level-tiny-conv.yaml"
SECRET = "hunter2-S3CR3T-token"
GUARD = 600  # seconds: only so that a regression cannot hang the suite

ONE_LEVEL = textwrap.dedent("""\
    architecture:
      name: one
      levels:
        - {name: DRAM, size: unbounded, energy: {read: 100, write: 100}}
      compute: {energy: 1}
    """)
THREE_LEVELS = textwrap.dedent("""\
    architecture:
      name: three
      levels:
        - {name: DRAM, size: unbounded, energy: {read: 100, write: 100}}
        - {name: Buffer, size: 1024, energy: {read: 2, write: 2}, fanout: 4, network_energy: 1}
        - {name: Reg, size: 4, energy: {read: 0.1, write: 0.1}}
      compute: {energy: 1}
    """)


def run(args: list[str | Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and everything printed, of `mapper ARGS` run in this process."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as e:  # argparse's exits
        status = e.code
    out, err = capsys.readouterr()
    return status, out + err


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def one_dimension(tmp_path: Path, bound: int, name: str = "layer.yaml") -> Path:
    return write(tmp_path / name, textwrap.dedent(f"""\
        problem:
          name: big
          dimensions: {{P: {bound}}}
          tensors:
            - {{name: I, ranks: [P]}}
            - {{name: O, ranks: [P], read_write: true}}
        """))


# -- a spec never prints a file that is not a spec ------------------------------------

SECRET_FILES = {
    "a line of text": f"{SECRET}\n",
    "a passwd line": f"root:x:0:0:{SECRET}:/root:/bin/bash\ndaemon:x:1:1::/:/bin/sh\n",
    "key = value lines": f"[default]\naws_secret_access_key = {SECRET}\n",
    "a YAML mapping of other keys": f"password: {SECRET}\nuser: {SECRET}\n",
    "a YAML list": f"- {SECRET}\n- {SECRET}\n",
    "invalid YAML after a secret": f"token: {SECRET}\n  bad: [\n",
    "an alias named by the secret": f"a: *{SECRET.replace('-', '_')}\n",
    "a tag named by the secret": f"a: !{SECRET} x\n",
    "duplicate keys": f"{SECRET}: 1\n{SECRET}: 2\n",
}


@pytest.mark.parametrize("content", SECRET_FILES.values(), ids=SECRET_FILES)
def test_an_energy_table_path_to_another_file_never_prints_it(tmp_path: Path, content: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    secret_file = write(tmp_path / "credentials", content)
    arch = write(tmp_path / "arch.yaml", TOY_ARCH.read_text().replace("energy_table: eyeriss-normalized",
                                                                      f"energy_table: {secret_file}"))
    status, printed = run(["evaluate", arch, TINY_CONV, TOY_MAPPING], capsys)
    assert status == 2 and SECRET not in printed
    assert printed.startswith(f"error: {arch}: architecture.energy_table: ") and f"({secret_file}" in printed


@pytest.mark.parametrize("content", SECRET_FILES.values(), ids=SECRET_FILES)
def test_a_spec_or_experiment_path_to_another_file_never_prints_it(tmp_path: Path, content: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    secret_file = write(tmp_path / "credentials", content)
    for args in (["evaluate", secret_file], ["search", TOY_ARCH, secret_file, "-o", tmp_path / "out"],
                 ["stats", secret_file], ["run", secret_file, "-o", tmp_path / "out"]):
        status, printed = run(args, capsys)
        assert status == 2 and SECRET not in printed and "Traceback" not in printed, args


def test_a_file_that_is_not_a_mapping_is_named_by_its_type(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    secret_file = write(tmp_path / "credentials", f"{SECRET}\n")
    status, printed = run(["evaluate", secret_file], capsys)
    assert status == 2
    assert printed == f"error: {secret_file}: found a string, not a YAML mapping; allowed: a spec: a mapping with " \
        "top-level keys such as problem, workload, architecture, mapping, constraints, mapper\n"


def test_a_misspelt_spec_key_still_gets_its_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, printed = run(["evaluate", write(tmp_path / "spec.yaml", "architecure: {}\n")], capsys)
    assert status == 2 and "architecure" in printed and "did you mean 'architecture'?" in printed


def test_the_spec_kind_knows_every_constraints_key() -> None:
    from mapper.specs.constraints import TIMELOOP_KEYS
    assert set(TIMELOOP_KEYS) <= set(SPEC_DOCUMENT.keys)


# -- sizes and kinds of file ----------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:
        f.truncate(50 * 2**20)  # sparse: no disk used
    status, printed = run(["evaluate", huge], capsys)
    assert status == 2
    assert printed == f"error: {huge}: found a file of {50 * 2**20:,} bytes; allowed: a spec of at most " \
        f"{MAX_FILE_BYTES:,} bytes (16 MiB)\n"


def test_a_file_at_the_size_limit_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = TINY_CONV.read_text()
    padded = write(tmp_path / "padded.yaml", text + "#" * (MAX_FILE_BYTES - len(text.encode()) - 1) + "\n")
    status, printed = run(["stats", padded], capsys)
    assert status == 0, printed


@pytest.mark.parametrize("special", ["/dev/zero", "a FIFO", "a directory"])
def test_devices_fifos_and_directories_are_refused_unopened(tmp_path: Path, special: str) -> None:
    if special == "a FIFO":
        path = tmp_path / "fifo.yaml"
        os.mkfifo(path)  # opened for reading, it would block until a writer came
    else:
        path = tmp_path if special == "a directory" else Path(special)
    what = {"/dev/zero": "a character device", "a FIFO": "a FIFO", "a directory": "a directory"}[special]
    named = write(tmp_path / "arch.yaml", TOY_ARCH.read_text().replace("energy_table: eyeriss-normalized",
                                                                       f"energy_table: {path}"))
    refused = f"{path}: found {what}, not a regular file; allowed: a regular YAML file"
    for args in [["evaluate", path]] + ([] if path.is_dir() else [["stats", path], ["evaluate", named, TINY_CONV]]):
        done = subprocess.run([sys.executable, "-m", "mapper.cli", *map(str, args)], capture_output=True, text=True,
                              timeout=GUARD)
        assert done.returncode == 2 and done.stdout == ""
        if named in args:  # a table the architecture names: refused where it names it
            assert done.stderr.startswith(f"error: {named}: architecture.energy_table: ")
            assert f"({refused})" in done.stderr and done.stderr.count("\n") == 1
        else:
            assert done.stderr == f"error: {refused}\n"


# -- bounds up to 2**62: factored at once, counted exactly ----------------------------

BIG_BOUNDS = {
    "2**62": (2**62, (2,) * 62),
    "the largest prime below 2**63": (2**63 - 25, (2**63 - 25,)),
    "a Mersenne prime times 3": ((2**61 - 1) * 3, (3, 2**61 - 1)),
    "2**63 - 1": (2**63 - 1, (7, 7, 73, 127, 337, 92737, 649657)),
    "two 31-bit primes": ((2**31 - 1) * 2147483659, (2**31 - 1, 2147483659)),
    "the square of a 31-bit prime": ((2**31 - 1) ** 2, (2**31 - 1, 2**31 - 1)),
    "the most divisors below 2**63": (897612484786617600, (2,) * 8 + (3,) * 4 + (5, 5, 7, 7, 11, 13, 17, 19, 23,
                                                                                 29, 31, 37)),
}


@pytest.mark.parametrize(("n", "factors"), BIG_BOUNDS.values(), ids=BIG_BOUNDS)
def test_bounds_up_to_2_63_are_factored(n: int, factors: tuple[int, ...]) -> None:
    assert prime_factors(n) == factors
    assert all(is_prime(p) for p in factors)
    assert len(divisors(n)) == math.prod(factors.count(p) + 1 for p in set(factors))
    assert all(n % d == 0 for d in divisors(n)[:1000])


def test_factoring_agrees_with_trial_division_on_small_numbers() -> None:
    def trial_division(n: int) -> tuple[int, ...]:
        found, p = [], 2
        while p * p <= n:
            while n % p == 0:
                found.append(p)
                n //= p
            p += 1
        return tuple(found + ([n] if n > 1 else []))

    for n in [*range(1, 5000), *range(10**9, 10**9 + 2000)]:
        assert prime_factors(n) == trial_division(n), n
    for n in range(1, 3000):
        assert divisors(n) == tuple(d for d in range(1, n + 1) if n % d == 0), n


@pytest.mark.parametrize("bound", [2**62, 2**61 - 1])
def test_a_layer_with_a_bound_of_2_62_is_searched_and_evaluated(tmp_path: Path, bound: int,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    arch, layer = write(tmp_path / "arch.yaml", ONE_LEVEL), one_dimension(tmp_path, bound)
    status, printed = run(["search", arch, layer, "-o", tmp_path / "out", "--trials", "3"], capsys)
    assert status == 0, printed
    best = json.loads((tmp_path / "out/best.json").read_text())
    assert best["computes"] == bound and best["cycles"] == bound
    mapping = write(tmp_path / "mapping.yaml", f"mapping:\n  - {{level: DRAM, temporal: P{bound}}}\n")
    status, printed = run(["evaluate", arch, layer, mapping], capsys)
    assert status == 0 and f"cycles {bound}" in printed


def test_tiles_above_2_32_words_are_counted_as_the_reference_model_counts_them(tmp_path: Path) -> None:
    layer = write(tmp_path / "layer.yaml", textwrap.dedent(f"""\
        problem:
          name: wide
          dimensions: {{P: {2**40}, R: 4}}
          tensors:
            - {{name: W, ranks: [R]}}
            - {{name: I, ranks: [P+R]}}
            - {{name: O, ranks: [P], read_write: true}}
        """))
    specs = load_specs([write(tmp_path / "arch.yaml", THREE_LEVELS), layer])
    problem, arch = specs.problems[0], specs.architecture
    space = Mapspace(problem, arch)
    structure = space.structure([(0, 1)] * 3, [((1, 1), (1, 1)), ((1, 2), (1, 1)), ((1, 1), (1, 1))],
                                ((True, True, True), (False, False, False), (False, False, True)))
    batch = space._rows(structure, np.array([[[1, 1], [2**40, 2], [1, 1]]]))
    vectorized, reference = evaluate_batch(problem, arch, batch), evaluate_reference(problem, arch,
                                                                                      batch.mapping(0, problem))
    assert vectorized.energy_pJ[0] == pytest.approx(reference.energy_pJ, rel=1e-12)
    assert vectorized.reads[0, 2, 2] == reference.levels[2].tensors["O"].reads == 2**40


def test_a_layer_over_2_62_macs_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer = write(tmp_path / "layer.yaml", one_dimension(tmp_path, 2**62).read_text().replace(
        "dimensions: {P: 4611686018427387904}", "dimensions: {P: 4611686018427387904, Q: 2}"))
    status, printed = run(["stats", layer], capsys)
    assert status == 2 and "found 9.22e+18 MACs" in printed and "at most 4.61e+18 (2**62) MACs" in printed


# -- mapspaces too large to build -----------------------------------------------------


def deep_architecture(levels: int) -> str:
    lines = ["    - {name: DRAM, size: unbounded, energy: {read: 100, write: 100}}"]
    lines += [f"    - {{name: L{i}, size: {max(4, 2**20 >> (i // 2))}, energy: {{read: 1, write: 1}}}}"
              for i in range(levels - 2)]
    lines.append("    - {name: R, size: 4, energy: {read: 0.1, write: 0.1}}")
    return "architecture:\n  name: deep\n  levels:\n" + "\n".join(lines) + "\n  compute: {energy: 1}\n"


def test_an_architecture_of_202_levels_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = write(tmp_path / "arch.yaml", deep_architecture(202))
    status, printed = run(["search", arch, TINY_CONV, "-o", tmp_path / "out"], capsys)
    assert status == 2
    assert printed == f"error: {arch}: architecture.levels: found 202 levels; allowed: at most {MAX_LEVELS} " \
        "storage levels (mapper/specs/limits.py): the mapspace and the search grow with every level\n"


def test_an_architecture_of_32_levels_is_searched(tmp_path: Path) -> None:
    """Every level keeps any tensor: 8**31 keep tables, which the search never lists."""
    arch = write(tmp_path / "arch.yaml", deep_architecture(MAX_LEVELS))
    done = subprocess.run([sys.executable, "-m", "mapper.cli", "search", str(arch), str(TINY_CONV), "-o",
                           str(tmp_path / "out"), "--trials", "3"], capture_output=True, text=True, timeout=GUARD)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out/best.json").read_text())["computes"] == 1152


def test_an_exhaustive_search_refuses_to_list_8_31_keep_tables(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    arch = write(tmp_path / "arch.yaml", deep_architecture(MAX_LEVELS))
    status, printed = run(["search", arch, TINY_CONV, "-o", tmp_path / "out", "--exhaustive"], capsys)
    assert status == 2 and printed.count("\n") == 1
    assert "--exhaustive: found 9.9e+27 keep tables to list; allowed: at most 1,048,576" in printed


def fanned_out(fanout: str) -> str:
    return ONE_LEVEL.replace("energy: {read: 100, write: 100}}",
                             f"energy: {{read: 100, write: 100}}, fanout: {fanout}}}\n"
                             "    - {name: PE, size: 16, energy: {read: 1, write: 1}}")


def test_2_16_instances_are_searched(tmp_path: Path) -> None:
    arch = write(tmp_path / "arch.yaml", fanned_out("[256, 256]"))
    done = subprocess.run([sys.executable, "-m", "mapper.cli", "search", str(arch), str(TINY_CONV), "-o",
                           str(tmp_path / "out"), "--trials", "3"], capture_output=True, text=True, timeout=GUARD)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out/best.json").read_text())["computes"] == 1152


def test_2_20_instances_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = write(tmp_path / "arch.yaml", fanned_out("[1024, 1024]"))
    status, printed = run(["search", arch, TINY_CONV, "-o", tmp_path / "out"], capsys)
    assert status == 2
    assert printed == f"error: {arch}: architecture.levels[0].fanout: found [1024, 1024], which makes 1048576 " \
        "instances below DRAM; allowed: at most 65536 instances of a level or of the MACs (2**16)\n"


def test_factorizations_beyond_64_bit_counts_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = write(tmp_path / "arch.yaml", deep_architecture(MAX_LEVELS))
    status, printed = run(["search", arch, one_dimension(tmp_path, 2**62), "-o", tmp_path / "out"], capsys)
    assert status == 2 and printed.count("\n") == 1
    assert "layer 'big', dimension P: found a bound of 4,611,686,018,427,387,904 split over 32 levels" in printed
    assert "the mapspace counts them in 64 bits" in printed


def test_a_bound_with_100_000_divisors_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = write(tmp_path / "arch.yaml", THREE_LEVELS)
    status, printed = run(["search", arch, one_dimension(tmp_path, 897612484786617600), "-o", tmp_path / "out"],
                          capsys)
    assert status == 2 and printed.count("\n") == 1
    assert "(103,680 divisors) to split over 3 levels; allowed: at most 33,554,432 entries" in printed


# -- energies and numbers on the command line -----------------------------------------


@pytest.mark.parametrize(("energy", "table"), [("1.0e+308", None), (".inf", None), ("1.0e+13", None),
                                               ("rf", "1.0e+300"), ("'99999999999999999999*rf'", "1")])
def test_energies_must_be_finite_and_at_most_1e12(tmp_path: Path, energy: str, table: str | None,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    arch_text = ONE_LEVEL.replace("read: 100", f"read: {energy}")
    if table is not None:
        write(tmp_path / "t.yaml", f"name: t\nunit: pJ\nsource: a test\nentries: {{rf: {table}}}\n")
        arch_text = arch_text.replace("  name: one\n", "  name: one\n  energy_table: t\n")
    arch = write(tmp_path / "arch.yaml", arch_text)
    mapping = write(tmp_path / "mapping.yaml", "mapping: [{level: DRAM, temporal: C2 M4 P4 Q4 R3 S3}]\n")
    status, printed = run(["evaluate", arch, TINY_CONV, mapping, "--json", tmp_path / "out.json"], capsys)
    assert status == 2 and printed.count("\n") == 1 and "1e+12" in printed, printed
    assert not (tmp_path / "out.json").exists()


def test_an_energy_of_1e12_is_accepted_and_its_totals_stay_finite(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    arch = write(tmp_path / "arch.yaml", ONE_LEVEL.replace("{read: 100, write: 100}",
                                                           "{read: 1.0e+12, write: 1.0e+12}"))
    mapping = write(tmp_path / "mapping.yaml", "mapping: [{level: DRAM, temporal: C2 M4 P4 Q4 R3 S3}]\n")
    status, printed = run(["evaluate", arch, TINY_CONV, mapping, "--json", tmp_path / "out.json"], capsys)
    assert status == 0, printed
    assert math.isfinite(strict_json(tmp_path / "out.json")["energy_pJ"])


@pytest.mark.parametrize("option", [["--time", "nan"], ["--time", "inf"], ["--time", "-1"], ["--time", "1e999"],
                                    ["--trials", "0"], ["--seed", "-1"], ["--seed", str(2**32)], ["--seed", "1.5"],
                                    ["--patience", "-1"], ["--jobs", "0"]])
def test_command_line_numbers_must_be_finite_and_in_range(tmp_path: Path, option: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    status, printed = run(["search", TOY_ARCH, TINY_CONV, "-o", tmp_path / "out", *option], capsys)
    assert status == 2
    assert printed.count("\n") == 1 and printed.startswith(f"mapper search: error: argument {option[0]}")
    assert f"found {option[1]!r}" in printed and "Traceback" not in printed


def test_the_largest_seed_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = write(tmp_path / "arch.yaml", ONE_LEVEL)
    status, printed = run(["search", arch, TINY_CONV, "-o", tmp_path / "out", "--trials", "2", "--seed",
                           str(2**32 - 1)], capsys)
    assert status == 0, printed
    assert strict_json(tmp_path / "out/best.json")["search"]["seed"] == 2**32 - 1


def test_an_experiment_seed_must_be_in_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    experiment = write(tmp_path / "experiment.yaml", (SPECS / "experiments/example.yaml").read_text().replace(
        "seed: 0", "seed: -1"))
    status, printed = run(["run", experiment, "-o", tmp_path / "out"], capsys)
    assert status == 2 and "search.seed: found -1; allowed: an integer from 0 to 4294967295" in printed


# -- strict JSON ------------------------------------------------------------------------


def strict_json(path: Path) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{path}: {constant} is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_evaluate_and_search_write_strict_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = run(["evaluate", TOY_ARCH, TINY_CONV, TOY_MAPPING, "--json", tmp_path / "evaluate.json"], capsys)
    assert status == 0 and strict_json(tmp_path / "evaluate.json")["computes"] == 1152
    status, _ = run(["search", TOY_ARCH, TINY_CONV, "-o", tmp_path / "search", "--trials", "3", "--objective",
                     "pareto"], capsys)
    assert status == 0
    assert strict_json(tmp_path / "search/best.json")["computes"] == 1152
    assert strict_json(tmp_path / "search/pareto.json")["points"]


def test_a_non_finite_result_is_refused_with_its_place() -> None:
    with pytest.raises(SpecError) as info:
        json_text({"levels": [{"energy_pJ": 1.0}, {"energy_pJ": math.inf}]})
    assert str(info.value).startswith("the results: levels[1].energy_pJ: found inf; allowed: finite numbers")
    assert json_text({"a": [1, 2.5]}, indent=None) == '{"a": [1, 2.5]}'


# -- Timeloop input without energies ----------------------------------------------------

T03 = REFERENCE / "cases/t03_conv1d_oc_3level_bypass/ref-output"
needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")


@needs_reference
def test_a_timeloop_input_without_its_ert_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    status, printed = run(["evaluate", T03 / "parsed-processed-input.yaml"], capsys)
    assert status == 2 and printed.count("\n") == 1
    assert "ERT: found an architecture without its energy reference table (every energy would be 0 pJ)" in printed
    assert "timeloop-model.ERT.yaml" in printed
    status, printed = run(["evaluate", T03 / "parsed-processed-input.yaml", T03 / "timeloop-model.ERT.yaml"], capsys)
    assert status == 0 and "energy 60458.31 pJ" in printed


@needs_reference
def test_an_ert_that_leaves_a_component_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load((T03 / "timeloop-model.ERT.yaml").read_text())
    doc["ERT"]["tables"] = [t for t in doc["ERT"]["tables"] if "RegisterFile" not in t["name"]]
    partial = write(tmp_path / "ERT.yaml", yaml.safe_dump(doc))
    status, printed = run(["evaluate", T03 / "parsed-processed-input.yaml", partial], capsys)
    assert status == 2 and "ERT.tables: found no table for component 'RegisterFile'" in printed
