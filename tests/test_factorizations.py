"""The sampler's draws of every dimension's factors at once (mapspace.factors.Factorizations)
are the draws each dimension would make alone, one after another from the same random
stream: drawn level by level from the innermost out, each factor weighted by the ways
the outer levels can complete it (TemporalFactors.cumulative)."""

from __future__ import annotations

import numpy as np
import pytest

from mapper.mapspace import factors
from mapper.mapspace.factors import Factorizations, TemporalFactors


def _spaces() -> list[TemporalFactors]:
    """Dimensions over four levels: one whose factor is 1 at level 2, one of bound 1,
    others of many divisors."""
    L = 4
    lo, hi = np.ones(L, dtype=np.int64), np.full(L, 10**9, dtype=np.int64)
    pinned = hi.copy()
    pinned[2] = 1
    return [TemporalFactors(720, lo, hi, "a"), TemporalFactors(56, lo, pinned, "b"), TemporalFactors(1, lo, hi, "c"),
            TemporalFactors(3, lo, hi, "d"), TemporalFactors(1024, lo, hi, "e")]


def _alone(spaces: list[TemporalFactors], l: int, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Level l's factors drawn one dimension after another."""
    picks = np.zeros_like(state)
    for d, space in enumerate(spaces):
        if l == 0:
            picks[d] = state[d]
        elif not space.only_one[l]:
            cumulative = space.cumulative[l][state[d]]
            target = (rng.random(state.shape[1]) * cumulative[:, -1]).astype(np.int64)
            picks[d] = [np.searchsorted(row, t, side="right") for row, t in zip(cumulative, target)]
    return picks


@pytest.mark.parametrize("limit", [2 ** 62, 1], ids=["one table", "a table per dimension"])
def test_factors_drawn_together_are_those_drawn_one_dimension_after_another(limit: int,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factors, "_STACK_LIMIT", limit)
    spaces = _spaces()
    together = Factorizations(spaces)
    n = 500
    state = np.repeat(together.start[:, None], n, axis=1)
    alone_state = state.copy()
    rng, alone_rng = np.random.default_rng(4), np.random.default_rng(4)
    for l in range(spaces[0].levels - 1, -1, -1):
        picks = together.draw(l, state, rng)
        assert np.array_equal(picks, _alone(spaces, l, alone_state, alone_rng))
        divisors = together.divisors(picks)
        assert np.array_equal(divisors, [space.divisors[p] for space, p in zip(spaces, picks)])
        state = together.quotient(state, picks)
        alone_state = np.array([space.quotient[s, p] for space, s, p in zip(spaces, alone_state, picks)])
        assert np.array_equal(state, alone_state)
    assert np.all(state == 0)  # every dimension's factors multiply to its bound: nothing is left


def test_the_smallest_factors_are_each_dimensions_own() -> None:
    spaces = _spaces()
    together = Factorizations(spaces)
    state = np.repeat(together.start[:, None], 3, axis=1)
    for l in range(spaces[0].levels):
        assert np.array_equal(together.smallest(l, state), [space.smallest[l][s] for space, s in zip(spaces, state)])
