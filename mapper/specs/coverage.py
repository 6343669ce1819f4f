"""That a mapping maps its layer onto its architecture: what a mapping file of either
format, and a mapping handed to the Python API, must show before it is evaluated."""

from __future__ import annotations

from pathlib import Path

from ..architecture import Architecture
from ..mapping import Mapping
from ..problem import Problem
from .errors import SpecError


def check_covers(mapping: Mapping, problem: Problem, architecture: Architecture, file: str | Path | None,
                 path: str = "mapping") -> None:
    """That `mapping` maps `problem` onto `architecture`, or SpecError: a level of it
    per level of the architecture, loops over the layer's dimensions only, and factors
    that multiply to each bound, or to more where a remainder may be."""
    if len(mapping.levels) != len(architecture.levels):
        raise SpecError(file, path, f"a mapping of {len(mapping.levels)} levels",
                        f"one per level of architecture {architecture.name!r}, {len(architecture.levels)}")
    unknown = sorted({loop.dim for lm in mapping.levels for loop in (*lm.temporal, *lm.spatial)} - set(problem.dims))
    if unknown:
        raise SpecError(file, path, f"loops over {', '.join(unknown)}",
                        f"loops over the dimensions of layer {problem.name!r}: " + ", ".join(problem.dims))
    for dim in problem.dims:
        product, bound = mapping.factor(dim), problem.bounds[dim]
        if product < bound:
            raise SpecError(file, path, f"factors of dimension {dim} that multiply to {product}",
                            f"factors that multiply to {bound}, the bound of {dim}, or to more (a remainder: the "
                            "last iterations cover what is left)", f"add a factor of {-(-bound // product)} for "
                            f"{dim} at some level")
    obstacle = problem.remainder_obstacle() if mapping.overshoots(problem.bounds) else None
    if obstacle:
        raise SpecError(file, path, "factors that multiply to more than a bound (a remainder)",
                        f"factors that multiply to each bound: {obstacle}")
