"""Plain typed data (frozen dataclasses of numbers, strings, tuples, sets and maps) to
JSON and back, guided by the type hints.

A job shared between machines keeps its layers, architectures, constraints and
settings in the study storage (mapper/worker.py), so a worker needs nothing but the
storage URL and the job's name. Pickle would run whatever code the storage's contents
name; this reads only the types the hints allow. Numbers keep the type they had
(an int bandwidth stays an int), so that a decoded problem names the same study as
the original.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def to_json(value: Any) -> Any:
    """JSON-able data: dataclasses as objects of their fields, sets sorted."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(to_json(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def from_json(kind: type[T], data: Any) -> T:
    """The value of type `kind` that `to_json` made `data` from. Raises ValueError
    when `data` does not have the shape the type hints call for."""
    return _decode(kind, data, "")


def _decode(hint: Any, data: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, data, where)
    if origin in (typing.Union, types.UnionType):
        return _decode_union(args, data, where)
    if origin is typing.Literal:
        if data not in args:
            raise ValueError(f"{where or 'value'}: found {data!r}; allowed: {', '.join(map(repr, args))}")
        return data
    if origin is tuple:
        items = _expect(list, data, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(items))
        if len(items) != len(args):
            raise ValueError(f"{where}: found {len(items)} items; allowed: {len(args)}")
        return tuple(_decode(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, items)))
    if origin in (frozenset, set):
        return origin(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(_expect(list, data, where)))
    if origin in (dict, Mapping):
        return {k: _decode(args[1], v, f"{where}.{k}") for k, v in _expect(dict, data, where).items()}
    if hint is Any:
        return data
    if hint is float:
        # JSON writes 2.0 as 2.0 and 2 as 2: an int stays an int, as it was.
        return data if isinstance(data, (int, float)) and not isinstance(data, bool) else _mismatch(hint, data, where)
    if hint in (bool, int, str, type(None)):
        ok = isinstance(data, hint) and not (hint is int and isinstance(data, bool))
        return data if ok else _mismatch(hint, data, where)
    raise TypeError(f"{where}: no JSON form for the type {hint!r}")


def _decode_dataclass(kind: type, data: Any, where: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(kind) if f.init}
    items = _expect(dict, data, where)
    unknown = set(items) - set(fields)
    if unknown:
        raise ValueError(f"{where or kind.__name__}: unknown fields {sorted(unknown)}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(kind)
    return kind(**{name: _decode(hints[name], value, f"{where}.{name}".lstrip("."))
                   for name, value in items.items()})


def _decode_union(args: tuple[Any, ...], data: Any, where: str) -> Any:
    if data is None and type(None) in args:
        return None
    errors = []
    for arm in (a for a in args if a is not type(None)):
        try:
            return _decode(arm, data, where)
        except ValueError as error:
            errors.append(str(error))
    raise ValueError("; ".join(errors))


def _expect(kind: type, data: Any, where: str) -> Any:
    return data if isinstance(data, kind) else _mismatch(kind, data, where)


def _mismatch(kind: Any, data: Any, where: str) -> Any:
    name = getattr(kind, "__name__", str(kind))
    raise ValueError(f"{where or 'value'}: found {type(data).__name__} {data!r:.60}; allowed: {name}")
