"""A database storage rides out outages: the errors of an outage are told from the
user's mistakes; a server out of reach for longer than MAPPER_STORAGE_RETRY ends the
command with one line that keeps the password out; a write whose answer was lost is
not made twice; only a malformed URL is told what a storage URL looks like."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.exceptions import StorageInternalError
from optuna.storages import _CachedStorage
from optuna.trial import TrialState

from mapper.cli import main
from mapper.search.db_storage import is_outage, open_database
from mapper.search.storage import storage_error
from postgres_server import needs_postgres, postgres_url  # noqa: F401 (a fixture)
from tiny_network import write_layer

SERVER = "postgresql://alice:s3cret@db.example:5432/studies"


def driver_error(text: str) -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(text))


@pytest.mark.parametrize("error, outage", [
    (driver_error('connection to server at "db", port 5432 failed: Connection refused'), True),
    (driver_error("server closed the connection unexpectedly"), True),
    (driver_error("FATAL:  the database system is starting up"), True),
    (driver_error("FATAL:  terminating connection due to administrator command"), True),
    (driver_error('FATAL:  password authentication failed for user "alice"'), False),
    (driver_error('FATAL:  database "studies" does not exist'), False),
    (sqlalchemy.exc.ProgrammingError("SELECT", {}, Exception('relation "trials" does not exist')), False),
    (ValueError("invalid literal for int() with base 10: 'port'"), False),
])
def test_an_outage_is_told_from_a_mistake(error: Exception, outage: bool) -> None:
    assert is_outage(error, SERVER) is outage
    try:  # Optuna wraps the driver's error in its own
        raise StorageInternalError("An exception is raised during the commit.") from error
    except StorageInternalError as wrapped:
        assert is_outage(wrapped, SERVER) is outage


def test_a_local_file_has_no_outages() -> None:
    assert not is_outage(driver_error("unable to open database file"), "sqlite:///runs/study.db")


def test_a_server_out_of_reach_ends_the_command_after_the_retry_window_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAPPER_STORAGE_RETRY", "0.5")
    nothing_listens = "postgresql://alice:s3cret@127.0.0.1:1/studies"
    assert main(["worker", "--storage", nothing_listens, "--job", "j", "--jobs", "1", "--wait", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the storage postgresql://alice:***@127.0.0.1:1/studies (")
    assert "tried for 0.5 s (MAPPER_STORAGE_RETRY=SECONDS sets how long)" in err and len(err.splitlines()) == 1
    assert "s3cret" not in err and "expected an Optuna storage URL" not in err


def test_a_retry_window_that_is_not_a_number_of_seconds_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAPPER_STORAGE_RETRY", "a minute")
    assert main(["search", *write_layer(tmp_path), "-o", str(tmp_path / "out"), "--trials", "1", "--jobs", "1",
                 "--storage", "postgresql://alice:s3cret@127.0.0.1:1/studies"]) == 2
    assert capsys.readouterr().err == ("error: MAPPER_STORAGE_RETRY: found 'a minute', allowed: seconds to wait out a "
                                       "database outage, a number >= 0 (default 60)\n")


def test_only_a_malformed_url_is_told_what_a_storage_url_looks_like() -> None:
    for url in ("postgresql://alice:s3cret@db:port/studies", "nosuchdb://alice:s3cret@db/studies"):
        try:
            optuna.storages.RDBStorage(url)
        except Exception as error:  # the kinds SQLAlchemy raises for these
            message = str(storage_error(url, error))
        assert "expected an Optuna storage URL" in message and "s3cret" not in message
    refused = storage_error(SERVER, driver_error('FATAL:  password authentication failed for user "alice"'))
    assert str(refused) == ("cannot open the storage postgresql://alice:***@db.example:5432/studies (OperationalError: "
                            'FATAL:  password authentication failed for user "alice")')


# ------------------------------------------------------------- with a server


def answer_lost_once(monkeypatch: pytest.MonkeyPatch, method: str) -> list[object]:
    """Make `_CachedStorage.method` commit its first call and then raise as if the
    connection broke before the server's answer came back; returns what that call
    returned (once it has run)."""
    real = getattr(_CachedStorage, method)
    lost: list[object] = []

    def committed_then_lost(self: _CachedStorage, *args: object, **kwargs: object) -> object:
        result = real(self, *args, **kwargs)
        if not lost:
            lost.append(result)
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        return result

    monkeypatch.setattr(_CachedStorage, method, committed_then_lost)
    return lost


@needs_postgres
def test_a_trial_whose_insert_answer_was_lost_is_not_made_twice(postgres_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    study = optuna.create_study(storage=open_database(postgres_url), study_name="s")
    lost = answer_lost_once(monkeypatch, "create_new_trial")
    study.enqueue_trial({"x": 1.0})
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})

    assert lost and [t._trial_id for t in study.get_trials(deepcopy=False)] == [lost[0]] == [trial._trial_id]
    assert trial.params == {"x": 1.0}  # the enqueued trial, not one of its own


@needs_postgres
def test_a_trial_completed_once_stays_completed_once_when_the_answer_was_lost(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    study = optuna.create_study(storage=open_database(postgres_url), study_name="s")
    trial = study.ask()
    lost = answer_lost_once(monkeypatch, "set_trial_state_values")
    study.tell(trial, 2.5)

    assert lost == [True]
    assert [(t.state, t.value) for t in study.get_trials(deepcopy=False)] == [(TrialState.COMPLETE, 2.5)]


def _open_at(url: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    barrier.wait()
    try:
        open_database(url)
    except Exception as error:  # the assertion below shows what it was
        errors.put(f"{type(error).__name__}: {error}")


def test_processes_that_open_a_new_sqlite_file_at_once_all_get_its_tables(tmp_path: Path) -> None:
    """Two searches started together on a new SQLite storage: one makes Optuna's tables,
    the others wait for it (they met "table studies already exists")."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_open_at, args=(url, barrier, errors)) for _ in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * 4
    assert errors.empty(), errors.get()
