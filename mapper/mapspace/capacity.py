"""What the storage levels of a mapspace hold: a tensor's tile over a box of the
iteration space, what it takes of a level (words, or bits where precisions differ:
mapper/precision.py), whether a batch's tiles and unrollings fit, and, for the
sampler, checks that tell early that a level's tiles surely overflow it or a level
above it."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..architecture import Architecture
from ..model.batch import MappingBatch
from ..model.kernel_cache import use_kernel_cache
from ..precision import level_widths
from ..problem import Problem, rank_coefficients

use_kernel_cache()  # the sampler's check is compiled once per machine, cached where the model's kernels are

# What a bounded level holds, the least factor per dimension from it down to a level
# below (D, 1), and the units an element of each tensor takes there, 0 for the tensors
# it does not keep (T,): Capacities.checks.
CapacityCheck = tuple[int, np.ndarray, np.ndarray]
# Per tensor, per rank: the indices of its dimensions and their coefficients.
Ranks = list[list[tuple[np.ndarray, np.ndarray]]]


def rank_terms(problem: Problem) -> Ranks:
    """Each tensor's ranks as arrays of dimension indices and coefficients."""
    return [[(np.array([problem.dims.index(d) for c, d in rank if c], dtype=np.int64),
              np.array([c for c, _ in rank if c], dtype=np.int64)) for rank in t.ranks]
            for t in problem.tensors]


class Capacities:
    """The levels' capacities for one problem (module docstring): `usable` per level,
    in the unit of its `widths` (None: unbounded), and the units an element of each
    tensor takes there (`per_element`, (L, T))."""

    def __init__(self, problem: Problem, arch: Architecture) -> None:
        self.L, self.D, self.T = len(arch.levels), len(problem.dims), len(problem.tensors)
        self.fanouts = arch.fanouts()
        self.widths = level_widths(problem, arch)
        self.usable = [w.usable for w in self.widths]
        self.per_element = np.array([w.per_element for w in self.widths], dtype=np.int64).reshape(self.L, self.T)
        self.ranks = rank_terms(problem)
        # Per tensor, its ranks' coefficients as a (D, R) matrix (a tensor with fewer ranks
        # has columns of zeros, whose extent is 1).
        self._coef = np.ascontiguousarray(rank_coefficients(problem)[0].transpose(0, 2, 1))  # (T, D, R)

    def checks(self, least: np.ndarray, keep: np.ndarray) -> list[list[CapacityCheck]]:
        """Per level l, the bounded levels l' <= l that keep something, each as (what
        l' holds, the least factor per dimension between l' and l, the tensors kept at
        l' with the units an element of each takes there): a tile at l times that
        factor is the least tile it implies at l'. `least`: (L, D), the least factor
        of each dimension at each level (spatial and temporal together); `keep` (L, T)."""
        checks = []
        for l in range(self.L):
            level_checks = []
            for outer in range(l, -1, -1):
                units = np.where(keep[outer], self.per_element[outer], 0).astype(np.int64)
                if self.usable[outer] is not None and units.any():
                    multiplier = np.prod(least[outer:l], axis=0)[:, None] if outer < l else np.ones((self.D, 1), int)
                    level_checks.append((self.usable[outer], multiplier.astype(np.int64), units))
            checks.append(level_checks)
        return checks

    def words(self, extents: np.ndarray, tensor: int) -> np.ndarray:
        """Elements of a tensor's tile over iteration-space extents (..., D): per rank,
        the span of its affine expression, multiplied."""
        return np.prod((np.asarray(extents) - 1) @ self._coef[tensor] + 1, axis=-1)

    def fits(self, batch: MappingBatch) -> np.ndarray:
        """(B,) whether every kept tile fits its level and every unrolling its fan-out."""
        fan = np.array(self.fanouts, dtype=np.int64)
        ok = (np.all(np.prod(batch.spatial_x, axis=2) <= fan[:, 0], axis=1)
              & np.all(np.prod(batch.spatial_y, axis=2) <= fan[:, 1], axis=1))
        extents = np.ones((len(batch), self.D), dtype=np.int64)  # levels l..innermost
        for l in range(self.L - 1, -1, -1):
            extents = extents * batch.temporal[:, l] * batch.spatial_x[:, l] * batch.spatial_y[:, l]
            if self.usable[l] is not None:
                held = sum(self.words(extents, k) * batch.keep[:, l, k] * self.per_element[l, k]
                           for k in range(self.T))
                ok &= held <= self.usable[l]
        return ok

    def overflows(self, extents: np.ndarray, checks: list[CapacityCheck]) -> np.ndarray:
        """(n,) whether tiles of extents (D, n) at a level surely overflow it or a level
        above (`checks`)."""
        extents = np.ascontiguousarray(extents, dtype=np.int64)
        bad = np.zeros(extents.shape[1], dtype=np.bool_)
        for usable, multiplier, units in checks:
            _mark_overflows(extents, multiplier[:, 0], self._coef, units, usable, bad)
        return bad


@njit(cache=True)
def _mark_overflows(extents: np.ndarray, multiplier: np.ndarray, coef: np.ndarray, units: np.ndarray, usable: int,
                    bad: np.ndarray) -> None:
    """Marks in `bad` the tiles of `extents` (D, n), each dimension's extent times
    `multiplier` (D,), whose tensors take more than `usable` units at `units` (T,) per
    element (`coef`: (T, D, R)). Compiled: as products of matrices in numpy, the
    sampler's checks took a third of its time (a few hundred tiles at a time)."""
    D, n = extents.shape
    T, R = coef.shape[0], coef.shape[2]
    for i in range(n):
        held = 0
        for t in range(T):
            words = 1
            for r in range(R):
                span = 1
                for d in range(D):
                    span += (extents[d, i] * multiplier[d] - 1) * coef[t, d, r]
                words *= span
            held += words * units[t]
        if held > usable:
            bad[i] = True
