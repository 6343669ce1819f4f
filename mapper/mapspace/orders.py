"""The loop orders of each level of a mapspace, pruned so that no order that costs
the same as one kept is kept too.

A loop whose factor is 1 does nothing, so a dimension whose temporal factor at a
level is 1 in every allowed mapping (bound 1, or fixed to 1) is left out of that
level's orders (it sits innermost). The innermost storage level, when it feeds its
MACs without a fan-out, gets one order: each MAC reads its operands there whatever
the order, so no count depends on it (for the same reason Timeloop ignores order
constraints there, and so do we). Elsewhere two orders are the same when one becomes
the other by swapping adjacent loops A and B such that, for every tensor, either
neither A nor B indexes it (its tile sequence does not change) or both index it
through ranks of their own, with no sliding window (every step of either loop moves
the tile to a disjoint box, so each step refetches it whole in either order). A rank
counts as a sliding window at a level only if at least two of its dimensions can
have an extent above 1 there. Of each class the lexicographically least order is
kept (ordering dimensions by the order constraints first), which satisfies the order
constraints whenever any member does. `Mapspace.enumerate()` also prunes per tiling,
as Timeloop does: orders that differ only in loops whose factor is 1 in that tiling
are visited once.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..architecture import Architecture
from ..constraints import Constraints
from ..model.batch import MappingBatch
from ..problem import Problem


class LoopOrders:
    """The loop orders of every level of one layer's mapspace, pruned (module
    docstring), and the checks of the order constraints. `hi`: the largest factor
    each slot may take (Mapspace's factor bounds); `ranks`: per tensor, per rank, its
    dimensions' indices and coefficients. Contradictory order constraints are listed
    in `reasons`."""

    def __init__(self, problem: Problem, arch: Architecture, constraints: Constraints, hi: dict[str, np.ndarray],
                 ranks: list[list[tuple[np.ndarray, np.ndarray]]]) -> None:
        self.problem, self.arch, self.constraints, self.hi, self.ranks = problem, arch, constraints, hi, ranks
        self.L, self.D = len(arch.levels), len(problem.dims)
        self.fanouts = arch.fanouts()
        self.reasons: list[str] = []
        self._primary: dict[tuple[int, int], np.ndarray] = {}
        self.keys = [self._order_keys(l) for l in range(self.L)]

    def _order_keys(self, l: int) -> np.ndarray:
        """Per dimension, its rank under the level's order constraints: the loops of a
        valid order, ignoring unit ones, have non-decreasing keys (outermost first)."""
        lc = self.constraints.level(self.arch.levels[l].name)
        middle = len(lc.outermost)
        keys = np.full(self.D, middle, dtype=np.int64)
        if self._order_is_free(l):
            return keys
        for j, dim in enumerate(lc.outermost):
            keys[self.problem.dims.index(dim)] = j
        for j, dim in enumerate(lc.innermost):
            d = self.problem.dims.index(dim)
            if dim in lc.outermost:
                self.reasons.append(f"the constraints put {dim} both innermost and outermost at "
                                     f"{self.arch.levels[l].name}")
            keys[d] = middle + 1 + j
        return keys

    def choices(self, l: int) -> list[tuple[int, ...]]:
        """The orders of level l (dimension indices, outermost first) after pruning."""
        return self._choices[l]

    @cached_property
    def _choices(self) -> list[list[tuple[int, ...]]]:
        return [self._level_orders(l) for l in range(self.L)]

    def _unit_dims(self, l: int) -> list[int]:
        """Dimensions whose temporal factor at level l is 1 in every allowed mapping."""
        return [d for d in range(self.D) if self.hi["t"][l, d] == 1]

    def _order_is_free(self, l: int) -> bool:
        """The innermost level feeding its MACs without a fan-out: each MAC reads its
        operands there whatever the order, so no count depends on it (Timeloop too
        ignores order constraints there)."""
        return l == self.L - 1 and self.fanouts[l] == (1, 1)

    def _level_orders(self, l: int) -> list[tuple[int, ...]]:
        units = self._unit_dims(l)
        free = [d for d in range(self.D) if d not in units]
        keys = self.keys[l]
        letters = sorted(free, key=lambda d: (keys[d], d))
        if self._order_is_free(l):
            return [tuple(letters + units)]
        commute = self._commutation(l)
        return [tuple(order) + tuple(units) for order in normal_forms(letters, keys, commute)]

    def _commutation(self, l: int) -> np.ndarray:
        """(D, D): adjacent loops at level l that can swap without changing any count
        (module docstring)."""
        extent_one = np.all((self.hi["t"][l:] == 1) & (self.hi["x"][l:] == 1) & (self.hi["y"][l:] == 1), axis=0)
        commute = np.ones((self.D, self.D), dtype=bool)
        for ranks in self.ranks:
            relevant = np.zeros(self.D, dtype=bool)
            plain = np.ones(self.D, dtype=bool)
            for dims, _ in ranks:
                live = [d for d in dims if not extent_one[d]]
                relevant[live] = True
                if len(live) > 1:
                    plain[live] = False
            plain &= relevant
            neither = ~relevant[:, None] & ~relevant[None, :]
            both_plain = plain[:, None] & plain[None, :]
            commute &= neither | both_plain
        return commute

    def allowed(self, batch: MappingBatch) -> np.ndarray:
        """(B,) whether each mapping's orders meet the order constraints (loops of factor 1 aside)."""
        ok = np.ones(len(batch), dtype=bool)
        for l in range(self.L):
            ok &= self.allowed_at(batch, l)
        return ok

    def allowed_at(self, batch: MappingBatch, l: int) -> np.ndarray:
        """(B,) whether each mapping's order at level l meets its order constraints."""
        keys = self.keys[l]
        free = self.hi["t"][l] > 1
        if len(set(keys[free])) < 2:  # the constraints cannot tell the level's loops apart
            return np.ones(len(batch), dtype=bool)
        order = batch.order[:, l, :]
        seq = keys[order]
        live = np.take_along_axis(batch.temporal[:, l, :], order, axis=1) > 1
        masked = np.where(live, seq, -1)
        before = np.maximum.accumulate(np.concatenate([np.full((len(batch), 1), -1), masked[:, :-1]], axis=1),
                                       axis=1)
        return np.all(~live | (seq >= before), axis=1)

    def spatial_order(self, l: int) -> tuple[int, ...]:
        """The order of the spatial loops below level l: the constrained ones first."""
        listed = [self.problem.dims.index(d) for d in self.constraints.level(self.arch.levels[l].name).spatial_order]
        return tuple(listed + [d for d in reversed(range(self.D)) if d not in listed])

    def first_of_equal(self, temporal: np.ndarray, choice: list[np.ndarray]) -> np.ndarray:
        """Rows whose loop order at every level is the first choice equal to it once the
        loops with factor 1 in that row are dropped (Timeloop's per-tiling pruning)."""
        ok = np.ones(len(temporal), dtype=bool)
        weights = 1 << np.arange(self.D, dtype=np.int64)
        for l in range(self.L):
            units = (temporal[:, l, :] == 1) @ weights
            for mask in np.unique(units):
                rows = units == mask
                ok[rows] &= self._primary_orders(l, int(mask))[choice[l][rows]]
        return ok

    def _primary_orders(self, l: int, unit_mask: int) -> np.ndarray:
        cache = self._primary
        if (l, unit_mask) not in cache:
            commute = self._commutation(l)
            seen: set[tuple[int, ...]] = set()
            first = []
            for order in self.choices(l):
                live = [d for d in order if not (unit_mask >> d) & 1]
                form = normal_form(live, commute)
                first.append(form not in seen)
                seen.add(form)
            cache[(l, unit_mask)] = np.array(first, dtype=bool)
        return cache[(l, unit_mask)]


def normal_forms(letters: list[int], keys: np.ndarray, commute: np.ndarray) -> list[list[int]]:
    """The lexicographically least order (letters ranked as listed) of every class of
    orders equal up to swaps of adjacent commuting loops, among those whose keys do not
    decrease. An order is least iff no letter could move left past a greater one it
    commutes with, together with everything in between (Anisimov and Knuth, 1979)."""
    rank = {d: i for i, d in enumerate(letters)}
    found: list[list[int]] = []

    def extend(seq: list[int], rest: list[int]) -> None:
        if not rest:
            found.append(seq)
            return
        for y in rest:
            if seq and keys[y] < keys[seq[-1]]:
                continue
            if _could_move_left(seq, y, rank, commute):
                continue
            extend(seq + [y], [r for r in rest if r != y])

    extend([], list(letters))
    return found


def _could_move_left(seq: list[int], y: int, rank: dict[int, int], commute: np.ndarray) -> bool:
    for k in range(len(seq) - 1, -1, -1):
        if not commute[seq[k], y]:
            return False
        if rank[y] < rank[seq[k]]:
            return True
    return False


def normal_form(order: list[int], commute: np.ndarray) -> tuple[int, ...]:
    """A canonical member of the class of `order` (its least, ranking letters by index)."""
    rest, form = list(order), []
    while rest:
        movable = [k for k in range(len(rest)) if all(commute[rest[j], rest[k]] for j in range(k))]
        k = min(movable, key=lambda i: rest[i])
        form.append(rest.pop(k))
    return tuple(form)
