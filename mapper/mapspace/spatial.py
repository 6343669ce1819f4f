"""The spatial unrollings of a mapspace: on every fan-out, the X and Y factors of each
dimension within its mesh and its constraints; across fan-outs, the combinations that
leave every dimension a temporal factorization and keep enough MACs busy; and how
many factorizations each busyness allows (Timeloop's sub-space sizes)."""

from __future__ import annotations

from functools import cached_property
from math import prod

import numpy as np

from .factors import DimensionFactors

Grid = tuple[tuple[int, ...], ...]


def fanout_levels(fanouts: list[tuple[int, int]]) -> list[int]:
    """The levels with a fan-out below them."""
    return [l for l, fanout in enumerate(fanouts) if fanout != (1, 1)]


class SpatialUnrollings:
    """The unrollings of one layer (module docstring): `bounds` per dimension,
    `fanouts` (X, Y) per level, `dims` the factor tables of every dimension, `lo` and
    `hi` the factor bounds per slot (Mapspace's), `min_used_macs` the least busy MACs
    the constraints allow."""

    def __init__(self, bounds: np.ndarray, fanouts: list[tuple[int, int]], dims: list[DimensionFactors],
                 lo: dict[str, np.ndarray], hi: dict[str, np.ndarray], min_used_macs: int) -> None:
        self.bounds, self.fanouts, self._dims, self.lo, self.hi = bounds, fanouts, dims, lo, hi
        self.min_used_macs = min_used_macs
        self.L, self.D = len(fanouts), len(bounds)
        self.levels = fanout_levels(fanouts)

    def choices(self, l: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(X factor per dimension, Y factor per dimension) on the fan-out below level l."""
        return self._choices[l]

    @cached_property
    def _choices(self) -> list[list[tuple[tuple[int, ...], tuple[int, ...]]]]:
        ones = (1,) * self.D
        per_level = {l: self._level_choices(l) for l in self.levels}
        most = {l: max((prod(x) * prod(y) for x, y in choices), default=0) for l, choices in per_level.items()}
        choices = []
        for l in range(self.L):
            if l not in per_level:
                choices.append([(ones, ones)])
                continue
            others = prod(most[k] for k in per_level if k != l)
            choices.append([(x, y) for x, y in per_level[l] if prod(x) * prod(y) * others >= self.min_used_macs])
        return choices

    def _level_choices(self, l: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        fx, fy = self.fanouts[l]
        options = [self._dims[d].pairs[l] for d in range(self.D)]
        found: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

        def extend(d: int, xs: list[int], ys: list[int], px: int, py: int) -> None:
            if d == self.D:
                found.append((tuple(xs), tuple(ys)))
                return
            for x, y in options[d]:
                if px * x <= fx and py * y <= fy:
                    extend(d + 1, xs + [x], ys + [y], px * x, py * y)

        extend(0, [], [], 1, 1)
        return found

    def feasible(self, sx: np.ndarray, sy: np.ndarray) -> bool:
        """Spatial grids within bounds, fan-outs and utilization, leaving every
        dimension a temporal factorization."""
        both = sx * sy
        fan = np.array(self.fanouts, dtype=np.int64)
        if (np.any(np.prod(sx, axis=1) > fan[:, 0]) or np.any(np.prod(sy, axis=1) > fan[:, 1])
                or int(np.prod(both)) < self.min_used_macs):
            return False
        for slot, grid in (("x", sx), ("y", sy), ("xy", both)):
            if np.any(grid < self.lo[slot]) or np.any(grid > self.hi[slot]):
                return False
        total = np.prod(both, axis=0)
        if np.any(self.bounds % total):
            return False
        return all(self._dims[d].temporal(int(self.bounds[d] // total[d])).total for d in range(self.D))

    def count(self) -> tuple[int, int]:
        """(spatial unrollings, factorizations) that keep enough MACs busy."""
        spatial = factorizations = 0
        for used, (n_spatial, n_fact) in self.by_use.items():
            if used >= self.min_used_macs:
                spatial += n_spatial
                factorizations += n_fact
        return spatial, factorizations

    @cached_property
    def by_use(self) -> dict[int, tuple[int, int]]:
        """MACs kept busy -> (spatial unrollings, factorizations) that busy: a dynamic
        program over dimensions whose state is how much of every fan-out's X and Y the
        dimensions so far use."""
        levels = self.levels
        start = tuple((1, 1) for _ in levels)
        counts: dict[tuple, tuple[int, int]] = {start: (1, 1)}
        for d in range(self.D):
            nxt: dict[tuple, tuple[int, int]] = {}
            for option, weight in self._dims[d].weighted_options:
                if not weight:
                    continue
                for state, (n_spatial, n_fact) in counts.items():
                    used = tuple((ux * x, uy * y) for (ux, uy), (x, y) in zip(state, option))
                    if any(ux > self.fanouts[l][0] or uy > self.fanouts[l][1] for l, (ux, uy) in zip(levels, used)):
                        continue
                    old = nxt.get(used, (0, 0))
                    nxt[used] = (old[0] + n_spatial, old[1] + n_fact * weight)
            counts = nxt
        by_use: dict[int, tuple[int, int]] = {}
        for state, (n_spatial, n_fact) in counts.items():
            used = prod(ux * uy for ux, uy in state)
            old = by_use.get(used, (0, 0))
            by_use[used] = (old[0] + n_spatial, old[1] + n_fact)
        return by_use

    def arrays(self, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, L, D) spatial X and Y factors of n rows of `picks`."""
        sx = np.ones((len(picks), self.L, self.D), dtype=np.int64)
        sy = np.ones_like(sx)
        for j, l in enumerate(self.levels):
            choices = np.array(self.choices(l), dtype=np.int64).reshape(-1, 2, self.D)
            sx[:, l], sy[:, l] = choices[picks[:, j], 0], choices[picks[:, j], 1]
        return sx, sy

    def grids(self, picks: np.ndarray) -> tuple[Grid, Grid]:
        """(spatial_x, spatial_y) of a choice per fan-out level (a row of `picks`)."""
        ones = tuple((1,) * self.D for _ in range(self.L))
        sx, sy = list(ones), list(ones)
        for l, k in zip(self.levels, picks):
            sx[l], sy[l] = self.choices(l)[k]
        return tuple(sx), tuple(sy)

    def picks(self) -> tuple[np.ndarray, np.ndarray]:
        """Every combination of the fan-outs' choices that leaves every dimension a
        temporal factorization and keeps at least `min_used_macs` MACs busy, as a
        choice per fan-out level, one row each (the outermost fan-out varying slowest),
        with the MACs each keeps busy."""
        levels = self.levels
        picks = np.zeros((1, 0), dtype=np.int64)  # per partial combination, its choice at each fan-out so far
        product = np.ones((1, self.D), dtype=np.int64)  # and the spatial factor of each dimension so far
        for l in levels:
            both = np.array([np.multiply(x, y) for x, y in self.choices(l)], dtype=np.int64).reshape(-1, self.D)
            joined_picks, joined_product = [], []
            for start in range(0, len(product), 4096):
                grown = product[start:start + 4096, None, :] * both[None, :, :]
                rows, cols = np.nonzero(np.all(self.bounds % grown == 0, axis=2))
                joined_picks.append(np.concatenate([picks[start + rows], cols[:, None]], axis=1))
                joined_product.append(grown[rows, cols])
            picks, product = np.concatenate(joined_picks), np.concatenate(joined_product)
        ok = np.prod(product, axis=1) >= self.min_used_macs
        for d in range(self.D):
            values, where = np.unique(product[:, d], return_inverse=True)
            ok &= np.array([self._dims[d].temporal(int(self.bounds[d] // v)).total > 0 for v in values],
                           dtype=bool)[where]
        return picks[ok], np.prod(product[ok], axis=1)
