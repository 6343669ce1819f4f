"""One entry point for spec files: native or Timeloop YAML, recognized and merged."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..architecture import Architecture
from ..estimation import Hardware
from ..constraints import Constraints
from ..mapping import Mapping
from ..problem import Problem
from . import timeloop
from .errors import SpecError
from .files import load_yaml


@dataclass(frozen=True)
class Specs:
    problems: tuple[Problem, ...]
    architecture: Architecture | None
    mapping: Mapping | None
    constraints: Constraints | None = None
    hardware: Hardware = Hardware()  # what the architecture says for the estimator
    metrics: tuple[str, ...] = ()  # a Timeloop mapper's optimization-metrics (timeloop.optimization_metrics)


def load_specs(paths: list[str | Path], batch: int = 1, need_energies: bool = True) -> Specs:
    """Merge the files at the top level (as Timeloop does) and read what they describe.
    Constraints (native or Timeloop, see mapper/specs/constraints.py) may come in any
    of the files, and are checked against the problems and architecture loaded here.
    `batch`: the samples each native layer runs on (mapper/specs/native); a Timeloop
    problem names no batch dimension, so it takes none. `need_energies=False`: a Timeloop
    architecture without its ERT is read with energies of 0 (for `mapper estimate`)."""
    from . import constraints, native  # both build on Specs, defined above
    paths = [Path(p) for p in paths]
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise SpecError(", ".join(map(str, paths)), "batch", repr(batch), "a whole number of samples, at least 1")
    docs, found = constraints.take_constraints([(p, load_yaml(p, native.SPEC_DOCUMENT)) for p in paths])
    specs = _load_specs(docs, batch, need_energies)
    return replace(specs, constraints=constraints.parse_constraints(found, specs.problems, specs.architecture))


def _load_specs(docs: list[tuple[Path, dict]], batch: int, need_energies: bool = True) -> Specs:
    from . import native
    if not docs:
        return Specs((), None, None)
    formats = [timeloop.is_timeloop(d) for _, d in docs]
    if any(formats) and not all(formats):  # the odd one out is named: often a file of Timeloop's, emptied
        path, doc = docs[formats.index(False)]
        keys = ", ".join(f"{k} (empty)" if v in (None, {}, []) else str(k) for k, v in doc.items()) or "none"
        raise SpecError(path, "", f"a document not in Timeloop's format (top-level keys: {keys}) with Timeloop's "
                        f"{docs[formats.index(True)][0]}", "files of one format",
                        "give the file its Timeloop content, or load native files without Timeloop ones")
    if all(formats):
        if batch != 1:
            raise SpecError(", ".join(str(p) for p, _ in docs), "problem", f"a batch of {batch} for a Timeloop "
                            "problem, whose batch dimension is not named", "a batch only for native conv, linear "
                            "and matmul layers (their N and B)", "write the batch into the problem's instance")
        merged: dict = {}
        origins: dict[str, str] = {}  # as Timeloop merges them: a later file's key replaces an earlier one's
        for path, d in docs:
            merged.update(d)
            origins.update(dict.fromkeys(d, str(path)))
        source = ", ".join(str(p) for p, _ in docs)
        spec = timeloop.load(merged, source, need_energies, origins)
        return Specs(tuple([spec.problem] if spec.problem else []), spec.architecture, spec.mapping,
                     hardware=spec.hardware, metrics=spec.metrics)
    return native.load_specs(docs, batch)
