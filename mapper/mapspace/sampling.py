"""Random tilings of one structure, the thousands a trial of the search scores.

Each dimension's temporal factors are drawn level by level from the innermost out,
uniformly over the factorizations still possible (factors.Factorizations). A level
whose draw overflows it, or surely overflows a level above (whose tile contains it:
Capacities.checks), is redrawn a few times, then given its smallest factors, so
nearly every row fits where anything fits; rows may still overflow, as the checks
are made level by level.
"""

from __future__ import annotations

import numpy as np

from .capacity import Capacities, CapacityCheck
from .factors import Factorizations

_RESAMPLES = 8  # redraws of a level's factors when its tiles overflow, before the smallest


def draw_tilings(factorizations: Factorizations, spatial: np.ndarray, checks: list[list[CapacityCheck]],
                 capacity: Capacities, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, L, D): n temporal factorizations of what the spatial factors `spatial` (L, D)
    leave of each dimension, `checks[l]` the capacity checks of level l."""
    L, D = spatial.shape
    spatial_inner = np.cumprod(spatial[::-1], axis=0)[::-1]  # (L, D): spatial at levels >= l
    temporal = np.empty((L, D, n), dtype=np.int64)
    inner = np.ones((D, n), dtype=np.int64)  # temporal factors below the current level
    state = np.repeat(factorizations.start[:, None], n, axis=1)  # (D, n): what levels 0..l must make
    for l in range(L - 1, -1, -1):
        picks = factorizations.draw(l, state, rng)
        temporal[l] = factorizations.divisors(picks)
        if checks[l]:
            below = inner * spatial_inner[l][:, None]
            rows = np.nonzero(capacity.overflows(below * temporal[l], checks[l]))[0]
            if len(rows):
                _refit(l, factorizations, state, picks, temporal[l], below, rows, checks[l], capacity, rng)
        inner *= temporal[l]
        state = factorizations.quotient(state, picks)
    return np.ascontiguousarray(temporal.transpose(2, 0, 1))


def _refit(l: int, factorizations: Factorizations, state: np.ndarray, picks: np.ndarray, factors: np.ndarray,
           below: np.ndarray, rows: np.ndarray, checks: list[CapacityCheck], capacity: Capacities,
           rng: np.random.Generator) -> None:
    """Redraw, in place, the level-l factors of the overflowing `rows`; after
    `_RESAMPLES` tries give the rows still overflowing their smallest factors."""
    def redraw(rows: np.ndarray, smallest: bool) -> None:
        left = state[:, rows]
        picks[:, rows] = factorizations.smallest(l, left) if smallest else factorizations.draw(l, left, rng)
        factors[:, rows] = factorizations.divisors(picks[:, rows])

    for _ in range(_RESAMPLES):
        redraw(rows, smallest=False)
        rows = rows[capacity.overflows(below[:, rows] * factors[:, rows], checks)]
        if not len(rows):
            return
    redraw(rows, smallest=True)
