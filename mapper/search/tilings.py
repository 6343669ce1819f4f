"""Scoring the tilings of one structure: what one trial of the search does.

A structure (loop orders, spatial unrolling, keep / bypass) leaves the temporal
factors open. The vectorized model scores a mapping in about a microsecond while an
Optuna trial costs milliseconds, so each trial scores thousands of tilings of its
structure: first random factorizations from the mapspace, then a local refinement
that moves one prime factor of one dimension from a level to another, starting from
the best tilings found so far (an elite), for as long as it improves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from numba import njit

from ..factorize import prime_factors, random_prime_factors
from ..mapspace import Mapspace, Structure
from ..model.batch import MappingBatch
from ..model.kernel_cache import use_kernel_cache
from ..model.vectorized import Evaluator
from .objectives import Objective, Scores, mapping_keys

use_kernel_cache()  # this module's kernels are compiled once per machine, cached where the model's are


@dataclass(frozen=True)
class Effort:
    """How many tilings one trial scores. A local move (engine.py) starts from the best
    tilings of the structure it moves from, refined by the trials before it, so it
    needs far fewer random factorizations and neighbours to find its own. Measured on
    ResNet-50's conv1 and res2a_branch1 on the Eyeriss-like design: local moves with
    256 samples and 16 neighbours per elite tiling (38% of a full trial's mappings)
    found the same best values at the same trials as full-effort ones. Halving the
    effort of the sampler's trials as well left res2a_branch2b 21% worse after 150
    trials: a new structure needs the full effort to be judged fairly."""

    samples: int = 2048  # random factorizations
    elite: int = 16  # best tilings kept while refining
    # Neighbours per round, per elite tiling: `elite` x this many, each of an elite
    # tiling drawn at random (`neighbours`).
    children: int = 32
    rounds: int = 8  # refinement rounds at most (it stops earlier when nothing improves)
    moved_samples: int = 256  # random factorizations, in a local move
    moved_children: int = 16  # the same, in a local move


@dataclass(frozen=True)
class Scored:
    """Valid mappings with their scores (same order)."""

    batch: MappingBatch
    scores: Scores

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> Scored:
        return Scored(self.batch.take(index), self.scores.take(index))

    @staticmethod
    def empty(mapspace: Mapspace) -> Scored:
        L, D, T = mapspace.L, mapspace.D, mapspace.T
        batch = MappingBatch(*(np.ones((0, L, D), dtype=np.int64) for _ in range(5)),
                             np.zeros((0, L, T), dtype=bool))
        return Scored(batch, Scores(np.empty(0), np.empty(0, dtype=np.int64), mapping_keys(batch)))

    @staticmethod
    def concatenate(parts: list[Scored]) -> Scored:
        """All of them; at least one part must be given."""
        parts = [p for p in parts if len(p)] or parts[:1]
        return Scored(MappingBatch.concatenate([p.batch for p in parts]),
                      Scores.concatenate([p.scores for p in parts]))

    def select(self, objective: Objective, k: int) -> Scored:
        """The k best for a single objective; for pareto the front (at most k points,
        spread evenly along it)."""
        if objective != "pareto":
            return self.take(self.scores.best(objective, k))
        front = self.scores.pareto_front()
        if len(front) > k:
            front = front[np.unique(np.linspace(0, len(front) - 1, k).round().astype(int))]
        return self.take(front)

    def unique(self) -> Scored:
        """Without repeated mappings (first occurrence kept)."""
        return self.take(first_occurrences(self.scores.keys))


def first_occurrences(keys: np.ndarray) -> np.ndarray:
    """The rows of `keys` that no earlier row equals, in order."""
    firsts = representatives(keys)
    return np.flatnonzero(firsts == np.arange(len(firsts)))


def representatives(keys: np.ndarray) -> np.ndarray:
    """For each row of `keys` (integers), the first row that equals it: rows are
    grouped alike, the groups in order of their first rows. Each row's 64-bit
    fingerprint finds, in a hash table of the first rows so far, those it may repeat,
    and the row is compared with them: np.unique over whole rows sorts hundreds of
    columns and took a quarter of a search's time, and a stable sort of the
    fingerprints in place of the hash table took 1.3-1.4 times as long (2,048 rows, a
    polish round's)."""
    return _representatives(np.ascontiguousarray(keys, dtype=np.int64), _fingerprint_weights(keys.shape[1]))


@cache
def _fingerprint_weights(columns: int, stream: int = 0) -> np.ndarray:
    """The random weights of a fingerprint of `columns` integers; another `stream`,
    another fingerprint."""
    return np.random.default_rng([columns, stream]).integers(-2**63, 2**63 - 1, size=columns, dtype=np.int64)


@njit(cache=True)
def _representatives(keys: np.ndarray, weights: np.ndarray) -> np.ndarray:
    n, columns = keys.shape
    size = 2
    while size < 2 * n:  # at most half full: short runs of probes
        size *= 2
    held = np.full(size, -1, dtype=np.int64)  # the first row of each slot taken, -1 where none
    fingerprints = np.empty(size, dtype=np.int64)  # of the rows held
    first = np.empty(n, dtype=np.int64)
    for row in range(n):
        total = 0
        for column in range(columns):
            total += keys[row, column] * weights[column]  # wraps around modulo 2**64
        slot = (total ^ (total >> 32)) & (size - 1)
        # Probe from the fingerprint's slot to a free one: two different rows may share a
        # fingerprint, however unlikely, so a row repeats one held only if they are equal.
        while held[slot] >= 0 and not (fingerprints[slot] == total and _equal_rows(keys, row, held[slot])):
            slot = (slot + 1) & (size - 1)
        if held[slot] < 0:
            held[slot], fingerprints[slot] = row, total
        first[row] = held[slot]
    return first


@njit(cache=True, inline="always")
def _equal_rows(keys: np.ndarray, a: int, b: int) -> bool:
    for column in range(keys.shape[1]):
        if keys[a, column] != keys[b, column]:
            return False
    return True


def score(mapspace: Mapspace, batch: MappingBatch, before: ScoredBefore | None = None) -> tuple[Scored, int]:
    """The valid mappings of `batch` (constraints, capacities, fan-outs), each once (as
    `Scored.unique` keeps it), with their scores, and how many mappings the model
    scored. The repeats are dropped before the model sees them: of the mappings a
    search proposes, two in five repeat one of the same batch (random moves of a few
    parents, tilings drawn from small factor spaces); so are those `before` holds, which
    it then holds too. Where none is dropped, the answer holds `batch` itself, not a
    copy (no caller writes a batch it has scored)."""
    if not len(batch):
        return Scored.empty(mapspace), 0
    keys = mapping_keys(batch)
    first = first_occurrences(keys)
    if before is not None:
        first = first[before.new(keys, first)]
    if len(first) < len(batch):
        batch, keys = batch.take(first), keys.take(first, axis=0)
    if not len(batch):
        return Scored.empty(mapspace), 0
    ev = _evaluator(mapspace).evaluate(batch, valid_only=True)
    ok = np.flatnonzero(ev.valid & mapspace.allowed(batch))
    scores = Scores(ev.energy_pJ, ev.cycles, keys)
    if len(ok) < len(batch):
        return Scored(batch.take(ok), scores.take(ok)), len(batch)
    return Scored(batch, scores), len(batch)


class ScoredBefore:
    """The mappings that the rounds of one local search have scored, by 128-bit
    fingerprints of their keys (two of `_representatives`' kind: two different
    mappings share both with a chance of about 2**-128).

    Where an elite is the best mappings of its pool by a fixed order (a single
    objective: `Scores.best`'s, or polish._elite's stable one, in which the elite comes
    before the children), it only gets better, so a mapping drawn again loses to it as
    it did the first time: scoring it again would change nothing but the time. A sixth
    to a fifth of the children of a refinement's or a polish's rounds repeat an earlier
    round's (ResNet-50's res2a_branch2b on eyeriss-like). Not for a Pareto front,
    spread evenly over its points, where one left out may come in later."""

    def __init__(self, start: Scored) -> None:
        """Holding `start`, the elite the rounds begin with: a child that repeats one of
        them (a move that moved nothing, mostly) is in the pool already."""
        self._table = np.zeros((1024, 2), dtype=np.int64)  # open addressing; (0, 0) marks a free slot
        self._count = 0
        self.new(start.scores.keys, np.arange(len(start)))

    def new(self, keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Which of `rows` of `keys` (distinct mappings) were not held; from now on all are."""
        columns = keys.shape[1]
        prints = _fingerprints(np.ascontiguousarray(keys, dtype=np.int64), rows, _fingerprint_weights(columns),
                               _fingerprint_weights(columns, 1))
        if 2 * (self._count + len(prints)) > len(self._table):
            size = 2 * len(self._table)
            while 2 * (self._count + len(prints)) > size:
                size *= 2
            held, self._table = self._table, np.zeros((size, 2), dtype=np.int64)
            _insert(self._table, held[(held != 0).any(axis=1)])
        fresh = _insert(self._table, prints)
        self._count += int(fresh.sum())
        return fresh


@njit(cache=True)
def _fingerprints(keys: np.ndarray, rows: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    prints = np.empty((len(rows), 2), dtype=np.int64)
    for i in range(len(rows)):
        a = b = 0
        # Both sums in one pass over the row, not `_representatives`' sum twice: two
        # passes took 1.3 times as long (1,024 rows of 266 integers).
        for column in range(keys.shape[1]):
            a += keys[rows[i], column] * first[column]  # wraps around modulo 2**64
            b += keys[rows[i], column] * second[column]
        if a == 0 and b == 0:  # the mark of a free slot
            b = 1
        prints[i, 0], prints[i, 1] = a, b
    return prints


@njit(cache=True)
def _insert(table: np.ndarray, prints: np.ndarray) -> np.ndarray:
    """Put each fingerprint in `table` (at most half full after it); whether it was new."""
    size = len(table)
    fresh = np.empty(len(prints), dtype=np.bool_)
    for row in range(len(prints)):
        a, b = prints[row, 0], prints[row, 1]
        slot = (a ^ (a >> 32)) & (size - 1)
        while (table[slot, 0] != 0 or table[slot, 1] != 0) and not (table[slot, 0] == a and table[slot, 1] == b):
            slot = (slot + 1) & (size - 1)
        fresh[row] = table[slot, 0] == 0 and table[slot, 1] == 0
        table[slot, 0], table[slot, 1] = a, b
    return fresh


@lru_cache(maxsize=4)  # a few mapspaces at a time: a network search holds one per layer it searches
def _evaluator(mapspace: Mapspace) -> Evaluator:
    """The model, made once per mapspace: making it (the problem and the architecture
    as flat arrays) cost a tenth of what scoring a search's batches did."""
    return Evaluator(mapspace.problem, mapspace.arch)


def neighbours(batch: MappingBatch, n: int, rng: np.random.Generator) -> MappingBatch:
    """n tilings, each a random member of `batch` with one prime factor of one
    dimension moved from one level's temporal loop to another's. Moves that break a
    constraint or a capacity are filtered out by the caller, like any other tiling."""
    children = batch.take(rng.integers(len(batch), size=n))  # its own copy, which move_primes writes
    move_primes(children.temporal, rng)
    return children


def random_true(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per row of `mask` ((n, k) booleans), one of its True columns, each as likely
    (column 0 in a row without one)."""
    return (rng.random(mask.shape) * mask).argmax(axis=1)


def move_primes(slots: np.ndarray, rng: np.random.Generator) -> None:
    """In each row of `slots` ((n, S, D): a mapping's loops, each with its factor per
    dimension), one prime factor of a random dimension moved, in place, from a loop
    where that dimension iterates (each such loop as likely) to another loop; a row
    whose dimension iterates nowhere stays as it is."""
    n, S, D = slots.shape
    rows = np.arange(n)
    dim = rng.integers(D, size=n)
    movable = slots[rows, :, dim] > 1  # (n, S)
    source = random_true(movable, rng)
    target = (source + rng.integers(1, S, size=n)) % S if S > 1 else source
    has_move = movable.any(axis=1) & (target != source)
    prime = np.where(has_move, random_prime_factors(slots[rows, source, dim], rng.random(n)), 1)
    slots[rows, source, dim] //= prime
    slots[rows, target, dim] *= prime


def trade_primes(slots: np.ndarray, rng: np.random.Generator) -> None:
    """In each row of `slots` ((n, S, D), as `move_primes`), a prime factor of one
    dimension moved from a loop where it iterates to another loop where a second
    dimension iterates, and a prime factor of the second moved back, in place: where the
    two primes are equal, both loops keep their sizes, so a fan-out stays as busy and a
    buffer's tiles about as large (a fan-out that unrolls C4 M4 over a level that
    iterates M8 C16 becomes C8 M2 over M16 C8), where a move of either alone idles PEs
    or overflows a buffer. A row without two such loops stays as it is."""
    n, S, D = slots.shape
    rows = np.arange(n)
    first = rng.integers(D, size=n)
    second = (first + rng.integers(1, D, size=n)) % D if D > 1 else first
    iterates = slots[rows, :, first] > 1  # (n, S)
    source = random_true(iterates, rng)
    back = (slots[rows, :, second] > 1) & (np.arange(S) != source[:, None])
    target = random_true(back, rng)
    has_trade = iterates.any(axis=1) & back.any(axis=1) & (second != first)
    out = np.where(has_trade, random_prime_factors(slots[rows, source, first], rng.random(n)), 1)
    returned = np.where(has_trade, random_prime_factors(slots[rows, target, second], rng.random(n)), 1)
    slots[rows, source, first] //= out
    slots[rows, target, first] *= out
    slots[rows, target, second] //= returned
    slots[rows, source, second] *= returned


def transplanted(tilings: MappingBatch, structure: Structure, bounds: np.ndarray) -> MappingBatch:
    """The temporal factors of `tilings` under `structure`, adjusted to its spatial
    unrolling as `unrolled_as` says."""
    n = len(tilings)
    shaped = {f: np.broadcast_to(np.array(getattr(structure, f), dtype=bool if f == "keep" else np.int64),
                                 (n, *np.shape(getattr(structure, f)))).copy()
              for f in ("order", "spatial_x", "spatial_y", "spatial_order", "keep")}
    moved = MappingBatch(shaped["order"], tilings.temporal, tilings.spatial_x, tilings.spatial_y,
                         shaped["spatial_order"], shaped["keep"])
    return unrolled_as(moved, shaped["spatial_x"], shaped["spatial_y"], bounds)


def unrolled_as(batch: MappingBatch, spatial_x: np.ndarray, spatial_y: np.ndarray,
                bounds: np.ndarray, freed_inside: bool = False) -> MappingBatch:
    """`batch` under other spatial unrollings (each (n, L, D)), its temporal factors
    adjusted so that every factor stays as near as it can to where it was. A factor
    that a fan-out no longer unrolls becomes a temporal factor of the level just above
    the fan-out: that level's tile, and every other level's, stays as it was. One that
    a fan-out unrolls anew comes from the temporal factor of the level above it, then
    from the levels below it (their tiles shrink, so they still fit), nearest first,
    then from the levels above, nearest first. Rows whose spatial factors do not divide
    the bounds are left as they are (they are not valid mappings). `freed_inside`: a
    factor that a fan-out no longer unrolls goes to the innermost level instead, whose
    tile grows by it (it may no longer fit): where the innermost level holds a tensor
    stationary, the loop stays inside it rather than making it refill (module
    docstring of polish.py)."""
    old = batch.spatial_x * batch.spatial_y
    new = spatial_x * spatial_y
    temporal = batch.temporal.copy()
    changed = np.flatnonzero((old != new).any(axis=(1, 2)))
    if len(changed):
        temporal[changed] = _moved_factors(batch.temporal[changed], old[changed], new[changed], bounds,
                                           freed_inside)
    return MappingBatch(batch.order, temporal, spatial_x, spatial_y, batch.spatial_order, batch.keep)


def _moved_factors(temporal: np.ndarray, old: np.ndarray, new: np.ndarray, bounds: np.ndarray,
                   freed_inside: bool) -> np.ndarray:
    """`unrolled_as`'s temporal factors (n, L, D) where the spatial factors go from
    `old` to `new` (each (n, L, D)), prime by prime."""
    primes = np.array(sorted({p for bound in bounds.tolist() for p in prime_factors(int(bound))}), dtype=np.int64)
    return _moved_factors_compiled(np.ascontiguousarray(temporal, dtype=np.int64),
                                   np.ascontiguousarray(old, dtype=np.int64),
                                   np.ascontiguousarray(new, dtype=np.int64),
                                   np.ascontiguousarray(bounds, dtype=np.int64), primes, freed_inside)


@njit(cache=True)
def _moved_factors_compiled(temporal: np.ndarray, old: np.ndarray, new: np.ndarray, bounds: np.ndarray,
                            primes: np.ndarray, freed_inside: bool) -> np.ndarray:
    """Row by row, and for each prime and dimension apart: the prime's exponents that
    a fan-out no longer unrolls go to the level just above it (`freed_inside`: to the
    innermost level); those it unrolls anew come from the level above it, then from
    the levels below it, nearest first, then from those above, nearest first. A row
    whose factors cannot so be found, or no longer multiply to the bounds, keeps its
    temporal factors (it is not a valid mapping). Compiled: in numpy, over whole
    batches prime by prime, it took 0.27 of an eyeriss-like search's 8.9 CPU-seconds
    (0.07 so), and half of an experimental local search among the less busy unrollings
    on the 128 x 128 tpu-like array (docs/search-measurements.md)."""
    n, L, D = temporal.shape
    moved = np.empty_like(temporal)
    held = np.empty(L, dtype=np.int64)
    wanted = np.empty(L, dtype=np.int64)
    for b in range(n):
        short = False
        for d in range(D):
            for level in range(L):
                moved[b, level, d] = 1
            for prime in primes:
                freed = 0
                for level in range(L):
                    surplus = _exponent(old[b, level, d], prime) - _exponent(new[b, level, d], prime)
                    held[level] = _exponent(temporal[b, level, d], prime)
                    wanted[level] = max(-surplus, 0)
                    if surplus > 0:
                        if freed_inside:
                            freed += surplus
                        else:
                            held[level] += surplus
                held[L - 1] += freed
                for level in range(L):
                    for k in range(L):  # the level itself, those below it, then those above it
                        source = level + k if level + k < L else L - 1 - k
                        taken = min(wanted[level], held[source])
                        held[source] -= taken
                        wanted[level] -= taken
                    if wanted[level] > 0:
                        short = True
                for level in range(L):
                    moved[b, level, d] *= prime ** held[level]
            total = 1
            for level in range(L):
                total *= moved[b, level, d] * new[b, level, d]
            short |= total != bounds[d]
        if short:
            moved[b] = temporal[b]
    return moved


@njit(cache=True, inline="always")
def _exponent(factor: int, prime: int) -> int:
    """How often `prime` divides `factor` (>= 1)."""
    exponent = 0
    while factor % prime == 0:
        factor //= prime
        exponent += 1
    return exponent


def best_tilings(mapspace: Mapspace, structure: Structure, objective: Objective, effort: Effort,
                 rng: np.random.Generator, seeds: MappingBatch | None = None,
                 starts: MappingBatch | None = None) -> tuple[Scored, int]:
    """The elite tilings of one structure (module docstring) and how many mappings
    were scored to find them; `seeds` lends their temporal factors as extra starting
    points (the best tilings of a neighbouring structure are often good here too), and
    makes the trial a local move's (Effort). `starts` are mappings of this structure
    scored with the random ones (the search's fitting start). Empty when no tiling
    tried is valid."""
    moved = seeds is not None and len(seeds) > 0
    batch = mapspace.sample_tilings(structure, effort.moved_samples if moved else effort.samples, rng)
    if moved:
        batch = MappingBatch.concatenate([batch, transplanted(seeds, structure, mapspace.bounds)])
    if starts is not None:
        batch = MappingBatch.concatenate([batch, starts])
    found, scored = score(mapspace, batch)
    elite, count = refined(mapspace, found.select(objective, effort.elite), objective, effort,
                           effort.moved_children if moved else effort.children, rng)
    return elite, scored + count


def refined(mapspace: Mapspace, elite: Scored, objective: Objective, effort: Effort, children_each: int,
            rng: np.random.Generator) -> tuple[Scored, int]:
    """The best `effort.elite` tilings after rounds of `effort.elite` x `children_each`
    neighbours of tilings of the elite drawn at random (`neighbours`: on average
    `children_each` of each of a full elite), as long as a round changes the elite (at
    most `effort.rounds`), and how many mappings were scored."""
    scored = 0
    before = ScoredBefore(elite) if objective != "pareto" else None
    for _ in range(effort.rounds if len(elite) else 0):
        children, count = score(mapspace, neighbours(elite.batch, effort.elite * children_each, rng), before)
        scored += count
        pool = Scored.concatenate([elite, children]).unique()
        improved = pool.select(objective, effort.elite)
        if np.array_equal(improved.scores.keys, elite.scores.keys):
            break
        elite = improved
    return elite, scored
