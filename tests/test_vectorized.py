"""The vectorized model gives exactly the reference model's numbers: every read, fill
and update of every level and tensor, the cycles, and the energy, and the whole
Evaluation a search reports (partitions, tile sizes, instances, throttling, network
words), on every
Timeloop reference case and on random mappings of their architectures (random
tilings, loop orders, spatial unrolling in X and Y, bypass)."""

from __future__ import annotations

import signal
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

from mapper.architecture import Architecture
from mapper.mapping import LevelMapping, Loop, Mapping
from mapper.model.batch import MappingBatch, batch_from_mappings
from mapper.model.reference import evaluate_reference
from mapper.model.vectorized import Evaluator, evaluate_batch, evaluation
from mapper.problem import Problem
from mapper.specs.load import load_specs
from mapper.specs.timeloop import load
from timeloop_reference import REFERENCE, case_ids, load_input

pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")


def disagreements(problem: Problem, arch: Architecture, mappings: list[Mapping], link_transfers: bool = True) -> list:
    batch = batch_from_mappings(problem, arch, mappings)
    fast = evaluate_batch(problem, arch, batch, link_transfers, detailed=True)
    found = []
    for b in range(len(mappings)):
        ref = evaluate_reference(problem, arch, batch.mapping(b, problem), link_transfers)
        if ref.cycles != fast.cycles[b] or not np.isclose(ref.energy_pJ, fast.energy_pJ[b], rtol=1e-12, atol=0):
            found.append((b, "cycles/energy", (ref.cycles, ref.energy_pJ), (fast.cycles[b], fast.energy_pJ[b])))
        for l, level in enumerate(ref.levels):
            for k, tensor in enumerate(problem.tensors):
                stats = level.tensors.get(tensor.name)
                want = (stats.reads, stats.fills, stats.updates) if stats else (0, 0, 0)
                got = (int(fast.reads[b, l, k]), int(fast.fills[b, l, k]), int(fast.updates[b, l, k]))
                if got != want:
                    found.append((b, level.name, tensor.name, want, got))
        if evaluation(problem, arch, batch, fast, b) != ref:
            found.append((b, "evaluation", ref, evaluation(problem, arch, batch, fast, b)))
    return found


@pytest.mark.parametrize("case", case_ids())
def test_reference_case_mapping(case: str) -> None:
    spec = load(load_input(case))
    for links in (True, False):
        assert disagreements(spec.problem, spec.architecture, [spec.mapping], links) == []


def test_batches_of_other_integer_types_and_empty_batches() -> None:
    """The compiled model reads int64 arrays: a batch of another integer type scores
    the same, and an empty batch scores nothing."""
    spec = load(load_input(case_ids()[0]))
    problem, arch = spec.problem, spec.architecture
    batch = batch_from_mappings(problem, arch, [spec.mapping])
    narrow = MappingBatch(*(a.astype(np.int32) for a in (batch.order, batch.temporal, batch.spatial_x,
                                                         batch.spatial_y, batch.spatial_order)), batch.keep)
    want, got = evaluate_batch(problem, arch, batch), evaluate_batch(problem, arch, narrow)
    for field in ("energy_pJ", "cycles", "valid", "reads", "fills", "updates"):
        assert np.array_equal(getattr(want, field), getattr(got, field))
    empty = evaluate_batch(problem, arch, batch.take(slice(0, 0)))
    assert empty.energy_pJ.shape == (0,) and empty.reads.shape == (0, len(arch.levels), len(problem.tensors))


class Alarm(Exception):
    pass


def raise_alarm(signum: int, frame: object) -> None:
    raise Alarm


def test_a_signal_while_scoring_raises_the_handlers_exception() -> None:
    """Ctrl-C stops a search through a signal handler that raises (mapper.interrupt):
    arriving while the compiled model runs, it must surface as that exception once
    the batch is scored, not as an error of the compiled code."""
    spec = load(load_input(case_ids()[0]))
    problem, arch = spec.problem, spec.architecture
    batch = batch_from_mappings(problem, arch, [spec.mapping]).take(np.zeros(50_000, dtype=int))  # ~0.5 s
    evaluate_batch(problem, arch, batch.take(slice(0, 1)))  # compiled or loaded before the clock starts
    previous = signal.signal(signal.SIGALRM, raise_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        with pytest.raises(Alarm):
            evaluate_batch(problem, arch, batch)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def random_mapping(problem: Problem, arch: Architecture, rng: np.random.Generator) -> Mapping:
    """Any perfect factorization over the levels, any loop orders, spatial factors
    within each fan-out, any keep choice the architecture allows (the outermost
    level keeps everything). Capacities are ignored: the model scores any mapping."""
    L = len(arch.levels)
    temporal = [dict.fromkeys(problem.dims, 1) for _ in range(L)]
    spatial = [[] for _ in range(L)]
    room = [list(arch.fanout(l)) for l in range(L)]
    for dim in problem.dims:
        rest = problem.bounds[dim]
        for l in rng.permutation(L):
            for axis in (0, 1):
                if room[l][axis] > 1 and rng.random() < 0.5:
                    f = int(rng.choice([d for d in divisors(rest) if d <= room[l][axis]]))
                    if f > 1:
                        room[l][axis] //= f
                        spatial[l].append(Loop(dim, f, "XY"[axis]))
                        rest //= f
            f = int(rng.choice(divisors(rest)))
            temporal[l][dim] *= f
            rest //= f
        temporal[int(rng.integers(L))][dim] *= rest
    levels = []
    for l, level in enumerate(arch.levels):
        order = [problem.dims[i] for i in rng.permutation(len(problem.dims))]
        allowed = [t.name for t in problem.tensors if level.keeps is None or t.name in level.keeps]
        keep = allowed if l == 0 else [t for t in allowed if rng.random() < 0.7]
        loops = spatial[l]
        rng.shuffle(loops)
        levels.append(LevelMapping(tuple(Loop(d, temporal[l][d]) for d in order), tuple(loops), frozenset(keep)))
    return Mapping(tuple(levels))


def small(problem: Problem, rng: np.random.Generator) -> Problem:
    """The case's problem with bounds small enough for the reference model."""
    return replace(problem, bounds={d: int(rng.choice([1, 2, 3, 4, 6, 8, 12])) if b > 1 else 1
                                    for d, b in problem.bounds.items()})


@pytest.mark.parametrize("case", [c for c in case_ids() if not c.startswith("extra-v303/")])
def test_random_mappings_of_the_case_architecture(case: str) -> None:
    spec = load(load_input(case))
    rng = np.random.default_rng(sum(map(ord, case)))
    for _ in range(3):
        problem = small(spec.problem, rng)
        mappings = [random_mapping(problem, spec.architecture, rng) for _ in range(4)]
        for links in (True, False):
            assert disagreements(problem, spec.architecture, mappings, links) == []


SHIPPED = Path(__file__).resolve().parents[1] / "specs"


@pytest.mark.parametrize("arch_name", ["toy-3level", "eyeriss", "ws-16x16", "os-16x16", "simba-like", "tpu-like"])
def test_random_mappings_of_shipped_architectures(arch_name: str) -> None:
    """Native specs too, with their fan-out network energies."""
    specs = load_specs([SHIPPED / "arch" / f"{arch_name}.yaml", SHIPPED / "workloads" / "tiny-conv.yaml"])
    rng = np.random.default_rng(sum(map(ord, arch_name)))
    for _ in range(2):
        problem = small(specs.problems[0], rng)
        mappings = [random_mapping(problem, specs.architecture, rng) for _ in range(4)]
        assert disagreements(problem, specs.architecture, mappings) == []


@pytest.mark.parametrize("arch_name", ["eyeriss-like", "simba-like", "tpu-like"])
def test_each_mapping_scores_as_it_does_alone_whatever_batch_it_is_in(arch_name: str) -> None:
    """The compiled model works out a fan-out's instance offsets once for the mappings
    of a batch that share its spatial loops and the tiles they spread, as the tilings
    of one structure mostly do: each mapping of such a batch scores as it does alone."""
    specs = load_specs([SHIPPED / "arch" / f"{arch_name}.yaml", SHIPPED / "workloads" / "tiny-conv.yaml"])
    problem, arch = specs.problems[0], specs.architecture
    rng = np.random.default_rng(7)
    structures = batch_from_mappings(problem, arch, [random_mapping(problem, arch, rng) for _ in range(4)])
    picked = structures.take(rng.integers(len(structures), size=200))
    temporal = picked.temporal.copy()
    for tiling in temporal:  # each dimension's temporal factors shuffled over the levels
        for d in range(temporal.shape[2]):
            tiling[:, d] = rng.permutation(tiling[:, d])
    batch = MappingBatch(picked.order, temporal, picked.spatial_x, picked.spatial_y, picked.spatial_order,
                         picked.keep)
    together = evaluate_batch(problem, arch, batch, detailed=True)
    for b in range(len(batch)):
        alone = evaluate_batch(problem, arch, batch.take(np.array([b])), detailed=True)
        for field in fields(together):
            assert np.array_equal(getattr(together, field.name)[b], getattr(alone, field.name)[0]), (b, field.name)


def test_scored_valid_only_the_mappings_that_fit_score_as_before_and_the_others_zero() -> None:
    specs = load_specs([SHIPPED / "arch" / "eyeriss-like.yaml", SHIPPED / "workloads" / "tiny-conv.yaml"])
    problem, arch = specs.problems[0], specs.architecture
    rng = np.random.default_rng(11)
    batch = batch_from_mappings(problem, arch, [random_mapping(problem, arch, rng) for _ in range(60)])
    evaluator = Evaluator(problem, arch)
    everything, valid_only = evaluator.evaluate(batch), evaluator.evaluate(batch, valid_only=True)
    fit = everything.valid
    assert 0 < fit.sum() < len(batch)  # random mappings: some overflow a level or a fan-out
    assert np.array_equal(valid_only.valid, fit)
    for field in ("energy_pJ", "cycles", "reads", "fills", "updates"):
        assert np.array_equal(getattr(valid_only, field)[fit], getattr(everything, field)[fit]), field
        assert not getattr(valid_only, field)[~fit].any(), field


def test_scored_valid_only_a_mapping_far_beyond_the_fan_outs_is_found_invalid_in_little_memory() -> None:
    """A search's moves can unroll a huge dimension spatially (a padded matrix product's
    N, 999,983 across a 14-wide fan-out): found invalid, its million instances are not
    laid out (they took 5 GB and a MemoryError)."""
    specs = load_specs([SHIPPED / "arch" / "eyeriss-like.yaml", SHIPPED / "workloads" / "tiny-conv.yaml"])
    problem, arch = specs.problems[0], specs.architecture
    rng = np.random.default_rng(11)
    batch = batch_from_mappings(problem, arch, [random_mapping(problem, arch, rng) for _ in range(4)])
    spatial_x, spatial_y = batch.spatial_x.copy(), batch.spatial_y.copy()
    spatial_x[0, 1, 0] = spatial_y[0, 1, 1] = 10**6  # a million by a million below the global buffer
    wide = MappingBatch(batch.order, batch.temporal, spatial_x, spatial_y, batch.spatial_order, batch.keep)
    scores = Evaluator(problem, arch).evaluate(wide, valid_only=True)
    assert not scores.valid[0]
    alone = Evaluator(problem, arch).evaluate(batch.take(np.arange(1, 4)), valid_only=True)
    assert np.array_equal(scores.energy_pJ[1:], alone.energy_pJ)  # the others as scored without it
