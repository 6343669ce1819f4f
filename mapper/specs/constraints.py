"""Constraint files: the native `constraints:` key and Timeloop's constraint targets,
read into `mapper.constraints.Constraints`.

Native (one top-level key, strict: unknown keys and wrong types are SpecErrors):

    constraints:
      preset: row-stationary        # optional: a named dataflow (mapper/constraints.py)
      min_utilization: 0.5          # optional: fraction of the MACs kept busy
      levels:                       # optional: per storage level, by name
        psum_spad:
          temporal: "C=1 R=1 M<=16" # factor bounds: D=n exact, D<=n, D>=n, D=0 "the rest"
          spatial: "N=1"            # X x Y factor on the fan-out below the level
          spatial_x: "Q<=14"        # X factor; spatial_y: the Y factor
          x_dims: [Q, M]            # only these may be unrolled along X (y_dims: along Y)
          innermost: [C, M]         # the level's innermost loops, outermost first
          outermost: [N]            # its outermost loops
          spatial_order: [M, S]     # order of the fan-out's spatial loops, outermost first
          keep: [Outputs]           # tensors the level must keep
          bypass: [Weights]         # tensors it must not keep

A factor list is a string ("C=1 M<=8", commas allowed), a list of such words, or a
mapping {C: 1, M: "<=8"}. The per-level entries refine the preset (where both speak of
the same dimension, tensor or order, the entry wins).

Timeloop (`constraints`, `mapspace_constraints` or `architecture_constraints`, each
either a list of targets or `{targets: [...]}`; the entries of all of them together):

    - {target: psum_spad, type: temporal, factors: "N=1 C=1 R=1 S=1", permutation: NCPQRSM}
    - {target: inter_PE_spatial, type: spatial, factors: "N=1,P=1", permutation: NPQRSCM, split: 4}
    - {target: shared_glb, type: bypass, keep: [Inputs, Outputs], bypass: [Weights]}
    - {target: psum_spad, type: utilization, min: 0.5}

as Timeloop reads them: `factors` as above (Timeloop's "=0" is the full dimension,
ours all that the other fixed factors leave: the same unless another level fixes a
factor of it); `permutation` lists the level's innermost loops first (single-letter
dimensions, or names separated by spaces or commas), the rest free outside; a spatial
`split` puts the first `split` dimensions of the permutation on X and the others on Y
(when `split` exceeds the listed ones, the unlisted may go either way); `bypass`,
`dataspace` (the v0.4 front end's word), `datatype` and `bypassing` set keep /
bypass; `utilization` (or `parallelism`) sets the minimum utilization. Saying the
same thing twice (one factor, permutation, split or keep flag of one level) is an
error, as in Timeloop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema

from ..architecture import Architecture
from ..constraints import PRESETS, Constraints, Factor, LevelConstraints, preset
from ..problem import Problem
from .errors import File, SpecError, describe, did_you_mean
from .fields import IDENTIFIER_SCHEMA, Identifier, SpecModel, invalid, is_int, is_number, validated
from .timeloop import listed_permutation

TIMELOOP_KEYS = ("constraints", "mapspace_constraints", "architecture_constraints")
_FACTOR_WORD = re.compile(r"(?P<dim>[A-Za-z_]\w*)\s*(?P<op><=|>=|=)\s*(?P<n>\d+)(?![\w])")
_TIMELOOP_WORD = re.compile(r"(?P<dim>[A-Za-z_]+)(?P<n>\d+)(?![\w])")
_SEPARATORS = re.compile(r"[\s,]*")
_FACTOR_FORMS = "factor bounds such as \"C=1 M<=8 P>=2\" (D=n exact, D<=n, D>=n, D=0 the rest)"
_TIMELOOP_TYPES = ("temporal", "spatial", "bypass", "dataspace", "datatype", "bypassing", "utilization", "parallelism")
_TIMELOOP_FIELDS = ("target", "type", "factors", "permutation", "split", "keep", "bypass", "min")


# ---------------------------------------------------------------------------
# Which documents hold constraints


def take_constraints(docs: Sequence[tuple[Path, dict[str, Any]]]
                     ) -> tuple[list[tuple[Path, dict[str, Any]]], list[tuple[Path, str, object]]]:
    """Split the constraint keys off the documents: (documents without them, dropping
    those left empty; [(file, key, value)] in file order)."""
    rest, found = [], []
    for path, doc in docs:
        keys = [k for k in doc if k in TIMELOOP_KEYS]
        found += [(path, k, doc[k]) for k in keys]
        remaining = {k: v for k, v in doc.items() if k not in keys}
        if remaining or not keys:
            rest.append((path, remaining))
    return rest, found


def is_native(key: str, value: object) -> bool:
    """A native `constraints:` is a mapping without Timeloop's `targets` list."""
    return key == "constraints" and isinstance(value, dict) and "targets" not in value


def parse_constraints(found: Sequence[tuple[Path, str, object]], problems: Sequence[Problem],
                      arch: Architecture | None) -> Constraints | None:
    """The constraints of all the files together (None if there are none), checked
    against the problems and the architecture loaded with them, when there are any."""
    native = [(p, v) for p, k, v in found if is_native(k, v)]
    timeloop = [(p, k, v) for p, k, v in found if not is_native(k, v)]
    if len(native) > 1:
        raise SpecError(native[1][0], "constraints", "constraints again (also in " f"{native[0][0]})",
                        "one native constraints key in one file")
    if not found:
        return None
    result = Constraints()
    if timeloop:
        result = parse_timeloop(timeloop, problems, arch)
    if native:
        path, raw = native[0]
        mine = parse_native(raw, path, problems, arch)
        result = mine if not timeloop else _combine(result, mine, path)
    return result


def _combine(timeloop: Constraints, native: Constraints, file: File) -> Constraints:
    if timeloop.min_utilization is not None and native.min_utilization is not None:
        raise SpecError(file, "constraints.min_utilization", "a second minimum utilization",
                        "one, in the Timeloop targets or in the native constraints")
    return timeloop.refined_by(native)


# ---------------------------------------------------------------------------
# Native


def _factor_map(value: object) -> dict[str, Factor]:
    """The pydantic validator of a factor list (module docstring)."""
    try:
        return factor_map(value)
    except ValueError as error:
        raise invalid(value, _FACTOR_FORMS, str(error)) from None


def factor_map(value: object) -> dict[str, Factor]:
    """A factor list as a string, a list of words or a mapping -> {dimension: Factor};
    ValueError saying which part does not parse."""
    if isinstance(value, dict):
        words = []
        for dim, bound in value.items():
            if not (is_int(bound) or isinstance(bound, str)):
                raise ValueError(f"the bound of {dim} is {describe(bound)}")
            words.append(f"{dim}={bound}" if is_int(bound) else f"{dim}{bound}")
        text = " ".join(words)
    elif isinstance(value, list) and all(isinstance(w, str) for w in value):
        text = " ".join(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError("not a string, list or mapping")
    return parse_factor_words(text)


def parse_factor_words(text: str) -> dict[str, Factor]:
    """"C=1 M<=8 M>=2 P=0" -> {C: exact 1, M: 2..8, P: the rest}; ValueError naming
    the word that does not parse or repeats a bound. Timeloop's "C1" means "C=1"."""
    bounds: dict[str, dict[str, int]] = {}
    position = 0
    while True:
        position = _SEPARATORS.match(text, position).end()
        if position == len(text):
            break
        match = _FACTOR_WORD.match(text, position) or _TIMELOOP_WORD.match(text, position)
        if match is None:
            raise ValueError(f"cannot read {text[position:].split()[0]!r}")
        dim, op, number = match.group("dim"), match.groupdict().get("op") or "=", int(match.group("n"))
        entry = bounds.setdefault(dim, {})
        if op in entry or ("=" in entry) or (op == "=" and entry):
            raise ValueError(f"{match.group(0)!r} is a second bound on {dim}")
        if op != "=" and number < 1:
            raise ValueError(f"{match.group(0)!r} bounds a factor below 1")
        entry[op] = number
        position = match.end()
    return {dim: _factor(entry) for dim, entry in bounds.items()}


def _factor(entry: dict[str, int]) -> Factor:
    if "=" in entry:
        return Factor(rest=True) if entry["="] == 0 else Factor(exact=entry["="])
    return Factor(min=entry.get(">=", 1), max=entry.get("<="))


def _fraction(value: object) -> float:
    if not is_number(value) or not 0 < value <= 1:
        raise invalid(value, "a fraction of the MACs above 0 and at most 1, e.g. 0.5")
    return float(value)


def _preset_name(value: object) -> str:
    if value not in PRESETS:
        raise invalid(value, "one of the presets " + ", ".join(PRESETS), did_you_mean(value, PRESETS))
    return str(value)


# JSON Schema of a factor list (`mapper schema`): the words `parse_factor_words` reads.
# Not expressed: a second bound on one dimension (the loader refuses it); stricter than
# the loader on a word split over two list items (["C=", "1"]).
_BOUND = r"(?:=\s*\d+|(?:<=|>=)\s*\d*[1-9]\d*)"
_WORD = rf"(?:[A-Za-z_]\w*\s*{_BOUND}|[A-Za-z_]+\d+)"
_FACTOR_WORDS_SCHEMA = {"type": "string", "pattern": rf"^[\s,]*(?:{_WORD}(?:[\s,]+{_WORD})*)?[\s,]*$"}
FACTORS_SCHEMA: dict[str, Any] = {"anyOf": [
    _FACTOR_WORDS_SCHEMA,
    {"type": "array", "items": _FACTOR_WORDS_SCHEMA},
    {"type": "object", "propertyNames": IDENTIFIER_SCHEMA, "additionalProperties": {"anyOf": [
        {"type": "integer", "minimum": 0}, {"type": "string", "pattern": rf"^\s*{_BOUND}$|^\d+$"}]}},
], "description": _FACTOR_FORMS + ', or [words], or {C: 1, M: "<=8"}'}

Factors = Annotated[dict[str, Factor], PlainValidator(_factor_map), WithJsonSchema(FACTORS_SCHEMA)]


class LevelConstraintsSpec(SpecModel):
    temporal: Factors = {}
    spatial: Factors = {}
    spatial_x: Factors = {}
    spatial_y: Factors = {}
    x_dims: list[Identifier] | None = None
    y_dims: list[Identifier] | None = None
    innermost: list[Identifier] = []
    outermost: list[Identifier] = []
    spatial_order: list[Identifier] = []
    keep: list[Identifier] = []
    bypass: list[Identifier] = []


class ConstraintsSpec(SpecModel):
    preset: Annotated[str, PlainValidator(_preset_name), WithJsonSchema({"enum": list(PRESETS)})] | None = None
    min_utilization: Annotated[float, PlainValidator(_fraction), WithJsonSchema(
        {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "used MACs / all MACs"})] | None = None
    levels: dict[str, LevelConstraintsSpec] = {}


def parse_native(raw: object, file: File, problems: Sequence[Problem] = (),
                 arch: Architecture | None = None, path: str = "constraints") -> Constraints:
    spec = validated(ConstraintsSpec.model_validate, raw, file, path)
    levels = {}
    for name, level in spec.levels.items():
        level_path = f"{path}.levels.{name}"
        for key in ("x_dims", "y_dims", "innermost", "outermost", "spatial_order", "keep", "bypass"):
            _no_repeats(getattr(level, key) or [], file, f"{level_path}.{key}")
        _disjoint(level.keep, level.bypass, "keep", "a tensor is kept or bypassed, not both", file,
                  f"{level_path}.bypass")
        _disjoint(level.innermost, level.outermost, "innermost", "a loop is among the innermost or the "
                  "outermost, not both", file, f"{level_path}.outermost")
        levels[name] = LevelConstraints(
            temporal=level.temporal, spatial=level.spatial, spatial_x=level.spatial_x, spatial_y=level.spatial_y,
            x_dims=None if level.x_dims is None else frozenset(level.x_dims),
            y_dims=None if level.y_dims is None else frozenset(level.y_dims),
            innermost=tuple(level.innermost), outermost=tuple(level.outermost),
            spatial_order=tuple(level.spatial_order), keep=frozenset(level.keep), bypass=frozenset(level.bypass))
    constraints = Constraints(levels, spec.min_utilization, spec.preset)
    check_against(constraints, file, problems, arch, path)
    return constraints


def _no_repeats(names: list[str], file: File, path: str) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise SpecError(file, f"{path}[{i}]", f"{name!r} a second time", "each name once")


def _disjoint(first: list[str], second: list[str], first_key: str, rule: str, file: File, path: str) -> None:
    """`second` (at `path`) shares no name with `first` (the level's `first_key`)."""
    both = [n for n in second if n in first]
    if both:
        raise SpecError(file, path, f"{', '.join(both)}, also in {first_key}", rule)


def check_against(constraints: Constraints, file: File, problems: Sequence[Problem],
                  arch: Architecture | None, path: str = "constraints") -> None:
    """Every level, dimension and tensor named must exist (in at least one of the
    problems, for a workload), and the preset must apply to every problem."""
    if arch is not None:
        names = [lv.name for lv in arch.levels]
        for name in constraints.levels:
            if name not in names:
                raise SpecError(file, f"{path}.levels.{name}", f"level {name!r}", f"a level of architecture "
                                f"{arch.name!r}: " + ", ".join(names), did_you_mean(name, names))
    if not problems:
        return
    dims = list(dict.fromkeys(d for p in problems for d in p.dims))
    tensors = list(dict.fromkeys(t.name for p in problems for t in p.tensors))
    for name, lc in constraints.levels.items():
        level_path = f"{path}.levels.{name}"
        for key in ("temporal", "spatial", "spatial_x", "spatial_y", "x_dims", "y_dims", "innermost", "outermost",
                    "spatial_order"):
            for dim in getattr(lc, key) or ():
                if dim not in dims:
                    raise SpecError(file, f"{level_path}.{key}", f"dimension {dim!r}", "a dimension of the "
                                    "problem: " + ", ".join(dims), did_you_mean(dim, dims))
        for key in ("keep", "bypass"):
            for tensor in sorted(getattr(lc, key)):
                if tensor not in tensors:
                    raise SpecError(file, f"{level_path}.{key}", f"tensor {tensor!r}", "a tensor of the problem: "
                                    + ", ".join(tensors), did_you_mean(tensor, tensors))
    if constraints.preset is not None and arch is not None:
        for problem in problems:
            try:
                preset(constraints.preset, problem, arch, constraints)
            except ValueError as error:
                raise SpecError(file, f"{path}.preset", repr(constraints.preset), "a dataflow this problem and "
                                f"architecture allow ({error})") from None


# ---------------------------------------------------------------------------
# Timeloop


def _when_type(types: Sequence[str], then: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema: `then` holds for a target of one of `types` (the others ignore those keys)."""
    return {"if": {"properties": {"type": {"enum": list(types)}}, "required": ["type"]}, "then": then}


_NAMES_SCHEMA = {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}
TIMELOOP_TARGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "a Timeloop constraint target: {target, type, factors, permutation, split, keep, bypass, min}",
    "properties": {"target": {"type": "string", "description": "a storage level"},
                   "name": {"description": "the storage level, when target is absent"},
                   "type": {"enum": list(_TIMELOOP_TYPES)},
                   # each of these is read (and checked below) for some types only, ignored for the others
                   "factors": {"description": "temporal and spatial targets: factor bounds"},
                   "permutation": {"description": "temporal and spatial targets: the loop order"},
                   "split": {"description": "spatial targets: how many dimensions go on X"},
                   "keep": {"description": "bypass targets: tensors kept"},
                   "bypass": {"description": "bypass targets: tensors bypassed"},
                   "min": {"description": "utilization targets: the fraction of MACs kept busy"}},
    "additionalProperties": False,
    "required": ["type"],
    "anyOf": [{"required": ["target"]}, {"required": ["name"], "properties": {"name": {"type": "string"}}}],
    "allOf": [
        _when_type(("temporal", "spatial"), {"properties": {
            "factors": {"anyOf": [FACTORS_SCHEMA, {"type": "null"}]},
            "permutation": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                                           "uniqueItems": True}, {"type": "null"}],
                            "description": "dimensions, innermost first: NCPQRSM, or names separated by spaces"},
            "split": {"type": "integer", "minimum": 0, "description": "how many dimensions go on X"}}}),
        _when_type(("temporal",), {"not": {"required": ["split"]}}),
        _when_type(("bypass", "dataspace", "datatype", "bypassing"),
                   {"properties": {"keep": _NAMES_SCHEMA, "bypass": _NAMES_SCHEMA}}),
        _when_type(("utilization", "parallelism"), {"required": ["min"], "properties": {
            "min": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}}),
    ],
}
_TARGETS_SCHEMA = {"type": "array", "items": TIMELOOP_TARGET_SCHEMA}


def timeloop_constraints_schema(key: str) -> dict[str, Any]:
    """JSON Schema of one of TIMELOOP_KEYS: a list of targets, {targets: [...]}, or null.
    Under `constraints`, a mapping without targets is the native form (`is_native`)."""
    wrapped = {"type": "object", "additionalProperties": False,
               "properties": {"targets": {"anyOf": [_TARGETS_SCHEMA, {"type": "null"}]},
                              "version": {"description": "ignored"}}}
    if key == "constraints":
        wrapped["required"] = ["targets"]
    return {"description": "Timeloop's constraint targets (mapper/specs/constraints.py)",
            "anyOf": [_TARGETS_SCHEMA, wrapped, {"type": "null"}]}


def parse_timeloop(found: Sequence[tuple[Path, str, object]], problems: Sequence[Problem] = (),
                   arch: Architecture | None = None) -> Constraints:
    """Timeloop's constraint targets of all the files (module docstring)."""
    builder = _TimeloopBuilder(problems)
    for file, key, value in found:
        targets = value.get("targets") if isinstance(value, dict) else value
        if isinstance(value, dict):
            extra = [k for k in value if k not in ("targets", "version")]
            if extra:
                raise SpecError(file, f"{key}.{extra[0]}", "an unknown key", "targets (and version)",
                                did_you_mean(extra[0], ["targets"]))
        if targets is None:
            continue
        if not isinstance(targets, list):
            raise SpecError(file, f"{key}.targets", describe(targets), "a list of constraint targets")
        for i, entry in enumerate(targets):
            builder.add(entry, file, f"{key}.targets[{i}]" if isinstance(value, dict) else f"{key}[{i}]")
    constraints = builder.build()
    if arch is not None:
        names = [lv.name for lv in arch.levels]
        for name, (file, path) in builder.where.items():
            if name not in names:
                raise SpecError(file, f"{path}.target", repr(name), f"a storage level of architecture "
                                f"{arch.name!r}: " + ", ".join(names), did_you_mean(name, names))
    return constraints


class _TimeloopBuilder:
    """Accumulates targets, refusing to hear the same thing twice."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.dims = list(dict.fromkeys(d for p in problems for d in p.dims))
        self.tensors = list(dict.fromkeys(t.name for p in problems for t in p.tensors))
        self.levels: dict[str, dict[str, Any]] = {}
        self.where: dict[str, tuple[File, str]] = {}
        self.min_utilization: float | None = None

    def add(self, entry: object, file: File, path: str) -> None:
        if not isinstance(entry, dict):
            raise SpecError(file, path, describe(entry), "a mapping with target, type and the constraint")
        for key in entry:
            if key not in _TIMELOOP_FIELDS and key != "name":
                raise SpecError(file, f"{path}.{key}", "an unknown key", ", ".join(_TIMELOOP_FIELDS),
                                did_you_mean(key, _TIMELOOP_FIELDS))
        target = entry.get("target", entry.get("name"))
        if not isinstance(target, str):
            raise SpecError(file, f"{path}.target", describe(target), "the name of a storage level")
        kind = entry.get("type")
        if kind not in _TIMELOOP_TYPES:
            raise SpecError(file, f"{path}.type", describe(kind), ", ".join(_TIMELOOP_TYPES),
                            did_you_mean(kind, _TIMELOOP_TYPES))
        self.where.setdefault(target, (file, path))
        level = self.levels.setdefault(target, {})
        if kind in ("temporal", "spatial"):
            self._loops(level, kind, entry, file, path)
        elif kind in ("bypass", "dataspace", "datatype", "bypassing"):
            self._keeps(level, entry, file, path)
        else:
            self._utilization(entry, file, path)

    def _loops(self, level: dict[str, Any], kind: str, entry: dict, file: File, path: str) -> None:
        factors = self._factors(entry.get("factors"), file, f"{path}.factors")
        table = level.setdefault(kind, {})
        for dim, factor in factors.items():
            if dim in table:
                raise SpecError(file, f"{path}.factors", f"a second {kind} factor of {dim} for this level",
                                "each factor once per level (Timeloop: re-specification)")
            table[dim] = factor
        order = self._permutation(entry.get("permutation"), file, f"{path}.permutation")
        if order:
            if f"{kind}_order" in level:
                raise SpecError(file, f"{path}.permutation", f"a second {kind} permutation for this level",
                                "one permutation per level and type")
            level[f"{kind}_order"] = order
        if "split" in entry:
            split = entry["split"]
            if kind != "spatial" or not is_int(split) or split < 0:
                raise SpecError(file, f"{path}.split", describe(split),
                                "an integer >= 0, on a spatial target: how many dimensions go on X")
            if "split" in level:
                raise SpecError(file, f"{path}.split", "a second split for this level", "one split per level")
            level["split"] = split

    def _factors(self, raw: object, file: File, path: str) -> dict[str, Factor]:
        if raw is None:
            return {}
        try:
            factors = factor_map(raw)
        except ValueError as error:
            raise SpecError(file, path, describe(raw), _FACTOR_FORMS, str(error)) from None
        for dim in factors:
            if self.dims and dim not in self.dims:
                raise SpecError(file, path, f"dimension {dim!r}", "a dimension of the problem: "
                                + ", ".join(self.dims), did_you_mean(dim, self.dims))
        return factors

    def _permutation(self, raw: object, file: File, path: str) -> list[str]:
        return [] if raw is None else listed_permutation(raw, self.dims, file, path)

    def _keeps(self, level: dict[str, Any], entry: dict, file: File, path: str) -> None:
        for key in ("keep", "bypass"):
            names = entry.get(key) or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise SpecError(file, f"{path}.{key}", describe(names), "a list of tensor names")
            for name in names:
                if self.tensors and name not in self.tensors:
                    raise SpecError(file, f"{path}.{key}", f"tensor {name!r}", "a tensor of the problem: "
                                    + ", ".join(self.tensors), did_you_mean(name, self.tensors))
                if name in level.get("keep", set()) | level.get("bypass", set()):
                    raise SpecError(file, f"{path}.{key}", f"{name} a second time for this level",
                                    "one keep or bypass flag per tensor and level")
                level.setdefault(key, set()).add(name)

    def _utilization(self, entry: dict, file: File, path: str) -> None:
        value = entry.get("min")
        if not is_number(value) or not 0 < value <= 1:
            raise SpecError(file, f"{path}.min", describe(value), "a fraction of the MACs above 0 and at most 1")
        if self.min_utilization is not None:
            raise SpecError(file, path, "a second utilization target", "one minimum utilization")
        self.min_utilization = float(value)

    def build(self) -> Constraints:
        return Constraints({name: self._level(spec) for name, spec in self.levels.items()}, self.min_utilization)

    def _level(self, spec: dict[str, Any]) -> LevelConstraints:
        level = LevelConstraints(temporal=spec.get("temporal", {}), spatial=spec.get("spatial", {}),
                                 innermost=tuple(reversed(spec.get("temporal_order", []))),
                                 keep=frozenset(spec.get("keep", ())), bypass=frozenset(spec.get("bypass", ())))
        order = spec.get("spatial_order", [])
        if order:
            full = order + [d for d in self.dims if d not in order]
            level = replace(level, spatial_order=tuple(reversed(full)))
        if "split" in spec:
            level = replace(level, **self._split(order, spec["split"]))
        return level

    def _split(self, order: list[str], split: int) -> dict[str, frozenset[str] | None]:
        """Timeloop's X/Y split of the spatial permutation (module docstring)."""
        everything = frozenset(self.dims)
        if split >= len(everything):
            return {"x_dims": None, "y_dims": frozenset()}
        if split <= len(order):
            return {"x_dims": frozenset(order[:split]), "y_dims": everything - frozenset(order[:split])}
        return {"x_dims": None, "y_dims": everything - frozenset(order)}
