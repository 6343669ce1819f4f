"""The vectorized model: Timeloop's default semantics over a whole MappingBatch.

(Work in progress: scores through the reference model until the array path lands.)
"""

from __future__ import annotations

import numpy as np

from ..architecture import Architecture
from ..problem import Problem
from .batch import BatchEvaluation, MappingBatch
from .capacity import violations
from .reference import evaluate_reference


def evaluate_batch(problem: Problem, arch: Architecture, batch: MappingBatch,
                   link_transfers: bool = True) -> BatchEvaluation:
    energy = np.empty(len(batch))
    cycles = np.empty(len(batch), dtype=np.int64)
    valid = np.empty(len(batch), dtype=bool)
    for b in range(len(batch)):
        m = batch.mapping(b, problem)
        ev = evaluate_reference(problem, arch, m, link_transfers)
        energy[b], cycles[b], valid[b] = ev.energy_pJ, ev.cycles, not violations(problem, arch, m)
    return BatchEvaluation(energy, cycles, valid)
