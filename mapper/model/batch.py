"""Many mappings of one (problem, architecture) pair as arrays, and their scores.

The search scores thousands of tilings at a time, so a batch is a handful of
integer arrays rather than a list of `Mapping` objects: per mapping, per level,
a loop order, temporal and spatial factors per dimension, and keep flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..architecture import Architecture
from ..mapping import LevelMapping, Loop, Mapping
from ..problem import Problem


@dataclass(frozen=True)
class MappingBatch:
    """B mappings. L = architecture levels (outermost first), D = problem.dims,
    T = problem.tensors.

    - `order[b, l]`: a permutation of range(D), the temporal loops of level l
      outermost first (unit factors may sit anywhere: they change nothing).
    - `temporal[b, l, d]`: temporal factor of dim d at level l.
    - `spatial_x[b, l, d]`, `spatial_y[b, l, d]`: spatial factors of dim d on the
      fan-out below level l, along X and Y. The spatial loops of a fan-out are the
      Y loops (outer) then the X loops (inner), each in `spatial_order[b, l]`.
    - `keep[b, l, t]`: level l keeps tensor t.
    """

    order: np.ndarray  # (B, L, D) int
    temporal: np.ndarray  # (B, L, D) int
    spatial_x: np.ndarray  # (B, L, D) int
    spatial_y: np.ndarray  # (B, L, D) int
    spatial_order: np.ndarray  # (B, L, D) int
    keep: np.ndarray  # (B, L, T) bool

    def __len__(self) -> int:
        return self.temporal.shape[0]

    def mapping(self, b: int, problem: Problem) -> Mapping:
        """Mapping number b as plain typed data (for reports and the reference model)."""
        dims, names = problem.dims, [t.name for t in problem.tensors]
        levels = []
        for l in range(self.temporal.shape[1]):
            temporal = tuple(Loop(dims[d], int(self.temporal[b, l, d])) for d in self.order[b, l])
            spatial = tuple(Loop(dims[d], int(f[b, l, d]), axis)
                            for f, axis in ((self.spatial_y, "Y"), (self.spatial_x, "X"))
                            for d in self.spatial_order[b, l] if f[b, l, d] > 1)
            keep = frozenset(n for n, k in zip(names, self.keep[b, l]) if k)
            levels.append(LevelMapping(temporal, spatial, keep))
        return Mapping(tuple(levels))

    def take(self, index: np.ndarray | slice) -> "MappingBatch":
        """The mappings at `index`: row numbers or a boolean mask (a copy), or a slice
        (views)."""
        arrays = (self.order, self.temporal, self.spatial_x, self.spatial_y, self.spatial_order, self.keep)
        if isinstance(index, slice):
            return MappingBatch(*(a[index] for a in arrays))
        if index.dtype == np.bool_:
            index = np.flatnonzero(index)
        # ndarray.take rather than a[index]: half the time on a search's batches, which
        # it copies at every step.
        return MappingBatch(*(a.take(index, axis=0) for a in arrays))

    @staticmethod
    def concatenate(batches: Sequence["MappingBatch"]) -> "MappingBatch":
        return MappingBatch(*(np.concatenate([getattr(b, f) for b in batches]) for f in
                              ("order", "temporal", "spatial_x", "spatial_y", "spatial_order", "keep")))


def batch_from_mappings(problem: Problem, arch: Architecture, mappings: Sequence[Mapping],
                        remainders: bool = False) -> MappingBatch:
    """Arrays of `Mapping` objects. Dimensions missing from a level's temporal loops
    get a unit factor after the listed ones; spatial loops are regrouped Y before X
    (the order `MappingBatch` prescribes). A remainder (factors that overshoot a
    bound) is refused unless `remainders` says the batch is not for the vectorized
    model, which would count it wrong (Mapspace.broken_constraints reads factors
    alone)."""
    B, L, D, T = len(mappings), len(arch.levels), len(problem.dims), len(problem.tensors)
    index = {d: i for i, d in enumerate(problem.dims)}
    names = [t.name for t in problem.tensors]
    order = np.empty((B, L, D), dtype=np.int64)
    spatial_order = np.empty((B, L, D), dtype=np.int64)
    temporal = np.ones((B, L, D), dtype=np.int64)
    sx, sy = np.ones((B, L, D), dtype=np.int64), np.ones((B, L, D), dtype=np.int64)
    keep = np.zeros((B, L, T), dtype=bool)
    for b, m in enumerate(mappings):
        if not remainders and m.overshoots(problem.bounds):
            raise ValueError("a remainder (factors that overshoot a bound): the vectorized model counts perfect "
                             "factorizations only; reference.evaluate_reference counts remainders")
        for l, lm in enumerate(m.levels):
            listed = [index[loop.dim] for loop in lm.temporal if loop.factor > 1]
            if len(set(listed)) != len(listed):
                raise ValueError(f"level {arch.levels[l].name} repeats a temporal dimension")
            order[b, l] = listed + [d for d in range(D) if d not in listed]
            for loop in lm.temporal:
                temporal[b, l, index[loop.dim]] *= loop.factor
            spatial_dims = list(dict.fromkeys(index[loop.dim] for loop in lm.spatial if loop.factor > 1))
            spatial_order[b, l] = spatial_dims + [d for d in range(D) if d not in spatial_dims]
            for loop in lm.spatial:
                target = sx if (loop.spatial or "X") == "X" else sy
                target[b, l, index[loop.dim]] *= loop.factor
            keep[b, l] = [n in lm.keep for n in names]
    return MappingBatch(order, temporal, sx, sy, spatial_order, keep)


@dataclass(frozen=True)
class BatchEvaluation:
    """Scores of a batch, one entry per mapping. `valid` is False where a tile
    overflows a level or a spatial factor exceeds its fan-out; the other arrays
    are still computed there (as if the level were large enough), unless they were
    scored `valid_only` (vectorized.Evaluator.evaluate: then they are 0 there)."""

    energy_pJ: np.ndarray  # (B,) float, total dynamic energy with compute
    cycles: np.ndarray  # (B,) int
    valid: np.ndarray  # (B,) bool
    reads: np.ndarray  # (B, L, T) int, per instance, as Timeloop prints them (0 where not kept)
    fills: np.ndarray  # (B, L, T)
    updates: np.ndarray  # (B, L, T)
    # Only in a detailed evaluation (vectorized.evaluate_batch), else None:
    held: np.ndarray | None = None  # (B, L, T) bool: the level holds a tile of the tensor
    tile_words: np.ndarray | None = None  # (B, L, T) int: the tile's words per instance (utilized capacity)
    partitions: np.ndarray | None = None  # (B, L, T) int: the instance's share of the parent's tile
    crossing: np.ndarray | None = None  # (B, L, T) float: words of the tensor crossing the fan-out below

    @property
    def edp_J_cycles(self) -> np.ndarray:
        return self.energy_pJ * 1e-12 * self.cycles
