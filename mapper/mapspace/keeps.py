"""Which tensors each storage level keeps, and which it bypasses: the keep tables.

A keep table has one row per level (one flag per tensor); the levels choose apart,
so the tables are the product of each level's allowed rows. The outermost level
keeps every tensor, unless the constraints bypass one there and keep it at a level
below that holds it whole (no loop above that level over its dimensions: a fused
group's intermediate, mapper/fusion.py): nothing of it moves above that level. The
architecture's `keeps` lists and the constraints' `keep` and
`bypass` force flags; the others are free. A row whose smallest tiles (the smallest
the factor constraints allow) cannot fit its level is dropped: no tiling of any
table with it fits, so the pruning loses nothing.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from math import prod

import numpy as np

from ..architecture import Architecture
from ..constraints import ONE, Constraints, LevelConstraints
from ..problem import Problem, Tensor

KeepTable = tuple[tuple[bool, ...], ...]  # (L, T): keep[l][t]


class KeepTables:
    """The keep tables of `problem` on `arch` under (resolved) `constraints`;
    `min_held` (L, T) is what the smallest tile of each tensor takes of each level,
    `usable` each level's capacity in the same unit (None: unbounded)."""

    def __init__(self, problem: Problem, arch: Architecture, constraints: Constraints, min_held: np.ndarray,
                 usable: list[int | None]) -> None:
        self.reasons: list[str] = []  # contradictions among the rules, one sentence each
        self.forced = self._rules(problem, arch, constraints)
        self.rows = [self._level_rows(l, usable[l], min_held[l]) for l in range(len(arch.levels))]

    def count(self) -> int:
        return prod(len(rows) for rows in self.rows)

    @cached_property
    def tables(self) -> list[KeepTable]:
        """Every table, one allowed row per level, in product order."""
        return list(itertools.product(*self.rows))

    def allowed(self, keep: np.ndarray) -> np.ndarray:
        """(B,) whether each keep table of `keep` (B, L, T) meets the forced flags."""
        return ~self.mismatched(keep).any(axis=(1, 2))

    def mismatched(self, keep: np.ndarray) -> np.ndarray:
        """(B, L, T): the flags of `keep` that differ from the forced ones."""
        return (self.forced >= 0) & (keep != (self.forced == 1))

    def _rules(self, problem: Problem, arch: Architecture, constraints: Constraints) -> np.ndarray:
        """(L, T): 1 must keep, 0 must bypass, -1 free; contradictions go to `reasons`."""
        forced = np.full((len(arch.levels), len(problem.tensors)), -1, dtype=np.int8)
        resident = {tensor.name: self._resident_at(arch, constraints, tensor) for tensor in problem.tensors}
        for l, level in enumerate(arch.levels):
            lc = constraints.level(level.name)
            for k, tensor in enumerate(problem.tensors):
                name = tensor.name
                if name in lc.keep and name in lc.bypass:
                    self.reasons.append(f"the constraints both keep and bypass {name} at {level.name}")
                if l == 0:
                    forced[l, k] = 0 if resident[name] else 1
                elif level.keeps is not None and name not in level.keeps:
                    if name in lc.keep:
                        self.reasons.append(f"the constraints keep {name} at {level.name}, but the architecture "
                                            f"lets it keep only {', '.join(sorted(level.keeps)) or 'nothing'}")
                    forced[l, k] = 0
                elif name in lc.keep:
                    forced[l, k] = 1
                elif name in lc.bypass:
                    forced[l, k] = 0
        return forced

    def _resident_at(self, arch: Architecture, constraints: Constraints, tensor: Tensor) -> bool:
        """Whether the constraints bypass `tensor` at the outermost level, keep it at a
        level below and hold it whole there (a unit factor of each of its dimensions at
        every level above, temporal and spatial); a bypass at the outermost level that
        does not is a reason."""
        outermost = arch.levels[0].name
        if tensor.name not in constraints.level(outermost).bypass:
            return False
        keeper = next((l for l, level in enumerate(arch.levels) if tensor.name in constraints.level(level.name).keep),
                      None)
        if keeper is None:
            self.reasons.append(f"the constraints bypass {tensor.name} at {outermost}, the outermost level, which "
                                "keeps every tensor that no level below keeps whole (keep it at one, with a factor "
                                "of 1 for each of its dimensions above it)")
            return False
        loose = sorted({d for l, level in enumerate(arch.levels[:keeper]) for d in tensor.dims
                        if not _unit(constraints.level(level.name), d, arch.fanout(l) != (1, 1))})
        if loose:
            self.reasons.append(f"the constraints bypass {tensor.name} at {outermost}, the outermost level, and keep "
                                f"it at {arch.levels[keeper].name}, which must then hold it whole: give "
                                f"{', '.join(loose)} a factor of 1 at every level above {arch.levels[keeper].name}")
            return False
        return True

    def _level_rows(self, level: int, usable: int | None, min_held: np.ndarray) -> list[tuple[bool, ...]]:
        """The rows `level` allows whose smallest tiles fit it."""
        forced = self.forced[level]
        free = np.nonzero(forced < 0)[0]
        rows = []
        for bits in itertools.product((False, True), repeat=len(free)):
            row = forced == 1
            row[free] = bits
            if usable is None or int((min_held * row).sum()) <= usable:
                rows.append(tuple(bool(v) for v in row))
        return rows


def _unit(constraints: LevelConstraints, dim: str, fans_out: bool) -> bool:
    """Whether `constraints` fix `dim`'s factor at their level to 1: the temporal one,
    and where the level fans out, the spatial one (or both its X and Y ones)."""
    spatial = constraints.spatial.get(dim) == ONE or (constraints.spatial_x.get(dim) == ONE
                                                      and constraints.spatial_y.get(dim) == ONE)
    return constraints.temporal.get(dim) == ONE and (spatial or not fans_out)
