"""Bad input, fuzzed: a fixed corpus of mutations of the shipped specs and of a
Timeloop case input (tests/spec_mutations.py says which) goes through the CLI. Each
must load (exit 0) or be refused with one 'error: ' line that names a file it was
given (exit 2): never a traceback, never a hang. benchmarks/fuzz_specs.py runs the
same check on random mutants for longer."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))

from spec_mutations import NESTING, Seed, evaluate_mutant, run_cli, seeds, text_corpus, tree_corpus  # noqa: E402

SEEDS = {seed.name: seed for seed in seeds()}
PER_KIND = 4  # tree mutants of each kind per seed: every kind, spread over the file


def corpus(seed: Seed) -> list[tuple[str, bytes]]:
    text = seed.target_file().read_bytes()
    return tree_corpus(yaml.safe_load(text), PER_KIND) + text_corpus(text)


@pytest.mark.parametrize("name", SEEDS)
def test_every_mutant_loads_or_gets_a_clear_error(name: str, tmp_path: Path) -> None:
    seed = SEEDS[name]
    mutants = corpus(seed)
    outcomes = [(label, evaluate_mutant(seed, content, tmp_path, seconds=10)) for label, content in mutants]
    unacceptable = [(label, o.problem, o.error) for label, o in outcomes if o.problem]
    assert not unacceptable, unacceptable
    # the corpus reaches past the YAML reader: some mutants load, most are refused
    assert sum(o.error != "" for _, o in outcomes) > len(mutants) // 2


@pytest.mark.parametrize(("label", "content"), NESTING)
def test_yaml_nested_deeper_than_the_parser_goes_is_refused(label: str, content: bytes, tmp_path: Path) -> None:
    outcome = evaluate_mutant(SEEDS["toy-arch"], content, tmp_path)
    assert outcome.problem == "" and "nested too deeply" in outcome.error


def test_the_corpus_covers_every_kind_of_mutation() -> None:
    labels = " ".join(label for seed in SEEDS.values() for label, _ in corpus(seed))
    for kind in ("delete", "replace with None", "replace with 0 ", "replace with 1000000000000 ", "misspell",
                 "duplicate", "empty", "reverse", "cycle", "bomb", "truncated", "inserted", "random bytes",
                 "a python tag", "a key line repeated", "utf-16"):
        assert kind in labels, kind


# -- the loader fixes the fuzzing called for, one case each ------------------------------

TOY = [Path(p) for p in SEEDS["toy-arch"].files]
TIMELOOP = yaml.safe_load(SEEDS["timeloop-case"].files[0].read_text())


def refused(tmp_path: Path, text: str, *others: Path) -> str:
    """The one-line error the CLI gives for a spec file with `text` beside `others`."""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    outcome = run_cli(["evaluate", *map(str, others), str(path)], [*others, path])
    assert outcome.problem == "" and not outcome.loaded, outcome
    return outcome.error


def test_a_yaml_message_over_two_lines_is_printed_on_one(tmp_path: Path) -> None:
    error = refused(tmp_path, "problem:\n  conv: {name: c\x00}\n")
    assert "found invalid YAML (unacceptable character #x0000: special characters are not allowed, at offset 25)" \
        in error


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    error = refused(tmp_path, "\n".join(lines) + "\nproblem: *a8\n")
    assert "aliases that expand to more than 1000000 nodes" in error


def test_an_alias_inside_the_node_it_names_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, "architecture: &arch {name: a, levels: [*arch]}\n")
    assert error.startswith(f"error: {tmp_path / 'spec.yaml'}:1:") and "a cyclic structure" in error


def test_a_fanout_beyond_any_chip_is_refused_before_the_model_walks_it(tmp_path: Path) -> None:
    """A fan-out of 10**12 PEs used to hang `evaluate`: the model searches every
    position of the mesh for link transfers."""
    arch = TOY[0].read_text().replace("fanout: 4 ", "fanout: 1000000000000 ")
    assert "1000000000000" in arch
    error = refused(tmp_path, arch, TOY[1], TOY[2])
    assert "architecture.levels[1].fanout: found [1000000000000, 1], which makes 1000000000000 instances" in error


def timeloop_error(tmp_path: Path, mutate) -> str:
    doc = copy.deepcopy(TIMELOOP)
    mutate(doc)
    return refused(tmp_path, yaml.safe_dump(doc))


@pytest.mark.parametrize(("mutate", "where", "found"), [
    (lambda d: d["problem"]["shape"]["data_spaces"][1].update(projection=[[]]),
     "problem.shape.data_spaces[1].projection[0]", "found an empty rank"),
    (lambda d: d["problem"]["shape"]["data_spaces"][0].update(projection="R"),
     "problem.shape.data_spaces[0].projection", "found 'R'; allowed: a list"),
    (lambda d: d["problem"]["shape"]["data_spaces"][2].pop("read_write"),
     "problem.shape.data_spaces", "found 0 read_write data spaces (none)"),
    (lambda d: d["problem"]["instance"].update(P="32"), "problem.instance.P",
     "found '32'; allowed: a positive integer"),
    (lambda d: d["architecture"]["subtree"][0]["local"][1].pop("name"),
     "architecture.subtree[0].local[1].name", "found null; allowed: a non-empty string"),
    (lambda d: d["architecture"]["subtree"][0]["local"][2].update(name="MACC[1..9999999]"),
     "architecture.subtree[0].local[2].name", "found 9999999 instances of 'MACC[1..9999999]'"),
    (lambda d: d["architecture"]["subtree"][0]["local"][1]["attributes"].update(depth="64"),
     "architecture.subtree[0].local[1].attributes.depth", "found '64'; allowed: a positive integer"),
    (lambda d: d["mapping"][1].update(factors=["R=1", "P=2"]), "mapping[1].factors", "found ['R=1', 'P=2']"),
    (lambda d: d["mapping"][1].update(type="temporl"), "mapping[1].type", "did you mean 'temporal'?"),
    (lambda d: d["mapping"][0].update(keep=["Weight"]), "mapping[0].keep[0]", "did you mean 'Weights'?"),
    (lambda d: d["ERT"]["tables"][0]["actions"][0].update(energy="lots"),
     "ERT.tables[0].actions[0].energy", "found 'lots'; allowed: a number >= 0"),
])
def test_a_timeloop_input_of_the_wrong_shape_is_located(tmp_path: Path, mutate, where: str, found: str) -> None:
    """The Timeloop reader used to raise KeyError, TypeError or AttributeError from
    deep inside; now every value is checked where it is read."""
    error = timeloop_error(tmp_path, mutate)
    assert error.startswith(f"error: {tmp_path / 'spec.yaml'}: {where}: ") and found in error, error
