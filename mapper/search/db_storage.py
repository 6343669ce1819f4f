"""A database storage (`--storage postgresql://...`) that rides out outages.

Week-long jobs meet database restarts, fail-overs and network blips. Every call to
the database is retried with exponential backoff (and jitter, so that many workers do
not come back in step) while the error is one of an outage: the server unreachable
or restarting, the connection refused, reset or closed. After `MAPPER_STORAGE_RETRY`
seconds of the same outage (default 60) the storage is lost: `StorageLost` says so in
one line, and every later call of this process fails at once, so that clean-up code
does not wait the window out again. A signal during an outage stops the process
without waiting (mapper/interrupt.py), as it would otherwise.

A write whose connection broke may have been committed anyway (the commit reached the
server, its answer did not come back), so a retry must not repeat it blindly:
- a new trial carries a random tag (a system attribute); a retry first looks for the
  trial with its tag, and duplicates that Optuna's own retry of the insert may have
  made are failed, so that no WAITING copy is ever taken for a trial of its own;
- a state change that the retry finds already made (the trial in that state, with
  those values) succeeded; for a WAITING trial taken into RUNNING this holds only
  where one process writes the study (a search's own study); on leases, which
  several workers claim, such a claim is given up (the lease goes stale and is put
  up again: safe, only later);
- everything else Optuna writes is an upsert (attributes, parameters, heartbeats),
  and a study that exists already is joined by every caller.

Opening a PostgreSQL storage holds an advisory lock while Optuna creates its tables:
processes that open a fresh database at once would otherwise race on `CREATE TABLE`
(seen: IntegrityError on pg_type_typname_nsp_index).
"""

from __future__ import annotations

import copy
import fcntl
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Container, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.distributions import BaseDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat  # not exported, but what fail_stale_trials looks for
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy  # not exported; the type get_all_studies returns
from optuna.trial import FrozenTrial, TrialState

from ..interrupt import raise_pending
from ..safe_names import mask_password
from .storage import StorageError, reason_in_words

RETRY_ENV = "MAPPER_STORAGE_RETRY"
DEFAULT_RETRY_SECONDS = 60.0
FIRST_DELAY, MAX_DELAY = 0.25, 4.0  # seconds between attempts: doubled each time up to the most
CONNECT_TIMEOUT = 10  # seconds: a server that does not answer at all counts as an outage too
TAG = "mapper:tag"  # trial system attribute: which call created the trial
SCHEMA_LOCK = 0x6D61707065725F31  # pg_advisory_lock key, "mapper_1": held while the tables are made
# What a server says while it starts, stops or is full: wait for it. Other refusals
# (a wrong password, a missing database) are mistakes that waiting does not mend.
_TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")
_TRANSIENT_WORDS = ("starting up", "shutting down", "recovery mode", "administrator command", "too many clients",
                    "not yet accepting")
T = TypeVar("T")


class StorageLost(StorageError):
    """The database stayed out of reach for the whole retry window."""


def retry_seconds() -> float:
    """How long an outage is waited out: MAPPER_STORAGE_RETRY, in seconds."""
    text = os.environ.get(RETRY_ENV, "")
    if not text:
        return DEFAULT_RETRY_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise StorageError(f"{RETRY_ENV}: found {text!r}, allowed: seconds to wait out a database outage, "
                           f"a number >= 0 (default {DEFAULT_RETRY_SECONDS:g})")
    return seconds


def open_database(url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None,
                  contested_claims: bool = False) -> RetryingStorage:
    """Optuna's storage for the database at `url`, retrying outages. With a heartbeat
    (leases) it is the plain RDBStorage; without (a search's trials), Optuna's cache
    in front of it, as `optuna.storages.get_storage(url)` would give.
    `contested_claims`: several processes take WAITING trials of its studies into
    RUNNING (leases), so a claim that may or may not have been made is given up."""
    retry = _Retry(url, retry_seconds())
    rdb = retry.run(lambda retried: _open_rdb(url, heartbeat_interval, grace_period), write=False)
    backend: BaseStorage = rdb if heartbeat_interval is not None else optuna.storages.get_storage(rdb)
    return RetryingStorage(backend, rdb, retry, contested_claims)


def _open_rdb(url: str, heartbeat_interval: int | None, grace_period: int | None) -> RDBStorage:
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}  # a pooled connection the server dropped: a new one
    if _is_postgres(url):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    with _schema_lock(url):
        return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                          grace_period=grace_period)


@contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """One process at a time creates Optuna's tables: two runs started together on a
    new database both found none and both made them (SQLite: "table studies already
    exists"). In PostgreSQL an advisory lock, the connection's: closing it (not pooled)
    releases it, whatever happened; in a SQLite file an flock of the file, which
    SQLite's own (fcntl) locks do not see, released when it is closed."""
    database = _sqlite_file(url)
    if database is not None:
        fd = os.open(database, os.O_RDWR | os.O_CREAT, 0o644)  # an empty file is an empty database
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    if not _is_postgres(url):
        yield
        return
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool,
                                      connect_args={"connect_timeout": CONNECT_TIMEOUT})
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK})
            connection.commit()
            yield
    finally:
        engine.dispose()


def _sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL (None: another database, or SQLite in memory)."""
    if _database_kind(url) != "sqlite":
        return None
    database = sqlalchemy.engine.make_url(url).database
    return database if database and database != ":memory:" else None


def _is_postgres(url: str) -> bool:
    return _database_kind(url) in ("postgresql", "postgres")


def _database_kind(url: str) -> str:
    """"postgresql+psycopg://..." -> "postgresql": the URL's scheme without its driver."""
    return url.split(":", 1)[0].split("+", 1)[0]


def is_outage(error: BaseException, url: str) -> bool:
    """Whether `error` (or one it was raised from: Optuna wraps the driver's) says the
    database server is out of reach for now, rather than that the call was wrong."""
    if url.startswith("sqlite"):
        return False  # a local file has no outages; its errors are the user's to see
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, sqlalchemy.exc.DBAPIError):
            if error.connection_invalidated:
                return True
            if isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
                return _driver_says_outage(error.orig)
        error = error.__cause__ or error.__context__
    return False


def _driver_says_outage(error: BaseException | None) -> bool:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if state:
        return str(state).startswith(_TRANSIENT_STATES)
    text = str(error)
    # No code: either the server never answered (refused, reset, timed out, closed),
    # or it refused the connection with a FATAL message, which says why.
    return "FATAL" not in text or any(words in text for words in _TRANSIENT_WORDS)


class _Retry:
    """Runs calls to one database, waiting out outages (module docstring)."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url, self.seconds = url, seconds
        self.lost: str | None = None  # why, once the storage is given up
        self.reached = False  # whether any call has got through
        self.recovered_at = -math.inf  # time.monotonic() when the last outage ended
        self.guard: Callable[[], None] | None = None  # run before every attempt to write (worker leases)
        self._lock = threading.Lock()

    def run(self, attempt: Callable[[bool], T], write: bool) -> T:
        """attempt(retried) until it gets through; `retried`: an earlier attempt of
        this call failed, and may have been committed all the same."""
        started, delay = None, FIRST_DELAY
        while True:
            if self.lost is not None:
                raise self._lost_error()
            if write and self.guard is not None:
                self.guard()
            try:
                result = attempt(started is not None)
            except Exception as error:
                if not is_outage(error, self.url):
                    raise
                raise_pending()  # stopping: never wait for the storage then
                now = time.monotonic()
                started = now if started is None else started
                if now - started >= self.seconds:
                    with self._lock:
                        self.lost = self.lost or reason_in_words(self.url, error)
                    raise self._lost_error() from None
                time.sleep(min(delay, started + self.seconds - now) * random.uniform(0.5, 1.0))
                delay = min(2 * delay, MAX_DELAY)
                continue
            if started is not None:
                self.recovered_at = time.monotonic()
            self.reached = True
            return result

    def _lost_error(self) -> StorageLost:
        where = mask_password(self.url)
        if not self.reached:
            return StorageLost(f"cannot reach the storage {where} ({self.lost}); tried for {self.seconds:g} s "
                               f"({RETRY_ENV}=SECONDS sets how long)")
        return StorageLost(f"lost the storage {where} for {self.seconds:g} s ({self.lost}); every completed "
                           "trial is kept; run the same command again to resume")


class RetryingStorage(BaseStorage, BaseHeartbeat):
    """Optuna's storage interface over a database storage, each call retried through
    outages; writes that may have been committed already are not repeated."""

    def __init__(self, backend: BaseStorage, rdb: RDBStorage, retry: _Retry, contested_claims: bool) -> None:
        self._backend, self._retry, self._contested_claims = backend, retry, contested_claims
        self._disconnects = 0  # connection errors seen by the engine, Optuna's own retries included
        sqlalchemy.event.listen(rdb.engine, "handle_error", self._count_disconnect)

    def _count_disconnect(self, context: sqlalchemy.engine.ExceptionContext) -> None:
        if context.is_disconnect or is_outage(context.sqlalchemy_exception or context.original_exception,
                                              self._retry.url):
            self._disconnects += 1

    def _read(self, call: Callable[[], T]) -> T:
        return self._retry.run(lambda retried: call(), write=False)

    def _write(self, call: Callable[[], T]) -> T:
        return self._retry.run(lambda retried: call(), write=True)

    # ---------------------------------------------------------- the outage state

    def seconds_reachable(self) -> float:
        """Seconds since the last outage ended (infinite if none)."""
        return time.monotonic() - self._retry.recovered_at

    @contextmanager
    def writes_guarded_by(self, guard: Callable[[], None]) -> Iterator[None]:
        """Run `guard` before every attempt to write while the body runs: it raises
        to stop a write (a worker whose lease may have been taken over)."""
        self._retry.guard = guard
        try:
            yield
        finally:
            self._retry.guard = None

    # ---------------------------------------------------------- studies

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        # Made already by an attempt whose answer was lost: DuplicatedStudyError, and
        # every caller joins a study of its name that exists.
        return self._write(lambda: self._backend.create_new_study(directions, study_name))

    def delete_study(self, study_id: int) -> None:
        self._write(lambda: self._backend.delete_study(study_id))

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._write(lambda: self._backend.set_study_user_attr(study_id, key, value))

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._write(lambda: self._backend.set_study_system_attr(study_id, key, value))

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._read(lambda: self._backend.get_study_id_from_name(study_name))

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._read(lambda: self._backend.get_study_name_from_id(study_id))

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self._read(lambda: self._backend.get_study_directions(study_id))

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._read(lambda: self._backend.get_study_user_attrs(study_id))

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._read(lambda: self._backend.get_study_system_attrs(study_id))

    def get_all_studies(self) -> list[FrozenStudy]:
        return self._read(self._backend.get_all_studies)

    # ---------------------------------------------------------- trials

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        tag = uuid.uuid4().hex
        template = _tagged(template_trial, tag)
        disconnects = self._disconnects

        def attempt(retried: bool) -> int:
            made = self._tagged_trials(study_id, tag) if retried else []
            return made[0]._trial_id if made else self._backend.create_new_trial(study_id, template)

        trial_id = self._retry.run(attempt, write=True)
        if self._disconnects != disconnects:
            self._fail_copies(study_id, tag, trial_id)
        return trial_id

    def _tagged_trials(self, study_id: int, tag: str) -> list[FrozenTrial]:
        return [t for t in self._backend.get_all_trials(study_id, deepcopy=False) if t.system_attrs.get(TAG) == tag]

    def _fail_copies(self, study_id: int, tag: str, kept: int) -> None:
        """Fail the trials that an insert retried after its commit made twice."""
        for copy_ in self._read(lambda: self._tagged_trials(study_id, tag)):
            if copy_._trial_id != kept and not copy_.state.is_finished():
                try:
                    self.set_trial_state_values(copy_._trial_id, TrialState.FAIL)
                except UpdateFinishedTrialError:
                    pass

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        self._write(lambda: self._backend.set_trial_param(trial_id, param_name, param_value_internal, distribution))

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self._read(lambda: self._backend.get_trial_id_from_study_id_trial_number(study_id, trial_number))

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        def attempt(retried: bool) -> bool:
            try:
                changed = self._backend.set_trial_state_values(trial_id, state, values)
            except UpdateFinishedTrialError:
                if retried and self._made_already(trial_id, state, values):
                    return True
                raise
            if not changed and retried and state == TrialState.RUNNING and not self._contested_claims:
                return self._made_already(trial_id, state, values)
            return changed

        return self._retry.run(attempt, write=True)

    def _made_already(self, trial_id: int, state: TrialState, values: Sequence[float] | None) -> bool:
        trial = self._backend.get_trial(trial_id)
        return trial.state == state and (values is None or trial.values == list(values))

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self._write(lambda: self._backend.set_trial_intermediate_value(trial_id, step, intermediate_value))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._write(lambda: self._backend.set_trial_user_attr(trial_id, key, value))

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._write(lambda: self._backend.set_trial_system_attr(trial_id, key, value))

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._read(lambda: self._backend.get_trial(trial_id))

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._read(lambda: self._backend.get_all_trials(study_id, deepcopy, states))

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        return self._read(lambda: self._backend.get_best_trial(study_id))

    def remove_session(self) -> None:
        self._backend.remove_session()

    # ---------------------------------------------------------- heartbeats

    def record_heartbeat(self, trial_id: int) -> None:
        self._write_unguarded(lambda: self._heartbeat_backend().record_heartbeat(trial_id))

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self._read(lambda: self._heartbeat_backend()._get_stale_trial_ids(study_id))

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_backend().get_heartbeat_interval()

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._heartbeat_backend().get_heartbeat_stale_trial_callback()

    def _heartbeat_backend(self) -> BaseHeartbeat:
        assert isinstance(self._backend, BaseHeartbeat)  # RDBStorage, or Optuna's cache in front of one
        return self._backend

    def _write_unguarded(self, call: Callable[[], T]) -> T:
        """A heartbeat: an upsert that the lease's own guard must not stop."""
        return self._retry.run(lambda retried: call(), write=False)


def _tagged(template: FrozenTrial | None, tag: str) -> FrozenTrial:
    """The trial to create, with its tag; without a template, the trial Optuna makes
    then (RUNNING, started now)."""
    if template is None:
        return FrozenTrial(number=-1, state=TrialState.RUNNING, value=None, datetime_start=datetime.now(),
                           datetime_complete=None, params={}, distributions={}, user_attrs={},
                           system_attrs={TAG: tag}, intermediate_values={}, trial_id=-1)
    tagged = copy.copy(template)
    tagged.system_attrs = {**template.system_attrs, TAG: tag}
    return tagged
