"""The mapspace of one layer on one architecture: every mapping the constraints allow.

A mapping is a *structure* (loop order per level, spatial unrolling on every fan-out,
which tensors each level keeps) plus a *tiling* (the temporal factor of every
dimension at every level). The search picks structures and lets `sample_tilings`
propose thousands of tilings for each, which the vectorized model scores at once.

Sub-spaces, as Timeloop reports them (`sizes()`):

- factorizations: every way to split each dimension's bound into a product of
  temporal factors (one per level) and spatial factors (X and Y on every fan-out),
  within the factor constraints, with each fan-out's X (Y) factors multiplying to at
  most its width (height), and the minimum PE utilization met. Capacity is not
  applied here: it depends on what each level keeps.
- spatial: how many distinct spatial unrollings those factorizations use.
- permutations: the product over levels of the loop orders kept (`permutation_choices`).
- bypass: the keep tables kept (`keep_choices`).
- total: factorizations x permutations x bypass.

Pruning, each rule safe (no mapping with a different cost is lost):

- Loop orders (orders.py): one order of each class of orders that cost the same.
- Keep tables (keeps.py): a level's row that keeps tiles which cannot fit it even at
  their smallest (the smallest tiles the factor constraints allow) is dropped.

Mapspace puts together the parts, each readable alone: the factor bounds and one
dimension's factor tables (factors.py), the loop orders (orders.py), the spatial
unrollings (spatial.py), the tiles and capacities (capacity.py), the keep tables
(keeps.py), the sampling of tilings (sampling.py), the check that constraints name
what the layer has (applicable.py); it adds the enumeration and the reasons why
nothing fits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from math import ceil, prod

import numpy as np

from ..architecture import Architecture
from ..constraints import Constraints
from ..model.batch import MappingBatch
from ..problem import Problem
from ..specs.errors import SpecError
from ..specs.limits import MAX_ENUMERATED_KEEP_TABLES
from .applicable import check_names
from .capacity import Capacities
from .factors import SLOTS, DimensionFactors, FactorBounds, Factorizations, TemporalFactors
from .keeps import KeepTables
from .orders import LoopOrders
from .sampling import draw_tilings
from .spatial import Grid, SpatialUnrollings, fanout_levels


_FIT_CHUNK = 1024  # spatial unrollings tried at once for a fitting start (the busiest usually fits)


@dataclass(frozen=True)
class Structure:
    """Everything of a mapping but its temporal factors, as in one `MappingBatch` row:
    `order[l]` (a permutation of the dimension indices, outermost first),
    `spatial_x[l][d]`, `spatial_y[l][d]`, `spatial_order[l]` (L x D) and `keep[l][t]`
    (L x T)."""

    order: Grid
    spatial_x: Grid
    spatial_y: Grid
    spatial_order: Grid
    keep: tuple[tuple[bool, ...], ...]


class NoValidMapping(Exception):
    """No mapping satisfies the constraints, the capacities and the fan-outs; `reasons`
    says which rule rules out what, one sentence each. `headline` says it in a few
    words (a subclass may know less: that a search found none)."""

    headline = "no valid mapping"

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(f"{self.headline}: " + "; ".join(reasons))


class Mapspace:
    """The mapspace of `problem` on `arch` under `constraints` (module docstring)."""

    def __init__(self, problem: Problem, arch: Architecture, constraints: Constraints | None = None) -> None:
        self.problem, self.arch = problem, arch
        self.constraints = (constraints or Constraints()).resolve(problem, arch)
        check_names(self.constraints, problem, arch)
        self.L, self.D, self.T = len(arch.levels), len(problem.dims), len(problem.tensors)
        self.bounds = np.array([problem.bounds[d] for d in problem.dims], dtype=np.int64)
        self.fanouts = arch.fanouts()
        self.fanout_levels = fanout_levels(self.fanouts)  # the levels with a fan-out below them
        self.capacity = Capacities(problem, arch)
        self.usable = self.capacity.usable  # per level, in the unit of its widths
        self.factor_bounds = FactorBounds(problem, arch, self.constraints)
        self.lo, self.hi = self.factor_bounds.lo, self.factor_bounds.hi
        self.orders = LoopOrders(problem, arch, self.constraints, self.hi, self.capacity.ranks)
        self._dims = [DimensionFactors(int(self.bounds[d]), d, self.lo, self.hi, self.fanout_levels,
                                       f"layer {problem.name!r}, dimension {problem.dims[d]}") for d in range(self.D)]
        self._drawn: dict[tuple[int, ...], Factorizations] = {}  # by what the spatial factors leave of the bounds
        self.keeps = KeepTables(problem, arch, self.constraints, self._min_held, self.usable)
        self._reasons = self.factor_bounds.reasons + self.keeps.reasons + self.orders.reasons
        needed = self.constraints.min_utilization
        self.min_used_macs = 0 if needed is None else ceil(needed * arch.compute.instances - 1e-9)
        self.spatial = SpatialUnrollings(self.bounds, self.fanouts, self._dims, self.lo, self.hi, self.min_used_macs)

    # ------------------------------------------------------------------ public

    def sizes(self) -> dict[str, int]:
        spatial, factorizations = self.spatial.count()
        permutations = prod(len(self.permutation_choices(l)) for l in range(self.L))
        bypass = self.keeps.count()
        return {"factorizations": factorizations, "permutations": permutations, "spatial": spatial,
                "bypass": bypass, "total": factorizations * permutations * bypass}

    def check(self) -> None:
        """Raise NoValidMapping, with every reason found, if no mapping can satisfy the
        constraints, the capacities and the fan-outs together."""
        # Most specific first: a broken rule hides what it breaks downstream.
        reasons = list(dict.fromkeys(self._reasons + self._fanout_reasons()))
        if not reasons:
            reasons = self._dimension_reasons()
        if not reasons:
            reasons = self._capacity_reasons() + self._utilization_reasons()
        if not reasons and (not all(self.keeps.rows) or self.spatial.count()[1] == 0):
            reasons = ["no split of the dimensions over the levels and fan-outs meets the constraints together"]
        if not reasons and self.fitting_start() is None and self._smallest_tiles_are_least():
            reasons = ["every spatial unrolling the constraints allow overflows a buffer even with the smallest "
                       "tiles and the fewest tensors kept"]
        if reasons:
            raise NoValidMapping(reasons)

    def fitting_start(self) -> MappingBatch | None:
        """One mapping that fits, if the smallest tiles of some structure do (None if
        not): a first structure for a search, so that even a search of one trial finds
        a valid mapping. Of the spatial unrollings, the busiest comes first; of the keep
        tables, the one that keeps the most at every level, else the one that keeps the
        least; the first loop orders (they satisfy the order constraints); and each
        dimension's smallest tiles (`TemporalFactors.smallest_tiles`). With no factor
        constraint on the temporal loops below the outermost level, those tiles are the
        least every level can hold, so None means that no mapping fits (`check`)."""
        return self._fitting_start

    @cached_property
    def _fitting_start(self) -> MappingBatch | None:
        if not all(self.keeps.rows):
            return None
        picks = self._busiest_first
        most = tuple(max(rows, key=sum) for rows in self.keeps.rows)
        least = tuple(min(rows, key=sum) for rows in self.keeps.rows)
        keeps = np.array(list(dict.fromkeys((most, least))), dtype=bool)  # (K, L, T)
        orders = np.array([self.permutation_choices(l)[0] for l in range(self.L)], dtype=np.int64)
        for start in range(0, len(picks), _FIT_CHUNK):
            sx, sy = self.spatial.arrays(picks[start:start + _FIT_CHUNK])
            temporal = self._smallest_tiles(sx * sy)
            n, k = len(sx), len(keeps)  # each unrolling with each keep table, in turn
            batch = _rows_of(orders, np.repeat(temporal, k, axis=0), np.repeat(sx, k, axis=0),
                             np.repeat(sy, k, axis=0), self._spatial_order, np.tile(keeps, (n, 1, 1)))
            fits = np.flatnonzero(self.valid(batch))
            if len(fits):
                return batch.take(fits[:1])
        return None

    def busiest_unrollings(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(spatial_x, spatial_y), each (n, L, D): the `count` spatial unrollings of
        `spatial_combinations` that keep the most MACs busy, busiest first (ties in
        their order there)."""
        return self.spatial.arrays(self._busiest_first[:count])

    @cached_property
    def _busiest_first(self) -> np.ndarray:
        """The picks of `spatial_combinations`, those that keep the most MACs busy first
        (ties in their order there)."""
        picks, busy = self.spatial.picks()
        return picks[np.argsort(-busy, kind="stable")]

    def _smallest_tiles(self, spatial: np.ndarray) -> np.ndarray:
        """(n, L, D): the temporal factors of the smallest tiles (`TemporalFactors.
        smallest_tiles`) completing n spatial unrollings (n, L, D)."""
        remaining = self.bounds // np.prod(spatial, axis=1)
        temporal = np.empty_like(spatial)
        for d in range(self.D):
            values, where = np.unique(remaining[:, d], return_inverse=True)
            table = np.array([self._dims[d].temporal(int(v)).smallest_tiles for v in values], dtype=np.int64)
            temporal[:, :, d] = table[where.reshape(-1)]
        return temporal

    def _smallest_tiles_are_least(self) -> bool:
        """Whether `_smallest_tiles` gives every level its least tile: no temporal factor
        below the outermost level has a minimum, and the outermost may take everything."""
        return bool(np.all(self.lo["t"][1:] == 1) and np.all(self.hi["t"][0] == self.bounds))

    def permutation_choices(self, level: int) -> list[tuple[int, ...]]:
        """Loop orders of `level` (dimension indices, outermost first) after pruning
        (module docstring)."""
        return self.orders.choices(level)

    def spatial_choices(self, level: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """(X factor per dimension, Y factor per dimension) on the fan-out below
        `level`, within its constraints and its mesh; one choice of ones where nothing
        fans out. Which choices combine across several fan-outs: `spatial_combinations`."""
        return self.spatial.choices(level)

    def keep_choices(self) -> list[tuple[tuple[bool, ...], ...]]:
        """Keep tables (L x T) the architecture's `keeps` and the constraints allow; the
        outermost level keeps everything (module docstring for the pruning). Every
        combination of one `keep_rows` choice per level, in product order."""
        return self.keeps.tables

    def keep_rows(self, level: int) -> list[tuple[bool, ...]]:
        """Which tensors `level` may keep (one flag per tensor); the levels choose
        independently, so any row per level makes an allowed keep table."""
        return self.keeps.rows[level]

    def free_keep_flags(self) -> list[tuple[int, int]]:
        """(level, tensor) of every keep flag that the rows of its level leave free
        (some keep the tensor, some do not), outermost level first."""
        return [(l, t) for l in range(self.L) for t in range(self.T)
                if len({row[t] for row in self.keep_rows(l)}) > 1]

    def spatial_combinations(self) -> Iterator[tuple[Grid, Grid]]:
        """Every spatial unrolling of the whole architecture, (spatial_x, spatial_y) as
        L x D grids, whose factors leave every dimension a temporal factorization and
        keep at least `min_utilization` of the MACs busy; in the order of
        `spatial_choices`, the outermost fan-out varying slowest."""
        for row in self.spatial.picks()[0]:
            yield self.spatial.grids(row)

    def structure(self, orders: Sequence[Sequence[int]], spatial: Sequence[tuple[Sequence[int], Sequence[int]]],
                  keep: Sequence[Sequence[bool]]) -> Structure:
        """A Structure from one choice per level of `permutation_choices`,
        `spatial_choices` and one of `keep_choices`, with the spatial loops ordered as
        the constraints say (else in Timeloop's canonical order)."""
        return Structure(tuple(tuple(o) for o in orders), tuple(tuple(x) for x, _ in spatial),
                         tuple(tuple(y) for _, y in spatial), tuple(map(tuple, self._spatial_order.tolist())),
                         tuple(tuple(bool(k) for k in row) for row in keep))

    def tiling_count(self, structure: Structure) -> int:
        """How many temporal factorizations complete `structure` (0 if its spatial
        factors leave some dimension none, or break a fan-out or utilization rule)."""
        sx, sy = np.array(structure.spatial_x), np.array(structure.spatial_y)
        if not self.spatial.feasible(sx, sy):
            return 0
        return prod(space.total for space in self.temporal_factorizations(sx, sy))

    def sample_tilings(self, structure: Structure, n: int, rng: np.random.Generator) -> MappingBatch:
        """`n` temporal factorizations completing `structure`, each within the factor
        constraints, drawn so that nearly every row fits where anything fits
        (sampling.py; rows may still overflow: see `valid`). Empty when nothing
        completes the structure (`tiling_count` is 0). The arrays that every row
        shares (all but `temporal`) are read-only views."""
        sx, sy = np.array(structure.spatial_x, dtype=np.int64), np.array(structure.spatial_y, dtype=np.int64)
        if n <= 0 or not self.spatial.feasible(sx, sy):
            return self._rows(structure, np.ones((0, self.L, self.D), dtype=np.int64))
        checks = self.capacity.checks(sx * sy * self.lo["t"], np.array(structure.keep, dtype=bool))
        return self._rows(structure, draw_tilings(self._factorizations(sx, sy), sx * sy, checks, self.capacity, n,
                                                  rng))

    def _factorizations(self, sx: np.ndarray, sy: np.ndarray) -> Factorizations:
        """`temporal_factorizations` drawn together, made once per spatial unrolling's
        remainders."""
        remaining = tuple((self.bounds // np.prod(sx * sy, axis=0)).tolist())
        if remaining not in self._drawn:
            self._drawn[remaining] = Factorizations(self.temporal_factorizations(sx, sy))
        return self._drawn[remaining]

    def temporal_factorizations(self, sx: np.ndarray, sy: np.ndarray) -> list[TemporalFactors]:
        """Per dimension, the temporal factorizations of what the spatial unrolling
        (sx, sy) leaves of its bound over the levels, within the constraints' factor
        bounds: how many (`.total`) and, where few enough to list, each (`.table`)."""
        remaining = self.bounds // np.prod(sx * sy, axis=0)
        return [self._dims[d].temporal(int(remaining[d])) for d in range(self.D)]

    def enumerate(self, chunk: int = 65536, valid_only: bool = True) -> Iterator[MappingBatch]:
        """Every mapping of the pruned space once (module docstring), in batches of
        about `chunk`; with `valid_only`, only those that fit every level."""
        tables = self.keeps.count()
        if tables > MAX_ENUMERATED_KEEP_TABLES:
            raise SpecError(None, "--exhaustive", f"{tables:.3g} keep tables to list", f"at most "
                            f"{MAX_ENUMERATED_KEEP_TABLES:,} (mapper/specs/limits.py)",
                            "search without --exhaustive, or give levels `keeps:` lists")
        orders = [np.array(self.permutation_choices(l), dtype=np.int64) for l in range(self.L)]
        keeps = np.array(self.keep_choices(), dtype=bool).reshape(-1, self.L, self.T)
        pending: list[MappingBatch] = []
        size = 0
        for sx, sy in self.spatial_combinations():
            for batch in self._enumerate_tilings(np.array(sx), np.array(sy), orders, keeps, chunk, valid_only):
                pending.append(batch)
                size += len(batch)
                if size >= chunk:
                    yield MappingBatch.concatenate(pending)
                    pending, size = [], 0
        if size:
            yield MappingBatch.concatenate(pending)

    def valid(self, batch: MappingBatch) -> np.ndarray:
        """(B,) whether each mapping satisfies the constraints, fits every level's
        capacity and every fan-out, and splits each dimension exactly."""
        return self.allowed(batch) & self.capacity.fits(batch)

    def allowed(self, batch: MappingBatch) -> np.ndarray:
        """(B,) `valid` but for capacities and fan-outs, which the vectorized model
        checks as it scores (BatchEvaluation.valid): a search asks for this alone."""
        return self._allowed_apart_from_orders(batch) & self.orders.allowed(batch)

    def broken_constraints(self, mapping: MappingBatch) -> list[str]:
        """Each constraint that the one mapping of `mapping` breaks, in words (none: it
        meets them all), for `mapper evaluate` to say: `allowed`'s checks, but for the
        split of each dimension, which the mapping's loader checks (a remainder may
        overshoot a bound)."""
        broken = []
        for slot, where, picked, lo, hi in self._bounded_factors(mapping):
            for i, f, least, most in zip(where.tolist(), picked[0].tolist(), lo.tolist(), hi.tolist()):
                if not least <= f <= most:
                    l, d = divmod(i, self.D)
                    broken.append(f"{self.problem.dims[d]} {self.factor_bounds.slot_name(slot, l)}: a factor of {f}, "
                                  f"where the constraints allow {_factor_range(least, most)}")
        for l, level in enumerate(self.arch.levels):
            if not self.orders.allowed_at(mapping, l)[0]:
                rule = _order_rule(self.constraints, level.name)
                broken.append(f"the loop order at {level.name} ({_live_loops(mapping, l, self.problem.dims)}, "
                              f"outermost first) breaks its order constraints ({rule})")
        for l, k in zip(*np.nonzero(self.keeps.mismatched(mapping.keep)[0])):
            kept = bool(mapping.keep[0, l, k])
            broken.append(f"{self.arch.levels[l].name} {'keeps' if kept else 'bypasses'} "
                          f"{self.problem.tensors[k].name}, which it must {'bypass' if kept else 'keep'}")
        used = int(_used_macs(mapping)[0])
        if used < self.min_used_macs:
            broken.append(f"{used} of the {self.arch.compute.instances} MACs used, where min_utilization "
                          f"{self.constraints.min_utilization:g} needs {self.min_used_macs}")
        return broken

    def _allowed_apart_from_orders(self, batch: MappingBatch) -> np.ndarray:
        factors = batch.temporal * batch.spatial_x
        factors *= batch.spatial_y
        made = factors[:, 0].copy()
        for l in range(1, self.L):  # level by level: np.prod over the levels took twice as long
            made *= factors[:, l]
        ok = np.all(made == self.bounds, axis=1)
        for _, where, picked, lo, hi in self._bounded_factors(batch):
            ok &= np.all((picked >= lo) & (picked <= hi), axis=1)
        if self.min_used_macs:
            ok &= _used_macs(batch) >= self.min_used_macs
        return ok & self.keeps.allowed(batch.keep)

    def _bounded_factors(self, batch: MappingBatch) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray,
                                                                       np.ndarray]]:
        """Per kind of slot with factors the constraints bound (FactorBounds.bounded):
        the slot, its flat (l, d) indices, the batch's factors there (B, n), and the
        least and greatest each may be."""
        t, sx, sy = batch.temporal, batch.spatial_x, batch.spatial_y
        for slot, factors in (("t", t), ("x", sx), ("y", sy), ("xy", sx * sy)):
            where, lo, hi = self.factor_bounds.bounded[slot]
            if len(where):
                yield slot, where, factors.reshape(len(batch), -1)[:, where], lo, hi

    # ------------------------------------------------------------------ tiles

    @cached_property
    def _spatial_order(self) -> np.ndarray:
        """(L, D): the order of each fan-out's spatial loops (LoopOrders.spatial_order)."""
        return np.array([self.orders.spatial_order(l) for l in range(self.L)], dtype=np.int64)

    @cached_property
    def _min_extents(self) -> np.ndarray:
        """(L, D): the smallest extent of each dimension in the tile of each level that
        the factor constraints allow (a lower bound when fan-outs couple dimensions)."""
        return np.array([self._dims[d].min_extents for d in range(self.D)], dtype=np.int64).T

    @cached_property
    def _min_held(self) -> np.ndarray:
        """(L, T): what the smallest tile of each tensor takes of each level, in the
        level's unit (words, or bits where precisions differ)."""
        words = np.stack([self.capacity.words(self._min_extents, k) for k in range(self.T)], axis=1)
        return words * self.capacity.per_element

    # ------------------------------------------------------------------ enumeration

    def _enumerate_tilings(self, sx: np.ndarray, sy: np.ndarray, orders: list[np.ndarray], keeps: np.ndarray,
                           chunk: int, valid_only: bool) -> Iterator[MappingBatch]:
        """The mappings of one spatial unrolling: every (tiling, keep table) pair, then,
        for the pairs that fit, every combination of loop orders (fit does not depend
        on the order)."""
        tables = [space.table for space in self.temporal_factorizations(sx, sy)]
        radices = [len(t) for t in tables] + [len(keeps)]
        order_radices = [len(o) for o in orders]
        n_orders = prod(order_radices)
        total = prod(radices)
        if total * n_orders >= 2 ** 62:
            raise SpecError(None, "--exhaustive", f"{total * n_orders:.3g} mappings for one spatial unrolling",
                            "at most 2**62 to enumerate", "search without --exhaustive")
        first_orders = np.stack([o[0] for o in orders])
        for start in range(0, total, chunk):
            digits = _mixed_radix(np.arange(start, min(total, start + chunk), dtype=np.int64), radices)
            temporal = np.stack([tables[d][digits[d]] for d in range(self.D)], axis=2)  # (n, L, D)
            keep = keeps[digits[-1]]
            pairs = _rows_of(first_orders, temporal, sx, sy, self._spatial_order, keep)
            if valid_only:
                fits = self._allowed_apart_from_orders(pairs) & self.capacity.fits(pairs)
                temporal, keep = temporal[fits], keep[fits]
            step = max(1, chunk // n_orders)
            for first in range(0, len(temporal), step):
                part = slice(first, first + step)
                rows = len(temporal[part]) * n_orders
                choice = _mixed_radix(np.arange(rows, dtype=np.int64) % n_orders, order_radices)
                pair = np.arange(rows) // n_orders
                batch = _rows_of(np.stack([orders[l][choice[l]] for l in range(self.L)], axis=1),
                                 temporal[part][pair], sx, sy, self._spatial_order, keep[part][pair])
                ok = self.orders.first_of_equal(batch.temporal, choice)
                if valid_only:
                    ok &= self.orders.allowed(batch)
                if ok.any():
                    yield batch.take(ok)

    @staticmethod
    def _rows(structure: Structure, temporal: np.ndarray) -> MappingBatch:
        return _rows_of(np.array(structure.order, dtype=np.int64), temporal,
                        np.array(structure.spatial_x, dtype=np.int64), np.array(structure.spatial_y, dtype=np.int64),
                        np.array(structure.spatial_order, dtype=np.int64), np.array(structure.keep, dtype=bool))

    # ------------------------------------------------------------------ reasons

    def _dimension_reasons(self) -> list[str]:
        reasons = []
        for d, space in enumerate(self._dims):
            if not any(weight for _, weight in space.weighted_options):
                dim = self.problem.dims[d]
                listed = self._constraints_on(dim)
                reasons.append(f"no split of {dim} (bound {self.bounds[d]}) over the levels and fan-outs meets "
                               f"its constraints" + (f": {listed}" if listed else ""))
        return reasons

    def _constraints_on(self, dim: str) -> str:
        parts = []
        for l, level in enumerate(self.arch.levels):
            lc = self.constraints.level(level.name)
            for slot, table in zip(SLOTS, (lc.temporal, lc.spatial_x, lc.spatial_y, lc.spatial)):
                if dim in table:
                    parts.append(f"{dim}{table[dim]} {self.factor_bounds.slot_name(slot, l)}")
        return ", ".join(parts)

    def _fanout_reasons(self) -> list[str]:
        reasons = []
        for l in self.fanout_levels:
            for slot, axis, width in (("x", "X", self.fanouts[l][0]), ("y", "Y", self.fanouts[l][1])):
                least = self.lo[slot][l]
                if prod(int(v) for v in least) > width:
                    parts = " x ".join(f"{self.problem.dims[d]} {least[d]}" for d in range(self.D) if least[d] > 1)
                    reasons.append(f"the constraints put at least {prod(int(v) for v in least)} along {axis} below "
                                   f"{self.arch.levels[l].name} ({parts}); the fan-out {self.arch.fanout_name(l)} "
                                   f"has {width} along {axis}")
        return reasons

    def _capacity_reasons(self) -> list[str]:
        reasons = []
        forced = self.keeps.forced == 1
        for l, usable in enumerate(self.usable):
            if usable is None:
                continue
            kept = [k for k in range(self.T) if forced[l, k]]
            words = [int(self._min_held[l, k]) for k in kept]
            if sum(words) <= usable:
                continue
            name, unit = self.arch.levels[l].name, self.capacity.widths[l].unit
            if len(kept) == 1:
                k = kept[0]
                extents = " x ".join(f"{dim} {self._min_extents[l, d]}" for d, dim in enumerate(self.problem.dims)
                                     if self._min_extents[l, d] > 1 and dim in self.problem.tensors[k].dims)
                reasons.append(f"{name} holds {usable} {unit}; the smallest {self.problem.tensors[k].name} tile the "
                               f"constraints allow is {words[0]}" + (f" ({extents})" if extents else ""))
            else:
                parts = " + ".join(f"{self.problem.tensors[k].name} {w}" for k, w in zip(kept, words))
                reasons.append(f"{name} holds {usable} {unit}; the smallest tiles the constraints allow are "
                               f"{parts} = {sum(words)}")
        return reasons

    def _utilization_reasons(self) -> list[str]:
        if not self.min_used_macs:
            return []
        best_fit, example = 0, None
        for sx, sy in self.spatial_combinations():
            overflow = self._smallest_overflow(np.array(sx), np.array(sy))
            if overflow is None:
                return []
            used = prod(prod(x) * prod(y) for x, y in zip(sx, sy))
            if used > best_fit:
                best_fit, example = used, overflow
        macs = self.arch.compute.instances
        need = f"min_utilization {self.constraints.min_utilization} needs at least {self.min_used_macs} of {macs} MACs"
        if example is None:
            most = max(self.spatial.by_use, default=0)
            return [f"{need} busy; the constraints and fan-outs allow at most {most}"]
        return [f"{need} busy, and every spatial unrolling that busy overflows a buffer: e.g. with {best_fit} MACs "
                + f"busy, {example}"]

    def _smallest_overflow(self, sx: np.ndarray, sy: np.ndarray) -> str | None:
        """With this spatial unrolling and the smallest temporal tiles, the first level
        whose required tiles overflow it (None if all fit)."""
        spatial_inner = np.cumprod((sx * sy)[::-1], axis=0)[::-1]
        temporal_inner = np.array([space.min_suffix for space in self.temporal_factorizations(sx, sy)]).T
        extents = spatial_inner * temporal_inner
        forced = self.keeps.forced == 1
        for l, usable in enumerate(self.usable):
            if usable is None:
                continue
            held = sum(int(self.capacity.words(extents[l], k)) * int(self.capacity.per_element[l, k])
                       for k in range(self.T) if forced[l, k])
            if held > usable:
                unit = self.capacity.widths[l].unit
                return f"{self.arch.levels[l].name} holds {usable} {unit} but its tiles need at least {held}"
        return None


# ---------------------------------------------------------------------------
# Helpers


def _used_macs(batch: MappingBatch) -> np.ndarray:
    """(B,) the MACs each mapping's spatial factors keep busy."""
    return np.prod(batch.spatial_x * batch.spatial_y, axis=(1, 2))


def _factor_range(least: int, most: int) -> str:
    """Factors from `least` to `most`, in words; `most` below `least` where a factor
    constraint asks for more than the bound or fan-out holds."""
    if least == most:
        return f"exactly {least}"
    if least > most:
        return f"at least {least}"
    return f"at most {most}" if least == 1 else f"{least} to {most}"


def _live_loops(mapping: MappingBatch, l: int, dims: tuple[str, ...]) -> str:
    """Level l's temporal loops of the one mapping of `mapping`, outermost first, unit
    ones aside: "C4 P7"."""
    return " ".join(f"{dims[d]}{mapping.temporal[0, l, d]}" for d in mapping.order[0, l]
                    if mapping.temporal[0, l, d] > 1) or "none"


def _order_rule(constraints: Constraints, level: str) -> str:
    lc = constraints.level(level)
    rules = ([f"outermost {' '.join(lc.outermost)}"] if lc.outermost else []) + (
        [f"innermost {' '.join(lc.innermost)}"] if lc.innermost else [])
    return "; ".join(rules)


def _rows_of(order: np.ndarray, temporal: np.ndarray, sx: np.ndarray, sy: np.ndarray, spatial_order: np.ndarray,
             keep: np.ndarray) -> MappingBatch:
    """A batch with these temporal factors and keeps (n, ...), sharing the rest
    (broadcast, read-only) unless given per row."""
    n = len(temporal)

    def rows(a: np.ndarray) -> np.ndarray:
        return a if a.ndim == 3 else np.broadcast_to(a, (n, *a.shape))

    return MappingBatch(rows(order), temporal, rows(sx), rows(sy), rows(spatial_order), rows(keep))


def _mixed_radix(index: np.ndarray, radices: list[int]) -> list[np.ndarray]:
    """Digits of each index, the last radix varying fastest."""
    digits = []
    for radix in reversed(radices):
        digits.append(index % radix)
        index = index // radix
    return digits[::-1]
