"""The vectorized model: Timeloop's default semantics over a whole MappingBatch.

The reference path (nest.py) walks the loop nest like Timeloop does: every loop is
run at its iterations #0 and #1, the second standing for all the rest. That walk has
a closed form, which is what this module evaluates with numpy, for all mappings at
once:

- Seen from a child level c (its tile T, a box of each tensor), the temporal loops
  above it, innermost first, form a binary counter: the walk visits T first, then
  after each "increment" of loop j (which also resets the inner loops from #1 to #0)
  a tile translated by tau_j = s_j - sum of the strides of the non-unit loops inside
  j. Summed over the walk, the increments of loop j weigh (e_j - 1) x prod of the
  factors of the loops outside j: exactly how often loop j advances in the real run.
- What moves in at an increment is Timeloop's AAHR difference of T and T - tau_j,
  while the tile keeps moving by the same step as before; after a change of step it
  is the whole tile. The increment before any loop j's is always the innermost
  non-unit loop's (j1), so loop j keeps its residue only if it projects to the same
  step as j1.
- A spatial fan-out above c sees the same deltas in every instance, shifted by the
  instance's offset: a read serves every instance whose offset (hence delta) is the
  same (multicast), and a delta that a mesh neighbour received one step earlier can
  come from that neighbour instead (link transfer), chosen when it saves reads.

The accounting on top (partitions, bypass, peer transfers, reads / fills /
updates, energy, bandwidth-throttled cycles) is reference.py's, level by level over
arrays. tests/test_vectorized.py checks both paths agree on random mappings.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from ..architecture import Architecture
from ..problem import Problem
from .batch import BatchEvaluation, MappingBatch

TEMPORAL, SPATIAL_X, SPATIAL_Y = 0, 1, 2


@dataclass(frozen=True)
class Nest:
    """Every mapping's loop nest as slots, innermost first: per level (innermost
    level first) its X loops, its Y loops, then its temporal loops. Unit loops stay
    in their slots; they change nothing."""

    dim: np.ndarray  # (B, S) dimension index of each slot
    factor: np.ndarray  # (B, S)
    stride: np.ndarray  # (B, S) product of the factors of same-dimension slots inside
    kind: np.ndarray  # (S,) TEMPORAL, SPATIAL_X or SPATIAL_Y
    level: np.ndarray  # (S,) storage level the slot belongs to (outermost = 0)

    def take(self, rows: np.ndarray) -> "Nest":
        return Nest(self.dim[rows], self.factor[rows], self.stride[rows], self.kind, self.level)


def build_nest(batch: MappingBatch) -> Nest:
    B, L, D = batch.temporal.shape
    rows = np.arange(B)[:, None]
    # A dimension appears once per level and kind, so the stride of a loop (the
    # product of the same-dimension factors inside it) is the tile of the level
    # below times the level's own spatial factors inside the loop.
    below = np.ones((B, L, D), dtype=np.int64)
    below[:, :-1] = np.cumprod((batch.temporal * batch.spatial_x * batch.spatial_y)[:, :0:-1], axis=1)[:, ::-1]
    inside = {SPATIAL_X: below, SPATIAL_Y: below * batch.spatial_x,
              TEMPORAL: below * batch.spatial_x * batch.spatial_y}
    source = {SPATIAL_X: batch.spatial_x, SPATIAL_Y: batch.spatial_y, TEMPORAL: batch.temporal}
    dims, factors, strides, kinds, levels = [], [], [], [], []
    for l in reversed(range(L)):
        for kind in (SPATIAL_X, SPATIAL_Y, TEMPORAL):
            order = (batch.order if kind == TEMPORAL else batch.spatial_order)[:, l, ::-1]
            dims.append(order)
            factors.append(source[kind][:, l][rows, order])
            strides.append(inside[kind][:, l][rows, order])
            kinds += [kind] * D
        levels += [l] * (3 * D)
    return Nest(np.concatenate(dims, 1), np.concatenate(factors, 1), np.concatenate(strides, 1),
                np.array(kinds), np.array(levels))


def rank_coefficients(problem: Problem) -> list[np.ndarray]:
    """Per tensor, (ranks, D): the coefficient of each dimension in each rank."""
    index = {d: i for i, d in enumerate(problem.dims)}
    out = []
    for t in problem.tensors:
        c = np.zeros((len(t.ranks), len(problem.dims)), dtype=np.int64)
        for r, rank in enumerate(t.ranks):
            for coef, d in rank:
                c[r, index[d]] += coef
        out.append(c)
    return out


def rank_extents(coef: np.ndarray, extents: np.ndarray) -> np.ndarray:
    """(..., D) iteration extents -> (..., ranks) box widths of one tensor."""
    return (extents - 1) @ coef.T + 1


def aahr_delta_size(ext: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Elements of a box of widths `ext` not in the same box moved by -`shift`,
    Timeloop's way: a partial overlap counts only when one rank moved."""
    moved = shift != 0
    n_moved = moved.sum(-1)
    size = ext.prod(-1)
    along = np.where(moved, np.abs(shift), 0).sum(-1)
    width = np.where(moved, ext, 1).prod(-1)
    partial = (n_moved == 1) & (along < width)
    return np.where(n_moved == 0, 0, np.where(partial, size // np.maximum(width, 1) * along, size))


def aahr_delta_box(ext: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The delta of aahr_delta_size as a box (low, high) relative to the new tile."""
    moved = shift != 0
    n_moved = moved.sum(-1, keepdims=True)
    overlap = np.abs(shift) < ext
    partial = (n_moved == 1) & np.all(overlap | ~moved, axis=-1, keepdims=True)
    low = np.where(partial & moved & (shift > 0), ext - shift, 0)
    high = np.where(partial & moved & (shift < 0), -shift, ext)
    empty = n_moved == 0
    return np.where(empty, 0, low), np.where(empty, 0, high)


@dataclass
class LevelFlows:
    """What one storage level's children demand, per tensor, per parent instance."""

    accesses: np.ndarray  # (B,) reads from this level, a multicast counted once
    weighted: np.ndarray  # (B,) the same, a multicast counted once per destination
    links: np.ndarray  # (B,) deltas served by a mesh neighbour instead

    def where(self, rows: np.ndarray, other: "LevelFlows") -> "LevelFlows":
        """These flows with `other`'s in the given rows."""
        for name in ("accesses", "weighted", "links"):
            getattr(self, name)[rows] = getattr(other, name)
        return self


@dataclass(frozen=True)
class Walk:
    """The temporal loops above a child level, innermost first (J of them)."""

    tau: np.ndarray  # (B, J, D) translation of the child tile when loop j advances
    weight: np.ndarray  # (B, J) how often loop j advances over the whole run
    first: np.ndarray  # (B, J) the innermost non-unit loop
    factor: np.ndarray  # (B, J)

    def take(self, rows: np.ndarray) -> "Walk":
        return Walk(self.tau[rows], self.weight[rows], self.first[rows], self.factor[rows])


def temporal_walk(nest: Nest, above: np.ndarray, D: int) -> Walk:
    """Only non-unit loops matter (a unit loop never advances nor resets), so each
    mapping's are packed first, in order; the unit padding after them is inert."""
    slots = np.flatnonzero(above)
    e = nest.factor[:, slots]
    live = e >= 2
    J = max(int(live.sum(1).max(initial=0)), 1)
    pack = np.argsort(~live, axis=1, kind="stable")[:, :J]
    e = np.take_along_axis(e, pack, axis=1)
    dim = np.take_along_axis(nest.dim[:, slots], pack, axis=1)
    stride = np.where(e >= 2, np.take_along_axis(nest.stride[:, slots], pack, axis=1), 0)
    step = np.zeros((e.shape[0], J, D), dtype=np.int64)
    np.put_along_axis(step, dim[:, :, None], stride[:, :, None], axis=2)
    tau = step - (np.cumsum(step, axis=1) - step)  # inner loops reset from #1 to #0
    outside = np.cumprod(e[:, ::-1], axis=1)[:, ::-1] // e
    first = np.zeros(e.shape, dtype=bool)
    first[:, 0] = e[:, 0] >= 2
    return Walk(tau, (e - 1) * outside, first, e)


@dataclass(frozen=True)
class Calls:
    """Kinds of calls of a fan-out (C of them), each moving one delta after another:
    how many, what each moves (size and box relative to the tile), the box moved
    by the call before, and the tile's translation since then."""

    weight: np.ndarray  # (B, C)
    size: np.ndarray  # (B, C)
    low: np.ndarray  # (B, C, R)
    high: np.ndarray  # (B, C, R)
    prev_low: np.ndarray  # (B, C, R)
    prev_high: np.ndarray  # (B, C, R)
    tau: np.ndarray  # (B, C, R)
    linkable: np.ndarray  # (C,) False for the very first call, which has no call before


def evaluate_batch(problem: Problem, arch: Architecture, batch: MappingBatch,
                   link_transfers: bool = True) -> BatchEvaluation:
    return Evaluator(problem, arch, link_transfers).evaluate(batch)


class Evaluator:
    """Scores batches of mappings of one problem on one architecture."""

    def __init__(self, problem: Problem, arch: Architecture, link_transfers: bool = True):
        self.problem = problem
        self.arch = arch
        self.link_transfers = link_transfers
        self.coef = rank_coefficients(problem)
        self.D = len(problem.dims)
        self.bounds = np.array([problem.bounds[d] for d in problem.dims], dtype=np.int64)

    def evaluate(self, batch: MappingBatch) -> BatchEvaluation:
        nest = build_nest(batch)
        B, L, _ = batch.temporal.shape
        T = len(self.problem.tensors)
        factors = batch.temporal * batch.spatial_x * batch.spatial_y  # (B, L, D)
        extents = np.cumprod(factors[:, ::-1], axis=1)[:, ::-1]  # tile of level l: levels l.. innermost
        spatial = batch.spatial_x * batch.spatial_y
        run = spatial.prod(axis=2)  # (B, L) fan-out used below each level
        replication = np.cumprod(np.concatenate([np.ones((B, 1), np.int64), run[:, :-1]], axis=1), axis=1)
        temporal_slot = nest.kind == TEMPORAL
        flows = [[None] * T for _ in range(L)]
        for l in range(L):
            child = l + 1
            above = temporal_slot & (nest.level < child)
            walk = temporal_walk(nest, above, self.D)
            run_slots = np.flatnonzero((nest.kind != TEMPORAL) & (nest.level == l))
            for k in range(T):
                if child == L:
                    flows[l][k] = self.compute_flows(nest, walk, run_slots, k, l)
                else:
                    flows[l][k] = self.child_flows(nest, walk, run_slots, k, l, extents[:, child])
        return self.account(batch, flows, extents, run, replication, nest)

    def child_flows(self, nest: Nest, walk: Walk, run_slots: np.ndarray, k: int, l: int,
                    child_extents: np.ndarray) -> LevelFlows:
        coef = self.coef[k]
        ext = rank_extents(coef, child_extents)  # (B, R)
        size = ext.prod(-1)
        shift = walk.tau @ coef.T  # (B, J, R)
        first_shift = (shift * walk.first[:, :, None]).sum(1)  # (B, R): the innermost non-unit loop's
        same = np.all(shift == first_shift[:, None, :], axis=-1)
        delta = np.where(same, aahr_delta_size(ext[:, None, :], shift), size[:, None])
        per_state = (size + (walk.weight * delta).sum(1)).astype(float)
        flows = LevelFlows(per_state, per_state.copy(), np.zeros(len(size)))
        spread = np.flatnonzero((nest.factor[:, run_slots] > 1).any(1)) if run_slots.size else []
        if not len(spread):
            return flows
        nest, walk, ext, size, shift = nest.take(spread), walk.take(spread), ext[spread], size[spread], shift[spread]
        first_shift, same, delta = first_shift[spread], same[spread], delta[spread]
        # The walk as kinds of calls, each with the delta it moves in and the one before:
        # the first call; the first loop's after the first call; loop j's after the
        # first loop's; the first loop's after loop j's.
        J = shift.shape[1]
        zero = np.zeros_like(ext)
        first_lo, first_hi = aahr_delta_box(ext, first_shift)
        first_size = aahr_delta_size(ext, first_shift)
        lo, hi = aahr_delta_box(ext[:, None, :], shift)
        lo = np.where(same[:, :, None], lo, 0)
        hi = np.where(same[:, :, None], hi, ext[:, None, :])
        e1 = np.maximum((walk.factor * walk.first).sum(1), 1)
        outer = ~walk.first & (np.cumsum(walk.first, 1) > 0)
        w = np.where(outer, walk.weight, 0)

        def stack(first, after_first, loop_j, first_again):
            rep = lambda a: np.repeat(a[:, None], J, axis=1)
            return np.concatenate([first[:, None], after_first[:, None], loop_j, rep(first_again)], axis=1)

        calls = Calls(
            weight=stack(np.ones_like(size), e1 - 1, w, np.zeros_like(size)),
            size=stack(size, first_size, delta, first_size),
            low=stack(zero, first_lo, lo, first_lo), high=stack(ext, first_hi, hi, first_hi),
            prev_low=stack(zero, zero, np.repeat(first_lo[:, None], J, 1), zero),
            prev_high=stack(zero, ext, np.repeat(first_hi[:, None], J, 1), zero),
            tau=stack(zero, first_shift, shift, first_shift),
            linkable=np.array([False] + [True] * (1 + 2 * J)))
        calls.weight[:, 2 + J:] = w * (e1 - 1)[:, None]
        calls.prev_low[:, 2 + J:] = lo
        calls.prev_high[:, 2 + J:] = hi
        return flows.where(spread, self.spatial_flows(nest, run_slots, k, l, calls))

    def compute_flows(self, nest: Nest, walk: Walk, run_slots: np.ndarray, k: int, l: int) -> LevelFlows:
        """The MACs read one operand per iteration: no reuse in time."""
        iterations = walk.factor.prod(1).astype(float)
        flows = LevelFlows(iterations, iterations.copy(), np.zeros(len(iterations)))
        spread = np.flatnonzero((nest.factor[:, run_slots] > 1).any(1)) if run_slots.size else []
        if not len(spread):
            return flows
        nest, walk, iterations = nest.take(spread), walk.take(spread), iterations[spread]
        shift = walk.tau @ self.coef[k].T  # (B, J, R)
        B, J, R = shift.shape
        tau = np.concatenate([np.zeros((B, 1, R), np.int64), shift], axis=1)
        low = np.zeros_like(tau)
        calls = Calls(weight=np.concatenate([np.ones((B, 1), np.int64), walk.weight], axis=1),
                      size=np.ones((B, J + 1), np.int64), low=low, high=low + 1, prev_low=low, prev_high=low + 1,
                      tau=tau, linkable=np.array([False] + [True] * J))
        return flows.where(spread, self.spatial_flows(nest, run_slots, k, l, calls))

    def spatial_flows(self, nest: Nest, run_slots: np.ndarray, k: int, l: int, calls: Calls) -> LevelFlows:
        """Multicast and link transfers of the fan-out below level l, over the calls."""
        coef = self.coef[k]
        steps = np.eye(self.D, dtype=np.int64)[nest.dim[:, run_slots]] * nest.stride[:, run_slots, None]
        steps = steps @ coef.T  # (B, slots, R): offset of the next instance along each spatial loop
        fan = Fanout.of(nest.factor[:, run_slots], steps, self.arch.fanout(l))
        groups, instances = fan.groups[fan.inverse], fan.instances[fan.inverse]
        moved = calls.weight * calls.size  # (B, C)
        accesses = groups[:, None] * moved
        weighted = instances[:, None] * moved
        links = np.zeros_like(moved)
        if self.link_transfers:
            eligible = calls.linkable & (moved > 0) & np.all(
                calls.prev_high - calls.prev_low == calls.high - calls.low, axis=-1)
            wanted = calls.low - calls.prev_low + calls.tau  # neighbour's offset minus one's own
            rows, cols = np.nonzero(eligible)
            found, served, remaining = fan.links(rows, wanted[rows, cols])
            rows, cols = rows[found], cols[found]
            better = remaining < groups[rows]
            rows, cols, served, remaining = rows[better], cols[better], served[better], remaining[better]
            m = moved[rows, cols]
            accesses[rows, cols] = remaining * m
            weighted[rows, cols] = (instances[rows] - served) * m
            links[rows, cols] = served * m
        return LevelFlows(accesses.sum(1).astype(float), weighted.sum(1).astype(float), links.sum(1).astype(float))

    # -- accounting ------------------------------------------------------------

    def account(self, batch, flows, extents, run, replication, nest) -> BatchEvaluation:
        problem, arch = self.problem, self.arch
        B, L, _ = batch.temporal.shape
        T = len(problem.tensors)
        reads = np.zeros((B, L, T), dtype=np.int64)
        fills = np.zeros((B, L, T), dtype=np.int64)
        updates = np.zeros((B, L, T), dtype=np.int64)
        present = np.zeros((B, L, T), dtype=bool)
        words = np.zeros((B, L, T))  # crossing the fan-out below each level, after bypass
        master = run > 1
        for k, tensor in enumerate(problem.tensors):
            coef = self.coef[k]
            size = rank_extents(coef, extents).prod(-1).astype(np.int64)  # (B, L)
            union = size.copy()  # what the parent's fan-out holds of the child tile
            union[:, 1:] = np.where(master[:, :-1], rank_extents(
                coef, extents[:, 1:] * (batch.spatial_x * batch.spatial_y)[:, :-1]).prod(-1), size[:, 1:])
            partition = size.copy()
            for l in range(1, L):
                partition[:, l] = partition[:, l - 1] * size[:, l] // union[:, l]
            accesses = np.stack([flows[l][k].accesses for l in range(L)], 1)
            weighted = np.stack([flows[l][k].weighted for l in range(L)], 1)
            links = np.stack([flows[l][k].links for l in range(L)], 1)
            fanout = np.where(master, run, 1)
            content = accesses.copy()
            share = np.zeros((B, L))
            share[:, 1:] = weighted[:, :-1] / fanout[:, :-1]
            kept = batch.keep[:, :, k].copy()
            alive = np.ones((B, L), dtype=bool)
            for l in reversed(range(L)):  # bypass, innermost first
                bypass = alive[:, l] & ~kept[:, l]
                if l == 0:
                    alive[:, 0] &= ~bypass
                    break
                factor = np.where(bypass, content[:, l] * fanout[:, l - 1] / np.where(bypass, weighted[:, l - 1], 1), 1.0)
                accesses[:, l - 1] *= factor
                weighted[:, l - 1] *= factor
                links[:, l - 1] = np.where(bypass, 0.0, links[:, l - 1])
                content[:, l - 1] = np.where(bypass, accesses[:, l - 1], content[:, l - 1])
                alive[:, l] &= ~bypass
            outer_unkept = np.cumprod(~kept, axis=1).astype(bool)
            alive &= ~outer_unkept
            links = np.where(outer_unkept, 0.0, links)
            words[:, :, k] = (np.where(outer_unkept, 0.0, weighted) + links) * replication
            first_kept = kept & ~np.concatenate([np.zeros((B, 1), bool), np.cumsum(kept, 1)[:, :-1] > 0], 1)
            share = np.where(first_kept, 0.0, share)
            peer = np.zeros((B, L))
            peer[:, 1:] = links[:, :-1] / replication[:, 1:]
            outermost = alive & ~np.concatenate([np.zeros((B, 1), bool), np.cumsum(alive, 1)[:, :-1] > 0], 1)
            part = np.where(alive, partition, 0)
            if tensor.read_write:
                updates[:, :, k] = np.round(content)
                reads[:, :, k] = np.round(content + peer - part)
                f = share + peer
                fills[:, :, k] = np.round(np.where(outermost, f, f - part))
            else:
                reads[:, :, k] = np.round(content + peer)
                fills[:, :, k] = np.round(share + peer)
            present[:, :, k] = alive
        reads, fills, updates = (np.where(present, a, 0) for a in (reads, fills, updates))
        compute_cycles = np.prod(np.where(nest.kind == TEMPORAL, nest.factor, 1), axis=1)
        energy = np.zeros(B)
        cycles = compute_cycles.copy()
        for l, level in enumerate(arch.levels):
            bs = level.block_size
            for k in range(T):
                e = ((-(-reads[:, l, k] // bs)) * level.read_energy + (-(-fills[:, l, k] // bs)) * level.write_energy
                     + (-(-updates[:, l, k] // bs)) * level.write_energy) * replication[:, l]
                energy = energy + np.where(present[:, l, k], e, 0.0)
            cycles = np.maximum(cycles, throttled_cycles(level.read_bandwidth, level.write_bandwidth,
                                                         reads[:, l].sum(1), (fills[:, l] + updates[:, l]).sum(1),
                                                         compute_cycles))
        network = 0.0
        for l, level in enumerate(arch.levels):
            if level.network_energy and np.prod(arch.fanout(l)) > 1:
                network = network + level.network_energy * sum(words[:, l, k] for k in range(T))
        energy = problem.macs * arch.compute.energy + energy + network
        return BatchEvaluation(energy, cycles, self.valid(batch, extents), reads, fills, updates)

    def valid(self, batch: MappingBatch, extents: np.ndarray) -> np.ndarray:
        ok = np.ones(len(batch), dtype=bool)
        held = np.zeros(extents.shape[:2], dtype=np.int64)
        for k, coef in enumerate(self.coef):
            held += np.where(batch.keep[:, :, k], rank_extents(coef, extents).prod(-1), 0)
        for l, level in enumerate(self.arch.levels):
            if level.capacity is not None:
                ok &= held[:, l] <= int(level.capacity / level.multiple_buffering)
            fan_x, fan_y = self.arch.fanout(l)
            ok &= (batch.spatial_x[:, l].prod(1) <= fan_x) & (batch.spatial_y[:, l].prod(1) <= fan_y)
        return ok


def throttled_cycles(read_bw, write_bw, reads, writes, compute_cycles) -> np.ndarray:
    slowdown = np.ones(len(compute_cycles))
    for bandwidth, words in ((read_bw, reads), (write_bw, writes)):
        if bandwidth:
            demand = np.maximum(words, 1) / compute_cycles
            slowdown = np.where(words > 0, np.minimum(slowdown, bandwidth / demand), slowdown)
    return np.ceil(compute_cycles / slowdown).astype(np.int64)


@dataclass(frozen=True)
class Fanout:
    """The fan-out configurations of a batch, seen by one tensor: per distinct
    configuration (U of them), the offset of every instance's tile and which
    instances are mesh neighbours."""

    inverse: np.ndarray  # (B,) configuration of each mapping
    instances: np.ndarray  # (U,)
    groups: np.ndarray  # (U,) distinct offsets: the reads a delta wanted by every instance costs
    offset_id: np.ndarray  # (U, N) offsets numbered exactly (equal ids = equal offsets)
    live: np.ndarray  # (U, N) instance exists
    pair_cur: np.ndarray  # (P,) instance
    pair_next: np.ndarray  # (P,) its mesh neighbour
    pair_diff: np.ndarray  # (U, P, R) neighbour's offset minus the instance's
    pair_live: np.ndarray  # (U, P)

    @staticmethod
    def of(factor: np.ndarray, steps: np.ndarray, mesh: tuple[int, int]) -> "Fanout":
        B, S, R = steps.shape
        key = np.concatenate([factor, steps.reshape(B, -1)], axis=1)
        inverse, first = row_ids(key)
        unique = key[first]
        factor, steps = unique[:, :S], unique[:, S:].reshape(-1, S, R)
        instances = factor.prod(1)
        n = int(max(instances.max(), 1))
        # Instance ids count the innermost spatial loop fastest, as Timeloop numbers them.
        inner = np.cumprod(factor, axis=1) // factor
        ids = np.arange(n)
        digits = ids[None, :, None] // inner[:, None, :] % factor[:, None, :]  # (U, N, S)
        offsets = np.einsum("uns,usr->unr", digits, steps)
        live = ids[None, :] < instances[:, None]
        offset_id = np.where(live, row_ids(offsets.reshape(-1, R))[0].reshape(offsets.shape[:2]), -1)
        groups = count_distinct(offset_id)
        cur, nxt = mesh_neighbours(n, *mesh)
        diff = offsets[:, nxt] - offsets[:, cur]
        pair_live = live[:, cur] & live[:, nxt]
        return Fanout(inverse.reshape(-1), instances, groups, offset_id, live, cur, nxt, diff, pair_live)

    def links(self, rows: np.ndarray, wanted: np.ndarray):
        """For each (mapping, wanted translation): the instances a neighbour can serve
        (the neighbour's offset minus theirs is the wanted one) and the distinct
        offsets among the rest. Returns only entries where some neighbour serves."""
        P = len(self.pair_cur)
        if P == 0 or not len(rows):
            none = np.zeros(0, dtype=np.int64)
            return none, none, none
        u = self.inverse[rows]
        # Number the wanted and the neighbour translations together, exactly.
        every = np.concatenate([self.pair_diff.reshape(-1, wanted.shape[-1]), wanted])
        ids = row_ids(every)[0]
        pair_id = np.where(self.pair_live, ids[:self.pair_diff.shape[0] * P].reshape(-1, P), -1)
        want_id = ids[self.pair_diff.shape[0] * P:]
        # Keep the queries whose translation some live neighbour pair has.
        width = int(ids.max()) + 2 if ids.size else 1
        table = np.unique((np.arange(len(pair_id))[:, None] * width + pair_id + 1)[pair_id >= 0])
        query = u * width + want_id + 1
        hit = np.isin(query, table)
        keep = np.flatnonzero(hit)
        u, want_id = u[keep], want_id[keep]
        pairs = np.stack([u, want_id], 1)
        which, first = row_ids(pairs)
        distinct = pairs[first]
        match = pair_id[distinct[:, 0]] == distinct[:, 1:2]  # (H, P)
        served = np.zeros((len(distinct), self.offset_id.shape[1]), dtype=bool)
        h, p = np.nonzero(match)
        served[h, self.pair_cur[p]] = True
        rest = np.where(served, -1, self.offset_id[distinct[:, 0]])
        return keep, served.sum(1)[which], count_distinct(rest)[which]


def row_ids(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number the distinct rows of an integer matrix exactly: (id of each row, index
    of the first row of each id). Faster than np.unique(axis=0), which sorts rows
    as opaque bytes: columns are folded into one integer, re-numbered densely
    whenever the fold would overflow."""
    ids = np.zeros(len(rows), dtype=np.int64)
    span = 1
    for column in rows.T:
        low = column.min(initial=0)
        width = int(column.max(initial=0) - low) + 1
        if width == 1:
            continue
        if span * width >= 1 << 62:
            _, ids = np.unique(ids, return_inverse=True)
            span = int(ids.max(initial=0)) + 1
        ids = ids * width + (column - low)
        span *= width
    _, first, ids = np.unique(ids, return_index=True, return_inverse=True)
    return ids.reshape(-1), first


def count_distinct(ids: np.ndarray) -> np.ndarray:
    """(H, N) non-negative ids, -1 for none -> (H,) how many distinct ids per row."""
    if ids.shape[1] == 0:
        return np.zeros(len(ids), dtype=np.int64)
    s = np.sort(ids, axis=1)
    new = np.concatenate([np.ones((len(s), 1), bool), s[:, 1:] != s[:, :-1]], axis=1)
    return (new & (s >= 0)).sum(1)


def mesh_neighbours(n: int, fan_x: int, fan_y: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (instance, neighbour) of ids laid out row by row on the fan-out's mesh."""
    cur = []
    nxt = []
    for i in range(min(n, fan_x * fan_y)):
        x, y = i % fan_x, i // fan_x
        for nx, ny in ((x, y - 1), (x, y + 1), (x - 1, y), (x + 1, y)):
            if 0 <= nx < fan_x and 0 <= ny < fan_y and ny * fan_x + nx < n:
                cur.append(i)
                nxt.append(ny * fan_x + nx)
    return np.array(cur, dtype=np.int64), np.array(nxt, dtype=np.int64)

