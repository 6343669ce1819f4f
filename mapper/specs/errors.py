"""The one exception for mistakes in user-written specs.

A user who mistypes a spec should see, in one line, where the mistake is (file and key
path, or line and column for YAML syntax), what was there, what would have been
accepted and, when we can guess it, the fix. The CLI prints `str(error)` and exits
with status 2; it never shows a traceback for a `SpecError`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

File = str | Path | None  # where a spec came from; None: not from a file (a command-line option, an API call)

_ONE_LINE = re.compile(r"\s*[\r\n]+\s*")


class SpecError(Exception):
    """A spec that cannot be used, located as precisely as we know."""

    def __init__(
        self,
        file: File,
        key_path: str,
        found: str,
        allowed: str,
        suggestion: str | None = None,
        *,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.key_path = key_path
        self.found = found
        self.allowed = allowed
        self.suggestion = suggestion
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __reduce__(self):
        """Survives a trip back from a worker process (pickling calls __init__ again)."""
        return _rebuild_spec_error, (self.file, self.key_path, self.found, self.allowed, self.suggestion,
                                     self.line, self.column)

    def __str__(self) -> str:
        where = [part for part in (self._location(), self.key_path) if part]
        message = f"found {self.found}; allowed: {self.allowed}"
        if self.suggestion:
            message += f"; {self.suggestion}"
        # One line whatever the parts hold (a YAML parser's message, a key with a
        # newline): the CLI prints exactly one line per error.
        return _ONE_LINE.sub(" ", ": ".join([*where, message]))

    def _location(self) -> str:
        """`file`, `file:line` or `file:line:column`, the form editors jump to; nothing
        for a mistake in no file (a command-line option: its key path says where)."""
        if self.file is None and self.line is None:
            return ""
        parts = [self.file or "<spec>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


def did_you_mean(name: object, choices: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint for a misspelt name, or None when nothing is close."""
    matches = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else None


def join_key_path(path: str, loc: Sequence[str | int]) -> str:
    """A key path with more keys and indices: ("levels", 2, "depth") -> levels[2].depth
    (pydantic's "[key]", the place of a mapping's key, says nothing more)."""
    for part in loc:
        if part == "[key]":
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def describe(value: object, limit: int = 60) -> str:
    """Show a YAML value the way the user wrote it, short enough for one line."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a mapping" if not value else "a mapping with keys " + ", ".join(map(str, value))
    elif isinstance(value, (list, tuple)) and len(repr(list(value))) > limit:
        text = f"a list of {len(value)} items"
    elif isinstance(value, (list, tuple)):
        text = repr(list(value))
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rebuild_spec_error(file, key_path, found, allowed, suggestion, line, column) -> SpecError:
    return SpecError(file, key_path, found, allowed, suggestion, line=line, column=column)
