"""The mapspace generator: its sub-space sizes are the brute-force counts of small
spaces; exhaustive enumeration visits every distinct valid mapping exactly once;
sampled tilings satisfy the constraints and nearly always the capacities; `valid`
agrees with the capacity checker and an independent reading of the constraints, and
`broken_constraints` names what that reading finds broken;
pruned loop orders cost exactly the same; and "no valid mapping" says why."""

from __future__ import annotations

from dataclasses import replace
from itertools import permutations, product
from math import prod

import numpy as np
import pytest
from constraint_oracle import (
    all_factorizations,
    chain,
    conv1d,
    factor_problems,
    keep_ok,
    keep_table_count,
    matmul,
    order_class,
    order_ok,
    permutation_count,
    problems,
    to_mapping,
)
from timeloop_reference import REFERENCE

from mapper.constraints import Constraints, LevelConstraints
from mapper.mapping import LevelMapping, Loop, Mapping
from mapper.mapspace import Mapspace, NoValidMapping
from mapper.model.batch import MappingBatch, batch_from_mappings
from mapper.model.capacity import violations
from mapper.model.reference import evaluate_reference
from mapper.model.vectorized import evaluate_batch
from mapper.problem import Problem, Tensor
from mapper.specs.constraints import parse_factor_words
from mapper.specs.load import load_specs
from mapper.specs.files import shipped_specs_dir

SPECS = shipped_specs_dir()
T06 = REFERENCE / "cases/t06_mapper_eyeriss_vgg02_l5/ref-output"
needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")


def pointwise(N: int, K: int, P: int) -> Problem:
    """A 1x1 convolution with one spatial axis: N and P index the same tensors, each
    through a rank of its own, so their loops commute."""
    return Problem("pointwise", ("N", "K", "P"), {"N": N, "K": K, "P": P}, (
        Tensor("Weights", (((1, "K"),),)),
        Tensor("Inputs", (((1, "N"),), ((1, "P"),))),
        Tensor("Outputs", (((1, "N"),), ((1, "K"),), ((1, "P"),)), read_write=True)))


def level(**kw: object) -> LevelConstraints:
    """LevelConstraints with factor tables written as "K<=2 P>=2" strings."""
    for key in ("temporal", "spatial", "spatial_x", "spatial_y"):
        if isinstance(kw.get(key), str):
            kw[key] = parse_factor_words(kw[key])
    return LevelConstraints(**kw)


ARCH = chain([None, 16, 4], [(1, 1), (2, 2), (1, 1)])
SMALL_SPACES = {
    "conv1d, no constraints": (conv1d(4, 3, 4), ARCH, Constraints()),
    "conv1d, every kind of constraint": (conv1d(4, 3, 4), ARCH, Constraints({
        "L0": level(innermost=("P",)),
        "L1": level(temporal="K<=2 P>=2", x_dims=frozenset({"K", "P"}), spatial_y="R=1", keep=frozenset({"Inputs"})),
        "L2": level(bypass=frozenset({"Weights"}))}, min_utilization=0.5)),
    "conv1d, a register too small for some keep tables": (conv1d(4, 3, 4), ARCH, Constraints({
        "L2": level(temporal="R=3")})),
    "pointwise, commuting loops and an order constraint": (pointwise(2, 2, 4), ARCH, Constraints({
        "L1": level(outermost=("K",))})),
    "matmul on a 4-wide row": (matmul(4, 2, 4), chain([None, 8, 2], [(1, 1), (4, 1), (1, 1)]), Constraints()),
    "conv1d, 8-bit weights and 32-bit outputs in 16-bit words": (
        replace(conv1d(4, 3, 4), tensors=tuple(replace(t, word_bits={"Weights": 8, "Outputs": 32}.get(t.name))
                                                for t in conv1d(4, 3, 4).tensors)), ARCH, Constraints()),
}


@pytest.mark.parametrize("name", SMALL_SPACES)
def test_sizes_are_the_brute_force_counts(name: str) -> None:
    problem, arch, c = SMALL_SPACES[name]
    space = Mapspace(problem, arch, c)
    splits = all_factorizations(c, problem, arch)
    spatial = {tuple((s[1], s[2]) for s in split.values()) for split in splits}
    permutations = prod(permutation_count(c, problem, arch, l) for l in range(len(arch.levels)))
    bypass = keep_table_count(c, problem, arch)
    assert len(space.keep_choices()) == prod(len(space.keep_rows(l)) for l in range(space.L)) == bypass
    assert space.sizes() == {"factorizations": len(splits), "permutations": permutations, "spatial": len(spatial),
                             "bypass": bypass, "total": len(splits) * permutations * bypass}


def level_key(lm, order_cls: frozenset) -> tuple:
    return (tuple(sorted((x.dim, x.factor) for x in lm.temporal if x.factor > 1)),
            tuple(sorted((x.dim, x.factor, x.spatial) for x in lm.spatial if x.factor > 1)), lm.keep, order_cls)


def mapping_key(problem: Problem, arch, c: Constraints, mapping: Mapping) -> tuple:
    """What makes two mappings different: factors, keeps, and per level the class of
    its non-unit loop order."""
    return tuple(level_key(lm, order_class(c, problem, arch, l, tuple(x.dim for x in lm.temporal if x.factor > 1)))
                 for l, lm in enumerate(mapping.levels))


def brute_force_valid_keys(problem: Problem, arch, c: Constraints) -> set[tuple]:
    """Every distinct mapping that fits and meets the constraints: every split, keep
    table and class of loop orders with a member that meets the order constraints."""
    names = [t.name for t in problem.tensors]
    rows = [frozenset(n for n, bit in zip(names, bits) if bit) for bits in product((False, True), repeat=len(names))]
    keys: set[tuple] = set()
    for split in all_factorizations(c, problem, arch):
        for keep in product(rows, repeat=len(arch.levels)):
            plain = to_mapping(problem, arch, split, list(keep))
            if violations(problem, arch, plain) or factor_problems(c, problem, arch, plain) or not all(
                    keep_ok(c, problem, arch, l, k) for l, k in enumerate(keep)):
                continue
            per_level = []
            for l, lm in enumerate(plain.levels):
                live = [x.dim for x in lm.temporal]
                classes = {order_class(c, problem, arch, l, o) for o in permutations(live)}
                per_level.append([level_key(lm, cls) for cls in classes
                                  if any(order_ok(c, arch, l, list(o)) for o in cls)])
            keys.update(product(*per_level))
    return keys


TINY_SPACES = {
    "conv1d on a 2-wide row": (conv1d(2, 3, 2), chain([None, 8, 2], [(1, 1), (2, 1), (1, 1)]), Constraints()),
    "pointwise with constraints": (pointwise(2, 2, 2), chain([None, 8, 4], [(1, 1), (2, 1), (1, 1)]), Constraints({
        "L0": level(innermost=("N",)), "L1": level(spatial_x="K<=1"), "L2": level(keep=frozenset({"Outputs"}))})),
}


@pytest.mark.parametrize("name", TINY_SPACES)
def test_enumerate_visits_every_distinct_valid_mapping_once(name: str) -> None:
    problem, arch, c = TINY_SPACES[name]
    space = Mapspace(problem, arch, c)
    keys = []
    for batch in space.enumerate(chunk=500):
        assert space.valid(batch).all()
        for b in range(len(batch)):
            mapping = batch.mapping(b, problem)
            assert violations(problem, arch, mapping) == []
            assert problems(c, problem, arch, mapping) == []
            keys.append(mapping_key(problem, arch, c, mapping))
    assert len(keys) == len(set(keys))
    assert set(keys) == brute_force_valid_keys(problem, arch, c)


@pytest.mark.parametrize("name", SMALL_SPACES)
def test_valid_agrees_with_the_capacity_checker_and_the_constraints(name: str) -> None:
    problem, arch, c = SMALL_SPACES[name]
    space = Mapspace(problem, arch, c)
    batch = next(space.enumerate(chunk=4000, valid_only=False))
    rng = np.random.default_rng(0)
    rows = rng.choice(len(batch), size=min(400, len(batch)), replace=False)
    valid = space.valid(batch)
    for b in rows:
        mapping = batch.mapping(int(b), problem)
        expected = not violations(problem, arch, mapping) and not problems(c, problem, arch, mapping)
        assert valid[b] == expected
    assert 0 < valid[rows].sum() < len(rows)  # both kinds were checked


def _kind(broken: str) -> str:
    """One of `broken_constraints`' sentences as the oracle's `problems` words it."""
    if broken.startswith("the loop order at "):
        return "loop order at " + broken.split()[4]
    if broken.split()[1] in ("keeps", "bypasses"):
        return "keep at " + broken.split()[0]
    if " MACs used" in broken:
        return "utilization"
    return f"{broken.split()[0]} breaks a factor constraint"


@pytest.mark.parametrize("name", [n for n in SMALL_SPACES if SMALL_SPACES[n][2] != Constraints()])
def test_broken_constraints_say_what_the_independent_reading_finds_broken(name: str) -> None:
    """Mappings of the space without constraints and of the space, checked against
    the constraints: `broken_constraints` names each kind of constraint the oracle
    finds broken (a dimension's factors, a level's loop order, a level's keep flags,
    the utilization), and none for a mapping `allowed`."""
    problem, arch, c = SMALL_SPACES[name]
    space = Mapspace(problem, arch, c)
    batch = MappingBatch.concatenate([next(s.enumerate(chunk=2000, valid_only=False))
                                      for s in (Mapspace(problem, arch), space)])
    rows = np.random.default_rng(0).choice(len(batch), size=min(400, len(batch)), replace=False)
    allowed = space.allowed(batch)
    for b in rows.tolist():
        one = batch.take(np.array([b]))
        broken = space.broken_constraints(one)
        assert {_kind(x) for x in broken} == set(problems(c, problem, arch, one.mapping(0, problem)))
        assert (broken == []) == allowed[b]
    assert 0 < allowed[rows].sum() < len(rows)  # both kinds were checked


def test_broken_constraints_word_what_was_found_and_what_is_allowed() -> None:
    problem, arch = conv1d(4, 3, 4), ARCH
    c = Constraints({"L0": level(innermost=("P",)), "L1": level(temporal="K<=2", bypass=frozenset({"Weights"}))},
                    min_utilization=1.0)
    mapping = Mapping((
        LevelMapping((Loop("P", 2), Loop("R", 3)), (), frozenset({"Weights", "Inputs", "Outputs"})),
        LevelMapping((Loop("K", 4),), (Loop("P", 2, "X"),), frozenset({"Weights", "Inputs"})),
        LevelMapping((), (), frozenset({"Outputs"}))))
    space = Mapspace(problem, arch, c)
    assert space.broken_constraints(batch_from_mappings(problem, arch, [mapping])) == [
        "K at L1: a factor of 4, where the constraints allow at most 2",
        "the loop order at L0 (P2 R3, outermost first) breaks its order constraints (innermost P)",
        "L1 keeps Weights, which it must bypass",
        "2 of the 4 MACs used, where min_utilization 1 needs 4"]


@pytest.mark.parametrize("name", SMALL_SPACES)
def test_a_search_checks_validity_by_allowed_and_the_models_fit_check(name: str) -> None:
    """tilings.score keeps mappings `allowed` that the model finds fitting: exactly the
    `valid` ones, over capacity, fan-out and constraint failures alike."""
    problem, arch, c = SMALL_SPACES[name]
    space = Mapspace(problem, arch, c)
    batch = next(space.enumerate(chunk=4000, valid_only=False))
    fits = evaluate_batch(problem, arch, batch).valid
    valid = space.valid(batch)
    assert np.array_equal(space.allowed(batch) & fits, valid)
    assert valid.any() and (space.allowed(batch) & ~fits).any()  # the model's check was needed


def random_structures(space: Mapspace, rng: np.random.Generator, count: int) -> list:
    structures = []
    combos = list(space.spatial_combinations())
    keeps = space.keep_choices()
    for _ in range(count):
        orders = [space.permutation_choices(l)[rng.integers(len(space.permutation_choices(l)))]
                  for l in range(space.L)]
        sx, sy = combos[rng.integers(len(combos))]
        structures.append(space.structure(orders, list(zip(sx, sy)), keeps[rng.integers(len(keeps))]))
    return structures


@pytest.mark.parametrize("name", SMALL_SPACES)
def test_sampled_tilings_meet_the_constraints_and_fit(name: str) -> None:
    problem, arch, c = SMALL_SPACES[name]
    space = Mapspace(problem, arch, c)
    rng = np.random.default_rng(1)
    fitting = total = 0
    for structure in random_structures(space, rng, 20):
        batch = space.sample_tilings(structure, 50, rng)
        assert len(batch) == 50
        valid = space.valid(batch)
        for b in range(0, 50, 5):
            mapping = batch.mapping(b, problem)
            assert problems(c, problem, arch, mapping) == []
            assert valid[b] == (not violations(problem, arch, mapping))
        fitting += valid.sum()
        total += len(batch)
    assert fitting / total > 0.9


def test_sampling_reaches_every_tiling_of_a_structure() -> None:
    problem, arch, c = SMALL_SPACES["conv1d, every kind of constraint"]
    space = Mapspace(problem, arch, c)
    split = all_factorizations(c, problem, arch)[-1]
    spatial = [(tuple(split[d][1][l] for d in problem.dims), tuple(split[d][2][l] for d in problem.dims))
               for l in range(space.L)]
    structure = space.structure([space.permutation_choices(l)[0] for l in range(space.L)], spatial,
                                space.keep_choices()[0])
    every = {tuple(zip(*(f[d][0] for d in problem.dims))) for f in all_factorizations(c, problem, arch)
             if all((f[d][1], f[d][2]) == (split[d][1], split[d][2]) for d in problem.dims)}
    assert len(every) == space.tiling_count(structure)
    batch = space.sample_tilings(structure, 20000, np.random.default_rng(2))
    seen = {tuple(map(tuple, t)) for t in batch.temporal}
    fitting = {tuple(map(tuple, t)) for t, ok in zip(batch.temporal, space.valid(batch)) if ok}
    assert seen <= every
    assert fitting == {t for t in every if space.valid(_with_temporal(structure, t))[0]}


def _with_temporal(structure, temporal: tuple) -> MappingBatch:
    def one(grid: tuple, dtype: type = np.int64) -> np.ndarray:
        return np.array([grid], dtype=dtype)
    return MappingBatch(one(structure.order), one(temporal), one(structure.spatial_x), one(structure.spatial_y),
                        one(structure.spatial_order), one(structure.keep, bool))


def test_sampling_is_deterministic_for_a_seed() -> None:
    problem, arch, c = SMALL_SPACES["conv1d, every kind of constraint"]
    space = Mapspace(problem, arch, c)
    structure = random_structures(space, np.random.default_rng(3), 1)[0]
    first = space.sample_tilings(structure, 1000, np.random.default_rng(7))
    again = space.sample_tilings(structure, 1000, np.random.default_rng(7))
    assert np.array_equal(first.temporal, again.temporal)


@pytest.mark.parametrize("problem, arch", [
    (conv1d(4, 3, 8), chain([None, 32, 8], [(1, 1), (2, 1), (1, 1)])),
    (pointwise(4, 2, 4), chain([None, 32, 8], [(1, 1), (2, 2), (1, 1)])),
    (pointwise(2, 2, 4), chain([None, 32, 8, 4], [(1, 1), (2, 1), (1, 1), (1, 1)])),
])
def test_orders_the_pruning_merges_cost_the_same(problem: Problem, arch) -> None:
    """Swapping loops the rule says commute, and any order at the innermost level,
    changes no count of the reference model (bypasses and fan-outs included)."""
    space = Mapspace(problem, arch)
    rng = np.random.default_rng(4)
    merged = 0
    for structure in random_structures(space, rng, 12):
        batch = space.sample_tilings(structure, 1, rng)
        if not space.valid(batch)[0]:
            continue
        base = batch.mapping(0, problem)
        want = evaluate_reference(problem, arch, base)
        for l, lm in enumerate(base.levels):
            live = tuple(loop.dim for loop in lm.temporal if loop.factor > 1)
            for order in order_class(Constraints(), problem, arch, l, live) - {live}:
                factor = {loop.dim: loop.factor for loop in lm.temporal}
                levels = list(base.levels)
                levels[l] = type(lm)(tuple(type(lm.temporal[0])(d, factor[d]) for d in order), lm.spatial, lm.keep)
                assert evaluate_reference(problem, arch, Mapping(tuple(levels))) == want
                merged += 1
    assert merged > 0


def test_orders_with_unit_loops_are_pruned() -> None:
    """A dimension that is 1 at a level, by its bound or a constraint, is not ordered."""
    problem = conv1d(4, 1, 4)
    space = Mapspace(problem, ARCH, Constraints({"L1": level(temporal="K=1")}))
    assert len(space.permutation_choices(0)) == 2  # K and P; R has bound 1
    assert len(space.permutation_choices(1)) == 1  # only P is left
    assert len(space.permutation_choices(2)) == 1  # innermost, feeding the MACs directly


# ---------------------------------------------------------------------------
# No valid mapping


def reasons(problem: Problem, arch, c: Constraints) -> list[str]:
    with pytest.raises(NoValidMapping) as info:
        Mapspace(problem, arch, c).check()
    return info.value.reasons


@needs_reference
def test_no_valid_mapping_names_the_buffer_and_the_smallest_tile() -> None:
    specs = load_specs([T06 / "parsed-processed-input.yaml", T06 / "timeloop-mapper.ERT.yaml"])
    problem, arch = specs.problems[0], specs.architecture
    Mapspace(problem, arch, specs.constraints).check()
    too_big = specs.constraints.refined_by(Constraints({"psum_spad": level(temporal="M>=24")}))
    assert reasons(problem, arch, too_big) == [
        "psum_spad holds 16 words; the smallest Outputs tile the constraints allow is 32 (M 32)"]


def test_no_valid_mapping_explains_each_kind_of_conflict() -> None:
    problem = conv1d(4, 3, 4)
    eyeriss = load_specs([SPECS / "arch/eyeriss.yaml", SPECS / "workloads/tiny-conv.yaml"])
    assert reasons(problem, ARCH, Constraints({"L1": level(temporal="K=3")})) == [
        "K=3 at L1 does not divide the bound 4 of K"]
    assert reasons(problem, ARCH, Constraints({"L0": level(temporal="K=2"), "L1": level(temporal="K=4")})) == [
        "the fixed factors of K (2 at L0, 4 at L1) multiply to 8, which does not divide its bound 4"]
    assert reasons(problem, ARCH, Constraints({"L1": level(spatial_x="K>=2 P>=2")})) == [
        "the constraints put at least 4 along X below L1 (K 2 x P 2); the fan-out L1 -> L2 has 2 along X"]
    assert reasons(problem, ARCH, Constraints({"L2": level(temporal="P>=8")})) == [
        "P>=8 at L2 asks for more than the bound 4 of P"]
    assert reasons(problem, ARCH, Constraints({"L1": level(spatial_x="K=2", x_dims=frozenset({"P"}))})) == [
        "K=2 along X below L1, but the constraints allow only P along X there"]
    assert reasons(problem, ARCH, Constraints({"L0": level(bypass=frozenset({"Weights"}))})) == [
        "the constraints bypass Weights at L0, the outermost level, which keeps every tensor that no level below "
        "keeps whole (keep it at one, with a factor of 1 for each of its dimensions above it)"]
    assert reasons(problem, ARCH, Constraints({"L0": level(bypass=frozenset({"Weights"})),
                                               "L1": level(keep=frozenset({"Weights"}))})) == [
        "the constraints bypass Weights at L0, the outermost level, and keep it at L1, which must then hold it "
        "whole: give K, R a factor of 1 at every level above L1"]
    assert reasons(eyeriss.problems[0], eyeriss.architecture, Constraints(
        {"GlobalBuffer": level(keep=frozenset({"Weights"}))})) == [
        "the constraints keep Weights at GlobalBuffer, but the architecture lets it keep only Inputs, Outputs"]
    assert reasons(problem, ARCH, Constraints({"L2": level(temporal="P=4", keep=frozenset({"Outputs",
                                                                                          "Inputs"}))})) == [
        "L2 holds 4 words; the smallest tiles the constraints allow are Inputs 4 + Outputs 4 = 8"]


def test_no_valid_mapping_explains_an_unreachable_utilization() -> None:
    problem = conv1d(3, 3, 3)  # no factor of 2: at most one PE of each pair is busy
    assert reasons(problem, ARCH, Constraints(min_utilization=0.5)) == [
        "min_utilization 0.5 needs at least 2 of 4 MACs busy; the constraints and fan-outs allow at most 1"]
    squeezed = Constraints({"L1": level(keep=frozenset({"Weights", "Inputs", "Outputs"}))}, min_utilization=1.0)
    found = reasons(conv1d(4, 3, 2), chain([None, 7, 4], [(1, 1), (2, 2), (1, 1)]), squeezed)
    assert found == [("min_utilization 1.0 needs at least 4 of 4 MACs busy, and every spatial unrolling that busy "
                      "overflows a buffer: e.g. with 4 MACs busy, L1 holds 7 words but its tiles need at least 8")]


# ---------------------------------------------------------------------------
# Real architectures


@needs_reference
def test_timeloop_reference_mapping_of_t06_is_in_its_mapspace() -> None:
    specs = load_specs([T06 / "parsed-processed-input.yaml", T06 / "timeloop-mapper.ERT.yaml",
                        T06 / "timeloop-mapper.map.yaml"])
    problem, arch = specs.problems[0], specs.architecture
    space = Mapspace(problem, arch, specs.constraints)
    space.check()
    batch = batch_from_mappings(problem, arch, [specs.mapping])
    assert space.valid(batch).all()
    structure = space.structure([space.permutation_choices(l)[0] for l in range(space.L)],
                                [(tuple(batch.spatial_x[0, l]), tuple(batch.spatial_y[0, l])) for l in range(space.L)],
                                space.keep_choices()[0])
    assert tuple(map(tuple, batch.keep[0])) == structure.keep  # the constraints fix every keep
    sampled = space.sample_tilings(structure, 5000, np.random.default_rng(5))
    assert space.valid(sampled).mean() > 0.95
