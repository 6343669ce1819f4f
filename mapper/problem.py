"""The workload: an einsum-style loop nest over named dimensions.

Each tensor (Timeloop's "data space") is indexed by ranks; every rank is an affine
sum of dimensions with non-negative integer coefficients (strides, dilations), so
a tile of the iteration space projects onto an axis-aligned box of each tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

Term = tuple[int, str]  # (coefficient, dimension)


@dataclass(frozen=True)
class Tensor:
    name: str
    ranks: tuple[tuple[Term, ...], ...]
    read_write: bool = False
    word_bits: int | None = None

    @property
    def dims(self) -> frozenset[str]:
        return frozenset(d for rank in self.ranks for c, d in rank if c)


@dataclass(frozen=True)
class Problem:
    name: str
    dims: tuple[str, ...]
    bounds: dict[str, int]
    tensors: tuple[Tensor, ...]

    @property
    def macs(self) -> int:
        return prod(self.bounds[d] for d in self.dims)

    @property
    def output(self) -> Tensor:
        return next(t for t in self.tensors if t.read_write)

    def tensor(self, name: str) -> Tensor:
        return next(t for t in self.tensors if t.name == name)

    def remainder_obstacle(self) -> str | None:
        """Why a mapping with a remainder (factors that overshoot a bound) cannot be
        counted exactly for this problem, or None. Under a remainder the instances of a
        level hold different shares of the read-write tensor, which its reads and fills
        subtract; the model counts them where each of its ranks indexes one dimension,
        as a layer's outputs do."""
        for t in self.tensors:
            if t.read_write and any(len(rank) > 1 or (rank and rank[0][0] != 1) for rank in t.ranks):
                return f"read-write tensor {t.name} has a rank that is not one dimension"
        return None

    def tensor_size(self, tensor: Tensor, extents: dict[str, int] | None = None) -> int:
        """Elements in the box that `extents` (default: the whole problem) projects onto."""
        extents = extents or self.bounds
        return prod(rank_extent(rank, extents) for rank in tensor.ranks)


def rank_extent(rank: tuple[Term, ...], extents: dict[str, int]) -> int:
    """Width of the projection of a box of the iteration space onto one tensor rank."""
    return sum(c * (extents[d] - 1) for c, d in rank) + 1


def rank_coefficients(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(T, R, D): the coefficient of each dimension in each rank of each tensor, R the
    most ranks of any tensor (rows past a tensor's own ranks stay zero); and (T,) its
    number of ranks."""
    index = {d: i for i, d in enumerate(problem.dims)}
    R = max([len(t.ranks) for t in problem.tensors], default=0)
    coef = np.zeros((len(problem.tensors), max(R, 1), len(problem.dims)), dtype=np.int64)
    for k, t in enumerate(problem.tensors):
        for r, rank in enumerate(t.ranks):
            for c, d in rank:
                coef[k, r, index[d]] += c
    return coef, np.array([len(t.ranks) for t in problem.tensors], dtype=np.int64)
