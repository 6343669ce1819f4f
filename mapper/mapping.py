"""A mapping: per storage level, its temporal loops, the spatial loops of its
fan-out, and which tensors it keeps. Loops are listed outermost first.

A dimension's factors multiply to its bound, or to more (a remainder, imperfect
factorization): the points at or past the bound then do not run, and the last
iterations of its loops cover what is left."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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

    def without_unit_loops(self) -> Mapping:
        """The same mapping without its loops of factor 1, as the mapping files write it:
        such a loop never iterates, so where it stands changes nothing."""
        return Mapping(tuple(replace(lm, temporal=tuple(l for l in lm.temporal if l.factor > 1),
                                     spatial=tuple(l for l in lm.spatial if l.factor > 1)) for lm in self.levels))

    def overshoots(self, bounds: dict[str, int]) -> bool:
        """Whether some dimension's factors multiply to more than its bound."""
        return any(self.factor(dim) > bound for dim, bound in bounds.items())

    def dims_above(self, level: int) -> frozenset[str]:
        """The dimensions with a loop (of a factor above 1) at a level above `level`,
        temporal or spatial: those along which a tile held at `level` moves."""
        return frozenset(loop.dim for lm in self.levels[:level] for loop in lm.temporal + lm.spatial
                         if loop.factor > 1)

    def weights(self) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
        """Per level (outermost first), for each of its temporal loops and each of its
        spatial loops as listed: what an index of the loop counts along its dimension,
        the product of the factors of that dimension's loops inside it (a level's
        spatial loops nest inside its temporal ones, the levels below inside both)."""
        weight: dict[str, int] = {}
        weights = [([0] * len(lm.temporal), [0] * len(lm.spatial)) for lm in self.levels]
        for i in reversed(range(len(self.levels))):
            for kind, loops in ((1, self.levels[i].spatial), (0, self.levels[i].temporal)):
                for j in reversed(range(len(loops))):
                    weights[i][kind][j] = weight.get(loops[j].dim, 1)
                    weight[loops[j].dim] = weights[i][kind][j] * loops[j].factor
        return tuple((tuple(temporal), tuple(spatial)) for temporal, spatial in weights)

    def residual_ends(self, bounds: dict[str, int]) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
        """Per level (outermost first), for each of its temporal loops and each of its
        spatial loops as listed: the iterations it runs where the loops of its
        dimension outside it are all at their last (Timeloop's residual end), the
        digit of bound - 1 in the mixed radix of the dimension's factors, plus one;
        the outermost loop of a dimension runs that many every time."""
        seen: set[str] = set()  # dimensions with a loop further out (loops are listed outermost first)
        ends = []
        for lm, level_weights in zip(self.levels, self.weights()):
            level_ends = []
            for loops, ws in zip((lm.temporal, lm.spatial), level_weights):
                kind_ends = []
                for loop, w in zip(loops, ws):
                    digit = (bounds[loop.dim] - 1) // w
                    kind_ends.append(digit % loop.factor + 1 if loop.dim in seen else digit + 1)
                    seen.add(loop.dim)
                level_ends.append(tuple(kind_ends))
            ends.append(tuple(level_ends))
        return tuple(ends)

    def temporal_steps(self, bounds: dict[str, int]) -> int:
        """The steps the temporal loops run: their product, less the steps of a
        remainder whose every point is past a bound."""
        loops = [(l, w) for lm, (ws, _) in zip(self.levels, self.weights()) for l, w in zip(lm.temporal, ws)]
        return prod(_steps_within([(l.factor, w) for l, w in loops if l.dim == dim], bound - 1)
                    for dim, bound in bounds.items())


def _steps_within(loops: list[tuple[int, int]], last: int) -> int:
    """How many index combinations of `loops` ((factor, weight), outermost first) put
    their point at or before `last`."""
    if not loops:
        return 1 if last >= 0 else 0
    (factor, weight), inner = loops[0], loops[1:]
    reach = sum((f - 1) * w for f, w in inner)
    running = min(factor, last // weight + 1) if last >= 0 else 0
    whole = min(running, (last - reach) // weight + 1) if last >= reach else 0  # every inner step runs
    return whole * prod(f for f, _ in inner) + sum(_steps_within(inner, last - i * weight)
                                                   for i in range(whole, running))


def merged_end(loops: list[tuple[int, int]]) -> tuple[int, int]:
    """The (factor, residual end) of loops of one dimension that nest directly
    (outermost first, each its (factor, residual end)) taken as one loop, as Timeloop
    writes a level's loops of a dimension."""
    factor, end = 1, 1
    for f, r in loops:
        factor, end = factor * f, (end - 1) * f + r
    return factor, end
