"""JSON Schemas of the native spec files, generated from the pydantic models that check
them, so that an editor completes and checks a spec as it is typed (the YAML language
server reads a first line `# yaml-language-server: $schema=PATH-OR-URL`). `mapper schema
KIND` prints one; `mapper schema --all -o specs/schema` writes the committed copies
(tests/test_schema.py keeps them equal to what this module generates).

The kinds:
    spec          any file of a native spec set: problem or workload, architecture,
                  mapping, constraints (native or Timeloop targets); files are merged, so
                  one schema covers each of them and all of them in one file
    energy-table  an energy table (specs/energy/)
    experiment    a `mapper run` file: an experiment, or a dataflow comparison (one with
                  a `baseline`)

A schema checks one file on its own, the shape of every key and value; the loader
checks more, and stays the reference. Not expressed here:
    - anything across keys or files: the names a mapping or constraints use (levels,
      dimensions, tensors) against the architecture and the problem, factors that
      reach the bounds, spatial factors within a fan-out, files an experiment names;
    - uniqueness of names in lists (levels, layers, tensors, a dimension in one rank or
      among a level's loops), a size that is a multiple of block_size, `unbounded` on the
      outermost level only, a conv's groups that divide C and M, its input large enough
      for the kernel, P and H that agree, padding with P/Q given, a second bound on a
      dimension, a second read_write tensor in an einsum, the table entries an energy
      expression names;
    - JSON Schema has one kind of number and no NaN: it takes 4.0 for an integer and
      .nan or .inf for a number, which the loader refuses (YAML tells them apart).
Stricter than the loader, on text nobody writes: a factor bound in a mapping is
"<=n", ">=n", "=n" or "n" (the loader glues any text to the key: {M: "P0"} reads
"MP0"); a factor word split over two list items (["C=", "1"]); a Timeloop keep or
bypass that is a falsy non-list (0, ""); and, in editors, non-ASCII names (the patterns
use \\w and \\d, Unicode in Python as in the loader, ASCII in JavaScript).
"""

from __future__ import annotations

import copy
import json
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, RootModel, TypeAdapter, WithJsonSchema, with_config
from pydantic.json_schema import models_json_schema
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from ..dataflow_comparison import ComparisonSpec
from ..experiment import ExperimentSpec
from .constraints import FACTORS_SCHEMA, TIMELOOP_TARGET_SCHEMA, ConstraintsSpec, timeloop_constraints_schema
from .native.architecture import ArchitectureSpec
from .native.energy_tables import EnergyTableSpec
from .native.mapping import LevelMappingSpec
from .native.problem import ConvSpec, EinsumSpec, MatmulSpec, WorkloadSpec

Kind = Literal["spec", "energy-table", "experiment"]
KINDS: tuple[Kind, ...] = ("spec", "energy-table", "experiment")
# The YAML language server checks draft-07 (2019-09 and 2020-12 only in part). Pydantic
# writes 2020-12, but for these models nothing draft-07 lacks besides the name `$defs`;
# the validators' own schemas (fields.py, native/, constraints.py) are written in draft-07.
DIALECT = "http://json-schema.org/draft-07/schema#"
REFS = "#/definitions/{model}"


@with_config(ConfigDict(extra="forbid", title="conv layer"))
class ConvLayer(TypedDict):
    conv: ConvSpec


@with_config(ConfigDict(extra="forbid", title="matmul layer"))
class MatmulLayer(TypedDict):
    matmul: MatmulSpec


@with_config(ConfigDict(extra="forbid", title="linear layer"))
class LinearLayer(TypedDict):
    """Weights shared by the batch: Weights[K, N]."""

    linear: MatmulSpec


# `parse_problem` tells the forms of a layer apart by their keys: this model is the schema's.
class ProblemSpec(RootModel[ConvLayer | MatmulLayer | LinearLayer | EinsumSpec]):
    """One layer: a conv, matmul or linear shorthand (the key alone, the layer inside it),
    or a general einsum."""


def _timeloop_constraints(key: str) -> Any:
    return Annotated[object, WithJsonSchema(timeloop_constraints_schema(key))]


@with_config(ConfigDict(extra="forbid", title="mapper spec",
                         json_schema_extra={"not": {"required": ["problem", "workload"]}}))
class _SpecFile(TypedDict, total=False):
    """A native spec file; the files given together are merged at the top level, each
    key coming from one file only (mapper/specs/native)."""

    problem: Annotated[ProblemSpec, Field(description="one layer (not with workload)")]
    workload: Annotated[WorkloadSpec, Field(description="several layers (not with problem)")]
    architecture: ArchitectureSpec
    mapping: Annotated[list[LevelMappingSpec], Field(min_length=1, description="one entry per level that has loops "
                                                     "or a non-default keep set, outermost first")]
    constraints: ConstraintsSpec | _timeloop_constraints("constraints")  # type: ignore[valid-type]
    mapspace_constraints: _timeloop_constraints("mapspace_constraints")  # type: ignore[valid-type]
    architecture_constraints: _timeloop_constraints("architecture_constraints")  # type: ignore[valid-type]


def _spec_schema() -> dict[str, Any]:
    schema = _draft_07(copy.deepcopy(TypeAdapter(_SpecFile).json_schema(ref_template=REFS)))  # deep copy: it
    # holds the validators' own dicts. WorkloadSpec takes its layers as they come: `parse_workload` checks
    # each one as a problem.
    schema["definitions"]["WorkloadSpec"]["properties"]["layers"]["items"] = {"$ref": REFS.format(model="ProblemSpec")}
    _share(schema, "TimeloopTarget", TIMELOOP_TARGET_SCHEMA)
    _share(schema, "Factors", FACTORS_SCHEMA)
    return schema


def _share(schema: dict[str, Any], name: str, fragment: dict[str, Any]) -> None:
    """Write `fragment`, which custom validators' schemas repeat, once in $defs and refer
    to it wherever a node holds all of it (besides its own title or default)."""
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if all(key in node and node[key] == value for key, value in fragment.items()):
                for key in fragment:
                    del node[key]
                node["$ref"] = REFS.format(model=name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    schema["definitions"][name] = copy.deepcopy(fragment)


def _experiment_schema() -> dict[str, Any]:
    """`mapper run` reads a file with a `baseline` as a comparison, any other as an experiment."""
    refs, top = models_json_schema([(ExperimentSpec, "validation"), (ComparisonSpec, "validation")],
                                   ref_template=REFS)
    return {"title": "mapper experiment", **_draft_07(top), "if": {"required": ["baseline"]},
            "then": refs[(ComparisonSpec, "validation")], "else": refs[(ExperimentSpec, "validation")]}


def _draft_07(schema: dict[str, Any]) -> dict[str, Any]:
    """Pydantic's `$defs` under draft-07's name for them (refs made with REFS)."""
    return {("definitions" if key == "$defs" else key): value for key, value in schema.items()}


def schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of one kind of native file."""
    generated = {"spec": _spec_schema, "experiment": _experiment_schema,
                 "energy-table": EnergyTableSpec.model_json_schema}[kind]()
    return {"$schema": DIALECT, **generated}


def schema_text(kind: Kind) -> str:
    return json.dumps(schema(kind), indent=2) + "\n"


def file_name(kind: Kind) -> str:
    return f"{kind}.json"
