"""JSON as every output file writes it: strict, so any JSON parser reads it.

Python's json writes an infinite or undefined float as bare `Infinity` or `NaN`,
which is not JSON; a result holding one means an input overflowed the model (the spec
limits in mapper/specs/limits.py are there to prevent it), and is refused with the
place of the first such number rather than written."""

from __future__ import annotations

import json
from math import isfinite
from typing import Any

from .specs.errors import SpecError


def json_text(data: Any, indent: int | None = 1) -> str:
    """`data` as JSON text; a SpecError naming the first non-finite number, if any."""
    try:
        return json.dumps(data, indent=indent, allow_nan=False)
    except ValueError:
        where, value = _first_non_finite(data, "") or ("", float("nan"))
        raise SpecError("the results", where.lstrip("."), f"{value}", "finite numbers (JSON has no inf or nan): "
                        "energies of at most 1e12 per access, layers of at most 2**62 MACs") from None


def _first_non_finite(data: Any, where: str) -> tuple[str, float] | None:
    """(key path, value) of the first inf or nan in `data`, depth first."""
    if isinstance(data, float):
        return None if isfinite(data) else (where, data)
    if isinstance(data, dict):
        items = [(f"{where}.{key}", value) for key, value in data.items()]
    elif isinstance(data, (list, tuple)):
        items = [(f"{where}[{i}]", value) for i, value in enumerate(data)]
    else:
        return None
    return next((found for path, value in items if (found := _first_non_finite(value, path))), None)
