"""The factors a mapspace allows: the least and greatest factor of every dimension at
every level and fan-out under the constraints (FactorBounds), and per dimension its
spatial pairs on every fan-out and the temporal factorizations over the levels of what
they leave, counted and drawn uniformly by a dynamic program over the divisors
(DimensionFactors, TemporalFactors)."""

from __future__ import annotations

import itertools
from functools import cached_property
from math import prod
from typing import NamedTuple, Sequence

import numpy as np

from ..architecture import Architecture
from ..constraints import Constraints, Factor
from ..factorize import divisors
from ..problem import Problem
from ..specs.errors import SpecError
from ..specs.limits import MAX_FACTOR_TABLE


_STACK_LIMIT = 2 ** 62  # values of a stacked table of factorizations (Factorizations) stay below it

# Slot kinds of a factor: temporal, spatial along X, spatial along Y, spatial in all (X*Y).
SLOTS = ("t", "x", "y", "xy")


class FactorBounds:
    """Per slot kind (SLOTS), (L, D) arrays of the least (`lo`) and greatest (`hi`)
    factor of every dimension at every level that the constraints, the bounds and the
    fan-outs allow; an exact factor sets both, and Timeloop's `=0` (the rest) is
    resolved. Contradictory constraints are listed in `reasons`; `bounded`, per slot:
    (flat (l, d) indices, lo, hi) of the bounds that fitting the bounds and fan-outs
    does not imply, which a mapping must be checked against."""

    def __init__(self, problem: Problem, arch: Architecture, constraints: Constraints) -> None:
        self.problem, self.arch, self.constraints = problem, arch, constraints
        self.L, self.D = len(arch.levels), len(problem.dims)
        self.bounds = np.array([problem.bounds[d] for d in problem.dims], dtype=np.int64)
        self.fanouts = arch.fanouts()
        self.reasons: list[str] = []
        self.bounded: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.lo, self.hi = self._factor_bounds()

    def _factor_bounds(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        L, D = self.L, self.D
        fan = np.array(self.fanouts, dtype=np.int64).reshape(L, 2)
        axis_limit = {"t": np.broadcast_to(self.bounds, (L, D)), "x": np.repeat(fan[:, :1], D, axis=1),
                      "y": np.repeat(fan[:, 1:], D, axis=1), "xy": np.repeat(fan[:, :1] * fan[:, 1:], D, axis=1)}
        lo = {s: np.ones((L, D), dtype=np.int64) for s in SLOTS}
        hi = {s: np.minimum(axis_limit[s], self.bounds).astype(np.int64) for s in SLOTS}
        exact = {s: np.zeros((L, D), dtype=np.int64) for s in SLOTS}
        rests: dict[int, list[tuple[str, int]]] = {}
        for l, level in enumerate(self.arch.levels):
            lc = self.constraints.level(level.name)
            for slot, table in zip(SLOTS, (lc.temporal, lc.spatial_x, lc.spatial_y, lc.spatial)):
                for dim, f in table.items():
                    d = self.problem.dims.index(dim)
                    if f.rest:
                        rests.setdefault(d, []).append((slot, l))
                    elif f.exact is not None:
                        exact[slot][l, d] = f.exact
                    else:
                        lo[slot][l, d] = max(lo[slot][l, d], f.min)
                        hi[slot][l, d] = min(hi[slot][l, d], f.max or hi[slot][l, d])
                        self._check_range(slot, l, d, f)
            for slot, allowed in (("x", lc.x_dims), ("y", lc.y_dims)):
                if allowed is not None:
                    for d, dim in enumerate(self.problem.dims):
                        if dim not in allowed:
                            hi[slot][l, d] = 1
        for d, slots in rests.items():
            self._resolve_rest(d, slots, exact, lo)
        for slot in SLOTS:
            for l, d in zip(*np.nonzero(exact[slot])):
                self._check_exact(slot, int(l), int(d), int(exact[slot][l, d]), int(hi[slot][l, d]),
                                  int(axis_limit[slot][l, d]))
                lo[slot][l, d] = hi[slot][l, d] = exact[slot][l, d]
        self._check_fixed_products(exact)
        self.bounded = {}
        for slot in SLOTS:
            where = np.flatnonzero((lo[slot] > 1) | (hi[slot] < np.minimum(axis_limit[slot], self.bounds)))
            self.bounded[slot] = (where, lo[slot].ravel()[where], hi[slot].ravel()[where])
        return lo, hi

    def _check_range(self, slot: str, l: int, d: int, f: Factor) -> None:
        dim, bound = self.problem.dims[d], int(self.bounds[d])
        if f.min > bound:
            self.reasons.append(f"{dim}{f} {self.slot_name(slot, l)} asks for more than the bound {bound} of {dim}")
        elif f.max is not None and f.max < f.min:
            self.reasons.append(f"{dim}{f} {self.slot_name(slot, l)} allows no factor")

    def _check_exact(self, slot: str, l: int, d: int, value: int, hi: int, axis: int) -> None:
        dim, bound = self.problem.dims[d], int(self.bounds[d])
        where = self.slot_name(slot, l)
        if bound % value:
            self.reasons.append(f"{dim}={value} {where} does not divide the bound {bound} of {dim}")
        elif value > axis:
            self.reasons.append(f"{dim}={value} {where}: the fan-out has {axis} there")
        elif value > hi:
            axis_name = {"x": "X", "y": "Y"}.get(slot)
            allowed = getattr(self.constraints.level(self.arch.levels[l].name), f"{slot}_dims", None)
            if axis_name and allowed is not None and dim not in allowed:
                self.reasons.append(f"{dim}={value} {where}, but the constraints allow only "
                                     f"{', '.join(sorted(allowed)) or 'no dimension'} along {axis_name} there")
            else:
                self.reasons.append(f"{dim}={value} {where} is more than the constraints allow there ({hi})")

    def _resolve_rest(self, d: int, slots: list[tuple[str, int]], exact: dict[str, np.ndarray],
                      lo: dict[str, np.ndarray]) -> None:
        """Timeloop's `=0`: all of the dimension that the other exact factors leave;
        every other factor of the dimension becomes 1."""
        dim, bound = self.problem.dims[d], int(self.bounds[d])
        if len(slots) > 1:
            where = " and ".join(self.slot_name(s, l) for s, l in slots)
            self.reasons.append(f"{dim}=0 {where}: only one place can take the rest of {dim}")
            return
        slot, level = slots[0]
        other_axis = {"x": "y", "y": "x"}.get(slot)
        fixed = prod(int(exact["t"][l, d] or 1) for l in range(self.L) if (slot, l) != ("t", level))
        fixed *= prod(self._spatial_exact(exact, l, d) for l in range(self.L) if slot == "t" or l != level)
        if other_axis:
            fixed *= int(exact[other_axis][level, d] or 1)
        if bound % fixed:
            self.reasons.append(f"{dim}=0 {self.slot_name(slot, level)}: the other fixed factors of {dim} "
                                 f"multiply to {fixed}, which does not divide its bound {bound}")
            return
        exact[slot][level, d] = bound // fixed
        to_one = [("t", l) for l in range(self.L) if (slot, l) != ("t", level)]
        for l in range(self.L):
            if slot != "t" and l == level:
                to_one += [(other_axis, l)] if other_axis else []
            elif not exact["xy"][l, d]:
                to_one += [("x", l), ("y", l)]
        for s, l in to_one:
            if exact[s][l, d]:
                continue
            if lo[s][l, d] > 1:
                self.reasons.append(f"{dim}=0 {self.slot_name(slot, level)} leaves nothing for "
                                     f"{dim}>={lo[s][l, d]} {self.slot_name(s, l)}")
            exact[s][l, d] = 1

    @staticmethod
    def _spatial_exact(exact: dict[str, np.ndarray], l: int, d: int) -> int:
        if exact["xy"][l, d]:
            return int(exact["xy"][l, d])
        return int(exact["x"][l, d] or 1) * int(exact["y"][l, d] or 1)

    def _check_fixed_products(self, exact: dict[str, np.ndarray]) -> None:
        """The exact factors of one dimension must divide its bound together."""
        for d, dim in enumerate(self.problem.dims):
            parts = [(int(exact["t"][l, d]), self.slot_name("t", l)) for l in range(self.L) if exact["t"][l, d]]
            parts += [(self._spatial_exact(exact, l, d), self.slot_name("xy", l)) for l in range(self.L)
                      if exact["xy"][l, d] or exact["x"][l, d] or exact["y"][l, d]]
            product, bound = prod(v for v, _ in parts), int(self.bounds[d])
            if len(parts) > 1 and bound % product and all(bound % v == 0 for v, _ in parts):
                listed = ", ".join(f"{v} {w}" for v, w in parts)
                self.reasons.append(f"the fixed factors of {dim} ({listed}) multiply to {product}, "
                                     f"which does not divide its bound {bound}")

    def slot_name(self, slot: str, l: int) -> str:
        """Where a slot is, in words: `at GLB`, `along X below GLB`."""
        name = self.arch.levels[l].name
        return {"t": f"at {name}", "x": f"along X below {name}", "y": f"along Y below {name}",
                "xy": f"spatially below {name}"}[slot]


class DimensionFactors:
    """The factors one dimension may take: spatial pairs per fan-out, and temporal
    factorizations of what the spatial factors leave."""

    def __init__(self, bound: int, d: int, lo: dict[str, np.ndarray], hi: dict[str, np.ndarray],
                 fanout_levels: list[int], where: str) -> None:
        """Dimension d of bound `bound`, its factors within [lo, hi] (per slot, (L, D)
        arrays: Mapspace's factor bounds), fanning out below `fanout_levels`; `where`
        names it in errors."""
        self.d, self.bound, self.where = d, bound, where
        self.lo_t, self.hi_t = lo["t"][:, d], hi["t"][:, d]
        self.levels, self.fanout_levels = len(lo["t"]), fanout_levels
        self._temporal: dict[int, TemporalFactors] = {}
        self.pairs: dict[int, list[tuple[int, int]]] = {}
        for l in fanout_levels:
            # Only divisors within the fan-out: a bound may have 100,000 divisors.
            xs = [x for x in divisors(bound) if lo["x"][l, d] <= x <= hi["x"][l, d]]
            ys = [y for y in divisors(bound) if lo["y"][l, d] <= y <= hi["y"][l, d]]
            self.pairs[l] = [(x, y) for x in xs for y in ys
                             if bound % (x * y) == 0 and lo["xy"][l, d] <= x * y <= hi["xy"][l, d]]

    def temporal(self, remaining: int) -> TemporalFactors:
        if remaining not in self._temporal:
            self._temporal[remaining] = TemporalFactors(remaining, self.lo_t, self.hi_t, self.where)
        return self._temporal[remaining]

    @cached_property
    def options(self) -> list[tuple[tuple[int, int], ...]]:
        """Spatial pairs on every fan-out level together, dividing the bound."""
        levels = self.fanout_levels
        return [combo for combo in itertools.product(*(self.pairs[l] for l in levels))
                if self.bound % prod(x * y for x, y in combo) == 0]

    @cached_property
    def weighted_options(self) -> list[tuple[tuple[tuple[int, int], ...], int]]:
        """Each spatial option with how many temporal factorizations complete it."""
        return [(combo, self.temporal(self.bound // prod(x * y for x, y in combo)).total) for combo in self.options]

    @cached_property
    def min_extents(self) -> list[int]:
        """Per level, the smallest extent this dimension can have in the level's tile."""
        best = [self.bound] * self.levels
        levels = self.fanout_levels
        for combo, weight in self.weighted_options:
            if not weight:
                continue
            spatial = np.ones(self.levels, dtype=np.int64)
            for l, (x, y) in zip(levels, combo):
                spatial[l] = x * y
            spatial_inner = np.cumprod(spatial[::-1])[::-1]
            temporal = self.temporal(self.bound // int(np.prod(spatial))).min_suffix
            best = [min(b, int(s * t)) for b, s, t in zip(best, spatial_inner, temporal)]
        return best


class TemporalFactors:
    """The ordered factorizations of `remaining` over the levels, each factor within
    its level's [lo, hi], as a dynamic program over the divisors of `remaining`.

    `count[l][v]` is the number of ways levels 0..l-1 multiply to divisor v; drawing
    level by level from the innermost out, with the weight of each factor the number of
    ways the outer levels can complete it, is uniform over all the factorizations."""

    def __init__(self, remaining: int, lo: np.ndarray, hi: np.ndarray, where: str) -> None:
        self.divisors = np.array(divisors(remaining), dtype=np.int64)
        n, L = len(self.divisors), len(lo)
        if n * n * (L + 2) > MAX_FACTOR_TABLE:
            raise SpecError(None, where, f"a bound of {remaining:,} ({n:,} divisors) to split over {L} levels",
                            f"at most {MAX_FACTOR_TABLE:,} entries in the tables of its factorizations: (divisors)**2 "
                            "x (levels + 2), mapper/specs/limits.py",
                            "use fewer levels, or a bound with fewer divisors")
        index = {int(v): i for i, v in enumerate(self.divisors)}
        self.start = index[remaining]
        div = self.divisors
        self.quotient = np.array([[index.get(int(v // f), -1) if v % f == 0 else -1 for f in div] for v in div],
                                 dtype=np.int64)  # (n, n): index of v / f
        divides = self.quotient >= 0
        allowed = [(div >= lo[l]) & (div <= hi[l]) for l in range(L)]
        # Counts, and the flattened rows that draws search, must fit 64 bits: the same
        # sums in floating point say whether they do.
        estimate = [np.zeros(n) for _ in range(L + 1)]
        estimate[0][0] = 1.0
        for l in range(L):
            estimate[l + 1] = np.where(divides & allowed[l][None, :], estimate[l][np.maximum(self.quotient, 0)],
                                       0.0).sum(axis=1)
        if max(float(e.max()) for e in estimate) * n >= 2.0 ** 62:
            raise SpecError(None, where, f"a bound of {remaining:,} split over {L} levels in about "
                            f"{float(estimate[L][self.start]):.3g} ways", "at most 2**62 / (divisors of the bound) "
                            "factorizations: the mapspace counts them in 64 bits",
                            "use fewer levels, or a smaller bound")
        count = [np.zeros(n, dtype=np.int64)]
        count[0][0] = 1
        self.cumulative, self.smallest = [], []
        for l in range(L):
            weights = np.where(divides & allowed[l][None, :], count[l][np.maximum(self.quotient, 0)], 0)
            count.append(weights.sum(axis=1))
            self.cumulative.append(np.cumsum(weights, axis=1))
            self.smallest.append(np.argmax(weights > 0, axis=1))
        self.total = int(count[L][self.start])
        self._count, self._allowed, self.levels = count, allowed, L
        self.only_one = [bool(hi[l] == 1) for l in range(L)]  # the factor is 1 whatever is left

    @cached_property
    def smallest_tiles(self) -> np.ndarray:
        """(L,): the factorization that gives each level, from the innermost out, the
        smallest factor that the outer levels can still complete."""
        factors, state = np.ones(self.levels, dtype=np.int64), self.start
        for l in range(self.levels - 1, -1, -1):
            pick = int(self.smallest[l][state])
            factors[l] = self.divisors[pick]
            state = int(self.quotient[state, pick])
        return factors

    @cached_property
    def min_suffix(self) -> np.ndarray:
        """(L,): per level l, the smallest product of the factors at levels l..L-1."""
        n, L = len(self.divisors), self.levels
        suffix = [np.zeros(n, dtype=bool) for _ in range(L + 1)]
        suffix[L][0] = True
        for l in range(L - 1, -1, -1):
            ok = (self.quotient >= 0) & self._allowed[l][None, :] & suffix[l + 1][np.maximum(self.quotient, 0)]
            suffix[l] = ok.any(axis=1)
        best = []
        for l in range(L):
            outer = self.quotient[self.start]  # index of remaining / v, per v
            feasible = suffix[l] & (outer >= 0) & (self._count[l][np.maximum(outer, 0)] > 0)
            best.append(int(self.divisors[feasible].min()) if feasible.any() else int(self.divisors[-1]))
        return np.array(best, dtype=np.int64)

    @cached_property
    def table(self) -> np.ndarray:
        """(total, L): every factorization, for exhaustive enumeration."""
        rows = np.zeros((1, 0), dtype=np.int64)
        states = np.array([self.start], dtype=np.int64)
        for l in range(self.levels - 1, -1, -1):
            weights = np.diff(self.cumulative[l][states], axis=1, prepend=0) > 0
            parent, pick = np.nonzero(weights)
            rows = np.concatenate([self.divisors[pick][:, None], rows[parent]], axis=1)
            states = self.quotient[states[parent], pick]
        return rows


class _Search(NamedTuple):
    """One sorted table for the draws of a run of dimensions at one level: each
    dimension's cumulative weights (TemporalFactors.cumulative), each row offset by a
    stride above any total, so that one search draws for rows at different divisors,
    and each dimension's values above the last one's."""

    rows: slice  # the run's rows among the level's drawn dimensions
    table: np.ndarray
    base: np.ndarray  # (k, 1): each dimension's offset of values
    stride: np.ndarray  # (k, 1)
    first: np.ndarray  # (k, 1): each dimension's first entry in the table


class Factorizations:
    """The temporal factorizations of every dimension (a `TemporalFactors` each), drawn
    together for the sampler (sampling.py). Per level, every dimension's factor comes
    from one random call and one search of a table that stacks the dimensions' tables:
    a call per dimension made tens of thousands of small calls per search, as the
    sampler redraws a level's factors for the few rows that overflow. The random
    numbers are those the dimensions would draw one after another, and so are the
    factors.

    Arrays are (D, n): a row per dimension; a factor is an index into its dimension's
    divisors, `state` the divisor that the levels still to draw must multiply to."""

    def __init__(self, spaces: Sequence[TemporalFactors]) -> None:
        self.spaces = tuple(spaces)
        self.start = np.array([s.start for s in spaces], dtype=np.int64)
        self._sizes = np.array([len(s.divisors) for s in spaces], dtype=np.int64)
        self._offset = (np.cumsum(self._sizes) - self._sizes)[:, None]  # of each dimension's rows in the stacks
        self._square_offset = (np.cumsum(self._sizes ** 2) - self._sizes ** 2)[:, None]
        self._divisors = np.concatenate([s.divisors for s in spaces])
        self._quotient = np.concatenate([s.quotient.ravel() for s in spaces])
        levels = spaces[0].levels if spaces else 0
        self._smallest = [np.concatenate([s.smallest[l] for s in spaces]) for l in range(levels)]
        self._totals = [np.concatenate([s.cumulative[l][:, -1] for s in spaces]) for l in range(levels)]
        # Level 0 takes what is left, and a level whose factor must be 1 takes 1: no draw.
        self._drawn = [np.array([d for d, s in enumerate(spaces) if l > 0 and not s.only_one[l]], dtype=np.int64)
                       for l in range(levels)]
        self._searches = [self._stacked(l) for l in range(levels)]

    def _stacked(self, l: int) -> list[_Search]:
        """Level l's searches, one per run of drawn dimensions; a run ends before its
        values would reach `_STACK_LIMIT`."""
        searches, run, top = [], [], 0
        for i, d in enumerate(self._drawn[l].tolist()):
            stride = int(self.spaces[d].cumulative[l][:, -1].max()) + 1
            span = int(self._sizes[d]) * stride
            if run and top + span >= _STACK_LIMIT:
                searches.append(self._search(l, run))
                run, top = [], 0
            run.append((i, d, top, stride))
            top += span
        return searches + ([self._search(l, run)] if run else [])

    def _search(self, l: int, run: list[tuple[int, int, int, int]]) -> _Search:
        """The search of a run of (row among `_drawn[l]`, dimension, base, stride)."""
        tables = [(self.spaces[d].cumulative[l] + np.arange(self._sizes[d])[:, None] * stride + base).ravel()
                  for _, d, base, stride in run]
        sizes = np.array([len(t) for t in tables], dtype=np.int64)
        base, stride = (np.array(values, dtype=np.int64)[:, None] for values in list(zip(*run))[2:])
        return _Search(slice(run[0][0], run[-1][0] + 1), np.concatenate(tables), base, stride,
                       (np.cumsum(sizes) - sizes)[:, None])

    def draw(self, l: int, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Level l's factor of each row, weighted by the completions of each (the draw
        is uniform over the factorizations, `TemporalFactors`)."""
        if l == 0:  # the outermost level takes what is left
            return state.copy()
        picks = np.zeros_like(state)
        drawn = self._drawn[l]
        left = state[drawn]
        totals = self._totals[l][self._offset[drawn] + left]
        target = (rng.random(left.shape) * totals).astype(np.int64)  # uniform in [0, total)
        sizes = self._sizes[drawn][:, None]
        for rows, table, base, stride, first in self._searches[l]:
            found = np.searchsorted(table, (base + left[rows] * stride + target[rows]).ravel(), side="right")
            picks[drawn[rows]] = found.reshape(-1, left.shape[1]) - first - left[rows] * sizes[rows]
        return picks

    def smallest(self, l: int, state: np.ndarray) -> np.ndarray:
        """Level l's smallest factor that the outer levels can still complete."""
        return self._smallest[l][self._offset + state]

    def divisors(self, picks: np.ndarray) -> np.ndarray:
        """The factors that `picks` index."""
        return self._divisors[self._offset + picks]

    def quotient(self, state: np.ndarray, picks: np.ndarray) -> np.ndarray:
        """What the levels above must multiply to once a level takes `picks`."""
        return self._quotient[self._square_offset + state * self._sizes[:, None] + picks]
