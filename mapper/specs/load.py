"""One entry point for spec files: native or Timeloop YAML, recognized and merged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..architecture import Architecture
from ..mapping import Mapping
from ..problem import Problem
from . import timeloop


@dataclass(frozen=True)
class Specs:
    problems: tuple[Problem, ...]
    architecture: Architecture | None
    mapping: Mapping | None
    constraints: list[dict] | None = None


def load_specs(paths: list[str | Path]) -> Specs:
    """Merge the files at the top level (as Timeloop does) and read what they describe."""
    from . import native  # native.py builds on Specs, defined above
    paths = [Path(p) for p in paths]
    docs = [(p, native.load_yaml(p)) for p in paths]
    if all(timeloop.is_timeloop(d) for _, d in docs):
        merged: dict = {}
        for _, d in docs:
            merged.update(d)
        source = ", ".join(str(p) for p in paths)
        spec = timeloop.load(merged, source)
        return Specs(tuple([spec.problem] if spec.problem else []), spec.architecture, spec.mapping, spec.constraints)
    return native.load_specs(docs)
