"""The search: it finds the exhaustive optimum on small spaces, emits only mappings that
satisfy the constraints and fit, resumes an interrupted study to the same answer,
gives the same answer for the same seed, writes a Timeloop mapping that evaluates to
the same stats, and says why when no mapping is valid."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.storages import InMemoryStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from timeloop_reference import REFERENCE, load_input

from mapper.cli import main
from mapper.constraints import Constraints
from mapper.mapspace import Mapspace
from mapper.model.batch import batch_from_mappings
from mapper.model.capacity import violations
from mapper.search import engine
from mapper.search.engine import (
    MIN_IMPROVEMENT,
    Budget,
    ExhaustiveSearch,
    OptunaSearch,
    trials_without_progress,
)
from mapper.search.objectives import Scores
from mapper.search.outputs import timeloop_mapping
from mapper.search.storage import Journal, mask_password
from mapper.search.structures import StructureSpace
from mapper.search import polish as polish_module
from mapper.search.tilings import Effort, best_tilings
from mapper.specs.load import load_specs
from mapper.specs.native.architecture import parse_architecture
from mapper.specs.native.problem import parse_problem
from mapper.specs.timeloop import load, parse_mapping
from run_details import without_run_details

SMALL_EFFORT = Effort(samples=256, rounds=4)

# Small layers and architectures, made up for these tests: spaces of 2e4-1e5 valid
# mappings that an exhaustive search scores in seconds.
PROBLEMS = {
    "conv1d": {"name": "conv1d", "dimensions": {"K": 4, "R": 3, "P": 8}, "tensors": [
        {"name": "Weights", "ranks": ["K", "R"]}, {"name": "Inputs", "ranks": ["R+P"]},
        {"name": "Outputs", "ranks": ["K", "P"], "read_write": True}]},
    "matmul": {"name": "matmul", "dimensions": {"M": 4, "N": 4, "K": 8}, "tensors": [
        {"name": "A", "ranks": ["M", "K"]}, {"name": "B", "ranks": ["K", "N"]},
        {"name": "Z", "ranks": ["M", "N"], "read_write": True}]},
}


def architecture(fanout: int | None = None, dram_bandwidth: float | None = None) -> dict:
    """DRAM -> a 32-word buffer (optionally feeding a row of PEs) -> a 4-word register."""
    dram = {"name": "DRAM", "size": "unbounded", "energy": {"read": 200, "write": 200}}
    if dram_bandwidth:  # a narrow DRAM port makes cycles depend on the mapping
        dram |= {"read_bandwidth": dram_bandwidth, "write_bandwidth": dram_bandwidth}
    buffer = {"name": "Buffer", "size": 32, "energy": {"read": 6, "write": 6}}
    if fanout:
        buffer |= {"fanout": fanout, "network_energy": 2}
    register = {"name": "Register", "size": 4, "energy": {"read": 1, "write": 1}}
    return {"name": "small", "levels": [dram, buffer, register], "compute": {"energy": 1}}


SPACES = {
    "conv1d": ("conv1d", architecture()),
    "conv1d-on-a-row": ("conv1d", architecture(fanout=2, dram_bandwidth=1)),
    "matmul": ("matmul", architecture()),
}


def write_specs(folder: Path, space: str) -> list[str]:
    problem, arch = SPACES[space]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "arch.yaml").write_text(yaml.safe_dump({"architecture": arch}))
    (folder / "layer.yaml").write_text(yaml.safe_dump({"problem": PROBLEMS[problem]}))
    return [str(folder / "arch.yaml"), str(folder / "layer.yaml")]


@cache
def mapspace(space: str, dataflow: str | None = None) -> Mapspace:
    problem, arch = SPACES[space]
    return Mapspace(parse_problem(PROBLEMS[problem]), parse_architecture(arch),
                    Constraints(preset=dataflow) if dataflow else None)


@cache
def exhaustive_optimum(space: str, objective: str) -> float:
    return float(ExhaustiveSearch(mapspace(space), objective).run().found.scores.value(objective)[0])


# ---------------------------------------------------------------- quality


@pytest.mark.parametrize("space, objective", [("conv1d", "energy"), ("conv1d", "edp"),
                                              ("conv1d-on-a-row", "delay"), ("conv1d-on-a-row", "edp"),
                                              ("matmul", "energy")])
def test_the_search_reaches_the_exhaustive_optimum(space: str, objective: str) -> None:
    search = OptunaSearch(mapspace(space), objective, InMemoryStorage(), seed=0, effort=SMALL_EFFORT)
    found = float(search.run(Budget(trials=60)).found.scores.value(objective)[0])
    optimum = exhaustive_optimum(space, objective)
    assert optimum <= found <= 1.01 * optimum


def test_the_delay_objective_breaks_ties_by_energy() -> None:
    ms = mapspace("conv1d-on-a-row")
    delay_best = ExhaustiveSearch(ms, "delay").run().found.scores
    everything = ExhaustiveSearch(ms, "pareto").run().found.scores  # the front: fastest first
    assert delay_best.cycles[0] == everything.cycles[0]
    assert delay_best.energy_pJ[0] == everything.energy_pJ[0]


def test_local_moves_that_leave_the_best_mapping_as_it_is_come_last() -> None:
    """A loop order matters only for the loops that iterate: in the best mapping of the
    structure moved from, the Buffer iterates over M and N and no other level iterates,
    so of the order moves only one that swaps M and N at the Buffer comes before the
    others (a move of K there, or any move at the DRAM, maps those tilings alike; other
    swaps of M and N make the same order of them)."""
    space = StructureSpace(mapspace("matmul"))
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    space.suggest(trial)
    temporal = np.ones((3, 3), dtype=np.int64)  # levels DRAM, Buffer, Register x dimensions M, N, K
    temporal[1, :2] = 2
    moves = list(space.neighbours(trial.params, temporal))
    orders = {name: dict(choices) for name, choices in [(n, enumerate(c)) for n, c in space.orders]}

    def iterating(move: dict, level: str, dims: set[int]) -> tuple[int, ...]:
        return tuple(d for d in orders[level][move[level]] if d in dims)

    def changes_the_iterating_order(move: dict) -> bool:
        return iterating(move, "order/Buffer", {0, 1}) != iterating(trial.params, "order/Buffer", {0, 1})

    order_moves = [i for i, move in enumerate(moves)
                   if any(move[name] != trial.params[name] for name in ("order/DRAM", "order/Buffer"))]
    first_idle = next(i for i in order_moves if not changes_the_iterating_order(moves[i]))
    early = [i for i in order_moves if i < first_idle]
    assert len(early) == 1 and changes_the_iterating_order(moves[early[0]])
    assert all(i in order_moves for i in range(first_idle, len(moves)))  # only order moves from there on
    # none is lost: per level, the 4 orders of three loops that one loop moved makes
    assert len(order_moves) == len({_key(m) for m in (moves[i] for i in order_moves)}) == 4 + 4


def _key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


def test_ties_go_to_the_smallest_mapping_key() -> None:
    scores = Scores(np.array([5.0, 3.0, 3.0, 3.0]), np.array([1, 2, 2, 2]),
                    np.array([[0, 0], [2, 1], [1, 9], [2, 0]]))
    assert scores.best("energy", 3).tolist() == [2, 3, 1]


@pytest.mark.parametrize("objective", ["edp", "energy", "delay"])
def test_the_best_come_first_by_the_objectives_tuple_then_by_mapping_key(objective: str) -> None:
    rng = np.random.default_rng(3)
    for values in (3, 1000):  # many ties, and few
        energy = rng.integers(1, values, size=200).astype(float)
        cycles = rng.integers(1, 4, size=200)
        keys = rng.integers(0, 3, size=(200, 5))
        ranking = {"energy": lambda i: (energy[i], cycles[i]), "delay": lambda i: (cycles[i], energy[i]),
                   "edp": lambda i: (energy[i] * 1e-12 * cycles[i], energy[i], cycles[i])}[objective]
        expected = sorted(range(200), key=lambda i: (*ranking(i), *keys[i].tolist()))
        assert Scores(energy, cycles, keys).best(objective, 16).tolist() == expected[:16]


def test_the_pareto_front_keeps_what_nothing_beats_on_both() -> None:
    energy = np.array([10.0, 8.0, 8.0, 12.0, 6.0, 9.0])
    cycles = np.array([100, 120, 120, 90, 200, 130])
    scores = Scores(energy, cycles, np.array([[0], [5], [4], [0], [0], [0]]))
    assert scores.pareto_front().tolist() == [3, 0, 2, 4]  # fastest first; of the tied pair, key 4


# -------------------------------------------------------- valid answers


def test_emitted_mappings_satisfy_the_dataflow_and_fit(tmp_path: Path) -> None:
    specs = write_specs(tmp_path, "conv1d-on-a-row")
    out = tmp_path / "out"
    assert main(["search", *specs, "-o", str(out), "--objective", "pareto", "--trials", "3",
                 "--dataflow", "output-stationary"]) == 0
    ms = mapspace("conv1d-on-a-row", "output-stationary")
    points = json.loads((out / "pareto.json").read_text())["points"]
    best = json.loads((out / "best.json").read_text())
    assert points and best["mapping"] in [p["mapping"] for p in points]
    for point in points:
        mapping_file = tmp_path / "point.yaml"
        mapping_file.write_text(yaml.safe_dump({"mapping": point["mapping"]}))
        mapping = load_specs([*specs, mapping_file]).mapping
        assert violations(ms.problem, ms.arch, mapping) == []
        assert ms.valid(batch_from_mappings(ms.problem, ms.arch, [mapping])).all()
        # output-stationary: the PEs never split a reduction (R is no spatial loop)
        assert all(loop.dim != "R" for lm in mapping.levels for loop in lm.spatial)
    cycles = [p["cycles"] for p in points]
    energy = [p["energy_pJ"] for p in points]
    assert cycles == sorted(cycles) and energy == sorted(energy, reverse=True)


def test_a_constraints_file_is_obeyed(tmp_path: Path) -> None:
    specs = write_specs(tmp_path, "conv1d")
    constraints = tmp_path / "constraints.yaml"
    constraints.write_text(yaml.safe_dump({"constraints": {"levels": {
        "Register": {"temporal": "K=1 P=1", "keep": ["Weights"], "bypass": ["Outputs"]}}}}))
    out = tmp_path / "out"
    assert main(["search", *specs, "--constraints", str(constraints), "-o", str(out), "--trials", "2"]) == 0
    register = json.loads((out / "best.json").read_text())["mapping"][2]
    assert "Weights" in register["keep"] and "Outputs" not in register["keep"]
    assert "K" not in register.get("temporal", "") and "P" not in register.get("temporal", "")


def test_no_valid_mapping_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = write_specs(tmp_path, "conv1d")
    constraints = tmp_path / "constraints.yaml"
    constraints.write_text(yaml.safe_dump({"constraints": {"levels": {"Register": {"temporal": "K=4 P=8",
                                                                                  "keep": ["Outputs"]}}}}))
    assert main(["search", *specs, "--constraints", str(constraints), "-o", str(tmp_path / "out"),
                 "--trials", "2"]) == 2
    err = capsys.readouterr().err
    assert "no valid mapping" in err and "Register holds 4 words" in err
    assert not (tmp_path / "out" / "best.json").exists()


SHIPPED = Path(__file__).resolve().parents[1] / "specs"


# The first trial of these finds no mapping: the search used to end there, saying none fits.
@pytest.mark.parametrize("arch, workload", [("tpu-like", "tiny-conv"), ("eyeriss-like", "alexnet-conv3")])
@pytest.mark.parametrize("budget", [["--trials", "1"], ["--time", "0.001"]])
def test_a_search_of_the_smallest_budget_finds_a_mapping_where_one_fits(tmp_path: Path, arch: str, workload: str,
                                                                          budget: list[str]) -> None:
    files = [str(SHIPPED / "arch" / f"{arch}.yaml"), str(SHIPPED / "workloads" / f"{workload}.yaml")]
    assert main(["search", *files, "-o", str(tmp_path / "out"), *budget]) == 0
    assert json.loads((tmp_path / "out" / "best.json").read_text())["search"]["trials"] == 2  # + the fitting start


def test_an_exhaustive_search_that_finds_nothing_says_no_mapping_fits(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "score", lambda mapspace, batch: (engine.Scored.empty(mapspace), len(batch)))
    specs = write_specs(tmp_path, "conv1d")
    assert main(["search", *specs, "-o", str(tmp_path / "out"), "--exhaustive"]) == 2
    err = capsys.readouterr().err
    assert "conv1d: no valid mapping:" in err and "an exhaustive search scored every one" in err


@pytest.mark.parametrize("space, dataflow", [(space, None) for space in SPACES] + [
    (space, dataflow) for space in ("conv1d", "conv1d-on-a-row") for dataflow in ("weight-stationary",
                                                                                   "output-stationary")])
def test_a_search_of_one_trial_ends_with_a_mapping_that_fits(space: str, dataflow: str | None) -> None:
    ms = mapspace(space, dataflow)
    start = ms.fitting_start()
    assert start is not None and ms.valid(start).all()
    for seed in range(4):
        outcome = OptunaSearch(ms, "edp", InMemoryStorage(), seed=seed, effort=SMALL_EFFORT).run(Budget(trials=1))
        assert len(outcome.found) == 1 and outcome.trials in (1, 2)


def test_the_fitting_start_is_tried_only_when_the_first_trial_finds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the first trial finds a mapping, the search is what it was without the start."""
    real, structures = engine.best_tilings, []

    def nothing_at_first(mapspace, structure, *args):
        structures.append(structure)
        return (engine.Scored.empty(mapspace), 0) if len(structures) == 1 else real(mapspace, structure, *args)

    monkeypatch.setattr(engine, "best_tilings", nothing_at_first)
    ms = mapspace("conv1d")
    search = OptunaSearch(ms, "edp", InMemoryStorage(), effort=SMALL_EFFORT)
    outcome = search.run(Budget(trials=1))
    assert outcome.trials == 2 and len(outcome.found) == 1
    start = ms.fitting_start()
    assert structures[1] == ms.structure(start.order[0], list(zip(start.spatial_x[0], start.spatial_y[0])),
                                         start.keep[0])
    assert [bool(t.user_attrs.get(engine.START)) for t in engine.search_trials(search.study)] == [False, True]
    assert len(structures) == 2 and search.run(Budget(trials=4)).trials == 4  # then the budget as usual


def test_a_search_begun_from_a_mapping_scores_its_structure_first_and_never_ends_worse() -> None:
    ms = mapspace("conv1d")
    optimum = ExhaustiveSearch(ms, "edp").run().found
    begin = optimum.batch.take(np.arange(1))
    search = OptunaSearch(ms, "edp", InMemoryStorage(), effort=SMALL_EFFORT, begin=begin)
    outcome = search.run(Budget(trials=3))
    first = engine.search_trials(search.study)[0]
    assert first.user_attrs.get(engine.BEGIN) and first.params == search.space.params_of(begin)
    assert outcome.found.scores.value("edp")[0] == pytest.approx(optimum.scores.value("edp")[0])
    unbegun = OptunaSearch(ms, "edp", InMemoryStorage(), effort=SMALL_EFFORT).study.study_name
    assert search.study.study_name != unbegun  # a resumed search is begun alike, or starts afresh


def test_a_begin_mapping_the_trials_cannot_name_is_ignored() -> None:
    """A structure that is none of the trials' choices (here an unrolling that is not
    one of the fan-out's)."""
    ms = mapspace("conv1d-on-a-row")
    begin = ExhaustiveSearch(ms, "edp").run().found.batch.take(np.arange(1))
    fanout = next(l for l in range(ms.L) if len(ms.spatial_choices(l)) > 1)
    begin.spatial_x[0, fanout] = 7
    search = OptunaSearch(ms, "edp", InMemoryStorage(), effort=SMALL_EFFORT, begin=begin)
    assert search.begin is None and len(search.run(Budget(trials=2)).found) == 1
    assert not any(t.user_attrs.get(engine.BEGIN) for t in engine.search_trials(search.study))


def test_a_search_interrupted_in_its_fitting_start_resumes_to_the_uninterrupted_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls, interrupt = engine.best_tilings, [], [False]

    def nothing_at_first(mapspace, structure, *args):
        calls.append(structure)
        if interrupt[0] and len(calls) == 2:
            raise KeyboardInterrupt
        return (engine.Scored.empty(mapspace), 0) if len(calls) == 1 else real(mapspace, structure, *args)

    def search(journal: str) -> OptunaSearch:
        calls.clear()
        storage = JournalStorage(JournalFileBackend(str(tmp_path / journal)))
        return OptunaSearch(mapspace("conv1d"), "energy", storage, seed=3, effort=SMALL_EFFORT)

    monkeypatch.setattr(engine, "best_tilings", nothing_at_first)
    whole = search("whole.journal").run(Budget(trials=8))
    interrupt[0] = True
    with pytest.raises(KeyboardInterrupt):
        search("resumed.journal").run(Budget(trials=8))
    monkeypatch.setattr(engine, "best_tilings", real)  # the first trial is done: it found nothing
    resumed = search("resumed.journal").run(Budget(trials=8))
    assert resumed.trials == whole.trials == 8
    assert resumed.found.scores.keys.tolist() == whole.found.scores.keys.tolist()


def test_a_search_that_finds_nothing_says_what_to_change(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Distinct from "no valid mapping": the mapspace may hold mappings the budget missed."""
    monkeypatch.setattr(engine, "best_tilings", lambda mapspace, *args: (engine.Scored.empty(mapspace), 0))
    specs = write_specs(tmp_path, "conv1d")
    assert main(["search", *specs, "-o", str(tmp_path / "out"), "--trials", "2"]) == 2
    err = capsys.readouterr().err
    assert "conv1d: no mapping found within the budget:" in err and "more --trials or --time" in err
    assert "no valid mapping" not in err


# ----------------------------------------------------------------- budget


def test_progress_is_counted_from_the_last_trial_that_bettered_the_best_by_enough() -> None:
    inf = math.inf
    assert trials_without_progress([], 1e-3) == 0
    assert trials_without_progress([inf, inf, inf], 1e-3) == 0  # no valid mapping yet: patience waits
    assert trials_without_progress([inf, 10.0, 11.0, 10.0], 1e-3) == 2  # an equal value is no progress
    assert trials_without_progress([10.0, 9.0, 9.5], 1e-3) == 1
    assert trials_without_progress([10.0, 9.995], 1e-3) == 1  # 0.05% better: too little
    # small gains add up until they count: 9.989 is 0.11% below 10 (the last value that
    # counted), though only 0.03% below the best before it
    assert trials_without_progress([10.0, 9.995, 9.992, 9.989, 9.99], 1e-3) == 1


def test_a_budget_stops_at_whichever_limit_comes_first() -> None:
    assert Budget(trials=3).stop_reason([1.0, 1.0], 0.0) is None
    assert Budget(trials=3).stop_reason([1.0, 1.0, 1.0], 0.0) == "trials"
    assert Budget(trials=10, patience=2).stop_reason([5.0, 4.0, 4.0], 0.0) is None
    assert Budget(trials=10, patience=2).stop_reason([5.0, 4.0, 4.0, 4.0], 0.0) == "patience"
    assert Budget(trials=10, seconds=1.0).stop_reason([5.0], 2.0) == "time"
    assert Budget().stop_reason([5.0] * 1000, 1e6) is None


def test_patience_ends_a_search_where_the_rule_says_and_changes_none_of_its_trials() -> None:
    """Patience only decides where a study stops: its trials are the first ones of the
    same search without it."""
    def search() -> OptunaSearch:
        return OptunaSearch(mapspace("conv1d"), "energy", InMemoryStorage(), seed=5, effort=SMALL_EFFORT,
                            polishing=None)

    longer = search()
    longer.run(Budget(trials=40))
    values = [t.value for t in engine.search_trials(longer.study)]
    expected = next(n for n in range(1, 41) if trials_without_progress(values[:n], MIN_IMPROVEMENT) >= 5)
    shorter = search()
    outcome = shorter.run(Budget(trials=40, patience=5))

    assert outcome.trials == expected < 40 and outcome.details["stopped_by"] == "patience"
    assert [t.params for t in engine.search_trials(shorter.study)] == \
        [t.params for t in engine.search_trials(longer.study)][:expected]
    assert outcome.found.scores.energy_pJ[0] == min(values[:expected])


# ------------------------------------------------- determinism and resume


def test_the_same_seed_gives_the_same_result(tmp_path: Path) -> None:
    specs = write_specs(tmp_path, "matmul")
    for run in ("a", "b"):
        assert main(["search", *specs, "-o", str(tmp_path / run), "--trials", "3", "--seed", "7"]) == 0
    first, second = (json.loads((tmp_path / run / "best.json").read_text()) for run in ("a", "b"))
    assert without_run_details(first) == without_run_details(second)
    assert (tmp_path / "a" / "best.map.yaml").read_text() == (tmp_path / "b" / "best.map.yaml").read_text()


# past the start-up, so local moves are resumed too; with patience, the study stops
# earlier than --trials says (at trial 25 on this space and seed)
@pytest.mark.parametrize("budget, stopped_by", [(Budget(trials=16), "trials"),
                                                (Budget(trials=40, patience=5), "patience")])
def test_an_interrupted_search_resumes_to_the_uninterrupted_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     budget: Budget, stopped_by: str) -> None:
    def search(journal: Path) -> OptunaSearch:
        storage = JournalStorage(JournalFileBackend(str(journal)))
        return OptunaSearch(mapspace("conv1d"), "energy", storage, seed=5, effort=SMALL_EFFORT)

    whole = search(tmp_path / "whole.journal").run(budget)
    assert whole.details["stopped_by"] == stopped_by and whole.trials > 12

    calls = 0
    real = engine.best_tilings

    def interrupted_in_trial_12(*args, **kwargs):  # ordinal 11: a local move
        nonlocal calls
        calls += 1
        if calls == 12:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "best_tilings", interrupted_in_trial_12)
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "resumed.journal").run(budget)
    monkeypatch.undo()
    resumed = search(tmp_path / "resumed.journal").run(budget)

    assert resumed.trials == whole.trials
    assert resumed.found.scores.keys.tolist() == whole.found.scores.keys.tolist()
    history = [[t.params for t in engine.search_trials(search(tmp_path / name).study)]
               for name in ("whole.journal", "resumed.journal")]
    assert history[0] == history[1]


def test_a_search_interrupted_in_its_polish_resumes_to_the_uninterrupted_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def search(journal: Path) -> OptunaSearch:
        storage = JournalStorage(Journal(journal))
        return OptunaSearch(mapspace("conv1d-on-a-row"), "edp", storage, seed=3, effort=SMALL_EFFORT)

    whole = search(tmp_path / "whole.journal").run(Budget(trials=8))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "polish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "resumed.journal").run(Budget(trials=8))
    monkeypatch.undo()
    resumed = search(tmp_path / "resumed.journal").run(Budget(trials=8))
    again = search(tmp_path / "resumed.journal").run(Budget(trials=8))

    assert resumed.found.scores.keys.tolist() == whole.found.scores.keys.tolist()
    assert again.scored == 0  # the polish is recorded in the study: not done twice
    assert again.found.scores.keys.tolist() == whole.found.scores.keys.tolist()
    study = search(tmp_path / "resumed.journal").study
    polished = [t for t in engine.completed(study) if engine.POLISH in t.user_attrs]
    assert len(polished) == 1 and polished[0].user_attrs[engine.POLISH] == 8


def test_a_search_interrupted_in_its_shared_tensor_searches_resumes_to_the_uninterrupted_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def search(journal: Path) -> OptunaSearch:
        storage = JournalStorage(Journal(journal))
        return OptunaSearch(mapspace("conv1d-on-a-row"), "edp", storage, seed=3, effort=SMALL_EFFORT,
                            polishing=polish_module.PolishEffort(shared_starts=True))

    def run_and_share(journal: Path) -> engine.Outcome:
        searched = search(journal)
        return searched.share(searched.run(Budget(trials=8)))

    whole = run_and_share(tmp_path / "whole.journal")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "shared_polish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_and_share(tmp_path / "resumed.journal")
    monkeypatch.undo()
    resumed = run_and_share(tmp_path / "resumed.journal")
    again = run_and_share(tmp_path / "resumed.journal")

    assert whole.trials == resumed.trials == 8  # the budget does not count them
    assert resumed.found.scores.keys.tolist() == whole.found.scores.keys.tolist()
    assert again.scored == 0  # recorded in the study: not done twice
    assert again.found.scores.keys.tolist() == whole.found.scores.keys.tolist()
    study = search(tmp_path / "resumed.journal").study
    shared = [t for t in engine.completed(study) if engine.SHARED in t.user_attrs]
    assert len(shared) == 1 and shared[0].user_attrs[engine.SHARED] == 8


def test_the_polish_tiles_the_structures_it_sweeps_to_with_the_search_s_own_effort(
        monkeypatch: pytest.MonkeyPatch) -> None:
    efforts = []

    def recorded(mapspace, structure, objective, effort, *args, **kwargs):
        efforts.append(effort)
        return best_tilings(mapspace, structure, objective, effort, *args, **kwargs)

    monkeypatch.setattr(polish_module, "best_tilings", recorded)
    OptunaSearch(mapspace("conv1d-on-a-row"), "edp", InMemoryStorage(), seed=3, effort=SMALL_EFFORT).run(
        Budget(trials=8))

    assert efforts and all(effort == SMALL_EFFORT for effort in efforts)


def test_running_the_same_command_again_continues_the_study(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The second run finds the study at its budget: it scores nothing and writes the
    same answer. (Other settings in the same folder are refused: tests/test_run_folder.py.)"""
    specs = write_specs(tmp_path, "matmul")
    assert main(["search", *specs, "-o", str(tmp_path / "once"), "--trials", "3"]) == 0
    assert main(["search", *specs, "-o", str(tmp_path / "twice"), "--trials", "3"]) == 0
    assert main(["search", *specs, "-o", str(tmp_path / "twice"), "--trials", "3"]) == 0
    once, twice = (json.loads((tmp_path / run / "best.json").read_text()) for run in ("once", "twice"))
    assert twice["search"]["trials"] == 3 and twice["search"]["mappings_scored_this_run"] == 0
    assert without_run_details(once) == without_run_details(twice)


def test_any_optuna_storage_url_works_and_its_password_never_shows(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    specs = write_specs(tmp_path, "matmul")
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["search", *specs, "-o", str(tmp_path / "out"), "--trials", "1", "--storage", url]) == 0
    assert json.loads((tmp_path / "out" / "best.json").read_text())["search"]["storage"] == url
    assert main(["search", *specs, "-o", str(tmp_path / "out"), "--trials", "1",
                 "--storage", "nosuchdb://alice:s3cret@localhost/studies"]) == 2
    assert "s3cret" not in capsys.readouterr().err
    assert mask_password("postgresql://alice:s3cret@db:5432/studies") == "postgresql://alice:***@db:5432/studies"


# ------------------------------------------------------------- outputs


def test_the_native_mapping_evaluates_to_the_stats_written(tmp_path: Path) -> None:
    specs = write_specs(tmp_path, "conv1d")
    out = tmp_path / "out"
    assert main(["search", *specs, "-o", str(out), "--trials", "2"]) == 0
    assert main(["evaluate", *specs, str(out / "best.mapping.yaml"), "--json", str(tmp_path / "eval.json")]) == 0
    best = json.loads((out / "best.json").read_text())
    stats = {k: v for k, v in best.items() if k not in ("mapping", "lower_bounds", "search", "explanation")}
    assert json.loads((tmp_path / "eval.json").read_text()) == stats
    bounds = best["lower_bounds"]
    assert bounds["compute_bound_cycles"] == 4 * 3 * 8  # one MAC
    assert bounds["outer_traffic_over_compulsory"] >= 1 and bounds["cycles_over_compute_bound"] >= 1
    assert "<< Compute >>" in (out / "best.txt").read_text()


needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")


@needs_reference
def test_the_timeloop_mapping_evaluates_to_the_stats_written(tmp_path: Path) -> None:
    case = REFERENCE / "cases" / "t05_mapper_conv1d_oc_null" / "ref-output"
    specs = [str(case / "parsed-processed-input.yaml"), str(case / "timeloop-mapper.ERT.yaml")]
    out = tmp_path / "out"
    assert main(["search", *specs, "-o", str(out), "--trials", "2"]) == 0
    assert main(["evaluate", *specs, str(out / "best.map.yaml"), "--json", str(tmp_path / "eval.json")]) == 0
    best = json.loads((out / "best.json").read_text())
    stats = {k: v for k, v in best.items() if k not in ("mapping", "lower_bounds", "search", "explanation")}
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated.pop("constraints_broken") == []  # the input's mapspace constraints, which the search kept
    assert evaluated == stats


@needs_reference
def test_a_timeloop_mappers_first_optimization_metric_is_the_objective(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """t05's mapper ranks by delay, then energy: so does the search, unless --objective
    says otherwise; a metric that is not an objective here is said, and EDP searched."""
    case = REFERENCE / "cases" / "t05_mapper_conv1d_oc_null" / "ref-output"
    specs = [str(case / "parsed-processed-input.yaml"), str(case / "timeloop-mapper.ERT.yaml")]
    (tmp_path / "other.yaml").write_text("mapper: {optimization-metrics: [last-level-accesses]}\n")
    runs = {"metric": [], "given": ["--objective", "energy"], "other": [str(tmp_path / "other.yaml")]}
    for run, extra in runs.items():
        assert main(["search", *specs, *extra, "-o", str(tmp_path / run), "--trials", "2"]) == 0
    assert [json.loads((tmp_path / run / "best.json").read_text())["search"]["objective"] for run in runs] == [
        "delay", "energy", "edp"]
    assert "optimization metric 'last-level-accesses' is not an objective here" in capsys.readouterr().err


def test_evaluate_says_which_level_throttles_and_by_how_much(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Everything from a DRAM of one word per cycle: 96 MACs need 96 + 96 reads of the
    operands and 64 of the partial sums, 256 words, so the MACs run at 96/256 speed."""
    specs = write_specs(tmp_path, "conv1d-on-a-row")
    (tmp_path / "map.yaml").write_text(yaml.safe_dump({"mapping": [
        {"level": "DRAM", "temporal": "K4 R3 P8", "keep": ["Weights", "Inputs", "Outputs"]},
        {"level": "Buffer", "keep": []}, {"level": "Register", "keep": []}]}))
    assert main(["evaluate", *specs, str(tmp_path / "map.yaml"), "--json", str(tmp_path / "eval.json")]) == 0
    stats = json.loads((tmp_path / "eval.json").read_text())
    assert [(lv["name"], lv["bandwidth_throttling"]) for lv in stats["levels"]] == [
        ("DRAM", 96 / 256), ("Buffer", 1.0), ("Register", 1.0)]
    assert stats["cycles"] == 256
    assert "bandwidth throttling: DRAM 0.38 (256 cycles)" in capsys.readouterr().out


def test_batch_runs_each_layer_on_that_many_samples(tmp_path: Path) -> None:
    specs = write_specs(tmp_path, "matmul")
    (tmp_path / "layer.yaml").write_text(yaml.safe_dump({"problem": {"linear": {"name": "fc", "M": 2, "N": 4,
                                                                                "K": 4}}}))
    assert main(["search", *specs, "-o", str(tmp_path / "one"), "--trials", "1"]) == 0
    assert main(["search", *specs, "-o", str(tmp_path / "three"), "--trials", "1", "--batch", "3"]) == 0
    one, three = (json.loads((tmp_path / run / "best.json").read_text()) for run in ("one", "three"))
    assert three["computes"] == 3 * one["computes"]
    dram = [{t: v["partition_size"] for t, v in best["levels"][0]["tensors"].items()} for best in (one, three)]
    assert dram[1] == {"Inputs": 3 * dram[0]["Inputs"], "Weights": dram[0]["Weights"],  # a linear layer's weights
                       "Outputs": 3 * dram[0]["Outputs"]}                                 # serve the whole batch


@needs_reference
def test_batch_is_refused_for_a_timeloop_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = REFERENCE / "cases" / "t05_mapper_conv1d_oc_null" / "ref-output"
    specs = [str(case / "parsed-processed-input.yaml"), str(case / "timeloop-mapper.ERT.yaml")]
    assert main(["search", *specs, "-o", str(tmp_path / "out"), "--batch", "2"]) == 2
    err = capsys.readouterr().err
    assert "found a batch of 2 for a Timeloop problem" in err and "Traceback" not in err


@needs_reference
@pytest.mark.parametrize("case", ["cases/t06_mapper_eyeriss_vgg02_l5", "cases/ed_simba_like_default",
                                  "v303-generated/04-model-conv1d+oc-3levelspatial_cp"])
def test_timeloop_mappings_with_spatial_splits_read_back_unchanged(case: str) -> None:
    if not (REFERENCE / case).exists():
        pytest.skip(f"{case} is not among the reference cases")
    spec = load(load_input(case))
    directives = timeloop_mapping(spec.problem, spec.architecture, spec.mapping)
    assert parse_mapping(directives, spec.problem, spec.architecture) == spec.mapping


@pytest.mark.parametrize("fingerprints_collide", [False, True])
def test_repeated_tilings_are_scored_once_keeping_the_first(fingerprints_collide: bool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from mapper.model.batch import MappingBatch
    from mapper.search import tilings
    from mapper.search.objectives import mapping_keys
    rng = np.random.default_rng(7)
    B, L, D, T = 300, 4, 7, 3
    distinct = MappingBatch(*(rng.integers(1, 4, size=(B, L, D)) for _ in range(5)), rng.random((B, L, T)) < 0.5)
    rows = rng.integers(0, B // 3, size=B)  # about a third of the rows, most of them repeated
    batch = distinct.take(rows)
    scored = tilings.Scored(batch, Scores(rng.random(B), rng.integers(1, 9, size=B), mapping_keys(batch)))
    if fingerprints_collide:
        monkeypatch.setattr(tilings, "_fingerprint_weights", lambda columns: np.zeros(columns, dtype=np.int64))
    kept = scored.unique()
    keys = scored.scores.keys.tolist()
    first_of_each = sorted({tuple(key): i for i, key in reversed(list(enumerate(keys)))}.values())
    assert kept.scores.keys.tolist() == scored.scores.keys[first_of_each].tolist()
    assert kept.scores.energy_pJ.tolist() == scored.scores.energy_pJ[first_of_each].tolist()


@pytest.mark.parametrize("fingerprints_collide", [False, True])
def test_each_row_is_grouped_with_the_first_row_that_equals_it(fingerprints_collide: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from mapper.search import tilings
    rows = np.random.default_rng(5).integers(0, 3, size=(200, 4))  # 81 possible rows: most repeat
    if fingerprints_collide:
        monkeypatch.setattr(tilings, "_fingerprint_weights", lambda columns: np.zeros(columns, dtype=np.int64))
    first_equal = [next(j for j in range(i + 1) if (rows[j] == rows[i]).all()) for i in range(len(rows))]
    assert tilings.representatives(rows).tolist() == first_equal
    assert tilings.first_occurrences(rows).tolist() == sorted(set(first_equal))


def test_a_batch_is_scored_without_its_repeats_as_if_they_were_dropped_after() -> None:
    """score() drops the repeats of a batch before the model sees them: what it keeps
    and what it counts are those of the batch scored whole, then made unique."""
    from mapper.model.vectorized import evaluate_batch
    from mapper.search import tilings
    from mapper.search.objectives import mapping_keys
    ms = mapspace("conv1d-on-a-row")
    rng = np.random.default_rng(3)
    start = ms.fitting_start()
    structure = ms.structure(start.order[0], list(zip(start.spatial_x[0], start.spatial_y[0])), start.keep[0])
    distinct = ms.sample_tilings(structure, 40, rng)
    batch = distinct.take(rng.integers(len(distinct), size=200))
    scored, count = tilings.score(ms, batch)
    full = evaluate_batch(ms.problem, ms.arch, batch)
    ok = np.flatnonzero(full.valid & ms.allowed(batch))
    once = tilings.Scored(batch.take(ok), Scores(full.energy_pJ[ok], full.cycles[ok],
                                                 mapping_keys(batch.take(ok)))).unique()
    assert scored.scores.keys.tolist() == once.scores.keys.tolist()
    assert scored.scores.energy_pJ.tolist() == once.scores.energy_pJ.tolist()
    assert count == len(np.unique(mapping_keys(batch), axis=0)) < len(batch)


def test_a_record_of_scored_mappings_tells_which_it_holds_however_many() -> None:
    from mapper.search import tilings
    rows = np.unique(np.random.default_rng(9).integers(0, 5, size=(6000, 12)), axis=0)  # past its first table
    ms = mapspace("conv1d-on-a-row")
    before = tilings.ScoredBefore(tilings.Scored.empty(ms))
    first, second = np.arange(0, len(rows), 2), np.arange(1, len(rows), 2)
    assert before.new(rows, first).all()
    assert not before.new(rows, first).any()
    mixed = np.arange(len(rows))
    assert before.new(rows, mixed).tolist() == (mixed % 2 == 1).tolist()
    assert not before.new(rows, second).any()


@pytest.mark.parametrize("objective", ["edp", "energy", "delay"])
def test_a_refinement_that_skips_what_it_scored_before_ends_as_one_that_scores_it_again(
        objective: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mapping drawn again lost to an elite that has only got better since: the
    refinement does not score it again, and ends with the same elite."""
    from mapper.search import tilings
    specs = load_specs([SHIPPED / "arch/eyeriss-like.yaml", SHIPPED / "workloads/alexnet.yaml"])
    ms = Mapspace(next(p for p in specs.problems if p.name == "conv3"), specs.architecture)
    start = ms.fitting_start()
    structure = ms.structure(start.order[0], list(zip(start.spatial_x[0], start.spatial_y[0])), start.keep[0])
    runs = [best_tilings(ms, structure, objective, Effort(), np.random.default_rng(2))]
    monkeypatch.setattr(tilings.ScoredBefore, "new", lambda self, keys, rows: np.ones(len(rows), dtype=bool))
    runs.append(best_tilings(ms, structure, objective, Effort(), np.random.default_rng(2)))
    (skipping, scored), (again, scored_again) = runs
    assert skipping.scores.keys.tolist() == again.scores.keys.tolist()
    assert skipping.scores.value(objective).tolist() == again.scores.value(objective).tolist()
    assert scored < scored_again
