"""The search's last step: a local search over whole mappings from the best ones the
trials found, so that the answer depends less on which structures the trials
happened to try.

In order (`polish`; each step's reason, and the layer that showed it, below):
1. Starts: the best mapping of each keep table the trials found, also under the
   busiest unrollings of the array (`_unrolled`).
2. Local searches (`_local_search`), from the best keep tables in turn: rounds of
   random moves of the elite (`Moves`) while they better it, then a sweep of its best
   (`_swept`: other keep tables, unrollings, and the tiles each needs), on while that
   betters it. They run until two agree on the best value and at least
   `PolishEffort.least_starts` have run.
3. On a large array, a local search that betters the others is followed by one from
   its crossings with the trials' structures (`_crossed`).
4. Then, while either betters the best: its temporal factors placed anew, one or two
   dimensions at a time (`_placed_anew`), or its sweep's keep tables under the
   unrollings freed inside (`_unrolled_inside`), each followed by a local search.
5. In a layer's own search, last (`shared_polish`): the dataflows that share a tensor
   across the array that the answer does not share.

A trial scores tilings of one structure (its loop orders, spatial unrolling and keep
table stay fixed), and the structure moves of the search are Optuna trials of a tenth
of a second each. Where good mappings differ from the trials' best in several of
those choices at once (a 128 x 128 array is busy only when both of its unrollings
change together with the tiles), the trials rarely get there, and which local optimum
they end in depends on the seed. Here every part of a mapping moves in the vectorized
model's batches, at microseconds a mapping (`Moves`): a prime factor of a dimension
from one loop to another (temporal or spatial, across levels and fan-outs), or traded
there for a prime factor of another dimension (so that a fan-out stays as busy), two
iterating loops of a level swapped, a free keep flag flipped (a level that starts
keeping a tensor hands the loops of its dimensions to the level above, so that the
tensor's tile fits), the unrolling of every fan-out replaced by one of the busiest
together (a dimension that leaves one fan-out must often go to another); a child
takes one to three such moves. The elite, the best mappings so far, breeds children
for as long as rounds keep improving it; then its best is swept: tried under every
keep table one or two flags away, each of them with its own best tiles (as a trial
would give them), the best of those tables under every busiest unrolling, itself
under the less busy ones, and the best of the new unrollings and of the less busy
ones apart given their own best tiles. As swept, with the tiles of the structure they
come from, the structures that win rank low: AlexNet's conv3 on the Eyeriss-like
array ended 11.7% worse from one seed in five when the less busy unrollings competed
with the others, and on ResNet-50 on the Eyeriss-like array five searches in 105
ended 2-5% worse when only the best few keep tables as swept were tiled anew (a
shared buffer that kept the outputs where keeping the inputs was best, with other
tiles at three levels). The rounds go on if the sweep betters the best. The random
moves alone ended in mappings that reached the best value only with two fan-outs'
unrollings changed at once (the 128 x 128 tpu-like array), or two keep flags, or with
a few PEs idle and other tiles (AlexNet's conv3 on the Eyeriss-like array).

Keep tables are where local searches get stuck: a level that keeps a tensor needs
other tiles than one that bypasses it, so one flag moved alone rarely pays. So the
elite holds at most a few mappings of one keep table; the best mapping of each keep
table the trials found also starts under every unrolling that keeps the most of the
array busy (up to `PolishEffort.unrollings`) and the next busiest, not only under
the few the trials happened to reach; and the local searches restart from the best
keep tables in turn, until two of them agree on the best value and at least
`PolishEffort.least_starts` have run. Two that agree are often a common local optimum:
from seed 2, ResNet-50's res3a_branch1 on the simba-like array ended at 78.78 J*cycles
when the first two agreed there (so did the third); the fourth, from a keep table
where the input buffers keep the inputs too, ends at 73.30, the other seeds' answer.
So a layer's own search runs four at least (search/run.py's LAYER_POLISH). Where an
unrolling changes, each factor moves as little as it can (tilings.unrolled_as), so
that the tiles stay those the trials found.

When the local searches are done, the best mapping's temporal factors are placed
anew, one dimension's and two dimensions' at a time, in every way the levels can take
them (where those are few enough), and a local search goes on from a better one: the
moves carry a prime at a time, and tiles that must change at several levels at once
stop them (ResNet-18's layer1 3x3 on the Eyeriss-like array ended 2.3% worse from
one seed in five). Done in every sweep instead, it found the same answers for the 60
searches of benchmarks/bench_seeds.py in 627 CPU-seconds against 583.

Where placing them anew no longer betters it, the best keep tables of its sweep go
under every busiest unrolling once more, with the factors that a fan-out no longer
unrolls moved to the innermost level rather than to the level just above the fan-out
(tilings.unrolled_as's freed_inside), the best of those are tiled anew, and a local
search goes on from a better one. Where the innermost level holds a tensor
stationary, the sweep's way makes it refill at every step of the loops that the
change adds, and ranks last the unrolling that pays: ResNet-50's res3a_branch2a (the
stride-2 1x1) on the simba-like array ended at 6.62 J*cycles from four seeds in five,
where seed 3's unrolling (C2 M8 across the columns, C2 M2 at the input buffers, the
global buffer keeping the inputs too) came 1,002nd of the 1,024 busiest as swept
(170 J*cycles) and 5.16 tiled anew. In every sweep instead, it led other searches
into other basins (ResNet-50's res4a_branch1 on the Eyeriss-like array 18% worse
from one seed in five); done at the end, where it can only better the answer the
polish would have had, of the 605 searches of benchmarks/bench_seeds.py's sets it
bettered that layer's from seeds 1 and 3 (to 5.12) and left the others as they were.
It goes from the best mapping of each unrolling and keep table that ties with the
best (at most `PolishEffort.tied_shapes`), not from the best alone: where the levels
between the fan-outs keep nothing, mappings of other unrollings often cost exactly as
much, and their freed factors land elsewhere. That layer's polish ended at 6.62 from
seeds 0, 2 and 4; from seed 0 in two mappings, M16 across the columns and C2 M8 there.
From the first the freed-inside unrollings led nowhere better, from the second to
6.41, and the local search from there to 5.12 (seeds 2 and 4 likewise). Over
ResNet-50's shapes on simba-like, seeds 0-4 (benchmarks/bench_seeds.py), that bettered
those three of 105 searches at 8-14% more CPU (683 and 727 seconds against 631 and
635, two pairs in turn), ties being common there. Not on a large array (a fan-out with
more unrollings than `PolishEffort.crossed_above`), where the crossings run: on
tpu-like's shapes it changed none of the 105 mappings, at 26% more CPU.

Local optima also hold good parts of different mappings. Where a fan-out has more
unrollings than a search has trials, the trials have tried few of them, and a local
search that ends better than every earlier one is crossed with the best structures
the trials found (as GAMMA's genetic search crosses mappings): its mapping takes
one fan-out's unrolling of such a structure, under its own keep table and under that
structure's, each tiled anew, and the best of these crossings starts another local
search. Its end does not count towards the agreement of the others: a crossing
started from a local optimum may well end there again. On the 128 x 128 tpu-like
array (736 unrollings per fan-out), ResNet-18's layer1 3x3 ended at 6.921e12
MAC*cycles from two seeds in five: the best mapping (6.504e12) takes the column
unrolling of the trials' best (C2 P8 Q8), the row unrolling of the local search's
(C2 Q7 R3 S3) and a keep table of neither (weights in the FIFO, inputs in the PE
registers); the local search's mapping with that column unrolling alone costs 73
times as much (each with its best tiles), with that keep table alone 27 times. On
the Eyeriss-like array, crossings after every better end, counted towards
agreement, ended four of ResNet-50's 105 searches 2-21% worse: their local search
took the place of the one from the keep table that led to the best.

Last, in a layer's own search (`PolishEffort.shared_starts`: `shared_polish`, which
engine.OptunaSearch.share runs after the padded layers' searches), the dataflows that
share a tensor across the array that the answer does not share. A PE array shares a
tensor where it unrolls only dimensions the tensor does not depend on: every PE takes
the same weight at once where only output positions are unrolled (the weights
multicast, the partial sums held in the PEs), the same input where only output
channels are, and adds into the same output where only what is summed is. Such a
dataflow differs from the answer in its unrolling, keep table and tiles at once, and
the moves and sweeps lead from one to the other only by chance: on an Eyeriss-style 16
x 16 design, ResNet-18's layer1 3x3 ended at 84.58 J*cycles from three seeds in five
with C and M unrolled and the weights in the PE scratchpads (every PE busy), where the
weights multicast over P and Q (224 PEs busy) and the partial sums in the scratchpads
cost 80.84. So the answer and its sweep's best keep tables go under the busiest
unrollings that share each such tensor (`shared_unrollings`), the best of them are
tiled anew, and a local search runs from the best without its sweeps, which cost the
most and mostly lead nowhere from there; one that ends better than the answer goes on
with them. That layer then ends within 0.4% from every seed, at about 4% more CPU.

Measured with benchmarks/bench_seeds.py (docs/search-measurements.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..mapspace import Mapspace, TemporalFactors
from ..model.batch import MappingBatch
from .objectives import Objective, structure_keys
from .tilings import (Effort, Scored, ScoredBefore, best_tilings, first_occurrences, move_primes, random_true,
                      representatives, score, trade_primes, unrolled_as)

Unrollings = tuple[np.ndarray, np.ndarray]  # (spatial_x, spatial_y), each (n, L, D)
# A polish's sweeps' keep tables (`_swept_tables`) by the key of the mapping swept: the
# last sweep of a local search is from its end, which `_unrolled_inside` sweeps again.
SweptTables = dict[bytes, tuple[Scored, Scored, Scored]]


@dataclass(frozen=True)
class PolishEffort:
    elite: int = 32  # best mappings kept
    per_keep_table: int = 4  # of them at most this many with one keep table
    keep_tables: int = 32  # the best mapping of each of this many keep tables starts anew
    unrollings: int = 1024  # at most, of the unrollings that keep the most of the whole array busy
    next_busiest: int = 16  # and of the busiest unrollings whatever their busyness
    less_busy: int = 2048  # at most, of the others that keep at least half as many MACs busy, for the sweep
    swept_keep_tables: int = 4  # keep tables whose best mapping a sweep tries under every busiest unrolling
    retiled_keep_tables: int = 32  # at most, of the keep tables one or two flags away that a sweep tiles anew
    swept_structures: int = 8  # structures found by a sweep whose best tilings it looks for, and as many less busy
    children: int = 64  # children per round, per elite mapping: `elite` x this many, of random elite parents
    patience: int = 15  # rounds in a row that do not better the best value end a local search
    rounds: int = 300  # at most, per local search
    restarts: int = 6  # local searches at most
    least_starts: int = 2  # local searches from the trials' keep tables, at least, before two that agree end them
    crossed_parents: int = 8  # the trials' best structures a local search's better end is crossed with (0: none)
    crossed_above: int = 300  # a fan-out with more unrollings than a default search's trials: crossings, no ties
    min_improvement: float = 1e-4  # a round that betters the best value by less does not count
    placements: int = 10_000  # at most, ways to place one or two dimensions' temporal factors tried at once (0: none)
    tied_shapes: int = 2  # at most, unrollings and keep tables tied with the best that the end sweeps from (`_tied`)
    shared_starts: bool = False  # last, local searches under the unrollings that share one tensor (`shared_polish`)
    shared_patience: int = 5  # rounds in a row without gain that end such a local search before it sweeps


def polish(mapspace: Mapspace, start: Scored, objective: Objective, effort: PolishEffort,
           rng: np.random.Generator, tiling: Effort = Effort()) -> tuple[Scored, int]:
    """The best mappings after local searches from `start` (module docstring), best
    first, and how many mappings were scored. The local searches start from the best
    keep tables in turn (each from its best mappings) and end in different local
    optima; they run until two of them agree on the best value (within
    `min_improvement`) and at least `effort.least_starts` have run, or
    `effort.restarts` have. Where a fan-out has more
    unrollings than `effort.crossed_above`, a local search that betters every earlier
    one is followed by one from the best crossing of its mapping with the trials'
    structures (`_crossed`), whose end does not count towards agreement (nor towards
    `effort.restarts`: at most as many again). Then, while placing the best mapping's
    factors anew betters it (`_placed_anew`; single objectives), or else the sweep's
    keep tables of it and of the mappings of other unrollings and keep tables that tie
    with it (`_tied`) under the unrollings freed inside do (`_unrolled_inside`), a local
    search goes on from there, at most `effort.restarts` times. `tiling`: the effort
    with which a sweep finds the best tilings of a new structure, the search's own
    (engine.py)."""
    moves = Moves(mapspace, effort)
    start = start.unique()
    tables = _elite(start, objective, effort.keep_tables, 1)  # the best mapping of each keep table
    unrolled, scored = score(mapspace, _unrolled(mapspace, tables.batch, moves.unrollings))
    begin = _elite(Scored.concatenate([start, unrolled]).unique(), objective, effort.elite, effort.per_keep_table)
    groups = [(begin.take(group), False) for group in _by_keep_table(begin)]  # (start, whether a crossing)
    large = any(len(mapspace.spatial_choices(l)) > effort.crossed_above for l in range(mapspace.L))
    crossing = objective != "pareto" and effort.crossed_parents > 0 and large
    tied_shapes = 1 if large else effort.tied_shapes
    ends: list[Scored] = []
    swept: SweptTables = {}
    agreeing: list[Scored] = []  # the ends of the local searches from the trials' keep tables
    while groups and len(ends) < 2 * effort.restarts:
        elite, crossed = groups.pop(0)
        if not crossed and len(agreeing) == effort.restarts:
            break
        end, count = _local_search(mapspace, moves, elite, objective, effort, tiling, rng, swept)
        scored += count
        ends.append(end)
        if not crossed:
            agreeing.append(end)
        if (objective != "pareto" and len(agreeing) >= effort.least_starts
                and _agreed(agreeing, objective, effort.min_improvement)):
            break
        if crossing and _betters_the_others(ends, objective, effort.min_improvement):
            crossings, count = _crossed(mapspace, end.take(np.arange(1)), start, objective, effort.crossed_parents,
                                        tiling)
            scored += count
            if len(crossings):
                groups.insert(0, (crossings.take(_by_keep_table(crossings)[0]), True))
    for _ in range(effort.restarts if objective != "pareto" else 0):
        found = Scored.concatenate(ends or [begin]).unique()
        best = _elite(found, objective, 1, 1)
        restart, count = _placed_anew(mapspace, best, objective, effort)
        scored += count
        if not _better(restart, best, objective, effort.min_improvement):
            tied = _tied(found, objective, effort.min_improvement, tied_shapes)
            restart, count = _unrolled_inside(mapspace, moves, tied, objective, effort, tiling, swept)
            scored += count
            if not _better(restart, best, objective, effort.min_improvement):
                break
        end, count = _local_search(mapspace, moves, restart, objective, effort, tiling, rng, swept)
        scored += count
        ends.append(end)
    found = Scored.concatenate(ends or [begin]).unique()
    return _elite(found, objective, effort.elite, effort.per_keep_table), scored


def shared_polish(mapspace: Mapspace, best: Scored, objective: Objective, effort: PolishEffort,
                  rng: np.random.Generator, tiling: Effort = Effort()) -> tuple[Scored, int]:
    """The best mappings (a single objective's) after local searches from `best` (one
    mapping, a polish's answer) and its sweep's best keep tables (`_swept_tables`) under
    the busiest unrollings that share one tensor across the array that `best` does not
    share (`shared_unrollings`), one tensor after another (module docstring), best first,
    and how many mappings were scored. Each runs its rounds until
    `effort.shared_patience` in a row do not better it, and only one that ends better
    than the best so far goes on as a local search does, with its sweeps: most lead
    nowhere, and the sweeps cost the most."""
    moves, swept = Moves(mapspace, effort), {}
    (_, _, tables), scored = _swept_tables(mapspace, moves, best, objective, effort, tiling, swept)
    quick = replace(effort, patience=effort.shared_patience)
    ends = []
    for unrollings in shared_unrollings(mapspace, best.batch, effort).values():
        unrolled, tiled, count = _unrolled_and_tiled(mapspace, tables.batch, unrollings, objective, quick, tiling)
        scored += count
        start = _elite(Scored.concatenate([tiled, unrolled]).unique(), objective, effort.elite, effort.per_keep_table)
        if not len(start):
            continue
        end, count = _local_search(mapspace, moves, start, objective, quick, tiling, rng, swept, sweep=False)
        scored += count
        if _better(end, best, objective, effort.min_improvement):
            end, count = _local_search(mapspace, moves, end, objective, effort, tiling, rng, swept)
            scored += count
            best = end.take(np.arange(1))
        ends.append(end)
    found = Scored.concatenate([best, *ends]).unique()
    return _elite(found, objective, effort.elite, effort.per_keep_table), scored


def shared_unrollings(mapspace: Mapspace, best: MappingBatch, effort: PolishEffort) -> dict[str, Unrollings]:
    """The busiest unrollings that share each tensor that `best`'s first mapping does not,
    by the tensor's name: those that spread only dimensions the tensor does not depend
    on, so that every PE takes the same element of it at once (multicast where it is
    read, reduced across the PEs where it is updated), where they keep at least half as
    many MACs busy as the busiest unrolling; at most `effort.unrollings` of them, evenly
    spread over the mapspace's order. Dataflows that share different tensors differ in
    their unrolling, keep table and tiles at once (module docstring)."""
    sx, sy = mapspace.busiest_unrollings(effort.unrollings + effort.less_busy)
    spread = sx * sy
    unrolled = (spread > 1).any(axis=1)  # (n, D)
    busy = np.prod(spread, axis=(1, 2))
    own = (best.spatial_x[0] * best.spatial_y[0] > 1).any(axis=0)  # (D,)
    found = {}
    for tensor, depends in zip(mapspace.problem.tensors, _relevant(mapspace)):
        sharing = np.flatnonzero(~(unrolled & depends).any(axis=1) & (busy * 2 >= busy.max(initial=0)))
        if not (own & depends).any() or not len(sharing):
            continue
        top = _evenly(sharing[busy[sharing] == busy[sharing].max()], effort.unrollings)
        found[tensor.name] = sx[top], sy[top]
    return found


def _relevant(mapspace: Mapspace) -> np.ndarray:
    """(T, D): whether each tensor depends on each dimension."""
    dims = mapspace.problem.dims
    return np.array([[d in tensor.dims for d in dims] for tensor in mapspace.problem.tensors])


def _crossed(mapspace: Mapspace, best: Scored, found: Scored, objective: Objective, parents: int,
             tiling: Effort) -> tuple[Scored, int]:
    """Crossings of `best` (one mapping) with the best mappings of the `parents` best
    other structures of `found` (their unrolling and keep table): `best` with one
    fan-out's unrolling of a parent, under its own keep table and under the
    parent's, each with its best tilings (`_tiled`); best first, and how many mappings
    were scored. A good mapping of a large array often takes one fan-out's unrolling
    from one local optimum and the other's from another, with the keep table that
    suits them (module docstring), a change of several choices at once that no move
    makes."""
    head = best.batch
    heads = _best_of_each_shape(found, objective)
    fanouts = mapspace.fanout_levels
    children: dict[bytes, MappingBatch] = {}  # by structure, the first of equals
    own = structure_keys(head)[0].tobytes()
    for parent in range(min(parents, len(heads))):
        other = heads.batch.take(np.array([parent]))
        for level, keep in itertools.product(fanouts, (head.keep, other.keep)):
            child = _copy(head)
            child.spatial_x[:, level], child.spatial_y[:, level] = other.spatial_x[:, level], other.spatial_y[:, level]
            child.keep[:] = keep
            key = structure_keys(child)[0].tobytes()
            if key != own:
                children.setdefault(key, MappingBatch.concatenate([child, other]))
    crossed, scored = _tiled(mapspace, list(children.values()), objective, tiling)
    return crossed.take(np.argsort(crossed.scores.value(objective), kind="stable")), scored


def _by_keep_table(elite: Scored) -> list[np.ndarray]:
    """The rows of `elite` (best first) grouped by keep table, the groups in the order
    of their best rows."""
    table = representatives(elite.batch.keep.reshape(len(elite), -1))
    return [np.flatnonzero(table == first) for first in np.flatnonzero(table == np.arange(len(table)))]


def _betters_the_others(ends: list[Scored], objective: Objective, tolerance: float) -> bool:
    """Whether the last end betters every other by more than `tolerance` (relative)."""
    *others, last = (float(end.scores.value(objective)[0]) for end in ends)
    return all(last < other * (1 - tolerance) for other in others)


def _agreed(ends: list[Scored], objective: Objective, tolerance: float) -> bool:
    values = sorted(float(end.scores.value(objective)[0]) for end in ends)
    return len(values) >= 2 and values[1] <= values[0] * (1 + tolerance)


def _local_search(mapspace: Mapspace, moves: Moves, elite: Scored, objective: Objective, effort: PolishEffort,
                  tiling: Effort, rng: np.random.Generator, swept: SweptTables, sweep: bool = True
                  ) -> tuple[Scored, int]:
    """Rounds of children of the elite, until `effort.patience` rounds in a row do not
    better its best; then (`sweep`) a sweep of the mappings around its best (`_swept`),
    and on from there if that betters it."""
    scored, stale = 0, 0
    before = ScoredBefore(elite) if objective != "pareto" else None
    for _ in range(effort.rounds):
        if stale >= effort.patience and not sweep:
            return elite, scored
        if stale >= effort.patience:
            children, count = _swept(mapspace, moves, elite.take(np.arange(1)), objective, effort, tiling, swept)
        else:
            children, count = score(mapspace, moves.children(elite.batch, effort.elite * effort.children, rng), before)
        scored += count
        improved = _elite(Scored.concatenate([elite, children]).unique(), objective, effort.elite,
                          effort.per_keep_table)
        if _better(improved, elite, objective, effort.min_improvement):
            stale = 0
        elif stale >= effort.patience:
            return improved, scored
        else:
            stale += 1
        elite = improved
    return elite, scored


def _swept(mapspace: Mapspace, moves: Moves, best: Scored, objective: Objective, effort: PolishEffort,
           tiling: Effort, swept: SweptTables) -> tuple[Scored, int]:
    """Changes of several choices at once that the random moves rarely make together,
    each of which alone makes the mapping worse (a dimension moved from one fan-out
    to another, a buffer that keeps one tensor instead of another), and how many
    mappings were scored: `best` (one mapping) under every keep table one or two
    flags away (`Moves.rekept`), the best tilings (`tiled_anew`) of the best mapping
    of each of those tables, the best mappings of the `effort.swept_keep_tables` best
    tables (as swept or tiled anew) under every busiest unrolling, `best` under every
    less busy one (`_unrollings`), and the best tilings of the best of the new busiest
    unrollings and of the best of the less busy ones. A keep table may pay only with
    its own tiles and another unrolling together (ResNet-50's res5a_branch2c on the
    Eyeriss-like array, M padded to 2052: the shared buffer keeping the inputs too and
    the partial-sum registers the outputs, under a busier unrolling; as swept, with
    the tiles it came with, the table ranked too low to be unrolled anew, and one seed
    in five ended 2.6% worse)."""
    (rekept, retiled, tables), scored = _swept_tables(mapspace, moves, best, objective, effort, tiling, swept)
    unrolled, tiled, count = _unrolled_and_tiled(mapspace, tables.batch, moves.unrollings, objective, effort, tiling)
    less_busy, idler, more = _unrolled_and_tiled(mapspace, best.batch, moves.less_busy, objective, effort, tiling)
    return Scored.concatenate([rekept, unrolled, less_busy, retiled, tiled, idler]), scored + count + more


def _swept_tables(mapspace: Mapspace, moves: Moves, best: Scored, objective: Objective, effort: PolishEffort,
                  tiling: Effort, swept: SweptTables) -> tuple[tuple[Scored, Scored, Scored], int]:
    """`best` (one mapping) under every keep table one or two flags away, the best
    tilings of the best mapping of each of those tables, the best mappings of the
    `effort.swept_keep_tables` best tables (as swept or tiled anew), and how many
    mappings were scored (`_swept`): none where `swept` holds them (they depend on
    `best` alone: tiled_anew's random streams are the structures')."""
    key = best.scores.keys[0].tobytes()
    if key in swept:
        return swept[key], 0
    rekept, scored = score(mapspace, moves.rekept(best.batch))
    # Each kind is tiled anew apart from the others: as swept, with the tiles of the
    # structure they come from, the structures that win rank below the others.
    each_table = _elite(rekept, objective, effort.retiled_keep_tables, 1)
    retiled, retiled_count = tiled_anew(mapspace, each_table, objective, effort.retiled_keep_tables, tiling)
    tables = _elite(Scored.concatenate([best, rekept, retiled]), objective, effort.swept_keep_tables, 1)
    swept[key] = rekept, retiled, tables
    return swept[key], scored + retiled_count


def _tied(found: Scored, objective: Objective, tolerance: float, shapes: int) -> Scored:
    """The best mapping of each unrolling and keep table whose best ties with the best
    of `found` (within `tolerance`, relative), best first, at most `shapes` of them:
    where the levels between the fan-outs keep nothing, mappings of other unrollings
    often cost exactly as much, and lead elsewhere (module docstring)."""
    heads = _best_of_each_shape(found, objective)
    values = heads.scores.value(objective)
    return heads.take(np.flatnonzero(values <= values[0] * (1 + tolerance))[:shapes])


def _best_of_each_shape(found: Scored, objective: Objective) -> Scored:
    """The best mapping of each unrolling and keep table of `found`, best first (of
    equals, the first)."""
    ranked = found.take(np.argsort(found.scores.value(objective), kind="stable"))
    n = len(ranked)
    shapes = np.concatenate([ranked.batch.spatial_x.reshape(n, -1), ranked.batch.spatial_y.reshape(n, -1),
                             ranked.batch.keep.reshape(n, -1)], axis=1)
    return ranked.take(first_occurrences(shapes))


def _unrolled_inside(mapspace: Mapspace, moves: Moves, tied: Scored, objective: Objective, effort: PolishEffort,
                     tiling: Effort, swept: SweptTables) -> tuple[Scored, int]:
    """The best of `tied` (the best mappings, one per unrolling and keep table:
    `_tied`) and of the best tilings of the best of each one's sweep's keep tables
    (`_swept_tables`) under every busiest unrolling, with the factors that a fan-out
    no longer unrolls moved to the innermost level (tilings.unrolled_as's
    freed_inside), and how many mappings were scored. Where the innermost level holds
    a tensor stationary, the sweep's unrollings (those factors at the level just above
    each fan-out) make it refill at every step of the loops they add, and rank the
    unrolling that pays last (module docstring)."""
    parts, scored = [tied], 0
    for row in range(len(tied)):
        (_, _, tables), count = _swept_tables(mapspace, moves, tied.take(np.array([row])), objective, effort, tiling,
                                              swept)
        _, tiled, more = _unrolled_and_tiled(mapspace, tables.batch, moves.unrollings, objective, effort, tiling,
                                             freed_inside=True)
        parts.append(tiled)
        scored += count + more
    return _elite(Scored.concatenate(parts), objective, 1, 1), scored


def _unrolled_and_tiled(mapspace: Mapspace, best: MappingBatch, unrollings: Unrollings, objective: Objective,
                        effort: PolishEffort, tiling: Effort, freed_inside: bool = False
                        ) -> tuple[Scored, Scored, int]:
    """`best` under each of `unrollings` (`_unrolled`), the best tilings of its
    `effort.swept_structures` best structures (`tiled_anew`), and how many mappings
    were scored."""
    unrolled, count = score(mapspace, _unrolled(mapspace, best, unrollings, freed_inside))
    tiled, tiled_count = tiled_anew(mapspace, unrolled, objective, effort.swept_structures, tiling)
    return unrolled, tiled, count + tiled_count


def _placed_anew(mapspace: Mapspace, best: Scored, objective: Objective, effort: PolishEffort) -> tuple[Scored, int]:
    """The best of `best` (one mapping) and of it with the temporal factors of one
    dimension placed anew across the levels in every way, then those of two dimensions
    at once where they have at most `effort.placements` ways together, each better
    mapping taken as it comes, until a pass betters nothing; and how many mappings were
    scored. The moves carry a prime factor at a time, and a mapping whose tiles at
    several levels must change together is a local optimum for them (ResNet-18's
    layer1 3x3 on the Eyeriss-like array: one seed in five ended at 143.0 J*cycles,
    where placing C and P anew gives 139.8, the others' answer). Deterministic."""
    if effort.placements == 0:
        return best, 0
    # The placements keep the unrolling, so what it leaves of each bound stays.
    spaces = mapspace.temporal_factorizations(best.batch.spatial_x[0], best.batch.spatial_y[0])
    scored, improved = 0, True
    while improved:
        improved = False
        for dims in _placeable(spaces, effort.placements):
            found, count = score(mapspace, _placed(best.batch, [(d, spaces[d].table) for d in dims]))
            scored += count
            top = found.take(found.scores.best(objective, 1))
            if len(top) and _better(top, best, objective, effort.min_improvement):
                best, improved = top, True
    return best, scored


def _placeable(spaces: list[TemporalFactors], limit: int) -> list[tuple[int, ...]]:
    """The dimensions whose temporal factors `_placed_anew` places anew, given each
    one's factorizations: each alone, then each pair, that has more than one way and
    at most `limit` (together)."""
    ways = {d: space.total for d, space in enumerate(spaces) if space.total > 1}
    singles = [(d,) for d, n in ways.items() if n <= limit]
    pairs = [(a, b) for a, b in itertools.combinations(ways, 2) if ways[a] * ways[b] <= limit]
    return singles + pairs


def _placed(batch: MappingBatch, placements: list[tuple[int, np.ndarray]]) -> MappingBatch:
    """`batch`'s first mapping with the temporal factors of one or two dimensions in
    every placement across the levels (`placements`: each dimension with its table of
    them, TemporalFactors.table), the other factors as they are; for two
    dimensions, under the loop orders as they are and with the two exchanged at every
    level: which of two loops is outer matters once both iterate at a level, and a
    placement that makes a level's loop iterate needs its place in the order as much
    (the layer1 3x3 above: from where seed 2's polish ended, C and P placed anew reach
    139.8 only with their places exchanged)."""
    first = batch.take(np.zeros(1, dtype=np.int64))
    if len(placements) == 2:
        exchanged = _copy(first)
        (a, _), (b, _) = placements
        exchanged.order[0] = np.where(first.order[0] == a, b, np.where(first.order[0] == b, a, first.order[0]))
        first = MappingBatch.concatenate([first, exchanged])
    grid = np.stack(np.meshgrid(np.arange(len(first)), *(np.arange(len(t)) for _, t in placements), indexing="ij"),
                    axis=-1).reshape(-1, 1 + len(placements))
    placed = first.take(grid[:, 0])  # indexed by an array: its own copy, which the loop below writes
    for i, (d, table) in enumerate(placements):
        placed.temporal[:, :, d] = table[grid[:, 1 + i]]
    return placed


def tiled_anew(mapspace: Mapspace, swept: Scored, objective: Objective, count: int,
               tiling: Effort) -> tuple[Scored, int]:
    """The best tilings of the `count` best structures of `swept` (the loop orders,
    unrolling and keep table of its mappings), found as a local move of the search
    finds them (tilings.best_tilings, seeded by the swept mapping), and how many
    mappings were scored: a sweep moves the tiles as little as it can, and a new
    structure often pays only with other tiles (AlexNet's conv3 on the Eyeriss-like
    array: a less busy unrolling at 990 J*cycles as swept, 274 with its best tiles,
    where the best before the sweep was 307). Each structure's random tilings come from
    a stream of its own, keyed by the structure alone, so that a structure swept from
    one mapping is tiled alike wherever the polish (of any seed) comes to it: drawn from
    the polish's one stream, at a local move's effort, its tiling depended on how many
    draws came before, and sometimes missed (ResNet-50's res4a_branch2a on the
    Eyeriss-like array: one seed in five at 16.32 J*cycles, the others at 13.44;
    docs/search-measurements.md)."""
    if not len(swept):
        return swept, 0
    batch = swept.batch
    keys = structure_keys(batch)
    ranked = np.argsort(swept.scores.value(objective), kind="stable")
    first = first_occurrences(keys[ranked])
    return _tiled(mapspace, [batch.take(np.array([head])) for head in ranked[first][:count]], objective,
                  tiling)


def _tiled(mapspace: Mapspace, seeded: list[MappingBatch], objective: Objective, tiling: Effort) -> tuple[Scored, int]:
    """The best tilings of the structure of each batch's first mapping, seeded with the
    batch's tiles, from a random stream keyed by the structure alone (`tiled_anew`);
    and how many mappings were scored."""
    parts, scored = [Scored.empty(mapspace)], 0
    for batch in seeded:
        row = batch.take(np.arange(1))
        structure = mapspace.structure(row.order[0], list(zip(row.spatial_x[0], row.spatial_y[0])), row.keep[0])
        own = np.random.default_rng(structure_keys(row)[0].tolist())
        found, tried = best_tilings(mapspace, structure, objective, tiling, own, seeds=batch)
        parts.append(found)
        scored += tried
    return Scored.concatenate(parts), scored


def _unrollings(mapspace: Mapspace, effort: PolishEffort) -> tuple[Unrollings, Unrollings]:
    """Two sets of spatial unrollings, each busiest first. The first: those (at most
    `effort.unrollings`) that keep the most MACs busy, and the `effort.next_busiest`
    busiest whatever their busyness; without the less busy ones the polish lost where
    a mapping with idle PEs costs much less energy (the example experiment's
    weight-stationary conv1: README, "Experiments"). The second, for the sweep: of the
    next `effort.less_busy`, those that keep at least half as many MACs busy as the
    busiest, as a mapping with a few idle PEs may cost much less energy (AlexNet's
    conv3 on the 12 x 14 Eyeriss-like array is best with 144 PEs busy where 156 can
    be). Where more unrollings keep the most MACs busy than the first set takes, it
    takes them evenly spread over the mapspace's order of them, not the first ones: the
    order groups them by the dimensions they unroll, and on the 128 x 128 tpu-like array
    the first 1,024 of the 1,140 for ResNet-50's res3a_branch1 left out every one with
    M128 on the columns, the best (one seed in five ended with 12.5% of the MACs idle,
    at 1.38 times the best EDP)."""
    sx, sy = mapspace.busiest_unrollings(effort.unrollings + effort.less_busy)
    busy = np.prod(sx * sy, axis=(1, 2))
    rank, most = np.arange(len(busy)), busy.max(initial=0)
    top = np.flatnonzero(busy == most)
    if len(top) > effort.unrollings:
        busiest = np.isin(rank, _evenly(top, effort.unrollings))
    else:
        busiest = (rank < effort.unrollings) & ((busy == most) | (rank < effort.next_busiest))
    less_busy = ~busiest & (busy * 2 >= most)
    return (sx[busiest], sy[busiest]), (sx[less_busy], sy[less_busy])


def _evenly(rows: np.ndarray, count: int) -> np.ndarray:
    """At most `count` of `rows`, evenly spread over them (all of them where they are
    no more): the mapspace orders unrollings by the dimensions they unroll, so its
    first ones would leave whole kinds out (`_unrollings`)."""
    if len(rows) <= count:
        return rows
    return rows[np.linspace(0, len(rows) - 1, count).round().astype(np.int64)]


def _unrolled(mapspace: Mapspace, best: MappingBatch, unrollings: Unrollings,
              freed_inside: bool = False) -> MappingBatch:
    """Each of `best` under each of `unrollings`, its temporal factors adjusted to them
    (tilings.unrolled_as)."""
    sx, sy = unrollings
    n, k = len(best), len(sx)
    picked = best.take(np.tile(np.arange(n), k))
    return unrolled_as(picked, np.repeat(sx, n, axis=0), np.repeat(sy, n, axis=0), mapspace.bounds, freed_inside)


def _elite(pool: Scored, objective: Objective, size: int, per_keep_table: int) -> Scored:
    """The best `size` of `pool` (pareto: its front), with at most `per_keep_table` of
    one keep table: a keep table that pays off only with other tiles than those it
    was found with survives the rounds until they are found."""
    if not len(pool):  # a sweep's keep tables where no flag is free
        return pool
    if objective == "pareto":
        return pool.select(objective, size)
    ranked = np.argsort(pool.scores.value(objective), kind="stable")
    group = representatives(pool.batch.keep.reshape(len(pool), -1))[ranked]  # the keep table of each
    taken: dict[int, int] = {}
    kept = []
    for row, g in zip(ranked.tolist(), group.tolist()):
        if taken.get(g, 0) < per_keep_table:
            taken[g] = taken.get(g, 0) + 1
            kept.append(row)
            if len(kept) == size:
                break
    return pool.take(np.array(kept, dtype=np.int64))


def _better(new: Scored, old: Scored, objective: Objective, min_improvement: float) -> bool:
    if objective == "pareto":  # a front improves when it changes
        return not np.array_equal(new.scores.keys, old.scores.keys)
    return bool(new.scores.value(objective)[0] < old.scores.value(objective)[0] * (1 - min_improvement))


class Moves:
    """The moves of the local search over one mapspace's mappings (module docstring)."""

    def __init__(self, mapspace: Mapspace, effort: PolishEffort) -> None:
        self.L, self.D, self.bounds = mapspace.L, mapspace.D, mapspace.bounds
        self.unrollings, self.less_busy = _unrollings(mapspace, effort)
        self.fanouts = mapspace.fanout_levels
        self.relevant = _relevant(mapspace)
        self.free_flags = np.array(mapspace.free_keep_flags(), dtype=np.int64).reshape(-1, 2)

    def children(self, parents: MappingBatch, n: int, rng: np.random.Generator) -> MappingBatch:
        """n children, each of a random parent with one to three moves; those that break a
        constraint, capacity or fan-out are left for `score` to drop."""
        child = parents.take(rng.integers(len(parents), size=n))  # its own copy, which the moves write
        moves = 1 + (rng.random(n) < 0.5) + (rng.random(n) < 0.25)
        for step in range(3):
            rows = np.flatnonzero(moves > step)
            kind = rng.random(len(rows))
            self._move_factor(child, rows[kind < 0.45], rng)
            self._trade_factors(child, rows[(kind >= 0.45) & (kind < 0.6)], rng)
            self._swap_loops(child, rows[(kind >= 0.6) & (kind < 0.85)], rng)
            self._flip_keep(child, rows[(kind >= 0.85) & (kind < 0.95)], rng)
            self._unroll_anew(child, rows[kind >= 0.95], rng)
        return child

    def _unroll_anew(self, m: MappingBatch, rows: np.ndarray, rng: np.random.Generator) -> None:
        """The unrolling of every fan-out replaced by one of the busiest
        (`_unrollings`), the temporal factors adjusted to it (tilings.unrolled_as): a busier
        unrolling often differs in several factors at once, and at several fan-outs (a
        dimension that leaves one fan-out must go to another), and each of them alone
        makes the mapping worse."""
        sx, sy = self.unrollings
        if not len(rows) or not len(sx) or not self.fanouts:
            return
        pick = rng.integers(len(sx), size=len(rows))
        m.temporal[rows] = unrolled_as(m.take(rows), sx[pick], sy[pick], self.bounds).temporal
        m.spatial_x[rows], m.spatial_y[rows] = sx[pick], sy[pick]

    def _move_factor(self, m: MappingBatch, rows: np.ndarray, rng: np.random.Generator) -> None:
        """A prime factor of one dimension from one loop to another: the loops are the
        temporal loop of every level and the X and Y loops of every fan-out."""
        self._moved_across_loops(m, rows, move_primes, rng)

    def _trade_factors(self, m: MappingBatch, rows: np.ndarray, rng: np.random.Generator) -> None:
        """A prime factor of one dimension from one loop to another, and one of a second
        dimension back (tilings.trade_primes), over the loops of `_move_factor`: a
        fan-out that trades keeps its PEs as busy, where moving one factor out and
        another in takes two moves, each worse alone (ResNet-50's res3a_branch2a on the
        simba-like array: seeds 2 and 3 ended at C4 M4 across the columns over M8 C16
        in the accumulation buffers, 6.578 J*cycles, a trade away from seed 4's C8 M2
        over M16 C8, 6.542; with trades, every seed ends there)."""
        self._moved_across_loops(m, rows, trade_primes, rng)

    def _moved_across_loops(self, m: MappingBatch, rows: np.ndarray,
                            move: Callable[[np.ndarray, np.random.Generator], None],
                            rng: np.random.Generator) -> None:
        if not len(rows):
            return
        fl = self.fanouts
        slots = np.concatenate([m.temporal[rows], m.spatial_x[rows][:, fl], m.spatial_y[rows][:, fl]], axis=1)
        move(slots, rng)
        F = len(fl)
        m.temporal[rows] = slots[:, :self.L]
        if F:
            m.spatial_x[rows[:, None], fl] = slots[:, self.L:self.L + F]
            m.spatial_y[rows[:, None], fl] = slots[:, self.L + F:]

    def _swap_loops(self, m: MappingBatch, rows: np.ndarray, rng: np.random.Generator) -> None:
        """Two iterating loops (factor above 1) of one level change places in its order."""
        if not len(rows) or self.D < 2:
            return
        n = len(rows)
        index = np.arange(n)
        order = m.order[rows]  # (n, L, D)
        live = np.take_along_axis(m.temporal[rows], order, axis=2) > 1  # (n, L, D), by position
        swappable = live.sum(axis=2) >= 2  # (n, L)
        level = random_true(swappable, rng)
        ok = swappable[index, level]
        weights = rng.random((n, self.D)) * live[index, level]  # two distinct live positions: the top two
        first, second = np.argsort(-weights, axis=1)[:, :2].T
        a, b = order[index, level, first], order[index, level, second]
        order[index, level, first] = np.where(ok, b, a)
        order[index, level, second] = np.where(ok, a, b)
        m.order[rows] = order

    def _flip_keep(self, m: MappingBatch, rows: np.ndarray, rng: np.random.Generator) -> None:
        """One free keep flag flipped, the tiles of a tensor kept anew handed up
        (`_hand_up`)."""
        if not len(rows) or not len(self.free_flags):
            return
        l, t = self.free_flags[rng.integers(len(self.free_flags), size=len(rows))].T
        m.keep[rows, l, t] = ~m.keep[rows, l, t]
        kept = m.keep[rows, l, t]
        self._hand_up(m, rows[kept], l[kept], t[kept])

    def rekept(self, batch: MappingBatch) -> MappingBatch:
        """Each mapping of `batch` under every keep table that differs from its own in
        one or two free flags, with its tiles as they are and with those of a tensor kept
        anew handed up (`_hand_up`); tables the mapspace excludes are left for `score`
        to drop."""
        flips = [[i] for i in range(len(self.free_flags))] + [
            list(pair) for pair in itertools.combinations(range(len(self.free_flags)), 2)]
        variants = []
        for flip in flips:
            l, t = self.free_flags[flip].T
            as_is = _copy(batch)
            as_is.keep[:, l, t] = ~as_is.keep[:, l, t]
            handed = _copy(as_is)
            for level, tensor in zip(l, t):
                rows = np.flatnonzero(handed.keep[:, level, tensor])
                self._hand_up(handed, rows, np.full(len(rows), level), np.full(len(rows), tensor))
            variants += [as_is, handed]
        return MappingBatch.concatenate(variants) if variants else batch.take(np.arange(0))

    def _hand_up(self, m: MappingBatch, rows: np.ndarray, l: np.ndarray, t: np.ndarray) -> None:
        """Rows `rows` of `m` now keep tensor t[i] at level l[i]: their loops over the
        tensor's dimensions at that level and below move to the level above, the least
        tile of the tensor, the one most likely to fit (a weight register that bypassed
        weights held a tile of them at best by chance)."""
        for level in np.unique(l):
            mine = rows[l == level]
            relevant = self.relevant[t[l == level]]  # (n, D)
            inner = m.temporal[mine, level:, :]
            m.temporal[mine, level - 1, :] *= np.where(relevant, np.prod(inner, axis=1), 1)
            m.temporal[mine, level:, :] = np.where(relevant[:, None, :], 1, inner)


def _copy(batch: MappingBatch) -> MappingBatch:
    return MappingBatch(batch.order.copy(), batch.temporal.copy(), batch.spatial_x.copy(), batch.spatial_y.copy(),
                        batch.spatial_order, batch.keep.copy())
