"""The mapping of a native spec: per level, its temporal loops, the spatial loops of
its fan-out, and the tensors it keeps (the format: the package's docstring)."""

from __future__ import annotations

import re
from collections.abc import Callable
from math import prod
from typing import Annotated, Any

from pydantic import Field, PlainValidator, TypeAdapter, WithJsonSchema

from ...architecture import Architecture, StorageLevel
from ...mapping import LevelMapping, Loop, Mapping
from ...problem import Problem
from ..coverage import check_covers
from ..errors import File, SpecError, did_you_mean
from ..fields import (IDENTIFIER, IDENTIFIER_SCHEMA, POSITIVE_DIGITS, POSITIVE_INT_SCHEMA, Identifier, SpecModel, Text,
                      invalid, is_int, validated)


_TEMPORAL_WORD = re.compile(r"([A-Za-z_]\w*?)=?(\d+)")
_SPATIAL_WORD = re.compile(r"([A-Za-z_]\w*?)=?(\d+)([XY])")


def _loops(spatial: bool) -> Callable[[object], tuple[tuple[Any, ...], ...]]:
    """Temporal ("P8 Q2" or [[P, 8], ...]) or spatial ("Q14X" or [[Q, 14, X], ...]) loops."""
    word = _SPATIAL_WORD if spatial else _TEMPORAL_WORD
    example = "[[Q, 14, X], [C, 3, Y]] or \"Q14X C3Y\"" if spatial else "[[P, 8], [Q, 2]] or \"P8 Q2\""
    allowed = f"loops like {example}, with positive factors"

    def validate(value: object) -> tuple[tuple[Any, ...], ...]:
        if isinstance(value, str):
            written: list[Any] = value.split()
            items = [_loop_word(w, word) for w in written]
        elif isinstance(value, list):
            written = value
            items = [tuple(i) if isinstance(i, list) else i for i in value]
        else:
            raise invalid(value, allowed)
        for index, item in enumerate(items):
            if not _is_loop(item, spatial):
                raise invalid(written[index], allowed, subpath=f"[{index}]")
        return tuple(items)

    return validate


def _loop_word(text: str, word: re.Pattern[str]) -> tuple[Any, ...] | str:
    """"P8" -> ("P", 8), "Q14X" -> ("Q", 14, "X"); a word that does not parse stays a
    string, which `_is_loop` rejects."""
    match = word.fullmatch(text)
    if match is None:
        return text
    dim, factor, *axis = match.groups()
    return (dim, int(factor), *axis)


def _is_loop(item: object, spatial: bool) -> bool:
    return (
        isinstance(item, tuple)
        and len(item) == (3 if spatial else 2)
        and isinstance(item[0], str) and IDENTIFIER.fullmatch(item[0]) is not None
        and is_int(item[1]) and item[1] > 0
        and (not spatial or item[2] in ("X", "Y"))
    )


def _loops_schema(spatial: bool) -> WithJsonSchema:
    axis = "[XY]" if spatial else ""
    word = rf"[A-Za-z_]\w*?=?{POSITIVE_DIGITS}{axis}"
    loop = [IDENTIFIER_SCHEMA, POSITIVE_INT_SCHEMA] + ([{"enum": ["X", "Y"]}] if spatial else [])
    return WithJsonSchema({"anyOf": [
        {"type": "string", "pattern": rf"^\s*(?:{word}(?:\s+{word})*)?\s*$"},
        {"type": "array", "items": {"type": "array", "items": loop, "minItems": len(loop), "maxItems": len(loop)}},
    ], "description": ('spatial loops of the fan-out below the level: "Q14X C3Y" or [[Q, 14, X], [C, 3, Y]]'
                       if spatial else 'loops, outermost first: "P8 Q2 M4" (or "P=8 ...") or [[P, 8], [Q, 2]]')})


class LevelMappingSpec(SpecModel):
    """The loops and kept tensors of one architecture level."""

    level: Text
    temporal: Annotated[tuple[tuple[str, int], ...], PlainValidator(_loops(spatial=False)),
                        _loops_schema(spatial=False)] = ()
    spatial: Annotated[tuple[tuple[str, int, str], ...], PlainValidator(_loops(spatial=True)),
                       _loops_schema(spatial=True)] = ()
    keep: list[Identifier] | None = Field(None, description="only these tensors")
    bypass: list[Identifier] | None = Field(None, description="all the level may keep but these")


_MAPPING_LIST = TypeAdapter(Annotated[list[LevelMappingSpec], Field(min_length=1)])


def parse_mapping(raw: object, problem: Problem, architecture: Architecture,
                  file: File = None, path: str = "mapping") -> Mapping:
    """A complete mapping of `problem` onto `architecture`, with one LevelMapping per
    architecture level (levels the spec leaves out get no loops and default keeps)."""
    entries = validated(_MAPPING_LIST.validate_python, raw, file, path)
    names = [level.name for level in architecture.levels]
    given: dict[int, LevelMapping] = {}
    for j, entry in enumerate(entries):
        entry_path = f"{path}[{j}]"
        if entry.level not in names:
            raise SpecError(file, f"{entry_path}.level", repr(entry.level), "a level of architecture "
                            f"{architecture.name!r}: " + ", ".join(names), did_you_mean(entry.level, names))
        index = names.index(entry.level)
        if given and index <= max(given):
            raise SpecError(file, f"{entry_path}.level", f"{entry.level!r} after {names[max(given)]!r}",
                            "levels outermost first, each once: " + ", ".join(names))
        given[index] = _level_mapping(entry, index, problem, architecture, file, entry_path)
    levels = tuple(given.get(i) or LevelMapping(keep=_allowed_tensors(level, problem))
                   for i, level in enumerate(architecture.levels))
    mapping = Mapping(levels)
    _check_outermost_keeps(mapping, problem, architecture, file, f"{path}[0]" if 0 in given else path)
    check_covers(mapping, problem, architecture, file, path)
    return mapping


def _check_outermost_keeps(mapping: Mapping, problem: Problem, architecture: Architecture, file: File,
                           path: str) -> None:
    """The outermost level keeps every tensor, but one that a level below holds whole
    (no loop above that level over the tensor's dimensions: a fused group's
    intermediate, mapper/fusion.py), which is then never filled from outside."""
    for tensor in problem.tensors:
        if tensor.name in mapping.levels[0].keep:
            continue
        keeper = next((i for i, lm in enumerate(mapping.levels) if tensor.name in lm.keep), None)
        moving = sorted(mapping.dims_above(keeper) & tensor.dims) if keeper is not None else []
        if keeper is None or moving:
            held = ("no level keeps it" if keeper is None else
                    f"{architecture.levels[keeper].name} keeps it, but loops above it run over {', '.join(moving)}")
            raise SpecError(file, path, f"the outermost level bypassing {tensor.name} ({held})",
                            "the outermost level keeps every tensor: it is where they all come from, but for one "
                            "that a level below holds whole (no loop above that level over its dimensions)")


def _allowed_tensors(level: StorageLevel, problem: Problem) -> frozenset[str]:
    names = frozenset(t.name for t in problem.tensors)
    return names if level.keeps is None else names & level.keeps


def _level_mapping(entry: LevelMappingSpec, index: int, problem: Problem, architecture: Architecture,
                   file: File, path: str) -> LevelMapping:
    """Check one entry's loops against the problem and the fan-out, and settle its keeps."""
    level = architecture.levels[index]
    for kind, loops in (("temporal", entry.temporal), ("spatial", entry.spatial)):
        for i, (dim, *_) in enumerate(loops):
            if dim not in problem.bounds:
                raise SpecError(file, f"{path}.{kind}[{i}]", f"dimension {dim!r}", f"a dimension of problem "
                                f"{problem.name!r}: " + ", ".join(problem.dims), did_you_mean(dim, problem.dims))
            # A dimension may be unrolled along X and along Y of one fan-out, once on each.
            if (dim, *loops[i][2:]) in ((loop[0], *loop[2:]) for loop in loops[:i]):
                raise SpecError(file, f"{path}.{kind}[{i}]", f"dimension {dim} a second time",
                                f"each dimension once in a level's {kind} loops (once per axis for spatial ones)",
                                "multiply the factors into one loop")
    for axis, limit in zip("XY", architecture.fanout(index), strict=True):
        used = prod(factor for _, factor, a in entry.spatial if a == axis)
        if used > limit:
            raise SpecError(file, f"{path}.spatial", f"spatial {axis} factors at {level.name} that multiply to "
                            f"{used}", f"at most {limit}, the fan-out {architecture.fanout_name(index)} along {axis}")
    return LevelMapping(
        temporal=tuple(Loop(dim, factor) for dim, factor in entry.temporal),
        spatial=tuple(Loop(dim, factor, axis) for dim, factor, axis in entry.spatial),
        keep=_keep(entry, level, problem, file, path),
    )


def _keep(entry: LevelMappingSpec, level: StorageLevel, problem: Problem, file: File, path: str) -> frozenset[str]:
    """keep: exactly these; bypass: all allowed but these; both: all allowed but the bypassed."""
    names = [t.name for t in problem.tensors]
    allowed = _allowed_tensors(level, problem)
    for kind, listed in (("keep", entry.keep or []), ("bypass", entry.bypass or [])):
        for i, name in enumerate(listed):
            if name not in names:
                raise SpecError(file, f"{path}.{kind}[{i}]", f"tensor {name!r}", f"a tensor of problem "
                                f"{problem.name!r}: " + ", ".join(names), did_you_mean(name, names))
            if kind == "keep" and name not in allowed:
                raise SpecError(file, f"{path}.keep[{i}]", repr(name), f"tensors the architecture lets "
                                f"{level.name} keep: " + (", ".join(sorted(allowed)) or "none"))
            if kind == "bypass" and name in (entry.keep or []):
                raise SpecError(file, f"{path}.bypass[{i}]", f"{name!r}, also listed in keep",
                                "a tensor in keep or in bypass, not both")
    keep = (frozenset(entry.keep) if entry.bypass is None and entry.keep is not None
            else allowed - frozenset(entry.bypass or ()))
    return keep
