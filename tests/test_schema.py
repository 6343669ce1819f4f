"""The JSON Schemas of the native spec files (`mapper schema`, committed in specs/schema/)
for editors: the committed files are what the models generate; every shipped spec
passes its schema; no spec the loader accepts is refused by its schema (fuzzed with the
mutations of tests/spec_mutations.py); and typical mistakes are refused by the schema
as by the loader."""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from pydantic import BaseModel, ValidationError

from mapper.cli import main
from mapper.dataflow_comparison import is_comparison, load_comparison
from mapper.experiment import load_experiment
from mapper.specs.errors import SpecError
from mapper.specs.load import load_specs
from mapper.specs.constraints import LevelConstraintsSpec
from mapper.specs.native.architecture import EnergySpec
from mapper.specs.native.energy_tables import load_energy_table
from mapper.specs.native.mapping import LevelMappingSpec
from mapper.specs.native.problem import TensorSpec
from mapper.specs.schema import KINDS, Kind, file_name, schema_text

sys.path.insert(0, os.path.dirname(__file__))

from spec_mutations import dump, tree_corpus  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "specs"
SCHEMAS = SPECS / "schema"
SHIPPED = sorted(SPECS.rglob("*.yaml"))


def kind_of(path: Path) -> Kind:
    folder = path.relative_to(SPECS).parts[0]
    return {"energy": "energy-table", "experiments": "experiment"}.get(folder, "spec")


@cache
def validator(kind: Kind) -> Draft7Validator:
    """The committed schema, as an editor reads it; itself a valid draft-07 schema."""
    schema = json.loads((SCHEMAS / file_name(kind)).read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def schema_errors(kind: Kind, doc: object) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator(kind).iter_errors(doc)]


# -- the committed files ------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_the_committed_schema_is_the_generated_one(kind: Kind) -> None:
    assert (SCHEMAS / file_name(kind)).read_text() == schema_text(kind), \
        "stale: run `mapper schema --all -o specs/schema`"


def test_mapper_schema_writes_every_kind_or_prints_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--all", "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(file_name(k) for k in KINDS)
    for kind in KINDS:
        assert (tmp_path / "out" / file_name(kind)).read_text() == schema_text(kind)
    capsys.readouterr()
    assert main(["schema", "energy-table"]) == 0
    assert capsys.readouterr().out == schema_text("energy-table")
    assert main(["schema"]) == 0 and capsys.readouterr().out == schema_text("spec")


def test_mapper_schema_refuses_all_without_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--all"]) == 2
    assert capsys.readouterr().err.startswith("error: mapper schema: --all: found --all without -o DIR")


def _empty_subschemas(node: Any, where: str) -> Iterator[str]:
    """Where a schema says nothing: {} accepts anything."""
    if node == {}:
        yield where
        return
    for key in ("items", "additionalProperties"):  # one schema for every item or value
        if isinstance(node.get(key), dict):
            yield from _empty_subschemas(node[key], f"{where}.{key}")
    for key in ("anyOf", "items"):  # alternatives; a tuple's items
        if isinstance(node.get(key), list):
            for i, part in enumerate(node[key]):
                yield from _empty_subschemas(part, f"{where}.{key}[{i}]")
    for name, part in node.get("properties", {}).items():
        yield from _empty_subschemas(part, f"{where}.{name}")


@pytest.mark.parametrize("kind", KINDS)
def test_every_key_of_the_models_says_what_it_accepts(kind: Kind) -> None:
    """A custom validator without a declared schema would show up as {}: anything goes."""
    schema = validator(kind).schema
    models = {name: d for name, d in schema.get("definitions", {}).items() if name.endswith("Spec")}
    empty = [w for name, d in [("", schema), *models.items()] for w in _empty_subschemas(d, name)]
    assert models or kind == "energy-table"
    assert not empty, empty


# -- the shipped specs ----------------------------------------------------------------------

@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SPECS)))
def test_every_shipped_spec_passes_its_schema(path: Path) -> None:
    assert not schema_errors(kind_of(path), yaml.safe_load(path.read_text()))


# -- the schema against the loader ----------------------------------------------------------

def loads(kind: Kind, files: list[Path]) -> bool:
    """Whether the loader accepts the last of `files` (read together with the others)."""
    try:
        if kind == "energy-table":
            load_energy_table(files[-1])
        elif kind == "experiment":
            (load_comparison if is_comparison(files[-1]) else load_experiment)(files[-1])
        else:
            load_specs(files)
    except SpecError:
        return False
    return True


def place(tmp_path: Path, target: Path, text: bytes) -> Path:
    """Write a mutant of `target` where the shipped specs it names are still found: an
    experiment's relative paths lead to specs/arch and specs/constraints."""
    if kind_of(target) == "experiment":
        for folder in ("arch", "constraints"):
            if not (tmp_path / folder).exists():
                (tmp_path / folder).symlink_to(SPECS / folder)
        (tmp_path / "experiments").mkdir(exist_ok=True)
        path = tmp_path / "experiments" / target.name
    else:
        path = tmp_path / target.name
    path.write_bytes(text)
    return path


# Each set of files read together; the last one is mutated.
SETS = [
    ("arch/toy-3level", "workloads/tiny-conv", "mappings/toy-3level-tiny-conv"),
    ("arch/toy-3level", "mappings/toy-3level-tiny-conv", "workloads/tiny-conv"),
    ("workloads/tiny-conv", "mappings/toy-3level-tiny-conv", "arch/toy-3level"),
    ("workloads/alexnet", "arch/eyeriss"),
    ("arch/eyeriss", "workloads/alexnet"),
    ("arch/eyeriss", "workloads/alexnet-conv3", "constraints/eyeriss-row-stationary"),
    ("arch/eyeriss", "workloads/alexnet-conv3", "constraints/eyeriss-timeloop-format"),
    ("arch/toy-3level", "workloads/tiny-conv", "constraints/toy-3level-custom"),
    ("energy/eyeriss-normalized",),
    ("experiments/example",),
    ("experiments/eyeriss-dataflows",),
]
PER_KIND = 3  # tree mutants of each kind per file, spread over it (keeps this under ~10 s)


@pytest.mark.parametrize("names", SETS, ids=lambda names: names[-1])
def test_no_mutant_the_loader_accepts_is_refused_by_the_schema(names: tuple[str, ...], tmp_path: Path) -> None:
    files = [SPECS / f"{name}.yaml" for name in names]
    kind = kind_of(files[-1])
    refused, accepted = [], 0
    for label, text in tree_corpus(yaml.safe_load(files[-1].read_text()), PER_KIND):
        mutant = place(tmp_path, files[-1], text)
        if loads(kind, [*files[:-1], mutant]):
            accepted += 1
            errors = schema_errors(kind, yaml.safe_load(text))
            if errors:
                refused.append((label, errors))
    assert accepted, "no mutant loads: the corpus says nothing about the schema"
    assert not refused, refused


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation: the value at a dotted path (list indices as numbers) set to `value`."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]

    def mutate(doc: dict) -> None:
        for key in parents:
            doc = doc[key]
        doc[last] = copy.deepcopy(value)
    return mutate


def _rename(path: str, new: str) -> Callable[[dict], None]:
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]

    def mutate(doc: dict) -> None:
        for key in parents:
            doc = doc[key]
        doc[new] = doc.pop(last)
    return mutate


EINSUM = {"name": "conv1d", "dimensions": {"P": 8, "R": 3},
          "tensors": [{"name": "Weights", "ranks": ["R"]}, {"name": "Inputs", "ranks": ["P + R"]},
                      {"name": "Outputs", "ranks": [[[1, "P"]]], "read_write": True}]}
TOY = ("arch/toy-3level", "workloads/tiny-conv", "mappings/toy-3level-tiny-conv")
TOY_ARCH = (*TOY[1:], TOY[0])
CONV_SET = ("workloads/tiny-conv",)
CUSTOM = ("arch/toy-3level", "workloads/tiny-conv", "constraints/toy-3level-custom")
TIMELOOP = ("arch/eyeriss", "workloads/alexnet-conv3", "constraints/eyeriss-timeloop-format")
TABLE = ("energy/eyeriss-normalized",)
EXAMPLE = ("experiments/example",)
COMPARISON = ("experiments/eyeriss-dataflows",)

MISTAKES = [
    ("a misspelt key", TOY_ARCH, _rename("architecture.levels.1.size", "sise")),
    ("a misspelt top-level key", TOY_ARCH, _rename("architecture", "architecure")),
    ("a quoted number", TOY_ARCH, _set("architecture.levels.1.size", "64")),
    ("a float for an integer", TOY_ARCH, _set("architecture.levels.1.size", 64.5)),
    ("a negative energy", TOY_ARCH, _set("architecture.levels.1.energy.read", -1)),
    ("an energy expression cut short", TOY_ARCH, _set("architecture.levels.1.energy.read", "4*global_buffer +")),
    ("a fan-out of one number in a list", TOY_ARCH, _set("architecture.levels.1.fanout", [4])),
    ("size and depth", TOY_ARCH, _set("architecture.levels.1.depth", 64)),
    ("neither size nor depth", TOY_ARCH, lambda d: d["architecture"]["levels"][1].pop("size")),
    ("a level without energy", TOY_ARCH, lambda d: d["architecture"]["levels"][1].pop("energy")),
    ("no levels", TOY_ARCH, _set("architecture.levels", [])),
    ("a loop without a factor", TOY, _set("mapping.0.temporal", "C2 P")),
    ("a factor of 0", TOY, _set("mapping.0.temporal", "C2 P0")),
    ("a spatial loop along Z", TOY, _set("mapping.1.spatial", "M4Z")),
    ("a temporal loop of three parts", TOY, _set("mapping.0.temporal", [["C", 2, "X"]])),
    ("keep as a string", TOY, _set("mapping.1.keep", "Inputs")),
    ("a conv without P nor H", CONV_SET, lambda d: d["problem"]["conv"].pop("P")),
    ("a conv kernel of 0", CONV_SET, _set("problem.conv.R", 0)),
    ("stride of three numbers", CONV_SET, _set("problem.conv.stride", [1, 2, 3])),
    ("a conv key beside the layer", CONV_SET, _set("problem.name", "x")),
    ("problem and workload", CONV_SET, _set("workload", {"layers": [{"linear": {"name": "l", "M": 1, "N": 1,
                                                                                  "K": 1}}]})),
    ("a linear layer without K", CONV_SET, _set("problem", {"linear": {"name": "l", "M": 4, "N": 4}})),
    ("an einsum without an output", CONV_SET, _set("problem", {**EINSUM, "tensors": EINSUM["tensors"][:2]})),
    ("an einsum rank with a 0 coefficient", CONV_SET, _set("problem", {**EINSUM, "tensors": [
        *EINSUM["tensors"][:2], {"name": "Outputs", "ranks": ["0*P"], "read_write": True}]})),
    ("an einsum dimension of 0", CONV_SET, _set("problem", {**EINSUM, "dimensions": {"P": 0, "R": 3}})),
    ("a factor bound below 1", CUSTOM, _set("constraints.levels.Buffer.temporal", "P<=0 Q>=2")),
    ("a factor word that does not parse", CUSTOM, _set("constraints.levels.Buffer.temporal", "P<4")),
    ("a misspelt preset", CUSTOM, _set("constraints.preset", "row-stationry")),
    ("a utilization above 1", CUSTOM, _set("constraints.min_utilization", 1.5)),
    ("an unknown constraint key", CUSTOM, _set("constraints.levels.Buffer.inner", ["M"])),
    ("a misspelt Timeloop type", TIMELOOP, _set("mapspace_constraints.targets.0.type", "temporl")),
    ("a split on a temporal target", TIMELOOP, _set("mapspace_constraints.targets.0.split", 1)),
    ("a Timeloop target without a level", TIMELOOP, lambda d: d["mapspace_constraints"]["targets"][0].pop("target")),
    ("a quoted table entry", TABLE, _set("entries.rf", "1")),
    ("a table without unit", TABLE, lambda d: d.pop("unit")),
    ("a table entry that is not a name", TABLE, _set("entries.1rf", 1)),
    ("a misspelt objective", EXAMPLE, _set("objectives", ["edpp"])),
    ("a quoted trial count", EXAMPLE, _set("search.trials", "10")),
    ("a batch of 0", EXAMPLE, _set("workloads.0.batch", 0)),
    ("no architectures", EXAMPLE, _set("architectures", [])),
    ("a comparison by pareto", COMPARISON, _set("objective", "pareto")),
    ("a comparison of one dataflow", COMPARISON, lambda d: d.update(dataflows=d["dataflows"][:1])),
    ("an experiment key in a comparison", COMPARISON, _set("objectives", ["energy"])),
]

ALTERNATIVES = [
    ("a fan-out of one number", TOY_ARCH, _set("architecture.levels.1.fanout", 4)),
    ("depth instead of size", TOY_ARCH, lambda d: d["architecture"]["levels"][1].update(
        depth=d["architecture"]["levels"][1].pop("size"))),
    ("energies in pJ", TOY_ARCH, _set("architecture.levels.1.energy", {"read": 6, "write": 6.5})),
    ("an energy expression", TOY_ARCH, _set("architecture.levels.1.energy.read", "2 * global_buffer + rf")),
    ("temporal loops as a list", TOY, _set("mapping.0.temporal", [["C", 2], ["P", 2]])),
    ("spatial loops as a list", TOY, _set("mapping.1.spatial", [["M", 4, "X"]])),
    ("loops with =", TOY, _set("mapping.0.temporal", "C=2 P=2")),
    ("a conv by input size", CONV_SET, lambda d: d["problem"]["conv"].update(H=6, W=6, P=None, Q=None)),
    ("a stride per axis", CONV_SET, lambda d: d["problem"]["conv"].update(stride=[1, 1], padding=0)),
    ("an einsum", CONV_SET, _set("problem", EINSUM)),
    ("a workload", CONV_SET, lambda d: d.update(workload={"layers": [d.pop("problem")]})),
    ("factor bounds as a mapping", CUSTOM, _set("constraints.levels.Buffer.temporal", {"P": "<=4", "Q": ">=2"})),
    ("factor bounds as a list", CUSTOM, _set("constraints.levels.Buffer.temporal", ["P<=4", "Q>=2"])),
    ("Timeloop targets as a list", TIMELOOP, lambda d: d.update(mapspace_constraints=d["mapspace_constraints"]
                                                               ["targets"])),
    ("a workload by name", EXAMPLE, _set("workloads", ["tiny-conv"])),
]


def _mutated(names: tuple[str, ...], mutate: Callable[[dict], None], tmp_path: Path) -> tuple[Kind, list[Path], Any]:
    files = [SPECS / f"{name}.yaml" for name in names]
    doc = yaml.safe_load(files[-1].read_text())
    mutate(doc)
    return kind_of(files[-1]), [*files[:-1], place(tmp_path, files[-1], dump(doc))], doc


@pytest.mark.parametrize(("mistake", "names", "mutate"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_typical_mistake_is_refused_by_the_schema_as_by_the_loader(
        mistake: str, names: tuple[str, ...], mutate: Callable[[dict], None], tmp_path: Path) -> None:
    kind, files, doc = _mutated(names, mutate, tmp_path)
    assert not loads(kind, files)
    assert schema_errors(kind, doc)


@pytest.mark.parametrize(("form", "names", "mutate"), ALTERNATIVES, ids=[a[0] for a in ALTERNATIVES])
def test_every_form_the_loader_accepts_passes_the_schema(
        form: str, names: tuple[str, ...], mutate: Callable[[dict], None], tmp_path: Path) -> None:
    kind, files, doc = _mutated(names, mutate, tmp_path)
    assert loads(kind, files)
    assert not schema_errors(kind, doc)


# -- the written forms: a pattern accepts exactly the strings its validator reads --------------

PIECES = ["P", "Q", "M", "C1", "_x", "8", "14", "0", "01", "2.5", "X", "Y", "Z", "=", "<=", ">=", "<", "*", "+", ",",
          " ", "  ", "\t", "-", "."]
WRITTEN = st.one_of(st.lists(st.sampled_from(PIECES), max_size=10).map("".join),
                    st.text(alphabet="PQXY_a09=<>*+,. -", max_size=10))


def _nothing(text: str, error: str) -> bool:
    return False


def _a_dimension_twice_in_a_rank(text: str, error: str) -> bool:
    names = re.findall(r"[A-Za-z_]\w*", text)  # in a sum the schema accepts, the names are the dimensions
    return len(set(names)) < len(names)


def _a_second_bound(text: str, error: str) -> bool:
    return "is a second bound on" in error


# (form, model, a document with the text in it, the loader's refusals the schema does not express)
STRING_FORMS: list[tuple[str, type[BaseModel], Callable[[str], dict], Callable[[str, str], bool]]] = [
    ("temporal loops", LevelMappingSpec, lambda s: {"level": "L", "temporal": s}, _nothing),
    ("spatial loops", LevelMappingSpec, lambda s: {"level": "L", "spatial": s}, _nothing),
    ("an energy", EnergySpec, lambda s: {"read": s, "write": 0}, _nothing),
    ("a rank", TensorSpec, lambda s: {"name": "T", "ranks": [s]}, _a_dimension_twice_in_a_rank),
    ("factor bounds", LevelConstraintsSpec, lambda s: {"temporal": s}, _a_second_bound),
]


@cache
def model_schema(model: type[BaseModel]) -> Draft7Validator:
    return Draft7Validator(model.model_json_schema())


def model_error(model: type[BaseModel], doc: dict) -> str | None:
    """Why the model refuses `doc`, or None if it accepts it."""
    try:
        model.model_validate(doc)
    except ValidationError as error:
        return str(error.errors())  # with the context: the suggestion says which word fails
    return None


@pytest.mark.parametrize(("form", "model", "doc", "unexpressed"), STRING_FORMS, ids=[f[0] for f in STRING_FORMS])
@settings(max_examples=300, deadline=None)
@given(text=WRITTEN)
def test_a_written_form_passes_the_schema_exactly_when_the_loader_reads_it(
        form: str, model: type[BaseModel], doc: Callable[[str], dict], unexpressed: Callable[[str, str], bool],
        text: str) -> None:
    error = model_error(model, doc(text))
    if model_schema(model).is_valid(doc(text)):
        assert error is None or unexpressed(text, error), (text, error)
    else:
        assert error is not None, text


@settings(max_examples=300, deadline=None)
@given(text=WRITTEN)
def test_a_bound_in_a_mapping_of_factors_passes_the_schema_only_if_the_loader_reads_it(text: str) -> None:
    """{M: "<=8"}: the schema takes the forms the docs give ("<=n", ">=n", "=n", "n"); the
    loader reads the bound glued to its key ("M" + "<=8"), so it also reads text nobody
    writes there ({M: "P0"} is the word "MP0")."""
    doc = {"temporal": {"M": text}}
    assert not model_schema(LevelConstraintsSpec).is_valid(doc) or model_error(LevelConstraintsSpec, doc) is None, text
