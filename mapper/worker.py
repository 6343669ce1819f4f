"""Jobs that several processes or machines work on together through one Optuna storage
(a database server such as PostgreSQL: `--storage postgresql://...`).

A job is a list of units: a layer, an architecture, constraints and search settings,
each searched in its own Optuna study (mapper/search/engine.py). The job's definition
lives in the storage, so `mapper worker --storage URL --job NAME` needs nothing else.

Workers share a job unit by unit, not trial by trial. A study's trials depend on the
trials completed before them (TPE's proposals, the local moves, the per-trial seeds),
so only a study whose trials run one after the other ends where a single process
would; a unit is therefore searched by one worker at a time, and the answer for every
layer is the same however many workers ran and whichever of them finished. A network
or a sweep has many units to spread.

Who searches a unit is decided by leases: the job's own study ("job:NAME") has one
trial per unit that is being or has been searched. A worker claims a WAITING lease
(Optuna moves a trial from WAITING to RUNNING for one process only), keeps it alive
with Optuna's heartbeat while it runs the unit's trials, and completes it when the
unit's budget is met. A worker that dies stops beating: after three missed heartbeats
the next worker that looks for work fails its lease (Optuna's `fail_stale_trials`) and
puts up a new one; whoever claims that fails the dead worker's trial in flight in the
unit's study, and the unit resumes from its completed trials exactly where it
stopped. Two leases that a race put up for one unit are harmless: only the oldest live
one may run.

In the dashboard (`optuna-dashboard URL`), "job:NAME" shows one trial per lease (its
value: the unit's best objective value) and every unit's study its trials.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from .architecture import Architecture
from .constraints import Constraints
from .experiment import Experiment, cell_job
from .interrupt import worker_context, worker_process_init
from .mapspace import Mapspace, NoValidMapping
from .network import NetworkJob, shape_tasks
from .problem import Problem
from .safe_names import mask_password, safe_file_name
from .search.engine import Outcome, Progress
from .search.run import Settings, make_search, seeds_of
from .search.db_storage import MAX_DELAY, RetryingStorage, open_database
from .search.storage import StorageError, open_storage, storage_error
from .specs.errors import SpecError
from .typed_json import from_json, to_json

JOB_PREFIX = "job:"  # the job's study is "job:NAME"
DEFINITION = "mapper_job"  # job study system attribute: the definition (units and settings), as JSON
UNIT = "unit"  # lease user attribute: the unit's index in the definition
FORMAT = 1  # of the stored definition
DEFAULT_HEARTBEAT = 10  # seconds between a worker's signs of life
MISSED_HEARTBEATS = 3  # a worker silent for this many heartbeats is presumed dead
DEFAULT_WAIT = 60  # seconds a worker waits for a job that is not there yet
_JOB_POLL = 0.5  # seconds between looks for a job that is not there yet
_LIVE = (TrialState.WAITING, TrialState.RUNNING)


@dataclass(frozen=True)
class Unit:
    """One search of a job: a layer on an architecture under constraints, with its
    settings (objective, budget, seed, effort; the storage is the job's)."""

    name: str
    problem: Problem
    arch: Architecture
    constraints: Constraints | None
    settings: Settings


@dataclass(frozen=True)
class Job:
    name: str
    units: tuple[Unit, ...]
    heartbeat: int = DEFAULT_HEARTBEAT


class JobError(Exception):
    """A job that cannot be made, found or read; the message never shows a password."""


class JobMissing(JobError):
    """No job of that name in the storage, or one still being put up."""


class LeaseLost(Exception):
    """Another worker took over this worker's unit: it had missed too many heartbeats."""


class WorkerEvents(Protocol):
    """What a worker reports, for a display (the CLI prints)."""

    def started(self, unit: Unit) -> None: ...

    def progress(self, unit: Unit, progress: Progress) -> None: ...

    def finished(self, unit: Unit, outcome: Outcome | None) -> None: ...  # None: no valid mapping

    def waiting(self, running: int) -> None: ...  # every unit left is held by another worker


# ------------------------------------------------------------------ the job


def make_job(name: str | None, units: list[Unit], heartbeat: int = DEFAULT_HEARTBEAT, base: str = "job") -> Job:
    """A job of the given units, the same inputs searched once. Without a name, one made
    of `base` and a digest of the units, so that the same command names the same job."""
    if any(u.settings.seconds is not None for u in units):
        raise JobError("a search shared with workers needs its budget in trials (--trials N), which every worker "
                       "counts alike; a time limit would depend on each machine's speed")
    unique: dict[str, Unit] = {}
    for unit in units:
        unique.setdefault(json.dumps(to_json(replace(unit, name="")), sort_keys=True), unit)
    job_units = tuple(replace(u, settings=replace(u.settings, storage=None)) for u in unique.values())
    if name is None:
        digest = hashlib.sha256(json.dumps(to_json(job_units), sort_keys=True).encode()).hexdigest()[:8]
        name = f"{safe_file_name(base, 40)}-{digest}"
    if safe_file_name(name) != name:
        raise JobError(f"job name {name!r}: allowed are letters, digits, '_', '.' and '-' "
                       "(not first: '.'), e.g. alexnet-sweep")
    return Job(name, job_units, heartbeat)


def submit(url: str, job: Job) -> None:
    """Put the job into the storage, or check that the job of that name there is this
    one (running the same command again joins it, whatever its --heartbeat). Leases
    are put up before the definition, which tells workers that the job is ready."""
    storage = _storage(url)
    try:
        study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], JOB_PREFIX + job.name)
    except optuna.exceptions.DuplicatedStudyError:
        study_id = storage.get_study_id_from_name(JOB_PREFIX + job.name)
        stored = storage.get_study_system_attrs(study_id).get(DEFINITION)
        if stored is not None:
            if stored["units"] != to_json(job.units):
                raise JobError(f"the storage {mask_password(url)} has a job {job.name!r} with other layers or "
                               "settings; give this one another name (--job NAME)") from None
            return
    study = optuna.load_study(study_name=JOB_PREFIX + job.name, storage=storage)
    _put_up_missing_leases(study, job)
    storage.set_study_user_attr(study_id, "units", [u.name for u in job.units])
    storage.set_study_user_attr(study_id, "join with", f"mapper worker --storage URL --job {job.name}")
    storage.set_study_system_attr(study_id, DEFINITION, _definition(job))


def load_job(url: str, name: str) -> Job:
    """The job of that name in the storage, as its creator defined it."""
    storage = _storage(url)
    try:
        study_id = storage.get_study_id_from_name(JOB_PREFIX + name)
    except KeyError:
        jobs = sorted(s.study_name[len(JOB_PREFIX):] for s in storage.get_all_studies()
                      if s.study_name.startswith(JOB_PREFIX))
        raise JobMissing(f"the storage {mask_password(url)} has no job {name!r}; it has "
                         f"{', '.join(jobs) if jobs else 'none'}. Start one with `mapper search` or `mapper run` "
                         "and --storage URL") from None
    stored = storage.get_study_system_attrs(study_id).get(DEFINITION)
    if stored is None:
        raise JobMissing(f"the job {name!r} is still being created; try again in a moment")
    if stored.get("format") != FORMAT:
        raise JobError(f"the job {name!r} was made by another version of mapper (format {stored.get('format')}, "
                       f"this one reads {FORMAT})")
    try:
        units = tuple(from_json(Unit, u) for u in stored["units"])
    except (ValueError, TypeError, SpecError) as error:  # SpecError: settings out of their range (Settings)
        raise JobError(f"the job {name!r} has a definition this version of mapper cannot read: {error}") from None
    return Job(name, units, stored["heartbeat"])


def wait_for_job(url: str, name: str, seconds: float, waiting: Callable[[], None]) -> Job:
    """The job, once the command that makes it has put it up: workers may be started
    together with that command, and wait for it up to `seconds` (calling `waiting`
    once, at the first look that does not find it)."""
    deadline = time.monotonic() + seconds
    told = False
    while True:
        try:
            return load_job(url, name)
        except JobMissing:
            if time.monotonic() >= deadline:
                raise
            if not told:
                waiting()
                told = True
            time.sleep(_JOB_POLL)


def _definition(job: Job) -> dict[str, Any]:
    return {"format": FORMAT, "heartbeat": job.heartbeat, "units": to_json(job.units)}


def layer_units(name: str, problem: Problem, arch: Architecture, constraints: Constraints | None,
                settings: Settings) -> list[Unit]:
    """The searches of one layer: one per seed (search/run.py: each seed's study is a
    search of its own, which another worker may take)."""
    if settings.seeds == 1:
        return [Unit(name, problem, arch, constraints, settings)]
    return [Unit(f"{name} (seed {seed})", problem, arch, constraints, replace(settings, seed=seed, seeds=1))
            for seed in seeds_of(settings)]


def network_units(job: NetworkJob, prefix: str = "") -> list[Unit]:
    """The searches of a network job: the first layer of each shape (mapper/network.py)."""
    return [unit for task in shape_tasks(job)
            for unit in layer_units(prefix + task.layers[0][0].name, task.layers[0][0], task.arch, task.constraints,
                                    task.settings)]


def experiment_units(exp: Experiment, folder: Path) -> list[Unit]:
    """The searches of every cell of an experiment whose dataflow applies."""
    units = []
    for cell in exp.cells():
        job = cell_job(exp, cell, folder)
        if not isinstance(job, str):
            units += network_units(job, "/".join(cell.labels) + "/")
    return units


@dataclass(frozen=True)
class JobStatus:
    units: int
    done: int
    running: int


def job_status(url: str, name: str) -> JobStatus:
    job = load_job(url, name)
    states = [_unit_state(ls) for ls in _leases_by_unit(_lease_study(url, job).study, job).values()]
    return JobStatus(len(job.units), states.count(TrialState.COMPLETE), states.count(TrialState.RUNNING))


# ------------------------------------------------------------------ working


def work(url: str, name: str, events: WorkerEvents | None = None) -> int:
    """Search the job's units until every one is done, together with any other workers;
    returns how many units this worker completed. An interruption (KeyboardInterrupt)
    fails the trial and the lease in hand, so that another worker takes the unit over
    at once, and is raised again."""
    job = load_job(url, name)
    leases = _lease_study(url, job)
    completed_here = 0
    while True:
        claimed = _claim(leases, job)
        if claimed is None:
            by_unit = _leases_by_unit(leases.study, job)
            if all(_unit_state(ls) == TrialState.COMPLETE for ls in by_unit.values()):
                return completed_here
            if events:
                events.waiting(sum(_unit_state(ls) == TrialState.RUNNING for ls in by_unit.values()))
            time.sleep(job.heartbeat)
            continue
        unit_index, lease = claimed
        with _heartbeat(leases, lease) as heartbeat:
            try:
                _search_unit(url, job.units[unit_index], leases, lease, heartbeat, events)
            except LeaseLost:
                continue
            except StorageError:
                raise  # out of reach: the lease goes stale, and another worker takes the unit over
            except Exception:
                if _lease_taken_over(leases, lease):
                    continue  # the error is the takeover's doing, e.g. the trial in hand failed by the new holder
                _fail(leases, lease)
                raise
            except BaseException:
                _fail(leases, lease)
                raise
        completed_here += 1


def _search_unit(url: str, unit: Unit, leases: _Leases, lease: FrozenTrial, heartbeat: _Heartbeat,
                 events: WorkerEvents | None) -> None:
    """Run the unit's trials up to its budget and complete the lease with its best value.
    Every write to the unit's study first makes sure that the lease is still this
    worker's (`_check_lease`)."""
    if events:
        events.started(unit)
    settings = replace(unit.settings, storage=url)
    mapspace = Mapspace(unit.problem, unit.arch, unit.constraints)
    try:
        mapspace.check()
    except NoValidMapping as e:
        _complete(leases, lease, float("inf"), {"no valid mapping": e.reasons})
        if events:
            events.finished(unit, None)
        return
    search = make_search(mapspace, settings, Path())

    def report(progress: Progress) -> None:
        if _lease_taken_over(leases, lease):
            raise LeaseLost(unit.name)
        if events:
            events.progress(unit, progress)

    # The storage the unit's search writes through: one per URL in a process (open_storage).
    unit_storage = open_storage(url, Path())
    assert isinstance(unit_storage, RetryingStorage)  # a job's storage is a database (_lease_storage)
    with unit_storage.writes_guarded_by(lambda: _check_lease(leases, lease, heartbeat)):
        _fail_trials_in_flight(search.study, unit_storage)
        outcome = search.run(settings.budget, report)
    value, attrs = _headline(outcome)
    _complete(leases, lease, value, attrs)
    if events:
        events.finished(unit, outcome)


def _headline(outcome: Outcome) -> tuple[float, dict[str, Any]]:
    """The lease's value in the dashboard: the unit's best value of its objective (the
    least EDP on a Pareto front), with that mapping's energy and cycles."""
    found = outcome.found
    if found is None or not len(found):
        return float("inf"), {"no valid mapping": "no trial found a mapping that fits"}
    objective = "edp" if outcome.objective == "pareto" else outcome.objective
    best = int(found.scores.best(objective, 1)[0])
    return (float(found.scores.value(objective)[best]),
            {"energy_pJ": float(found.scores.energy_pJ[best]), "cycles": int(found.scores.cycles[best])})


def _fail_trials_in_flight(study: Study, storage: RetryingStorage) -> None:
    """Trials left running in a unit's study (in `storage`) belong to a worker that
    held the unit before and died (only the lease holder runs trials): failed, they
    are redone."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        try:
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            pass


# ------------------------------------------------------------------ leases


def _storage(url: str) -> RetryingStorage:
    """The storage for leases: Optuna's database storage with heartbeats on."""
    return _lease_storage(url, DEFAULT_HEARTBEAT)


@cache
def _lease_storage(url: str, heartbeat: int) -> RetryingStorage:
    """One per URL and heartbeat in a process: one pool of connections. Outages are
    waited out (mapper/search/db_storage.py); workers contest the leases' claims."""
    if "://" not in url:
        raise JobError("a job needs a database storage URL such as postgresql://user@host/db; found "
                       f"{mask_password(url)!r}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI reports progress itself
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats have been in Optuna since 2.9
            return open_database(url, heartbeat_interval=heartbeat, grace_period=MISSED_HEARTBEATS * heartbeat,
                                 contested_claims=True)
    except StorageError:
        raise
    except Exception as error:  # Optuna and its database drivers raise many kinds
        raise storage_error(url, error) from None


@dataclass(frozen=True)
class _Leases:
    """The job's study of leases and the storage it is in: claims, completions and
    heartbeats go to the storage itself (a claim is a compare-and-set of a trial's
    state, which Optuna's Study does not offer)."""

    study: Study
    storage: RetryingStorage


def _lease_study(url: str, job: Job) -> _Leases:
    storage = _lease_storage(url, job.heartbeat)
    return _Leases(optuna.load_study(study_name=JOB_PREFIX + job.name, storage=storage), storage)


def _leases_by_unit(study: Study, job: Job) -> dict[int, list[FrozenTrial]]:
    leases: dict[int, list[FrozenTrial]] = {i: [] for i in range(len(job.units))}
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get(UNIT) in leases:
            leases[trial.user_attrs[UNIT]].append(trial)
    return leases


def _unit_state(leases: list[FrozenTrial]) -> TrialState:
    """COMPLETE once a lease completed; else RUNNING or WAITING as its live lease is;
    FAIL when it has none (a new one is due)."""
    states = {t.state for t in leases}
    for state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING):
        if state in states:
            return state
    return TrialState.FAIL


def _put_up_missing_leases(study: Study, job: Job) -> None:
    for index, leases in _leases_by_unit(study, job).items():
        if _unit_state(leases) == TrialState.FAIL:
            study.enqueue_trial({}, user_attrs={UNIT: index, "name": job.units[index].name})


def _claim(leases: _Leases, job: Job) -> tuple[int, FrozenTrial] | None:
    """A unit to search and its lease, now RUNNING for this worker; None when every
    unit is done or held by a live worker. Leases of dead workers are failed first and
    replaced, but not right after an outage: every worker's heartbeats stopped reaching
    the storage during it, and live workers get the time to beat again first."""
    study, storage = leases.study, leases.storage
    if storage.seconds_reachable() > MISSED_HEARTBEATS * job.heartbeat + MAX_DELAY:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    _put_up_missing_leases(study, job)
    for lease in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        # Beat before claiming: a worker that dies right after its claim leaves a
        # lease that goes stale, not one that runs forever.
        storage.record_heartbeat(lease._trial_id)
        try:
            if not storage.set_trial_state_values(lease._trial_id, TrialState.RUNNING):
                continue  # another worker claimed it first
        except UpdateFinishedTrialError:
            continue
        index = lease.user_attrs[UNIT]
        if _is_the_unit_lease(study, index, lease):
            storage.set_trial_user_attr(lease._trial_id, "worker", f"{socket.gethostname()}:{os.getpid()}")
            return index, lease
        _fail(leases, lease)
    return None


def _is_the_unit_lease(study: Study, index: int, lease: FrozenTrial) -> bool:
    """Whether `lease` may run its unit: the unit is not done and no older lease of it
    is live (two workers that both replaced a dead lease put up two)."""
    others = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(UNIT) == index]
    if any(t.state == TrialState.COMPLETE for t in others):
        return False
    return min(t.number for t in others if t.state in _LIVE) == lease.number


def _lease_taken_over(leases: _Leases, lease: FrozenTrial) -> bool:
    """Whether this worker's lease is no longer RUNNING: another worker presumed it dead."""
    return leases.storage.get_trial(lease._trial_id).state != TrialState.RUNNING


def _check_lease(leases: _Leases, lease: FrozenTrial, heartbeat: _Heartbeat) -> None:
    """Before each write to the unit's study: a worker whose heartbeats have not reached
    the storage for nearly the grace period (an outage, a stalled machine) may have been
    presumed dead and its unit taken over. It beats, then reads its lease, and writes
    only if the lease is still RUNNING (so its own: a failed lease never runs again);
    two workers never write one study."""
    if not heartbeat.in_doubt and not heartbeat.late():
        return
    heartbeat.beat()
    if _lease_taken_over(leases, lease):
        raise LeaseLost(lease.user_attrs.get("name", ""))
    heartbeat.in_doubt = False


def _complete(leases: _Leases, lease: FrozenTrial, value: float, attrs: dict[str, Any]) -> None:
    storage = leases.storage
    for key, attr in attrs.items():
        storage.set_trial_user_attr(lease._trial_id, key, attr)
    storage.set_trial_state_values(lease._trial_id, TrialState.COMPLETE, [value])


def _fail(leases: _Leases, lease: FrozenTrial) -> None:
    try:
        leases.storage.set_trial_state_values(lease._trial_id, TrialState.FAIL)
    except UpdateFinishedTrialError:
        pass  # another worker already failed it as stale


class _Heartbeat:
    """A lease's heartbeat: when it last reached the storage, and whether a gap between
    two beats was long enough for another worker to have taken the lease over."""

    def __init__(self, leases: _Leases, lease: FrozenTrial) -> None:
        self.storage, self.trial_id = leases.storage, lease._trial_id
        interval = self.storage.get_heartbeat_interval()
        assert interval is not None  # the lease storage has heartbeats on
        self.interval = interval
        self.last_beat = time.monotonic()  # `_claim` has just beaten
        self.in_doubt = False  # until `_check_lease` has read the lease after such a gap

    def late(self) -> bool:
        """Whether the last beat is so old that the lease may be presumed dead soon."""
        return time.monotonic() - self.last_beat >= (MISSED_HEARTBEATS - 1) * self.interval

    def beat(self) -> None:
        sent = time.monotonic()  # taken before: the storage's time of the beat is no earlier
        late = self.late()
        self.storage.record_heartbeat(self.trial_id)
        self.in_doubt = self.in_doubt or late  # a fresh beat does not undo a takeover before it
        self.last_beat = sent


@contextmanager
def _heartbeat(leases: _Leases, lease: FrozenTrial) -> Iterator[_Heartbeat]:
    """Record the lease's heartbeat every `heartbeat_interval` seconds while the body runs."""
    heartbeat = _Heartbeat(leases, lease)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat.interval):
            try:
                heartbeat.beat()
            except (StorageError, KeyboardInterrupt):
                return  # storage lost, or the process stopping: the main thread meets it too, and reports it

    thread = threading.Thread(target=beat, name="mapper-heartbeat", daemon=True)
    thread.start()
    try:
        yield heartbeat
    finally:
        stop.set()
        thread.join()


# ------------------------------------------------------------------ processes


def work_in_processes(url: str, name: str, processes: int, events: WorkerEvents | None = None) -> int:
    """`work` in this process and in `processes - 1` more on this machine (which stop
    on this one's interruption: mapper/interrupt.py)."""
    helpers = [worker_context().Process(target=_helper, args=(url, name), name=f"mapper-worker-{i}")
               for i in range(1, processes)]
    for helper in helpers:
        helper.start()
    try:
        return work(url, name, events)
    except StorageError:
        for helper in helpers:  # they cannot reach the storage either: stopped, they do not wait out a window each
            helper.terminate()
        raise
    finally:
        for helper in helpers:
            helper.join()


def _helper(url: str, name: str) -> None:
    worker_process_init()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        work(url, name)
    except (KeyboardInterrupt, StorageError):
        pass  # the main process reports the interruption, or meets the same outage and reports it


# ------------------------------------------------------------------ texts


def joining_text(job: Job, url: str) -> str:
    """What the process that put a job up says: where it is, and how to add a worker."""
    head = f"job {job.name}: {len(job.units)} searches in {mask_password(url)}"
    if url.startswith("sqlite"):
        return f"{head}; a SQLite file serves one process: for workers, put the job in a database server"
    return (f"{head}; add a worker on any machine with:\n"
            f"  mapper worker --storage '{mask_password(url)}' --job {job.name}")


def finished_text(unit: Unit, outcome: Outcome | None) -> str:
    if outcome is None:
        return f"{unit.name}: no valid mapping"
    value, attrs = _headline(outcome)
    if "energy_pJ" not in attrs:
        return f"{unit.name}: no valid mapping found in {outcome.trials} trials"
    return (f"{unit.name}: {attrs['energy_pJ']:.4g} {unit.arch.energy_unit}, {attrs['cycles']:,} cycles "
            f"({outcome.trials} trials, {outcome.seconds:.1f} s in this worker)")
