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
from functools import cache

import numpy as np

from ..factorize import prime_factors, random_prime_factors
from ..mapspace import Mapspace, Structure
from ..model.batch import MappingBatch
from ..model.vectorized import evaluate_batch
from .objectives import Objective, Scores, mapping_keys


@dataclass(frozen=True)
class Effort:
    """How many tilings one trial scores. A local move (engine.py) starts from the best
    tilings of the structure it moves from, refined by the trials before it, so it
    needs far fewer random factorizations and neighbours to find its own. Measured on
    ResNet-50's conv1 and res2a_branch1 on the Eyeriss-like design: local moves with
    256 samples and 16 children per elite tiling (38% of a full trial's mappings)
    found the same best values at the same trials as full-effort ones. Halving the
    effort of the sampler's trials as well left res2a_branch2b 21% worse after 150
    trials: a new structure needs the full effort to be judged fairly."""

    samples: int = 2048  # random factorizations
    elite: int = 16  # best tilings kept while refining
    children: int = 32  # neighbours of each elite tiling per round
    rounds: int = 8  # refinement rounds at most (it stops earlier when nothing improves)
    moved_samples: int = 256  # random factorizations, in a local move
    moved_children: int = 16  # neighbours of each elite tiling per round, in a local move


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
        """Without repeated mappings (first occurrence kept). Rows are matched by a
        64-bit fingerprint, then checked in full: np.unique over whole rows sorts
        hundreds of columns and took a quarter of a search's time."""
        keys = self.scores.keys
        fingerprints = keys @ _fingerprint_weights(keys.shape[1])  # wraps around modulo 2**64
        _, first, inverse = np.unique(fingerprints, return_index=True, return_inverse=True)
        if not np.array_equal(keys, keys[first[inverse]]):  # two different rows, one fingerprint
            _, first = np.unique(keys, axis=0, return_index=True)
        return self.take(np.sort(first))


@cache
def _fingerprint_weights(columns: int) -> np.ndarray:
    return np.random.default_rng(columns).integers(-2**63, 2**63 - 1, size=columns, dtype=np.int64)


def score(mapspace: Mapspace, batch: MappingBatch) -> tuple[Scored, int]:
    """The valid mappings of `batch` (constraints, capacities, fan-outs) with their
    scores, and how many mappings the model scored."""
    if not len(batch):
        return Scored.empty(mapspace), 0
    ev = evaluate_batch(mapspace.problem, mapspace.arch, batch)
    ok = np.flatnonzero(ev.valid & mapspace.allowed(batch))
    kept = batch.take(ok)
    return Scored(kept, Scores(ev.energy_pJ[ok], ev.cycles[ok], mapping_keys(kept))), len(batch)


def neighbours(batch: MappingBatch, n: int, rng: np.random.Generator) -> MappingBatch:
    """n tilings, each a random member of `batch` with one prime factor of one
    dimension moved from one level's temporal loop to another's. Moves that break a
    constraint or a capacity are filtered out by the caller, like any other tiling."""
    parents = rng.integers(len(batch), size=n)
    temporal = batch.temporal[parents].copy()
    _, L, D = temporal.shape
    rows = np.arange(n)
    dim = rng.integers(D, size=n)
    # a source level with a factor > 1 in that dimension, chosen uniformly among them
    movable = temporal[rows, :, dim] > 1  # (n, L)
    weights = rng.random((n, L)) * movable
    source = weights.argmax(axis=1)
    target = (source + rng.integers(1, L, size=n)) % L if L > 1 else source
    has_move = movable.any(axis=1) & (target != source)
    factors = temporal[rows, source, dim]
    prime = np.where(has_move, random_prime_factors(factors, rng.random(n)), 1)
    temporal[rows, source, dim] //= prime
    temporal[rows, target, dim] *= prime
    picked = batch.take(parents)
    return MappingBatch(picked.order, temporal, picked.spatial_x, picked.spatial_y, picked.spatial_order,
                        picked.keep)


def transplanted(tilings: MappingBatch, structure: Structure, bounds: np.ndarray) -> MappingBatch:
    """The temporal factors of `tilings` under `structure`. Where the structure unrolls
    a dimension more (less), the temporal factors give up (take on) the difference so
    that they still multiply to the bound: the outermost level's factor first, which
    holds everything anyway."""
    n = len(tilings)
    shaped = {f: np.broadcast_to(np.array(getattr(structure, f), dtype=bool if f == "keep" else np.int64),
                                 (n, *np.shape(getattr(structure, f)))).copy()
              for f in ("order", "spatial_x", "spatial_y", "spatial_order", "keep")}
    return retiled(MappingBatch(shaped["order"], tilings.temporal, shaped["spatial_x"], shaped["spatial_y"],
                                shaped["spatial_order"], shaped["keep"]), bounds)


def retiled(batch: MappingBatch, bounds: np.ndarray) -> MappingBatch:
    """`batch` with its temporal factors changed, where they no longer multiply to the
    bounds with its spatial factors, as `transplanted` says; left as they are where the
    spatial factors do not divide the bound (such rows are not valid mappings)."""
    temporal = batch.temporal.copy()
    spatial = np.prod(batch.spatial_x * batch.spatial_y, axis=1)  # (n, D)
    remaining = bounds // spatial
    for b, d in zip(*np.nonzero((np.prod(temporal, axis=1) != remaining) & (bounds % spatial == 0))):
        _refactor(temporal[b, :, d], int(remaining[b, d]))
    return MappingBatch(batch.order, temporal, batch.spatial_x, batch.spatial_y, batch.spatial_order, batch.keep)


def _refactor(factors: np.ndarray, target: int) -> None:
    """Change the per-level factors (outermost first) in place to multiply to `target`,
    dividing out what is too much from the outermost levels that have it, and
    multiplying what is missing into the outermost level."""
    current = int(np.prod(factors))
    common = np.gcd(current, target)
    for prime in prime_factors(current // common):
        level = next(l for l in range(len(factors)) if factors[l] % prime == 0)
        factors[level] //= prime
    factors[0] *= target // common


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
    children_each = effort.moved_children if moved else effort.children
    elite, scored = score(mapspace, batch)
    elite = elite.unique().select(objective, effort.elite)
    for _ in range(effort.rounds if len(elite) else 0):
        children, count = score(mapspace, neighbours(elite.batch, effort.elite * children_each, rng))
        scored += count
        pool = Scored.concatenate([elite, children]).unique()
        improved = pool.select(objective, effort.elite)
        if np.array_equal(improved.scores.keys, elite.scores.keys):
            break
        elite = improved
    return elite, scored
