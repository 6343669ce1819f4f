"""The vectorized model: Timeloop's default semantics over a whole MappingBatch.

The reference path (nest.py) walks the loop nest like Timeloop does: every loop is
run at its iterations #0 and #1, the second standing for all the rest. That walk has
a closed form, which this module evaluates in compiled code (numba), one mapping
after another, in a few microseconds each:

- Seen from a child level c (its tile T, a box of each tensor), the temporal loops
  above it, innermost first, form a binary counter: the walk visits T first, then
  after each "increment" of loop j (which also resets the inner loops from #1 to #0)
  a tile translated by tau_j = s_j - sum of the strides of the non-unit loops inside
  j. Summed over the walk, the increments of loop j weigh (e_j - 1) x prod of the
  factors of the loops outside j: exactly how often loop j advances in the real run.
  Unit loops never advance nor reset, so only the non-unit ones are walked.
- What moves in at an increment is Timeloop's AAHR difference of T and T - tau_j,
  while the tile keeps moving by the same step as before; after a change of step it
  is the whole tile. The increment before any loop j's is always the innermost
  non-unit loop's (j1), so loop j keeps its residue only if it projects to the same
  step as j1.
- A spatial fan-out above c sees the same deltas in every instance, shifted by the
  instance's offset: a read serves every instance whose offset (hence delta) is the
  same (multicast), and a delta that a mesh neighbour received one step earlier can
  come from that neighbour instead (link transfer), chosen when it saves reads. The
  walk's deltas come in 2 + 2J kinds of calls (the first call; the innermost loop's
  after the first call; loop j's after the innermost loop's; the innermost loop's
  after loop j's), each compared with the call before it. The instances' offsets,
  and what they give (multicast groups, neighbour offsets), depend only on the
  fan-out's spatial loops and the tiles they spread, which most mappings of a
  search's batch share: the batch is visited sorted by those, and each level and
  tensor works them out only when they differ from the mapping before
  (benchmarks/bench_model.py's second figure says what that saves).

The accounting on top (partitions, bypass, peer transfers, reads / fills /
updates, energy, bandwidth-throttled cycles) is reference.py's, level by level, in
the same floating-point operations. tests/test_vectorized.py checks both paths
agree on random mappings. The kernels are compiled on first use and cached on disk
(see _COMPILED).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from math import prod

import numpy as np
from numba import njit

from ..architecture import Architecture, StorageLevel
from ..mapping import LevelMapping, Mapping
from ..precision import level_widths
from ..problem import Problem, Tensor, rank_coefficients
from .batch import BatchEvaluation, MappingBatch, batch_from_mappings
from .kernel_cache import use_kernel_cache
from .reference import TensorCounts, assemble, evaluate_reference
from .stats import Evaluation

# cache=True: compiling takes 10-15 s of CPU, once per machine (and per change of this
# file); later processes load the machine code from the per-user cache in well under a
# second (mapper/model/kernel_cache.py says where, and why not __pycache__).
use_kernel_cache()
# error_model="numpy": a float division by zero gives inf / nan as numpy does, not an
# exception.
_COMPILED = {"cache": True, "error_model": "numpy"}
# The helpers are inlined into the one compiled loop over the mappings: an array
# handed to a real call costs atomic reference counts, which added up to more time
# than the model's arithmetic.
_INLINED = {**_COMPILED, "inline": "always"}
# Neighbour offsets a fan-out may have for remember_fanout to keep it: a mesh's are
# usually a handful (a step along X or Y, with or without a carry into the next loop).
REMEMBERED_OFFSETS = 32


def load_kernels() -> bool:
    """Compile the kernel, or load it from the cache, by scoring one mapping of a
    one-MAC problem; returns whether it had to be compiled. For a display that says
    so before a first search, rather than sitting silent for a minute in it."""
    problem = Problem("warm-up", ("K",), {"K": 1}, (Tensor("A", (((1, "K"),),)), Tensor("Z", (), read_write=True)))
    arch = Architecture("warm-up", (StorageLevel("memory"),))
    compiled = sum(evaluate_compiled.stats.cache_misses.values())  # in this process so far
    evaluate_batch(problem, arch, batch_from_mappings(problem, arch, [Mapping((LevelMapping(),))]))
    return sum(evaluate_compiled.stats.cache_misses.values()) > compiled


def evaluate_batch(problem: Problem, arch: Architecture, batch: MappingBatch,
                   link_transfers: bool = True, detailed: bool = False) -> BatchEvaluation:
    """`detailed`: with the counts `evaluation` needs besides reads, fills and updates
    (BatchEvaluation); left out by default, as storing them for every mapping slows a
    search's batches."""
    return Evaluator(problem, arch, link_transfers).evaluate(batch, detailed)


class Evaluator:
    """Scores batches of mappings of one problem on one architecture: the problem
    and the architecture as flat arrays once, then one compiled pass per batch."""

    def __init__(self, problem: Problem, arch: Architecture, link_transfers: bool = True) -> None:
        self.problem = problem
        self.arch = arch
        self.link_transfers = link_transfers
        self.coef, self.ranks = rank_coefficients(problem)
        self.read_write = np.array([t.read_write for t in problem.tensors], dtype=np.bool_)
        levels = arch.levels
        self.fan = np.array(arch.fanouts(), dtype=np.int64).reshape(-1, 2)
        self.pair_cur, self.pair_next, self.pair_count = mesh_pair_table(self.fan)
        widths = level_widths(problem, arch)
        # Per level and tensor (mapper/precision.py): accesses are ceil(elements * access_bits / port_bits),
        # an element is words_per_element of the level's words and per_element of its capacity units.
        self.access_bits = np.array([w.access_bits for w in widths], dtype=np.int64).reshape(len(levels), -1)
        self.port_bits = np.array([w.port_bits for w in widths], dtype=np.int64).reshape(len(levels), -1)
        self.words_per_element = np.array([w.words_per_element for w in widths],
                                          dtype=np.float64).reshape(len(levels), -1)
        self.per_element = np.array([w.per_element for w in widths], dtype=np.int64).reshape(len(levels), -1)
        self.read_energy = np.array([lv.read_energy for lv in levels], dtype=np.float64)
        self.write_energy = np.array([lv.write_energy for lv in levels], dtype=np.float64)
        # 0 stands for "not limited", as a missing bandwidth does in reference.bandwidth_throttling.
        self.read_bandwidth = np.array([lv.read_bandwidth or 0.0 for lv in levels], dtype=np.float64)
        self.write_bandwidth = np.array([lv.write_bandwidth or 0.0 for lv in levels], dtype=np.float64)
        # Charged only where the level has a fan-out below it (reference.evaluate_reference).
        self.network_energy = np.array([lv.network_energy if lv.network_energy and prod(arch.fanout(l)) > 1
                                        else 0.0 for l, lv in enumerate(levels)], dtype=np.float64)
        # The most clusters that a mapping's accesses are paid for (StorageLevel.utilized_clusters):
        # the kernel pays min(utilized instances, this).
        most = np.iinfo(np.int64).max
        self.clusters = np.array([lv.utilized_clusters(most) for lv in levels], dtype=np.int64)
        self.bounded = np.array([lv.capacity is not None for lv in levels], dtype=np.bool_)
        self.capacity = np.array([w.usable or 0 for w in widths], dtype=np.int64)
        self.compute_energy = float(problem.macs * arch.compute.energy)

    def evaluate(self, batch: MappingBatch, detailed: bool = False, valid_only: bool = False) -> BatchEvaluation:
        """`valid_only`: the mappings that do not fit are only found invalid, their other
        scores left at 0 (a search drops them: an eighth of those it scores)."""
        ints = [np.ascontiguousarray(a, dtype=np.int64) for a in
                (batch.order, batch.temporal, batch.spatial_x, batch.spatial_y, batch.spatial_order)]
        keep = np.ascontiguousarray(batch.keep, dtype=np.bool_)
        B, L, T = len(batch), len(self.arch.levels), len(self.problem.tensors)
        # Made here, filled by the kernel: a kernel that returned arrays would run
        # Python code (numba's unpickling of their dtypes) on its way out, where a
        # signal handler's exception (Ctrl-C: mapper.interrupt) turns into a SystemError.
        scores = BatchEvaluation(np.zeros(B), np.zeros(B, dtype=np.int64), np.ones(B, dtype=np.bool_),
                                 *(np.zeros((B, L, T), dtype=np.int64) for _ in range(3)))
        # The detail arrays are always handed over (numba compiles one signature),
        # empty unless asked for.
        shape = (B, L, T) if detailed else (0, L, T)
        held, tile_words, partitions = (np.zeros(shape, dtype=np.bool_), np.zeros(shape, dtype=np.int64),
                                        np.zeros(shape, dtype=np.int64))
        crossing = np.zeros(shape)
        evaluate_compiled(*ints, keep, self.coef, self.ranks, self.read_write, self.fan, self.pair_cur,
                          self.pair_next, self.pair_count, self.access_bits, self.port_bits,
                          self.words_per_element, self.read_energy, self.write_energy, self.read_bandwidth,
                          self.write_bandwidth, self.network_energy, self.clusters, self.bounded, self.capacity,
                          self.per_element, self.compute_energy, self.link_transfers, scores.energy_pJ, scores.cycles,
                          scores.valid, scores.reads, scores.fills, scores.updates, detailed, held, tile_words,
                          partitions, crossing, valid_only)
        return replace(scores, held=held, tile_words=tile_words, partitions=partitions,
                       crossing=crossing) if detailed else scores


def evaluate_mapping(problem: Problem, arch: Architecture, mapping: Mapping) -> Evaluation:
    """One mapping's Evaluation, what `mapper evaluate` and a search's best.json report:
    evaluate_reference's numbers (tests/test_vectorized.py), without its walk of the
    loop nest, which takes seconds on a 128 x 128 array. A mapping with a remainder
    (factors that overshoot a bound) is walked: this model counts perfect
    factorizations only."""
    if mapping.overshoots(problem.bounds):
        return evaluate_reference(problem, arch, mapping)
    batch = batch_from_mappings(problem, arch, [mapping])
    return evaluation(problem, arch, batch, evaluate_batch(problem, arch, batch, detailed=True), 0)


def evaluation(problem: Problem, arch: Architecture, batch: MappingBatch, scores: BatchEvaluation,
               b: int) -> Evaluation:
    """Mapping b's Evaluation from its detailed scores (evaluate_batch), as
    evaluate_reference reports it (the same accounting, reference.assemble);
    tests/test_vectorized.py checks they are equal."""
    if scores.held is None:
        raise ValueError("evaluation needs the scores of evaluate_batch(..., detailed=True)")
    spread = np.prod(batch.spatial_x[b] * batch.spatial_y[b], axis=1)  # (L,) fan-out used below each level
    instances = np.concatenate([[1], np.cumprod(spread)[:-1]])
    names = [t.name for t in problem.tensors]
    counts = [{name: TensorCounts(int(scores.partitions[b, l, k]), int(scores.tile_words[b, l, k]), int(instances[l]),
                                  int(scores.reads[b, l, k]), int(scores.fills[b, l, k]), int(scores.updates[b, l, k]))
               for k, name in enumerate(names) if scores.held[b, l, k]} for l in range(len(arch.levels))]
    crossing = [{name: float(scores.crossing[b, l, k]) for k, name in enumerate(names)}
                for l in range(len(arch.levels))]
    return assemble(problem, arch, counts, crossing, int(np.prod(batch.temporal[b])), int(np.prod(spread)))


def mesh_neighbours(fan_x: int, fan_y: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (instance, neighbour) of ids laid out row by row on a fan_x x fan_y mesh,
    ordered by instance (so the pairs of the first n instances come first), then
    above, below, left, right. In arrays: a mesh may have 2**20 instances."""
    ids = np.arange(fan_x * fan_y, dtype=np.int64)
    x, y = ids % fan_x, ids // fan_x
    steps = ((0, -1), (0, 1), (-1, 0), (1, 0))
    nx = np.stack([x + dx for dx, _ in steps], axis=1)
    ny = np.stack([y + dy for _, dy in steps], axis=1)
    inside = (nx >= 0) & (nx < fan_x) & (ny >= 0) & (ny < fan_y)
    return np.broadcast_to(ids[:, None], inside.shape)[inside], (ny * fan_x + nx)[inside]


def mesh_pair_table(fan: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every level's mesh pairs as (L, P) arrays, and how many each level has."""
    return _mesh_pair_table(tuple((int(fx), int(fy)) for fx, fy in fan))


@lru_cache(maxsize=16)
def _mesh_pair_table(fan: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Made once per architecture, not per batch: 2**20 instances make 4 million pairs."""
    pairs = [mesh_neighbours(fx, fy) for fx, fy in fan]
    P = max([len(cur) for cur, _ in pairs], default=0)
    cur = np.zeros((len(pairs), max(P, 1)), dtype=np.int64)
    nxt = np.zeros_like(cur)
    for l, (c, n) in enumerate(pairs):
        cur[l, :len(c)] = c
        nxt[l, :len(n)] = n
    return cur, nxt, np.array([len(c) for c, _ in pairs], dtype=np.int64)


# -- compiled kernels ------------------------------------------------------------------
# One mapping at a time. Scratch arrays are allocated once per batch and overwritten
# for every mapping: allocating them per mapping would cost more than the arithmetic.
# Helpers take arrays one by one, never bundled in tuples (even inlined, a tuple costs
# a reference count per member and call), and rows by index rather than as views.


@njit(**_COMPILED)
def evaluate_compiled(order: np.ndarray, temporal: np.ndarray, spatial_x: np.ndarray, spatial_y: np.ndarray,
                      spatial_order: np.ndarray, keep: np.ndarray, coef: np.ndarray, ranks: np.ndarray,
                      read_write: np.ndarray, fan: np.ndarray, pair_cur: np.ndarray, pair_next: np.ndarray,
                      pair_count: np.ndarray, access_bits: np.ndarray, port_bits: np.ndarray,
                      words_per_element: np.ndarray, read_energy: np.ndarray, write_energy: np.ndarray,
                      read_bandwidth: np.ndarray, write_bandwidth: np.ndarray, network_energy: np.ndarray,
                      clusters: np.ndarray, bounded: np.ndarray, capacity: np.ndarray, per_element: np.ndarray,
                      compute_energy: float, link_transfers: bool, energy: np.ndarray, cycles: np.ndarray,
                      valid: np.ndarray, reads: np.ndarray, fills: np.ndarray, updates: np.ndarray, detailed: bool,
                      held: np.ndarray, tile_words: np.ndarray, partitions: np.ndarray, crossing: np.ndarray,
                      valid_only: bool) -> None:
    """Fills energy, cycles, validity, reads, fills and updates of every mapping (but
    validity alone for those that do not fit, where `valid_only`), and where `detailed`
    the rest of its accounting (BatchEvaluation)."""
    B, L, D = temporal.shape
    T, R = coef.shape[0], coef.shape[1]

    # The mapping's levels.
    extents = np.ones((L + 1, D), dtype=np.int64)  # tile of level l per dimension; row L: one MAC
    run = np.ones(L, dtype=np.int64)  # fan-out used below level l
    replication = np.ones(L, dtype=np.int64)  # instances of level l used
    # Its non-unit temporal loops, innermost first (temporal_loops).
    N = L * D
    loop_dim = np.zeros(N, dtype=np.int64)
    loop_factor = np.zeros(N, dtype=np.int64)
    loop_stride = np.zeros(N, dtype=np.int64)
    loop_weight = np.zeros(N, dtype=np.int64)
    start = np.zeros(L, dtype=np.int64)
    # One child level's walk and its kinds of calls, seen by one tensor (child_deltas, child_calls).
    shift = np.zeros((N, R), dtype=np.int64)
    delta = np.zeros(N, dtype=np.int64)
    low = np.zeros((N + 1, R), dtype=np.int64)
    high = np.zeros((N + 1, R), dtype=np.int64)
    calls = np.zeros((2 * N + 1, 4), dtype=np.int64)
    # One fan-out, seen by one tensor (fanout_offsets, number_offsets, neighbour_offsets).
    most = largest_fanout(spatial_x, spatial_y, fan, valid_only)
    P = min(pair_cur.shape[1], 4 * most + 1)  # neighbour_offsets visits the pairs of `most` instances, and one
    slot_factor = np.zeros(2 * D, dtype=np.int64)
    slot_step = np.zeros((2 * D, R), dtype=np.int64)
    digits = np.zeros(2 * D, dtype=np.int64)
    offset = np.zeros((most, R), dtype=np.int64)
    key = np.zeros(most, dtype=np.int64)
    rank = np.zeros(most, dtype=np.int64)
    offset_id = np.zeros(most, dtype=np.int64)
    pair_group = np.zeros(P, dtype=np.int64)
    diff = np.zeros((P, R), dtype=np.int64)
    served = np.zeros(P, dtype=np.int64)
    remaining = np.zeros(P, dtype=np.int64)
    mask = np.zeros(most, dtype=np.bool_)
    seen = np.zeros(most, dtype=np.bool_)
    # Per tensor and level: reads from the level (a multicast once), the same with a
    # multicast once per destination, link transfers, words crossing the fan-out
    # below after bypass, whether the level holds the tensor.
    accesses = np.zeros((T, L))
    weighted = np.zeros((T, L))
    links = np.zeros((T, L))
    words = np.zeros((T, L))
    present = np.zeros((T, L), dtype=np.bool_)
    # One tensor's accounting (account_tensor).
    size = np.zeros(L, dtype=np.int64)
    partition = np.zeros(L, dtype=np.int64)
    content = np.zeros(L)
    share = np.zeros(L)
    alive = np.zeros(L, dtype=np.bool_)
    scaled = np.zeros((1, D), dtype=np.int64)

    # The last fan-out each level and tensor saw, and what it gave (same_fanout).
    seen_slots = np.full((L, T), -1, dtype=np.int64)
    seen_factor = np.zeros((L, T, 2 * D), dtype=np.int64)
    seen_step = np.zeros((L, T, 2 * D, R), dtype=np.int64)
    seen_counts = np.zeros((L, T, 3), dtype=np.int64)
    seen_diff = np.zeros((L, T, REMEMBERED_OFFSETS, R), dtype=np.int64)
    seen_served = np.zeros((L, T, REMEMBERED_OFFSETS), dtype=np.int64)
    seen_remaining = np.zeros((L, T, REMEMBERED_OFFSETS), dtype=np.int64)

    for b in visiting_order(temporal, spatial_x, spatial_y, spatial_order, extents, run, replication):
        tiles(b, temporal, spatial_x, spatial_y, extents, run, replication)
        valid[b] = fits(b, coef, ranks, keep, extents, spatial_x, spatial_y, fan, bounded, capacity, per_element)
        if valid_only and not valid[b]:
            continue
        loops = temporal_loops(b, order, temporal, spatial_x, spatial_y, extents, loop_dim, loop_factor,
                               loop_stride, loop_weight, start)
        compute_cycles = 1
        for i in range(loops):
            compute_cycles *= loop_factor[i]
        for l in range(L):
            spread = run[l] > 1
            for k in range(T):
                walk_shifts(shift, coef, k, ranks[k], loop_dim, loop_stride, start[l], loops)
                instances, groups, distinct = 1, 1, 0
                if spread:
                    S = fanout_slots(slot_factor, slot_step, b, l, k, ranks[k], spatial_x, spatial_y, spatial_order,
                                     extents, coef)
                    if same_fanout(seen_slots, seen_factor, seen_step, l, k, S, slot_factor, slot_step, ranks[k]):
                        instances, groups, distinct = recall_fanout(seen_counts, seen_diff, seen_served,
                                                                    seen_remaining, diff, served, remaining, l, k,
                                                                    ranks[k])
                    else:
                        instances = fanout_offsets(slot_factor, slot_step, digits, offset, S, ranks[k])
                        groups = number_offsets(offset, key, rank, offset_id, instances, ranks[k])
                        if link_transfers:
                            distinct = neighbour_offsets(offset, offset_id, pair_group, diff, served, remaining,
                                                         mask, seen, l, instances, groups, ranks[k], pair_cur,
                                                         pair_next, pair_count[l])
                        remember_fanout(seen_slots, seen_factor, seen_step, seen_counts, seen_diff, seen_served,
                                        seen_remaining, slot_factor, slot_step, diff, served, remaining, l, k, S,
                                        ranks[k], instances, groups, distinct)
                if l == L - 1:  # the MACs read one operand per iteration (cycle): no reuse in time
                    flows = float(compute_cycles), float(compute_cycles), 0.0
                    C = compute_calls(calls, low, high, ranks[k], loop_weight, start[l], loops) if spread else 0
                else:
                    tile, per_state = child_deltas(shift, delta, low, high, coef, k, ranks[k], extents, l + 1,
                                                   loop_weight, start[l], loops)
                    flows = float(per_state), float(per_state), 0.0
                    C = child_calls(calls, tile, delta, loop_factor, loop_weight, start[l], loops) if spread else 0
                if spread:
                    flows = fanout_flows(calls, C, low, high, shift, diff, served, remaining, ranks[k], instances,
                                         groups, distinct)
                accesses[k, l], weighted[k, l], links[k, l] = flows
        for k in range(T):
            account_tensor(size, partition, content, share, alive, scaled, b, k, ranks[k], coef, read_write[k],
                           keep, extents, spatial_x, spatial_y, run, replication, accesses, weighted, links, words,
                           present, reads, fills, updates)
            if detailed:
                for l in range(L):
                    tile_words[b, l, k] = size[l]
                    partitions[b, l, k] = partition[l]
        if detailed:
            for l in range(L):
                for k in range(T):
                    held[b, l, k] = present[k, l]
                    crossing[b, l, k] = words[k, l]
        energy[b], cycles[b] = energy_and_cycles(b, reads, fills, updates, present, replication, words,
                                                 compute_cycles, access_bits, port_bits, words_per_element,
                                                 read_energy, write_energy, read_bandwidth, write_bandwidth,
                                                 network_energy, clusters, compute_energy)


@njit(**_INLINED)
def largest_fanout(spatial_x: np.ndarray, spatial_y: np.ndarray, fan: np.ndarray, valid_only: bool) -> int:
    """The most fan-out instances any level of any mapping evaluated uses (sizes the
    scratch). With `valid_only`, a mapping beyond the fan-outs is only found invalid:
    its instances, which a search's moves can make millions, are not counted."""
    B, L, D = spatial_x.shape
    most = 1
    for b in range(B):
        if valid_only and not within_fanouts(b, spatial_x, spatial_y, fan):
            continue
        for l in range(L):
            n = 1
            for d in range(D):
                n *= spatial_x[b, l, d] * spatial_y[b, l, d]
            most = max(most, n)
    return most


@njit(**_INLINED)
def visiting_order(temporal: np.ndarray, spatial_x: np.ndarray, spatial_y: np.ndarray, spatial_order: np.ndarray,
                   extents: np.ndarray, run: np.ndarray, replication: np.ndarray) -> np.ndarray:
    """The mappings in an order that puts those with the same fan-outs (spatial loops
    and the tiles they spread) next to each other, so that remember_fanout's memory
    of the last one serves most of them: sorted by a hash of those."""
    B, L, D = temporal.shape
    fingerprint = np.zeros(B, dtype=np.int64)
    for b in range(B):
        tiles(b, temporal, spatial_x, spatial_y, extents, run, replication)
        h = 0
        for l in range(L):
            for i in range(D):
                d = spatial_order[b, l, i]
                if spatial_x[b, l, d] * spatial_y[b, l, d] > 1:
                    # wraps around modulo 2**64, as a hash may
                    h = (h * 1000003 + l * 64 + d) * 1000003 + spatial_x[b, l, d]
                    h = (h * 1000003 + spatial_y[b, l, d]) * 1000003 + extents[l + 1, d]
        fingerprint[b] = h
    return np.argsort(fingerprint, kind="mergesort")


@njit(**_INLINED)
def tiles(b: int, temporal: np.ndarray, spatial_x: np.ndarray, spatial_y: np.ndarray, extents: np.ndarray,
          run: np.ndarray, replication: np.ndarray) -> None:
    """Per level: the tile (levels l.. innermost) per dimension, the fan-out used
    below it, and how many instances of it the mapping uses."""
    _, L, D = temporal.shape
    for l in range(L - 1, -1, -1):
        run[l] = 1
        for d in range(D):
            spread = spatial_x[b, l, d] * spatial_y[b, l, d]
            extents[l, d] = extents[l + 1, d] * temporal[b, l, d] * spread
            run[l] *= spread
    replication[0] = 1
    for l in range(1, L):
        replication[l] = replication[l - 1] * run[l - 1]


@njit(**_INLINED)
def temporal_loops(b: int, order: np.ndarray, temporal: np.ndarray, spatial_x: np.ndarray, spatial_y: np.ndarray,
                   extents: np.ndarray, loop_dim: np.ndarray, loop_factor: np.ndarray, loop_stride: np.ndarray,
                   loop_weight: np.ndarray, start: np.ndarray) -> int:
    """The non-unit temporal loops of the whole nest, innermost first, with their
    strides (the product of the same-dimension factors inside) and how often each
    advances over the run. The loops above a child of level l are those from
    start[l] on. Returns how many there are."""
    _, L, D = temporal.shape
    n = 0
    for l in range(L - 1, -1, -1):
        start[l] = n
        for i in range(D - 1, -1, -1):
            d = order[b, l, i]
            f = temporal[b, l, d]
            if f >= 2:
                loop_dim[n] = d
                loop_factor[n] = f
                loop_stride[n] = extents[l + 1, d] * spatial_x[b, l, d] * spatial_y[b, l, d]
                n += 1
    outside = 1
    for i in range(n - 1, -1, -1):
        loop_weight[i] = (loop_factor[i] - 1) * outside
        outside *= loop_factor[i]
    return n


@njit(**_INLINED)
def walk_shifts(shift: np.ndarray, coef: np.ndarray, k: int, R: int, loop_dim: np.ndarray, loop_stride: np.ndarray,
                first: int, loops: int) -> None:
    """tau_j = s_j - the strides of the loops inside j (reset from #1 to #0), on the ranks."""
    for r in range(R):
        inside = 0
        for j in range(loops - first):
            step = loop_stride[first + j] * coef[k, r, loop_dim[first + j]]
            shift[j, r] = step - inside
            inside += step


@njit(**_INLINED)
def box_size(coef: np.ndarray, k: int, R: int, extents: np.ndarray, row: int) -> int:
    """Elements of the box of tensor k that iteration extents (a row) project onto."""
    size = 1
    for r in range(R):
        width = 1
        for d in range(extents.shape[1]):
            width += coef[k, r, d] * (extents[row, d] - 1)
        size *= width
    return size


@njit(**_INLINED)
def aahr_delta_size(high: np.ndarray, shift: np.ndarray, j: int, R: int) -> int:
    """Elements of the tile (widths high[0]) not in the same tile moved by -shift[j],
    Timeloop's way: a partial overlap counts only when one rank moved."""
    moved = 0
    along = 0
    width = 1
    size = 1
    for r in range(R):
        size *= high[0, r]
        if shift[j, r] != 0:
            moved += 1
            along += abs(shift[j, r])
            width *= high[0, r]
    if moved == 0:
        return 0
    if moved == 1 and along < width:
        return size // max(width, 1) * along
    return size


@njit(**_INLINED)
def aahr_delta_box(low: np.ndarray, high: np.ndarray, shift: np.ndarray, j: int, R: int) -> None:
    """The delta of aahr_delta_size as a box relative to the new tile (rows 0: the
    tile), in row 1 + j."""
    moved = 0
    overlap = True
    for r in range(R):
        if shift[j, r] != 0:
            moved += 1
            overlap = overlap and abs(shift[j, r]) < high[0, r]
    partial = moved == 1 and overlap
    for r in range(R):
        ext, step = high[0, r], shift[j, r]
        low[1 + j, r] = 0 if moved == 0 else (ext - step if partial and step > 0 else 0)
        high[1 + j, r] = 0 if moved == 0 else (-step if partial and step < 0 else ext)


@njit(**_INLINED)
def fanout_slots(slot_factor: np.ndarray, slot_step: np.ndarray, b: int, l: int, k: int, R: int,
                 spatial_x: np.ndarray, spatial_y: np.ndarray, spatial_order: np.ndarray, extents: np.ndarray,
                 coef: np.ndarray) -> int:
    """The spatial loops of the fan-out below level l as tensor k sees them, the
    innermost first: each loop's factor and the step of its instances' tiles on the
    tensor's ranks. Returns how many loops there are."""
    D = spatial_x.shape[2]
    S = 0
    for axis in range(2):  # the X loops are inside the Y loops
        for i in range(D - 1, -1, -1):
            d = spatial_order[b, l, i]
            factor = spatial_x[b, l, d] if axis == 0 else spatial_y[b, l, d]
            if factor > 1:
                stride = extents[l + 1, d] if axis == 0 else extents[l + 1, d] * spatial_x[b, l, d]
                slot_factor[S] = factor
                for r in range(R):
                    slot_step[S, r] = stride * coef[k, r, d]
                S += 1
    return S


@njit(**_INLINED)
def fanout_offsets(slot_factor: np.ndarray, slot_step: np.ndarray, digits: np.ndarray, offset: np.ndarray, S: int,
                   R: int) -> int:
    """The offset of every instance's tile (rows of `offset`) on a fan-out of S
    spatial loops (fanout_slots), the innermost loop counting fastest, as Timeloop
    numbers instances. Returns how many instances there are."""
    n = 1
    for s in range(S):
        n *= slot_factor[s]
        digits[s] = 0
    for r in range(R):
        offset[0, r] = 0
    for i in range(1, n):  # an odometer over the spatial loops
        for r in range(R):
            offset[i, r] = offset[i - 1, r]
        s = 0
        while True:
            digits[s] += 1
            if digits[s] < slot_factor[s]:
                for r in range(R):
                    offset[i, r] += slot_step[s, r]
                break
            digits[s] = 0
            for r in range(R):
                offset[i, r] -= slot_step[s, r] * (slot_factor[s] - 1)
            s += 1
    return n


@njit(**_INLINED)
def same_fanout(seen_slots: np.ndarray, seen_factor: np.ndarray, seen_step: np.ndarray, l: int, k: int, S: int,
                slot_factor: np.ndarray, slot_step: np.ndarray, R: int) -> bool:
    """Whether level l's fan-out has the same spatial loops for tensor k as it had
    when remember_fanout last saw it (then its offsets, and what they give, are the
    same)."""
    if seen_slots[l, k] != S:
        return False
    for s in range(S):
        if seen_factor[l, k, s] != slot_factor[s]:
            return False
        for r in range(R):
            if seen_step[l, k, s, r] != slot_step[s, r]:
                return False
    return True


@njit(**_INLINED)
def remember_fanout(seen_slots: np.ndarray, seen_factor: np.ndarray, seen_step: np.ndarray, seen_counts: np.ndarray,
                    seen_diff: np.ndarray, seen_served: np.ndarray, seen_remaining: np.ndarray,
                    slot_factor: np.ndarray, slot_step: np.ndarray, diff: np.ndarray, served: np.ndarray,
                    remaining: np.ndarray, l: int, k: int, S: int, R: int, instances: int, groups: int,
                    distinct: int) -> None:
    """Keeps what level l's fan-out gave tensor k, for recall_fanout; a fan-out with
    more than REMEMBERED_OFFSETS neighbour offsets is not kept."""
    if distinct > seen_diff.shape[2]:
        seen_slots[l, k] = -1
        return
    seen_slots[l, k] = S
    for s in range(S):
        seen_factor[l, k, s] = slot_factor[s]
        for r in range(R):
            seen_step[l, k, s, r] = slot_step[s, r]
    seen_counts[l, k, 0], seen_counts[l, k, 1], seen_counts[l, k, 2] = instances, groups, distinct
    for g in range(distinct):
        seen_served[l, k, g] = served[g]
        seen_remaining[l, k, g] = remaining[g]
        for r in range(R):
            seen_diff[l, k, g, r] = diff[g, r]


@njit(**_INLINED)
def recall_fanout(seen_counts: np.ndarray, seen_diff: np.ndarray, seen_served: np.ndarray,
                  seen_remaining: np.ndarray, diff: np.ndarray, served: np.ndarray, remaining: np.ndarray, l: int,
                  k: int, R: int) -> tuple[int, int, int]:
    """What remember_fanout kept for level l and tensor k, back in the scratch
    fanout_flows reads; returns (instances, groups, distinct)."""
    distinct = seen_counts[l, k, 2]
    for g in range(distinct):
        served[g] = seen_served[l, k, g]
        remaining[g] = seen_remaining[l, k, g]
        for r in range(R):
            diff[g, r] = seen_diff[l, k, g, r]
    return seen_counts[l, k, 0], seen_counts[l, k, 1], distinct


@njit(**_INLINED)
def number_offsets(offset: np.ndarray, key: np.ndarray, rank: np.ndarray, offset_id: np.ndarray, n: int,
                   R: int) -> int:
    """Numbers the n instance offsets densely in `offset_id` (equal ids = equal
    offsets, exactly); returns how many distinct ones there are: the reads a delta
    wanted by every instance costs."""
    span = 1
    for i in range(n):
        key[i] = 0
    for r in range(R):
        width = 1
        for i in range(n):
            width = max(width, offset[i, r] + 1)  # offsets are >= 0: so are the coefficients
        if width > 1:
            if span > (1 << 62) // width:
                raise ValueError("fan-out offsets too far apart to number exactly")
            span *= width
            for i in range(n):
                key[i] = key[i] * width + offset[i, r]
    sort_by_key(rank, key, n)
    groups = 0
    for i in range(n):
        if i == 0 or key[rank[i]] != key[rank[i - 1]]:
            groups += 1
        offset_id[rank[i]] = groups - 1
    return groups


@njit(**_INLINED)
def sort_by_key(rank: np.ndarray, key: np.ndarray, n: int) -> None:
    """rank[:n] = 0..n-1 ordered by key (Shell's sort: a few lines, no allocation,
    and compiled in a blink, unlike np.argsort). Knuth's gaps 1, 4, 13, 40, ...: with
    Shell's halving gaps the regular keys of a large mesh took quadratic time."""
    for i in range(n):
        rank[i] = i
    gap = 1
    while gap < n // 3:
        gap = 3 * gap + 1
    while gap > 0:
        for i in range(gap, n):
            item = rank[i]
            j = i
            while j >= gap and key[rank[j - gap]] > key[item]:
                rank[j] = rank[j - gap]
                j -= gap
            rank[j] = item
        gap //= 3


@njit(**_INLINED)
def neighbour_offsets(offset: np.ndarray, offset_id: np.ndarray, pair_group: np.ndarray, diff: np.ndarray,
                      served: np.ndarray, remaining: np.ndarray, mask: np.ndarray, seen: np.ndarray, l: int, n: int,
                      groups: int, R: int, pair_cur: np.ndarray, pair_next: np.ndarray, pairs: int) -> int:
    """The distinct offsets (rows of `diff`) between mesh neighbours both in use,
    and for each, how many instances a neighbour serves and the distinct offsets
    among the others. Returns how many distinct neighbour offsets there are."""
    distinct = 0
    used = pairs  # pairs are ordered by instance: those of the n instances in use come first
    for p in range(pairs):
        cur, nxt = pair_cur[l, p], pair_next[l, p]
        pair_group[p] = -1
        if cur >= n:
            used = p
            break
        if nxt >= n:
            continue
        g = 0
        while g < distinct:
            same = True
            for r in range(R):
                if diff[g, r] != offset[nxt, r] - offset[cur, r]:
                    same = False
                    break
            if same:
                break
            g += 1
        if g == distinct:
            for r in range(R):
                diff[g, r] = offset[nxt, r] - offset[cur, r]
            distinct += 1
        pair_group[p] = g
    for g in range(distinct):
        for i in range(n):
            mask[i] = False
        for p in range(used):
            if pair_group[p] == g:
                mask[pair_cur[l, p]] = True
        for i in range(groups):
            seen[i] = False
        served[g] = 0
        remaining[g] = 0
        for i in range(n):
            if mask[i]:
                served[g] += 1
            elif not seen[offset_id[i]]:
                seen[offset_id[i]] = True
                remaining[g] += 1
    return distinct


@njit(**_INLINED)
def child_deltas(shift: np.ndarray, delta: np.ndarray, low: np.ndarray, high: np.ndarray, coef: np.ndarray, k: int,
                 R: int, extents: np.ndarray, child: int, loop_weight: np.ndarray, first: int,
                 loops: int) -> tuple[int, int]:
    """The child tile of tensor k (box row 0) and, per loop j of its walk, what moves
    in when j advances (delta[j], box row 1 + j). Returns the tile's size and what
    the child reads over the whole walk."""
    size = 1
    for r in range(R):
        width = 1
        for d in range(extents.shape[1]):
            width += coef[k, r, d] * (extents[child, d] - 1)
        low[0, r] = 0
        high[0, r] = width
        size *= width
    per_state = size
    for j in range(loops - first):
        same = True
        for r in range(R):
            same = same and shift[j, r] == shift[0, r]
        if same:
            delta[j] = aahr_delta_size(high, shift, j, R)
            aahr_delta_box(low, high, shift, j, R)
        else:
            delta[j] = size
            for r in range(R):
                low[1 + j, r] = 0
                high[1 + j, r] = high[0, r]
        per_state += loop_weight[first + j] * delta[j]
    return size, per_state


@njit(**_INLINED)
def child_calls(calls: np.ndarray, tile: int, delta: np.ndarray, loop_factor: np.ndarray, loop_weight: np.ndarray,
                first: int, loops: int) -> int:
    """The walk as the kinds of calls of the module's docstring, rows of `calls`:
    (words moved in all, delta box, box of the call before (-1: none), shift row
    of the tile's move since). Returns how many kinds there are."""
    calls[0, 0], calls[0, 1], calls[0, 2], calls[0, 3] = tile, 0, -1, 0  # the whole tile, first
    if loops == first:
        return 1
    e1 = loop_factor[first]
    calls[1, 0], calls[1, 1], calls[1, 2], calls[1, 3] = (e1 - 1) * delta[0], 1, 0, 0
    C = 2
    for j in range(1, loops - first):
        w = loop_weight[first + j]
        calls[C, 0], calls[C, 1], calls[C, 2], calls[C, 3] = w * delta[j], 1 + j, 1, j
        calls[C + 1, 0], calls[C + 1, 1], calls[C + 1, 2], calls[C + 1, 3] = w * (e1 - 1) * delta[0], 1, 1 + j, 0
        C += 2
    return C


@njit(**_INLINED)
def compute_calls(calls: np.ndarray, low: np.ndarray, high: np.ndarray, R: int, loop_weight: np.ndarray, first: int,
                  loops: int) -> int:
    """The MACs' operand reads as calls (see child_calls): the first, then one per
    advance of each loop, each a one-element box (rows of `low`, `high`). Returns
    how many kinds of calls there are."""
    J = loops - first
    for j in range(J + 1):
        for r in range(R):
            low[j, r] = 0
            high[j, r] = 1
    calls[0, 0], calls[0, 1], calls[0, 2], calls[0, 3] = 1, 0, -1, 0
    for j in range(J):
        calls[1 + j, 0], calls[1 + j, 1], calls[1 + j, 2], calls[1 + j, 3] = loop_weight[first + j], 1 + j, 0, j
    return J + 1


@njit(**_INLINED)
def fanout_flows(calls: np.ndarray, C: int, low: np.ndarray, high: np.ndarray, shift: np.ndarray, diff: np.ndarray,
                 served: np.ndarray, remaining: np.ndarray, R: int, instances: int, groups: int,
                 distinct: int) -> tuple[float, float, float]:
    """Reads (a multicast once), deliveries and link transfers of the calls over a
    fan-out. A mesh neighbour that received the same delta one step earlier (its
    offset minus one's own is where the box moved since the call before, and the
    box kept its shape) serves it when that saves reads."""
    accesses, weighted, links = 0, 0, 0
    for c in range(C):
        moved, box, prev, tau = calls[c, 0], calls[c, 1], calls[c, 2], calls[c, 3]
        if moved == 0:
            continue
        group = -1
        if prev >= 0:
            same_shape = True
            for r in range(R):
                same_shape = same_shape and high[prev, r] - low[prev, r] == high[box, r] - low[box, r]
            g = 0
            while same_shape and g < distinct:
                match = True
                for r in range(R):
                    if diff[g, r] != low[box, r] - low[prev, r] + shift[tau, r]:
                        match = False
                        break
                if match:
                    group = g
                    break
                g += 1
        if group >= 0 and remaining[group] < groups:
            accesses += remaining[group] * moved
            weighted += (instances - served[group]) * moved
            links += served[group] * moved
        else:
            accesses += groups * moved
            weighted += instances * moved
    return float(accesses), float(weighted), float(links)


_NO_OVERFLOW = 2**31  # two factors below it multiply within 63 bits


@njit(**_INLINED)
def scaled_down(value: int, numerator: int, denominator: int) -> int:
    """value * numerator // denominator without the 64-bit overflow of the product
    (tiles above 2**31 words make it overflow): common factors are cancelled first,
    which leaves the quotient exact. Most products fit: those skip the divisions."""
    if value < _NO_OVERFLOW and numerator < _NO_OVERFLOW:
        return value * numerator // denominator
    g = euclid(value, denominator)
    value, denominator = value // g, denominator // g
    g = euclid(numerator, denominator)
    return value * (numerator // g) // (denominator // g)


@njit(**_INLINED)
def euclid(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


@njit(**_INLINED)
def account_tensor(size: np.ndarray, partition: np.ndarray, content: np.ndarray, share: np.ndarray, alive: np.ndarray,
                   scaled: np.ndarray, b: int, k: int, R: int, coef: np.ndarray, read_write: bool, keep: np.ndarray,
                   extents: np.ndarray, spatial_x: np.ndarray, spatial_y: np.ndarray, run: np.ndarray,
                   replication: np.ndarray, accesses: np.ndarray, weighted: np.ndarray, links: np.ndarray,
                   words: np.ndarray, present: np.ndarray, reads: np.ndarray, fills: np.ndarray,
                   updates: np.ndarray) -> None:
    """reference.account over one mapping's levels (outermost first here): partitions,
    bypass, peer transfers, then reads, fills and updates of tensor k."""
    L = run.shape[0]
    D = extents.shape[1]
    for l in range(L):
        size[l] = box_size(coef, k, R, extents, l)
    partition[0] = size[0]
    for l in range(1, L):
        union = size[l]  # what the parent's fan-out holds of the child tile
        if run[l - 1] > 1:
            for d in range(D):
                scaled[0, d] = extents[l, d] * spatial_x[b, l - 1, d] * spatial_y[b, l - 1, d]
            union = box_size(coef, k, R, scaled, 0)
        partition[l] = scaled_down(partition[l - 1], size[l], union)
    for l in range(L):
        content[l] = accesses[k, l]
        alive[l] = True
        share[l] = weighted[k, l - 1] / max(run[l - 1], 1) if l > 0 else 0.0
    for l in range(L - 1, 0, -1):  # bypass, innermost first
        if keep[b, l, k]:
            continue
        factor = content[l] * max(run[l - 1], 1) / weighted[k, l - 1]
        accesses[k, l - 1] *= factor
        weighted[k, l - 1] *= factor
        links[k, l - 1] = 0.0
        content[l - 1] = accesses[k, l - 1]
        alive[l] = False
    alive[0] = keep[b, 0, k]
    outer_unkept = True
    first_kept = -1
    for l in range(L):
        outer_unkept = outer_unkept and not keep[b, l, k]
        if outer_unkept:
            alive[l] = False
            links[k, l] = 0.0
        words[k, l] = ((0.0 if outer_unkept else weighted[k, l]) + links[k, l]) * replication[l]
        if first_kept < 0 and keep[b, l, k]:
            first_kept = l
    outermost = True
    for l in range(L):
        present[k, l] = alive[l]
        if not alive[l]:
            reads[b, l, k] = 0
            fills[b, l, k] = 0
            updates[b, l, k] = 0
            continue
        peer = links[k, l - 1] / replication[l] if l > 0 else 0.0
        parent = 0.0 if l == first_kept else share[l]
        if read_write:
            updates[b, l, k] = np.int64(np.rint(content[l]))
            reads[b, l, k] = np.int64(np.rint(content[l] + peer - partition[l]))
            fill = parent + peer
            fills[b, l, k] = np.int64(np.rint(fill if outermost else fill - partition[l]))
        else:
            reads[b, l, k] = np.int64(np.rint(content[l] + peer))
            fills[b, l, k] = np.int64(np.rint(parent + peer))
        outermost = False


@njit(**_INLINED)
def energy_and_cycles(b: int, reads: np.ndarray, fills: np.ndarray, updates: np.ndarray, present: np.ndarray,
                      replication: np.ndarray, words: np.ndarray, compute_cycles: int, access_bits: np.ndarray,
                      port_bits: np.ndarray, words_per_element: np.ndarray, read_energy: np.ndarray,
                      write_energy: np.ndarray, read_bandwidth: np.ndarray, write_bandwidth: np.ndarray,
                      network_energy: np.ndarray, clusters: np.ndarray, compute_energy: float) -> tuple[float, int]:
    """Energy of the accesses, the fan-out networks and the MACs; cycles, the slowest
    level's bandwidth permitting."""
    _, L, T = reads.shape
    energy = 0.0
    cycles = compute_cycles
    for l in range(L):
        read_words = 0.0
        write_words = 0.0
        for k in range(T):
            if present[k, l]:
                num, den = access_bits[l, k], port_bits[l, k]
                paid = min(replication[l], clusters[l])  # StorageLevel.utilized_clusters
                energy = energy + ((-(-reads[b, l, k] * num // den)) * read_energy[l]
                                   + (-(-fills[b, l, k] * num // den)) * write_energy[l]
                                   + (-(-updates[b, l, k] * num // den)) * write_energy[l]) * paid
            read_words += reads[b, l, k] * words_per_element[l, k]
            write_words += (fills[b, l, k] + updates[b, l, k]) * words_per_element[l, k]
        cycles = max(cycles, throttled_cycles(read_bandwidth[l], write_bandwidth[l], read_words, write_words,
                                              compute_cycles))
    network = 0.0
    for l in range(L):
        if network_energy[l]:
            crossing = 0.0
            for k in range(T):
                crossing += words[k, l] * words_per_element[l, k]
            network = network + network_energy[l] * crossing
    return compute_energy + energy + network, cycles


@njit(**_INLINED)
def throttled_cycles(read_bandwidth: float, write_bandwidth: float, reads: float, writes: float,
                     compute_cycles: int) -> int:
    """Cycles of a level whose per-instance bandwidth may not keep up with the MACs."""
    slowdown = 1.0
    if read_bandwidth and reads > 0:
        slowdown = min(slowdown, read_bandwidth / (reads / compute_cycles))
    if write_bandwidth and writes > 0:
        slowdown = min(slowdown, write_bandwidth / (writes / compute_cycles))
    if slowdown >= 1:
        return compute_cycles  # exact: floats are exact below 2**53 only
    return np.int64(np.ceil(compute_cycles / slowdown))


@njit(**_INLINED)
def fits(b: int, coef: np.ndarray, ranks: np.ndarray, keep: np.ndarray, extents: np.ndarray, spatial_x: np.ndarray,
         spatial_y: np.ndarray, fan: np.ndarray, bounded: np.ndarray, capacity: np.ndarray,
         per_element: np.ndarray) -> bool:
    """Every kept tile fits its level, every fan-out its mesh."""
    _, L, D = spatial_x.shape
    for l in range(L):
        held = 0
        for k in range(coef.shape[0]):
            if keep[b, l, k]:
                held += box_size(coef, k, ranks[k], extents, l) * per_element[l, k]
        if bounded[l] and held > capacity[l]:
            return False
    return within_fanouts(b, spatial_x, spatial_y, fan)


@njit(**_INLINED)
def within_fanouts(b: int, spatial_x: np.ndarray, spatial_y: np.ndarray, fan: np.ndarray) -> bool:
    """Whether mapping b's spatial loops fit every fan-out's mesh, along X and along Y."""
    _, L, D = spatial_x.shape
    for l in range(L):
        used_x = 1
        used_y = 1
        for d in range(D):
            used_x *= spatial_x[b, l, d]
            used_y *= spatial_y[b, l, d]
        if used_x > fan[l, 0] or used_y > fan[l, 1]:
            return False
    return True
