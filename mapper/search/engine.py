"""The searches: one interface, `run(budget, progress) -> Outcome`.

- `OptunaSearch`: each Optuna trial fixes a structure (structures.py) and scores
  thousands of its tilings (tilings.py); the trial's value is the best of them.
  A search does not end without a valid mapping while the mapspace's fitting start
  (a mapping whose smallest tiles fit) is untried: when the first trial finds
  nothing, the next scores the start's structure with the start among its tilings,
  and the budget waits for it, so even a budget of one trial (or the shortest time)
  ends with a mapping wherever the start exists. Where the first trial finds one,
  the search goes on as if there were no start. A search may also be given a mapping
  to begin from (`begin`: search/run.py gives a padded layer's search the best
  mapping its screen found); its first trial then scores that mapping's structure,
  with it among the tilings.
  After a few trials, two trials in three are local moves instead: a
  structure next to the best one so far (one keep flag flipped, one loop moved, one
  unrolling changed), enqueued into the study with fixed parameters and started
  from the best tilings of the structure it moves from (its temporal factors,
  adjusted where the unrolling changed), with less effort than a new structure
  (tilings.Effort). Good structures can be rare (on the small
  spaces of the tests a single keep table and loop order is within 1% of the
  optimum) and lie next to other good ones. A search ends at its Budget: a number
  of trials, or of trials in a row without progress (patience), or a time. The study
  lives in a storage, so a search that is run again with the same settings continues
  where it stopped and ends where the uninterrupted search would have (sampler.py
  says how; the local moves depend only on the completed trials): every completed
  trial records the tilings it found best, and the answer is read back from the
  storage, not from memory.
  When the budget ends, the polish (polish.py) searches on from what the trials
  found, moving every part of a mapping at once in the vectorized model's batches,
  and its result is recorded as one more trial (user attribute POLISH: the number of
  search trials it started from), which the budget does not count. Its randomness
  depends on the seed and that number only, so a search interrupted in its polish
  resumes to the same answer, and a finished one is not polished twice. A layer's
  own search then runs local searches under the unrollings that share a tensor its
  answer does not share (`share`, polish.shared_polish), recorded alike (SHARED);
  search/run.py calls it after the padded layers' searches.
- `ExhaustiveSearch`: every mapping of the (pruned) mapspace; the exact optimum.

Measured here, to choose the design (benchmarks/bench_search.py): an Optuna trial
costs ~3 ms with the random sampler and ~4-10 ms with (independent) TPE, the journal
storage ~20 ms more, while the vectorized model scores ~10^5 mappings per second on
Eyeriss-sized nests; a trial that scores a few thousand tilings spends most of its
time in the model. How the structures are chosen matters less than one would guess:
on t05 (energy, 2304 structures) the trials to come within 1% of the optimum were
14-30 for TPE with local moves, 30-60 for TPE alone, 11-23 for the random sampler
alone; on Eyeriss (t06, 60 s) all variants ended within a few percent of each other;
on the made-up spaces of tests/test_search.py local moves helped most (a needle: one
keep table and loop order within 1%). TPE with local moves is the default: never far
from the best variant measured.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from typing import Any, Protocol

import numpy as np
import optuna
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..mapspace import Mapspace
from ..model.batch import MappingBatch
from .objectives import Objective, Scores, mapping_keys
from .polish import PolishEffort, polish, shared_polish
from .sampler import OrdinalSeededSampler, completed, derived_seed, tpe
from .structures import StructureSpace
from .tilings import Effort, Scored, best_tilings, score

FOUND = "found"  # trial user attribute: the tilings the trial found best, with their scores
SCORED = "scored"  # trial user attribute: how many mappings the trial scored
PARENT = "parent"  # trial user attribute of a local move: the number of the trial it moves from
START = "fitting_start"  # trial user attribute of the trial that scores the mapspace's fitting start too
BEGIN = "begins_from"  # trial user attribute of the first trial where the search is given a mapping to begin from
POLISH = "polish"  # trial user attribute of the polish (polish.py): how many search trials it started from
POLISH_STREAM = 1  # tells the polish's random stream from the trials' (sampler.derived_seed)
SHARED = "shared"  # trial user attribute of the shared-tensor searches (OptunaSearch.share): as POLISH
SHARED_STREAM = 2  # tells their random stream from the polish's
LOCAL_MOVES_AFTER = 5  # trials of the sampler alone first, to have somewhere to move from
LOCAL_MOVE_PERIOD = 3  # then of every 3 trials one is the sampler's, two are local moves
MIN_IMPROVEMENT = 1e-3  # a trial that betters the best value by less does not count as progress
_BATCH_FIELDS = ("order", "temporal", "spatial_x", "spatial_y", "spatial_order", "keep")


@dataclass(frozen=True)
class Budget:
    """When a search stops, whichever comes first: after `trials` completed trials in
    the study; after `patience` completed trials in a row that did not better the best
    value by more than `min_improvement` (relative), like Timeloop's victory condition;
    after `seconds` of this run. Trials and patience count the study's completed
    trials, those of earlier, interrupted runs too: a function of them alone, so that a
    resumed search stops where the uninterrupted one would have."""

    trials: int | None = None
    seconds: float | None = None
    patience: int | None = None
    min_improvement: float = MIN_IMPROVEMENT

    def exhausted(self, values: Sequence[float], elapsed: float) -> bool:
        """`values`: the completed trials' objective values, in the order they completed."""
        return self.stop_reason(values, elapsed) is not None

    def stop_reason(self, values: Sequence[float], elapsed: float) -> str | None:
        if self.trials is not None and len(values) >= self.trials:
            return "trials"
        if self.patience is not None and trials_without_progress(values, self.min_improvement) >= self.patience:
            return "patience"
        if self.seconds is not None and elapsed >= self.seconds:
            return "time"
        return None


def trials_without_progress(values: Sequence[float], min_improvement: float) -> int:
    """The trials since the last one that bettered the best value by more than
    `min_improvement` (relative), none before a trial found a valid mapping. Progress is
    measured from the value of the last trial that counted, so that many small gains add
    up until they count."""
    mark, since = math.inf, 0
    for value in values:
        if value < mark * (1 - min_improvement):
            mark, since = value, 0
        else:
            since += 1
    return since if mark < math.inf else 0


@dataclass(frozen=True)
class Progress:
    """Where a running search stands, for a live display."""

    objective: Objective
    trials: int | None  # trials completed in the study (None: an exhaustive search)
    budget: int | None  # trials to reach, if a number of trials is the budget
    elapsed: float  # seconds in this run
    scored: int  # mappings the model scored in this run
    best: Scored | None  # best mapping or front so far
    polishing: bool = False  # the trials are done and the polish (polish.py) runs
    remainder: str | None = None  # the padded layer searched for remainders (search/run.py), e.g. "C padded to 266"
    seed: int | None = None  # the search's seed, where a layer is searched with several (search/run.py)

    @property
    def rate(self) -> float:
        return self.scored / self.elapsed if self.elapsed > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


def search_label(seed: int | None, remainder: str | None) -> str:
    """Which of a layer's searches a progress line is of (its seed, where there are
    several, and the padded layer): " (seed 2; M padded to 16: remainders)", or ""."""
    labels = ([f"seed {seed}"] if seed is not None else []) + ([f"{remainder}: remainders"] if remainder else [])
    return f" ({'; '.join(labels)})" if labels else ""


@dataclass(frozen=True)
class Outcome:
    """What a search found: the best mapping (single objectives) or the front (pareto),
    best first / fastest first, as the vectorized model scored them; None where no
    trial has found a mapping yet."""

    objective: Objective
    found: Scored | None
    trials: int
    scored: int
    seconds: float
    exhaustive: bool = False
    details: dict[str, Any] = field(default_factory=dict)


class Search(Protocol):
    def run(self, budget: Budget, progress: ProgressCallback | None = None) -> Outcome: ...


def search_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's completed trials but the polish's and the shared-tensor searches':
    those the budget counts."""
    return [t for t in completed(study) if POLISH not in t.user_attrs and SHARED not in t.user_attrs]


def select(found: Scored, objective: Objective) -> Scored:
    """The answer among candidates: the best one, or the whole Pareto front."""
    if not len(found):
        return found
    if objective == "pareto":
        return found.take(found.scores.pareto_front())
    return found.take(found.scores.best(objective, 1))


# --------------------------------------------------------------------- Optuna


class OptunaSearch:
    """Optuna chooses structures; each trial scores tilings of one (module docstring)."""

    def __init__(self, mapspace: Mapspace, objective: Objective, storage: BaseStorage, seed: int = 0,
                 effort: Effort | None = None, sampler: Callable[[int], BaseSampler] = tpe,
                 local_moves: bool = True, polishing: PolishEffort | None = PolishEffort(),
                 begin: MappingBatch | None = None) -> None:
        """`begin`: a mapping (one row) whose structure the first trial scores, with it
        among the tilings, so that the search goes on from there at least (search/run.py
        gives a padded layer's search the best mapping its screen found); ignored where
        its structure is not one of the trials' (`StructureSpace.names`)."""
        effort = effort or Effort()
        self.mapspace, self.objective, self.seed, self.effort = mapspace, objective, seed, effort
        self._found: dict[int, Scored] = {}  # completed trial's number -> what it found (_found_by)
        self.space = StructureSpace(mapspace)
        begin = begin if begin is not None and self.space.names(begin) else None
        self.local_moves, self.polishing, self.begin = local_moves, polishing, begin
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI reports progress itself
        directions = ["minimize", "minimize"] if objective == "pareto" else ["minimize"]
        self.study = optuna.create_study(
            storage=storage, study_name=study_name(mapspace, objective, seed, effort, sampler, local_moves, polishing,
                                                   begin),
            sampler=OrdinalSeededSampler(sampler, seed), directions=directions, load_if_exists=True)

    def run(self, budget: Budget, progress: ProgressCallback | None = None) -> Outcome:
        start, scored = time.perf_counter(), 0
        best = self.found()
        while (not budget.exhausted(values := self._values_so_far(), time.perf_counter() - start)
               or self._owes_a_mapping(values)):
            count, elite = self._trial(len(completed(self.study)))
            scored += count
            best = select(Scored.concatenate([elite] + ([best] if best is not None else [])), self.objective)
            if progress:
                progress(Progress(self.objective, len(search_trials(self.study)), budget.trials,
                                  time.perf_counter() - start, scored, best))
        stopped = budget.stop_reason(self._values_so_far(), time.perf_counter() - start)
        if progress and self.polishing is not None:
            progress(Progress(self.objective, len(search_trials(self.study)), budget.trials,
                              time.perf_counter() - start, scored, best, polishing=True))
        scored += self._polish()
        return Outcome(self.objective, self.found(), len(search_trials(self.study)), scored,
                       time.perf_counter() - start, details={"study": self.study.study_name, "stopped_by": stopped})

    def _values_so_far(self) -> list[float]:
        """The search trials' values in order, for the budget (pareto: the knee's
        energy x cycles)."""
        return [math.prod(t.values) for t in search_trials(self.study)]

    def _polish(self) -> int:
        """Polish the mappings the search trials found (polish.py) and record the result
        as a trial of its own, unless one is recorded for these trials already; returns
        how many mappings it scored. Its randomness depends on the seed and the number of
        search trials only, so that a resumed search polishes as the uninterrupted one."""
        trials = search_trials(self.study)
        found = self.found()
        if self.polishing is None or self._recorded(POLISH, len(trials)) or found is None or not len(found):
            return 0
        parts = [self._found_by(t) for t in trials]
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, len(trials), POLISH_STREAM]))
        elite, count = polish(self.mapspace, Scored.concatenate(parts), self.objective, self.polishing, rng,
                              self.effort)
        self._record(POLISH, len(trials), select(elite, self.objective), count)
        return count

    def share(self, outcome: Outcome) -> Outcome:
        """`outcome` (this search's run) after local searches from its answer under the
        unrollings that share a tensor it does not share (polish.shared_polish), where
        the polishing says so, recorded as one more trial unless one is recorded for
        these search trials already: its randomness depends on the seed and their number
        only, so a search interrupted there resumes to the same answer. Apart from `run`
        so that search/run.py runs it after the padded layers' searches, whose screen
        ranks them by this search's answer: in the polish, a better answer there made the
        screen rank a worse padded layer first (ResNet-50's res4a_branch1 on the
        Eyeriss-like array from every seed, 142.1 -> 156.4-168.1 J*cycles)."""
        start = time.perf_counter()
        trials = search_trials(self.study)
        found = self.found()
        if (self.polishing is None or not self.polishing.shared_starts or self.objective == "pareto"
                or self._recorded(SHARED, len(trials)) or found is None or not len(found)):
            return outcome
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, len(trials), SHARED_STREAM]))
        elite, count = shared_polish(self.mapspace, found, self.objective, self.polishing, rng, self.effort)
        self._record(SHARED, len(trials), select(elite, self.objective), count)
        return replace(outcome, found=self.found(), scored=outcome.scored + count,
                       seconds=outcome.seconds + time.perf_counter() - start)

    def _recorded(self, step: str, trials: int) -> bool:
        """Whether a trial of that step (POLISH, SHARED) is recorded for `trials` search trials."""
        return any(t.user_attrs.get(step) == trials for t in completed(self.study))

    def _record(self, step: str, trials: int, elite: Scored, count: int) -> None:
        """Record what a step after the search trials found as a trial of its own (user
        attribute `step`: how many search trials it started from); interrupted, it is
        marked failed, and the step runs again when the search is resumed."""
        trial = self.study.ask()
        try:
            trial.set_user_attr(step, trials)
            self._tell_found(trial, elite, count)
        except BaseException:
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise

    def _trial(self, ordinal: int) -> tuple[int, Scored]:
        """Run one trial; returns how many mappings it scored and the best it found. An
        interruption marks the trial failed, so that a resumed search redoes it under
        the same ordinal."""
        move = self._local_move(ordinal)
        if move is not None:
            self.study.enqueue_trial(move[0], user_attrs={PARENT: move[1]})
        elif self._begins_here(ordinal):
            self.study.enqueue_trial(self.space.params_of(self.begin), user_attrs={BEGIN: True})
        elif self._starts_here(ordinal):
            self.study.enqueue_trial(self.space.params_of(self.mapspace.fitting_start()), user_attrs={START: True})
        trial = self.study.ask()
        try:
            structure = self.space.suggest(trial)
            rng = np.random.default_rng(derived_seed(self.seed, ordinal))
            parent = trial.user_attrs.get(PARENT)
            seeds = None if parent is None else self._found_by(self.study.get_trials(deepcopy=False)[parent]).batch
            starts = (self.mapspace.fitting_start() if trial.user_attrs.get(START)
                      else self.begin if trial.user_attrs.get(BEGIN) else None)
            if structure is None:
                elite, count = Scored.empty(self.mapspace), 0
            else:
                elite, count = best_tilings(self.mapspace, structure, self.objective, self.effort, rng, seeds,
                                            starts)
            self._tell_found(trial, elite, count)
        except BaseException:
            # skip_if_finished: the interruption may come while `tell` completes the trial
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        return count, elite

    def _tell_found(self, trial: optuna.Trial, elite: Scored, count: int) -> None:
        """Complete `trial` with what it found and how many mappings it scored."""
        trial.set_user_attr(FOUND, scored_to_json(elite))
        trial.set_user_attr(SCORED, count)
        self.study.tell(trial, self._values(elite))

    def _owes_a_mapping(self, values: list[float]) -> bool:
        """Whether the search must go on whatever its budget (module docstring): no trial
        has completed yet, however short the time limit, or none has found a mapping
        while the fitting start is untried."""
        return not values or (all(v == math.inf for v in values) and self._start_untried())

    def _starts_here(self, ordinal: int) -> bool:
        """Whether trial `ordinal` scores the mapspace's fitting start: the trials so far
        found nothing and none tried it. A function of the completed trials, like the
        local moves, so that a resumed search does the same."""
        if ordinal == 0 or self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return False  # a waiting trial is one an interrupted run enqueued: ask() takes it first
        return all(math.prod(t.values) == math.inf for t in completed(self.study)) and self._start_untried()

    def _begins_here(self, ordinal: int) -> bool:
        """Whether trial `ordinal` is the first, given a mapping to begin from (unless
        an interrupted run enqueued it already: ask() takes the waiting trial first)."""
        return (ordinal == 0 and self.begin is not None
                and not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

    def _start_untried(self) -> bool:
        return (self.mapspace.fitting_start() is not None
                and not any(t.user_attrs.get(START) for t in completed(self.study)))

    def _local_move(self, ordinal: int) -> tuple[dict[str, Any], int] | None:
        """Two trials in three after the first few, a structure next to the best
        one so far that no completed trial has tried, else next to the second best, and
        so on (its parameters, and the number of the trial it moves from). A function of
        the completed trials only, so that a resumed search makes the same moves."""
        if not self.local_moves or ordinal < LOCAL_MOVES_AFTER or ordinal % LOCAL_MOVE_PERIOD == 0:
            return None
        if self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return None  # one an interrupted run enqueued: ask() takes it first
        trials = [t for t in search_trials(self.study) if len(self._found_by(t))]
        if not trials:
            return None
        tried = {_params_key(t.params) for t in completed(self.study)}
        seen = set()
        for best in sorted(trials, key=lambda t: (math.prod(t.values), t.number)):
            # Structures that differ only in the order of loops that do nothing find the
            # same mapping, and have the same neighbours in effect: visit one of them.
            mapping = self._found_by(best).batch.take(slice(0, 1))
            found = _effective(mapping)
            if found in seen:
                continue
            seen.add(found)
            for params in self.space.neighbours(best.params, mapping.temporal[0]):
                if _params_key(params) not in tried:
                    return params, best.number
        return None

    def _found_by(self, trial: FrozenTrial) -> Scored:
        """What a completed trial found, read from its record once."""
        if trial.number not in self._found:
            text = trial.user_attrs.get(FOUND)
            self._found[trial.number] = scored_from_json(text) if text else Scored.empty(self.mapspace)
        return self._found[trial.number]

    def _values(self, elite: Scored) -> float | list[float]:
        if not len(elite):
            return [math.inf, math.inf] if self.objective == "pareto" else math.inf
        if self.objective == "pareto":  # the front's knee stands for it in the study
            knee = elite.scores.best("edp", 1)[0]
            return [float(elite.scores.energy_pJ[knee]), float(elite.scores.cycles[knee])]
        return float(elite.scores.value(self.objective)[0])

    def found(self) -> Scored | None:
        """The answer so far, from every completed trial in the storage."""
        parts = [self._found_by(t) for t in completed(self.study) if FOUND in t.user_attrs]
        return select(Scored.concatenate(parts), self.objective) if parts else None


def _effective(batch: MappingBatch) -> tuple:
    """The first mapping of `batch` without its unit loops' places in the orders."""
    temporal = batch.temporal[0]
    orders = tuple(tuple(int(d) for d in order if temporal[l, d] > 1) for l, order in enumerate(batch.order[0]))
    return (orders, temporal.tobytes(), batch.spatial_x[0].tobytes(), batch.spatial_y[0].tobytes(),
            batch.keep[0].tobytes())


def _params_key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def scored_to_json(found: Scored) -> str:
    """JSON text, not a dict: Optuna copies a trial's attributes deeply whenever it hands
    the trial out, and a string is copied for nothing."""
    return json.dumps({**{f: getattr(found.batch, f).tolist() for f in _BATCH_FIELDS},
                       "energy_pJ": found.scores.energy_pJ.tolist(), "cycles": found.scores.cycles.tolist()},
                      separators=(",", ":"))


def scored_from_json(text: str) -> Scored:
    data = json.loads(text)
    batch = MappingBatch(*(np.array(data[f], dtype=bool if f == "keep" else np.int64) for f in _BATCH_FIELDS))
    return Scored(batch, Scores(np.array(data["energy_pJ"], dtype=float), np.array(data["cycles"], dtype=np.int64),
                                mapping_keys(batch)))


def study_name(mapspace: Mapspace, objective: Objective, seed: int, effort: Effort,
               sampler: Callable[[int], BaseSampler], local_moves: bool, polishing: PolishEffort | None,
               begin: MappingBatch | None = None) -> str:
    """Names the study after everything that decides its trials, so running again with
    the same inputs and settings resumes it, and with anything changed starts afresh."""
    settings = {"problem": mapspace.problem, "arch": mapspace.arch, "constraints": mapspace.constraints,
                "objective": objective, "seed": seed, "effort": effort, "sampler": sampler.__name__,
                "local_moves": local_moves, "polishing": polishing}
    if begin is not None:  # absent otherwise: the studies of earlier runs keep their names
        settings["begin"] = {f: getattr(begin, f).tolist() for f in _BATCH_FIELDS}
    digest = hashlib.sha256(json.dumps(_canonical(settings), sort_keys=True).encode()).hexdigest()[:16]
    return f"{mapspace.problem.name}/{objective}/seed{seed}/{digest}"


def _canonical(value: Any) -> Any:
    """JSON-able and independent of hash randomization (sets sorted)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **_canonical(asdict(value))}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


# ----------------------------------------------------------------- exhaustive


class ExhaustiveSearch:
    """Every mapping of the pruned mapspace, scored in chunks: the exact optimum
    (or front), for small spaces and to check the search."""

    def __init__(self, mapspace: Mapspace, objective: Objective, chunk: int = 65536) -> None:
        self.mapspace, self.objective, self.chunk = mapspace, objective, chunk

    def run(self, budget: Budget = Budget(), progress: ProgressCallback | None = None) -> Outcome:
        """Only `budget.seconds` applies: a search stopped by it says `complete: False`."""
        start, scored, best = time.perf_counter(), 0, Scored.empty(self.mapspace)
        complete = True
        for batch in self.mapspace.enumerate(self.chunk):
            if budget.exhausted((), time.perf_counter() - start):
                complete = False
                break
            found, count = score(self.mapspace, batch)
            scored += count
            best = select(Scored.concatenate([best, found]), self.objective)
            if progress:
                progress(Progress(self.objective, None, None, time.perf_counter() - start, scored, best))
        return Outcome(self.objective, best, 0, scored, time.perf_counter() - start, exhaustive=True,
                       details={"complete": complete})
