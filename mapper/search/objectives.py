"""What "best" means: the objectives a search minimizes, and the tie-break that makes
the answer unique (so the same seed always reports the same mapping).

Single objectives rank mappings by a tuple, smallest first:

- energy: (energy, cycles, mapping key)
- delay:  (cycles, energy, mapping key)
- edp:    (energy x cycles, energy, cycles, mapping key)

`pareto` keeps the mappings no other mapping beats on both energy and cycles; of
several with the same energy and cycles it keeps the smallest mapping key. The
mapping key is the mapping's arrays (temporal factors, spatial X and Y factors,
loop orders, spatial orders, keep flags) read as one sequence of integers and compared
lexicographically: arbitrary, but fixed, so ties never depend on the order in which
mappings were met.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Literal, get_args

import numpy as np

from ..model.batch import MappingBatch

Objective = Literal["edp", "energy", "delay", "pareto"]
OBJECTIVES: tuple[Objective, ...] = get_args(Objective)


def mapping_keys(batch: MappingBatch) -> np.ndarray:
    """(B, K) non-negative integers, one row per mapping, compared lexicographically to
    break ties."""
    parts = (batch.temporal, batch.spatial_x, batch.spatial_y, batch.order, batch.spatial_order, batch.keep)
    return np.concatenate([p.reshape(len(p), prod(p.shape[1:])) for p in parts], axis=1, dtype=np.int64)


def _key_ranks(keys: np.ndarray) -> np.ndarray:
    """Each row's place among the rows of `keys` compared lexicographically, equal rows
    by position. Mapping keys are non-negative, so their big-endian bytes compare
    alike: one sort of strings, where a sort by each of hundreds of columns took a
    twentieth of a search's time (tilings of equal scores are common)."""
    raw = np.ascontiguousarray(keys, dtype=">i8").view(f"S{8 * keys.shape[1]}").reshape(-1)
    ranks = np.empty(len(keys), dtype=np.int64)
    ranks[np.argsort(raw, kind="stable")] = np.arange(len(keys))
    return ranks


def structure_keys(batch: MappingBatch) -> np.ndarray:
    """(B, K) integers, one row per mapping: its structure (loop orders, spatial
    unrolling, keep table), the choices a trial fixes; equal rows, equal structures."""
    parts = (batch.order, batch.spatial_x, batch.spatial_y, batch.keep)
    return np.concatenate([p.reshape(len(p), prod(p.shape[1:])) for p in parts], axis=1, dtype=np.int64)


@dataclass(frozen=True)
class Scores:
    """The model's figures of a set of mappings, with their tie-break keys."""

    energy_pJ: np.ndarray  # (B,) float
    cycles: np.ndarray  # (B,) int
    keys: np.ndarray  # (B, K) int

    def __len__(self) -> int:
        return len(self.energy_pJ)

    def value(self, objective: Objective) -> np.ndarray:
        """The scalar an Optuna study minimizes (pareto: the energy-delay product, only
        used to pick a representative)."""
        if objective == "energy":
            return self.energy_pJ.astype(float)
        if objective == "delay":
            return self.cycles.astype(float)
        return self.energy_pJ * 1e-12 * self.cycles

    def best(self, objective: Objective, k: int = 1) -> np.ndarray:
        """Indices of the k best mappings, best first, by the objective's tuple (module
        docstring). The mapping keys are compared only among the few that tie."""
        energy, cycles = self.energy_pJ, self.cycles.astype(float)
        primary = {"energy": (energy, cycles), "delay": (cycles, energy)}.get(
            objective, (self.value("edp"), energy, cycles))
        order = np.lexsort(primary[::-1])  # np.lexsort sorts by its last key first
        if len(order) <= k:
            cutoff = order
        else:
            last = tuple(p[order[k - 1]] for p in primary)
            taken = np.ones(len(order), dtype=bool)  # those that tie with the k-th value
            for p, v in zip(primary, last):
                taken &= p == v
            taken[order[:k]] = True  # and everything before it
            cutoff = np.flatnonzero(taken)
        sub_primary = tuple(p[cutoff] for p in primary)
        return cutoff[np.lexsort((_key_ranks(self.keys[cutoff]), *sub_primary[::-1]))][:k]

    def pareto_front(self) -> np.ndarray:
        """Indices of the non-dominated mappings, fastest first (module docstring)."""
        order = np.lexsort((self.energy_pJ, self.cycles))
        energy = self.energy_pJ[order]
        previous_best = np.concatenate(([np.inf], np.minimum.accumulate(energy)[:-1]))
        front = []
        for i in order[energy < previous_best]:
            same = np.flatnonzero((self.energy_pJ == self.energy_pJ[i]) & (self.cycles == self.cycles[i]))
            front.append(same[self.take(same).best("energy")[0]] if len(same) > 1 else i)
        return np.array(front, dtype=np.int64)

    def take(self, index: np.ndarray) -> Scores:
        """The scores at the rows `index` (MappingBatch.take)."""
        return Scores(self.energy_pJ.take(index), self.cycles.take(index), self.keys.take(index, axis=0))

    @staticmethod
    def concatenate(parts: list[Scores]) -> Scores:
        return Scores(np.concatenate([p.energy_pJ for p in parts]), np.concatenate([p.cycles for p in parts]),
                      np.concatenate([p.keys for p in parts]))
