"""A mapping: per storage level, its temporal loops, the spatial loops of its
fan-out, and which tensors it keeps. Loops are listed outermost first.

A dimension's factors multiply to its bound, or to more (a remainder, imperfect
factorization): the points at or past the bound then do not run, and the last
iterations of its loops cover what is left."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod


@dataclass(frozen=True)
class Loop:
    dim: str
    factor: int
    spatial: str | None = None  # None (temporal), "X" or "Y"


@dataclass(frozen=True)
class LevelMapping:
    temporal: tuple[Loop, ...] = ()
    spatial: tuple[Loop, ...] = ()
    keep: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Mapping:
    levels: tuple[LevelMapping, ...]  # outermost first, one per architecture level

    def factor(self, dim: str) -> int:
        return prod(l.factor for lm in self.levels for l in lm.temporal + lm.spatial if l.dim == dim)

    def overshoots(self, bounds: dict[str, int]) -> bool:
        """Whether some dimension's factors multiply to more than its bound."""
        return any(self.factor(dim) > bound for dim, bound in bounds.items())

    def residual_ends(self, bounds: dict[str, int]) -> list[dict[tuple[str, str], tuple[int, int]]]:
        """Per level (outermost first), per (kind, dimension) of its loops, kind
        "temporal" or "spatial" (a dimension's loops of one kind multiplied, as
        Timeloop writes them): their factor and the iterations they run where the
        loops of the dimension outside them are all at their last (Timeloop's
        residual end), the digit of bound - 1 in the mixed radix of the dimension's
        factors (the outermost loops of a dimension always run that many)."""
        weight = dict.fromkeys(bounds, 1)
        groups: list[dict[tuple[str, str], tuple[int, int]]] = [{} for _ in self.levels]
        for i in reversed(range(len(self.levels))):  # innermost first, as the loops nest
            for kind, loops in (("spatial", self.levels[i].spatial), ("temporal", self.levels[i].temporal)):
                for dim in dict.fromkeys(l.dim for l in loops):
                    factor = prod(l.factor for l in loops if l.dim == dim)
                    groups[i][kind, dim] = (factor, weight[dim])
                    weight[dim] *= factor
        ends = [{} for _ in self.levels]
        for dim, bound in bounds.items():
            inner_first = [(i, key) for i in reversed(range(len(groups)))
                           for key in (("spatial", dim), ("temporal", dim)) if key in groups[i]]
            for n, (i, key) in enumerate(inner_first):
                factor, w = groups[i][key]
                digit = (bound - 1) // w
                ends[i][key] = (factor, digit + 1 if n == len(inner_first) - 1 else digit % factor + 1)
        return ends
