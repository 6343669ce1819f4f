"""The search's last step: a local search over whole mappings from the best ones the
trials found, so that the answer does not depend on which structures the trials
happened to try.

A trial scores tilings of one structure (its loop orders, spatial unrolling and keep
table stay fixed), and the structure moves of the search are Optuna trials of a few
milliseconds each. Where good mappings differ from the trials' best in several of
those choices at once (a 128 x 128 array is busy only when both of its unrollings
change together with the tiles), the trials rarely get there, and which local optimum
they end in depends on the seed. Here every part of a mapping moves in the vectorized
model's batches, at microseconds a mapping: a prime factor of a dimension from one
loop to another (temporal or spatial, across levels and fan-outs), two iterating loops
of a level swapped, a free keep flag flipped; a child takes one to three such moves
(a factor traded between two dimensions of an unrolling is two). The elite, the best
mappings so far, breeds children for as long as rounds keep improving it.

Measured with benchmarks/bench_seeds.py, the spread of the best EDP over seeds 0-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..factorize import prime_factors
from ..mapspace import Mapspace
from ..model.batch import MappingBatch
from .objectives import Objective
from .tilings import Scored, retiled, score


@dataclass(frozen=True)
class PolishEffort:
    elite: int = 32  # best mappings kept
    per_unrolling: int = 4  # of them at most this many with one spatial unrolling
    unrollings: int = 64  # the busiest unrollings, where the best mappings start too and children jump
    children: int = 64  # children of each elite mapping per round
    patience: int = 15  # rounds in a row that do not better the best value end it
    rounds: int = 300  # at most, per local search
    restarts: int = 6  # independent local searches at most
    min_improvement: float = 1e-4  # a round that betters the best value by less does not count


def polish(mapspace: Mapspace, start: Scored, objective: Objective, effort: PolishEffort,
           rng: np.random.Generator) -> tuple[Scored, int]:
    """The best mappings after local searches from `start` (module docstring), best
    first, and how many mappings were scored. Independent local searches from the same
    start end in different local optima; they run until two of them agree on the best
    value (within `min_improvement`), or `effort.restarts` have run."""
    moves = Moves(mapspace, effort.unrollings)
    begin = _elite(start.unique(), objective, effort)
    unrolled, scored = score(mapspace, _unrolled(mapspace, begin.batch.take(slice(0, 4)), 16))
    begin = _elite(Scored.concatenate([begin, unrolled]).unique(), objective, effort)
    ends: list[Scored] = []
    for _ in range(effort.restarts if len(begin) else 0):
        end, count = _local_search(mapspace, moves, begin, objective, effort, rng)
        scored += count
        ends.append(end)
        if objective != "pareto" and _agreed(ends, objective, effort.min_improvement):
            break
    found = Scored.concatenate(ends or [begin]).unique()
    return _elite(found, objective, effort), scored


def _agreed(ends: list[Scored], objective: Objective, tolerance: float) -> bool:
    values = sorted(float(end.scores.value(objective)[0]) for end in ends)
    return len(values) >= 2 and values[1] <= values[0] * (1 + tolerance)


def _local_search(mapspace: Mapspace, moves: Moves, elite: Scored, objective: Objective, effort: PolishEffort,
                  rng: np.random.Generator) -> tuple[Scored, int]:
    """Rounds of children of the elite, until `effort.patience` rounds in a row do not
    better its best."""
    scored, stale = 0, 0
    for _ in range(effort.rounds):
        children, count = score(mapspace, moves.children(elite.batch, effort.elite * effort.children, rng))
        scored += count
        improved = _elite(Scored.concatenate([elite, children]).unique(), objective, effort)
        stale = 0 if _better(improved, elite, objective, effort.min_improvement) else stale + 1
        elite = improved
        if stale >= effort.patience:
            break
    return elite, scored


def _unrolled(mapspace: Mapspace, best: MappingBatch, count: int) -> MappingBatch:
    """Each of `best` under each of the `count` busiest spatial unrollings, its temporal
    factors adjusted to them (tilings.retiled)."""
    sx, sy = mapspace.busiest_unrollings(count)
    n, k = len(best), len(sx)
    picked = best.take(np.tile(np.arange(n), k))
    return retiled(MappingBatch(picked.order, picked.temporal, np.repeat(sx, n, axis=0), np.repeat(sy, n, axis=0),
                                picked.spatial_order, picked.keep), mapspace.bounds)


def _elite(pool: Scored, objective: Objective, effort: PolishEffort) -> Scored:
    """The best of `pool` (pareto: its front), with at most `effort.per_unrolling` of
    one spatial unrolling, so that unrollings that need a few moves to pay off survive
    the rounds until they do."""
    if objective == "pareto":
        return pool.select(objective, effort.elite)
    ranked = np.argsort(pool.scores.value(objective), kind="stable")
    b = pool.batch
    niche = b.keep.reshape(len(pool), -1)
    _, group = np.unique(niche[ranked], axis=0, return_inverse=True)
    taken: dict[int, int] = {}
    kept = []
    for row, g in zip(ranked, group.reshape(-1)):
        if taken.get(g, 0) < effort.per_unrolling:
            taken[g] = taken.get(g, 0) + 1
            kept.append(row)
            if len(kept) == effort.elite:
                break
    return pool.take(np.array(kept, dtype=np.int64))


def _better(new: Scored, old: Scored, objective: Objective, min_improvement: float) -> bool:
    if objective == "pareto":  # a front improves when it changes
        return not np.array_equal(new.scores.keys, old.scores.keys)
    return bool(new.scores.value(objective)[0] < old.scores.value(objective)[0] * (1 - min_improvement))


class Moves:
    """The moves of the local search over one mapspace's mappings (module docstring)."""

    def __init__(self, mapspace: Mapspace, unrollings: int) -> None:
        self.L, self.D, self.bounds = mapspace.L, mapspace.D, mapspace.bounds
        self.busiest = mapspace.busiest_unrollings(unrollings)
        self.fanouts = [l for l in range(mapspace.L) if mapspace.fanouts[l] != (1, 1)]
        # The free keep flags: those that differ between the rows a level allows.
        rows = [np.array(mapspace.keep_rows(l), dtype=bool).reshape(-1, mapspace.T) for l in range(mapspace.L)]
        self.free_flags = np.array([(l, t) for l in range(mapspace.L) for t in range(mapspace.T)
                                    if len(rows[l]) and rows[l][:, t].min() != rows[l][:, t].max()],
                                   dtype=np.int64).reshape(-1, 2)

    def children(self, parents: MappingBatch, n: int, rng: np.random.Generator) -> MappingBatch:
        """n children, each of a random parent with one to three moves; those that break a
        constraint, capacity or fan-out are left for `score` to drop."""
        picked = parents.take(rng.integers(len(parents), size=n))
        child = MappingBatch(picked.order.copy(), picked.temporal.copy(), picked.spatial_x.copy(),
                             picked.spatial_y.copy(), picked.spatial_order, picked.keep.copy())
        moves = 1 + (rng.random(n) < 0.5) + (rng.random(n) < 0.25)
        for step in range(3):
            rows = np.flatnonzero(moves > step)
            kind = rng.random(len(rows))
            self._move_factor(child, rows[kind < 0.6], rng)
            self._swap_loops(child, rows[(kind >= 0.6) & (kind < 0.85)], rng)
            self._flip_keep(child, rows[(kind >= 0.85) & (kind < 0.95)], rng)
            self._unroll_anew(child, rows[kind >= 0.95], rng)
        return child

    def _unroll_anew(self, m: MappingBatch, rows: np.ndarray, rng: np.random.Generator) -> None:
        """The spatial unrolling replaced by one of the busiest, the temporal factors
        adjusted to it: a busier unrolling often differs in several factors at once, and
        each of them alone makes the mapping worse."""
        if not len(rows) or not len(self.busiest[0]):
            return
        pick = rng.integers(len(self.busiest[0]), size=len(rows))
        m.spatial_x[rows], m.spatial_y[rows] = self.busiest[0][pick], self.busiest[1][pick]
        m.temporal[rows] = retiled(m.take(rows), self.bounds).temporal

    def _move_factor(self, m: MappingBatch, rows: np.ndarray, rng: np.random.Generator) -> None:
        """A prime factor of one dimension from one loop to another: the loops are the
        temporal loop of every level and the X and Y loops of every fan-out."""
        if not len(rows):
            return
        fl = self.fanouts
        slots = np.concatenate([m.temporal[rows], m.spatial_x[rows][:, fl], m.spatial_y[rows][:, fl]], axis=1)
        n, S, _ = slots.shape
        index = np.arange(n)
        dim = rng.integers(self.D, size=n)
        movable = slots[index, :, dim] > 1  # (n, S)
        source = (rng.random((n, S)) * movable).argmax(axis=1)
        target = (source + rng.integers(1, S, size=n)) % S if S > 1 else source
        has_move = movable.any(axis=1) & (target != source)
        factors = slots[index, source, dim]
        prime = np.where(has_move, [_random_prime(int(f), u) for f, u in zip(factors, rng.random(n))], 1)
        slots[index, source, dim] //= prime
        slots[index, target, dim] *= prime
        F = len(fl)
        m.temporal[rows] = slots[:, :self.L]
        if F:
            m.spatial_x[rows[:, None], fl] = slots[:, self.L:self.L + F]
            m.spatial_y[rows[:, None], fl] = slots[:, self.L + F:]

    def _swap_loops(self, m: MappingBatch, rows: np.ndarray, rng: np.random.Generator) -> None:
        """Two iterating loops (factor above 1) of one level change places in its order."""
        if not len(rows):
            return
        n = len(rows)
        index = np.arange(n)
        order = m.order[rows]  # (n, L, D)
        live = np.take_along_axis(m.temporal[rows], order, axis=2) > 1  # (n, L, D), by position
        swappable = live.sum(axis=2) >= 2  # (n, L)
        level = (rng.random((n, self.L)) * swappable).argmax(axis=1)
        ok = swappable[index, level]
        weights = rng.random((n, self.D)) * live[index, level]  # two distinct live positions: the top two
        first, second = np.argsort(-weights, axis=1)[:, :2].T
        a, b = order[index, level, first], order[index, level, second]
        order[index, level, first] = np.where(ok, b, a)
        order[index, level, second] = np.where(ok, a, b)
        m.order[rows] = order

    def _flip_keep(self, m: MappingBatch, rows: np.ndarray, rng: np.random.Generator) -> None:
        """One free keep flag flipped: a level keeps a tensor it bypassed, or the reverse."""
        if not len(rows) or not len(self.free_flags):
            return
        l, t = self.free_flags[rng.integers(len(self.free_flags), size=len(rows))].T
        m.keep[rows, l, t] = ~m.keep[rows, l, t]


def _random_prime(factor: int, u: float) -> int:
    primes = prime_factors(factor)
    return primes[int(u * len(primes))] if primes else 1
