"""The checked fields every spec is made of, and how their mistakes are reported.

Specs of every kind (the native format in mapper/specs/native, constraints,
experiments, hardware sweeps, the dataflow comparison) are strict pydantic models
(`SpecModel`) whose scalar fields each have a validator of their own here. Each
validator owns its "allowed" wording, so that a mistake reads the same wherever it is
made, and `validated` turns pydantic's first error into a one-line SpecError with the
file and the key path, e.g. `arch.yaml: architecture.levels[2].size: found -4;
allowed: ...`. Each field states its JSON Schema too (`mapper schema`): a
PlainValidator hides its type from pydantic."""

from __future__ import annotations

import re
from collections.abc import Callable
from math import isfinite
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from .errors import File, SpecError, describe, did_you_mean, join_key_path
from .limits import MAX_WORD_BITS


T = TypeVar("T")
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
NUMBER = r"\d+(?:\.\d*)?"  # a coefficient of a sum: 4, 0.5
POSITIVE_DIGITS = r"\d*[1-9]\d*"  # a positive whole number
_TERM = re.compile(
    rf"(?P<c1>{NUMBER})\s*\*\s*(?P<n1>[A-Za-z_]\w*)"
    rf"|(?P<n2>[A-Za-z_]\w*)\s*\*\s*(?P<c2>{NUMBER})"
    r"|(?P<n3>[A-Za-z_]\w*)"
)


def invalid(found: object, allowed: str, suggestion: str | None = None, subpath: str = "") -> PydanticCustomError:
    """A validation error for a bad value, which `validated` turns into a SpecError."""
    return described_invalid(describe(found), allowed, suggestion, subpath)


def described_invalid(found: str, allowed: str, suggestion: str | None = None,
                      subpath: str = "") -> PydanticCustomError:
    """`invalid`, with what was found already put in words."""
    return PydanticCustomError("spec", "found {found}; allowed: {allowed}", {
        "found": found, "allowed": allowed, "suggestion": suggestion, "subpath": subpath,
    })


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float: YAML's .inf and .nan are never meaningful in a spec."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and isfinite(value)


def _positive_int(value: object) -> int:
    if not is_int(value) or value <= 0:
        raise invalid(value, "a positive integer")
    return value


def _word_bits(value: object) -> int:
    if not is_int(value) or not 0 < value <= MAX_WORD_BITS:
        raise invalid(value, f"a number of bits from 1 to {MAX_WORD_BITS} (mapper/specs/limits.py)")
    return value


def _positive_number(value: object) -> float:
    if not is_number(value) or value <= 0:
        raise invalid(value, "a number > 0")
    return float(value)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid(value, "a non-empty string")
    return value


def _identifier(value: object) -> str:
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise invalid(value, "a name of letters, digits and _ that does not start with a digit")
    return value


def pair(minimum: int, lone: Callable[[int], list[int]], description: str) -> Any:
    """A field of two whole numbers at least `minimum`, one per axis (height and width,
    X and Y), written as a list of two or as one int that `lone` spreads over both."""
    kind = "a positive integer" if minimum > 0 else "an integer >= 0"
    allowed = f"{kind}, or a list of two such, one per axis"

    def validate(value: object) -> tuple[int, int]:
        pair = lone(value) if is_int(value) else value
        if not isinstance(pair, list) or len(pair) != 2 or not all(is_int(v) and v >= minimum for v in pair):
            raise invalid(value, allowed)
        return pair[0], pair[1]

    number = {"type": "integer", "minimum": minimum}
    return Annotated[tuple[int, int], PlainValidator(validate), WithJsonSchema({"anyOf": [
        number, {"type": "array", "items": number, "minItems": 2, "maxItems": 2}], "description": description})]


def parse_sum(text: str) -> list[tuple[str | None, str]] | None:
    """Split "2*P + R" into [("2", "P"), (None, "R")]; None if it is not such a sum."""
    terms = []
    for part in text.split("+"):
        match = _TERM.fullmatch(part.strip())
        if match is None:
            return None
        groups = match.groupdict()
        terms.append((groups["c1"] or groups["c2"], groups["n1"] or groups["n2"] or groups["n3"]))
    return terms


# What each validator above accepts, as JSON Schema draft-07: the patterns are the
# regular expressions the validators parse with.
POSITIVE_INT_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1}
TEXT_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"\S"}
IDENTIFIER_SCHEMA: dict[str, Any] = {"type": "string", "pattern": f"^{IDENTIFIER.pattern}$"}


def sum_pattern(coefficient: str) -> str:
    """A whole string of `parse_sum` terms whose coefficients match `coefficient`."""
    name = IDENTIFIER.pattern
    term = rf"(?:{coefficient}\s*\*\s*{name}|{name}\s*\*\s*{coefficient}|{name})"
    return rf"^\s*{term}\s*(?:\+\s*{term}\s*)*$"


PositiveInt = Annotated[int, PlainValidator(_positive_int), WithJsonSchema(POSITIVE_INT_SCHEMA)]
WordBits = Annotated[int, PlainValidator(_word_bits), WithJsonSchema(
    {"type": "integer", "minimum": 1, "maximum": MAX_WORD_BITS})]
PositiveNumber = Annotated[float, PlainValidator(_positive_number),
                           WithJsonSchema({"type": "number", "exclusiveMinimum": 0})]
Text = Annotated[str, PlainValidator(_text), WithJsonSchema(TEXT_SCHEMA)]
Identifier = Annotated[str, PlainValidator(_identifier), WithJsonSchema(IDENTIFIER_SCHEMA)]


class SpecModel(BaseModel):
    """Strict: no type coercion, and an unknown key is an error with a suggestion."""

    # `_known_keys` turns away unknown keys first, with its suggestion; "forbid" says so
    # in the JSON schema (additionalProperties: false).
    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: object) -> object:
        keys = list(cls.model_fields)
        if not isinstance(data, dict):
            raise invalid(data, "a mapping with keys " + ", ".join(keys))
        for key in data:
            if key not in cls.model_fields:
                raise described_invalid("an unknown key", "the keys " + ", ".join(keys),
                                        did_you_mean(key, keys), subpath=f".{key}")
        return data


# JSON Schema: keys other than names (which pydantic gives as patternProperties) are refused.
NAMED_ONLY: dict[str, Any] = {"additionalProperties": False}


# The built-in checks still in play: every scalar has its own validator above.
_BUILTIN_ALLOWED = {"bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping",
                    "string_type": "a string"}


def validated(validate: Callable[[object], T], raw: object, file: File, path: str) -> T:
    """Run a pydantic validator, reporting its first error as a SpecError."""
    try:
        return validate(raw)
    except ValidationError as error:
        raise _spec_error(error, file, path) from None


def _spec_error(error: ValidationError, file: File, path: str) -> SpecError:
    first = error.errors()[0]
    key_path = join_key_path(path, first["loc"])
    ctx = first.get("ctx") or {}
    if first["type"] == "spec":
        found, allowed, suggestion = ctx["found"], ctx["allowed"], ctx["suggestion"]
        key_path += ctx["subpath"]
    elif first["type"] == "missing":
        found, allowed, suggestion = "nothing: the key is missing", "a value (the key is required)", None
    elif first["type"] == "too_short":
        kind = "mapping" if isinstance(first["input"], dict) else "list"
        least, count = ctx.get("min_length", 1), len(first["input"])
        found = f"an empty {kind}" if not count else f"a {kind} of {count} item{'s' * (count > 1)}"
        allowed = f"a non-empty {kind}" if least <= 1 else f"a {kind} of at least {least} items"
        suggestion = None
    else:
        found = describe(first["input"])
        allowed, suggestion = _BUILTIN_ALLOWED.get(first["type"], first["msg"]), None
    more = error.error_count() - 1
    if more:
        suggestion = "; ".join(filter(None, [suggestion, f"({more} more error{'s' * (more > 1)} here after this one)"]))
    return SpecError(file, key_path, found, allowed, suggestion)
