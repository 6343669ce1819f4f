"""One entry point for spec files: native or Timeloop YAML, recognized and merged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ..architecture import Architecture
from ..mapping import Mapping
from ..problem import Problem
from . import timeloop
from .errors import SpecError


@dataclass(frozen=True)
class Specs:
    problems: tuple[Problem, ...]
    architecture: Architecture | None
    mapping: Mapping | None
    constraints: list[dict] | None = None


def read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(path, "", "a file that cannot be read", "a readable YAML file", e.strerror) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise SpecError(path, "", f"malformed YAML ({getattr(e, 'problem', None) or e})", "valid YAML",
                        line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None) from None
    if not isinstance(doc, dict):
        raise SpecError(path, "", f"a {type(doc).__name__}", "a mapping of top-level keys")
    return doc


def load_specs(paths: list[str | Path]) -> Specs:
    """Merge the files at the top level (as Timeloop does) and read what they describe."""
    paths = [Path(p) for p in paths]
    docs = [(p, read_yaml(p)) for p in paths]
    if all(timeloop.is_timeloop(d) for _, d in docs):
        merged: dict = {}
        for _, d in docs:
            merged.update(d)
        source = ", ".join(str(p) for p in paths)
        spec = timeloop.load(merged, source)
        return Specs(tuple([spec.problem] if spec.problem else []), spec.architecture, spec.mapping, spec.constraints)
    from . import native

    return native.load_specs(docs)
