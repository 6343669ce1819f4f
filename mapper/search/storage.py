"""Where a search keeps its Optuna study, so an interrupted search resumes.

By default a journal file in the run's output folder: appending one line per event
costs a few milliseconds per trial here, against tens for SQLite. `--storage URL`
takes any Optuna storage URL instead (sqlite:///..., postgresql://...), e.g. to share
one database between machines. URLs may carry a password: only `mask_password(url)`
ever appears in a message.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend

from ..safe_names import MASK, mask_password, mask_passwords

JOURNAL_NAME = "study.journal"
# One process writes a journal (the output folder has one owner: mapper/run_folder.py),
# so its lock is never held for long; the bound turns a surprise into an error, not a hang.
JOURNAL_LOCK_WAIT_SECONDS = 60.0
_EXPECTED = "expected an Optuna storage URL such as sqlite:///runs/study.db or postgresql://user@host/db"


def open_storage(url: str | None, folder: Path) -> BaseStorage:
    """The journal file in `folder` by default, else the storage the URL names."""
    if url is None:
        folder.mkdir(parents=True, exist_ok=True)
        return JournalStorage(Journal(folder / JOURNAL_NAME))
    return _database(url)


class Journal(JournalFileBackend):
    """Optuna's journal file, made safe against the ways a run ends:

    - its lock is an `flock` on the journal itself, which the kernel releases when the
      holder dies (Optuna's own lock is a `study.journal.lock` file that a killed
      process leaves behind, and the next run waited on it for ever); a left-over
      `study.journal.lock` is not looked at;
    - a record whose write failed (a full disk) is cut off again, so the next record
      does not land on half of one;
    - a last record torn by a kill in the middle of its write is dropped on opening
      (Optuna refuses a journal that has one in the middle);
    - the records that only fill in a trial (its creation, parameters and attributes)
      are held in memory and written with the record that ends it or changes its
      state, one write and fsync per trial instead of one per parameter (~20 per trial
      of the search). A run killed in the middle of a trial loses that trial, which is
      what resuming redoes anyway (engine.py); this process reads the held records
      as if written, and no other process writes the journal (its folder has one owner).
    """

    def __init__(self, path: Path) -> None:
        drop_torn_tail(path)
        super().__init__(str(path))  # its lock object goes unused: append_logs locks by itself
        self.path = path
        self._written = _records_in(path)
        self._held: list[dict[str, Any]] = []
        self._last_write: list[dict[str, Any]] = []  # the records of the last write, the file's last ones

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """Optuna's reading, then the held records; a record damaged in the middle
        (not by a run of ours: only the last record can be torn) said in one line. The
        records of the last write come from memory: Optuna's reading finds a record
        by the offsets of records it has read, and would read the file from its start
        for one it never read."""
        last_from = self._written - len(self._last_write)
        if last_from <= log_number_from < self._written:
            yield from self._last_write[log_number_from - last_from:]
        elif log_number_from < self._written:
            try:
                yield from super().read_logs(log_number_from)
            except ValueError as error:  # json.JSONDecodeError, or Optuna's "Invalid log format."
                raise StorageError(f"{self.path}: a damaged record before the last ({error}); the journal cannot "
                                   "be resumed: move it away to start this search over") from None
        yield from self._held[max(0, log_number_from - self._written):]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._held.extend(logs)
        if all(log["op_code"] in _FILLING_IN for log in logs):
            return
        self._write(self._held)  # on failure the records stay held, for the next write to retry
        self._written += len(self._held)
        self._last_write, self._held = self._held, []

    def _write(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as error:
            raise _naming(error, self.path) from None
        try:
            _lock(fd, self.path)
            end = os.fstat(fd).st_size
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError as error:
                os.ftruncate(fd, end)
                raise _naming(error, self.path) from None
        finally:
            os.close(fd)  # releases the lock


# The journal's records that only fill in a trial, by their op_code in Optuna's journal
# format: create trial 4, set param 5, intermediate value 7, user attribute 8, system
# attribute 9 (the state and values are 6).
_FILLING_IN = {4, 5, 7, 8, 9}


def _records_in(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0
    except OSError as error:
        raise _naming(error, path) from None


def _lock(fd: int, path: Path) -> None:
    """An exclusive flock on `fd`, waited for at most JOURNAL_LOCK_WAIT_SECONDS."""
    deadline = time.monotonic() + JOURNAL_LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(errno.ETIMEDOUT, f"another process has held its lock for over "
                                   f"{JOURNAL_LOCK_WAIT_SECONDS:g} s", str(path)) from None
            time.sleep(0.01)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _naming(error: OSError, path: Path) -> OSError:
    """The same error, naming the journal rather than nothing."""
    return OSError(error.errno, error.strerror, str(path))


def drop_torn_tail(path: Path) -> bool:
    """Cut the journal after its last whole record: a last line without its newline,
    or one that does not parse, is what a write cut short leaves. True if it cut."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    except OSError as error:
        raise _naming(error, path) from None
    end = len(data)
    while end:
        start = data.rfind(b"\n", 0, end - 1) + 1
        if data.endswith(b"\n", 0, end) and _parses(data[start:end]):
            break
        end = start
    if end == len(data):
        return False
    try:
        os.truncate(path, end)
    except OSError as error:
        raise _naming(error, path) from None
    return True


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


@cache
def _database(url: str) -> BaseStorage:
    """One storage per URL in a process: one pool of connections, however many layers."""
    if "://" not in url:
        raise StorageError(f"cannot open the storage {mask_password(url)}: {_EXPECTED}")
    from .db_storage import open_database  # it builds on this module's errors: imported here, not above

    try:
        return open_database(url)
    except StorageError:
        raise
    except Exception as error:  # Optuna and its database drivers raise many kinds
        raise storage_error(url, error) from None


def storage_error(url: str, error: Exception) -> StorageError:
    """Why the storage at `url` would not open, in the driver's words ("password
    authentication failed for user ..."); the expected form of a URL only when the
    URL itself is what is wrong, not the database behind it."""
    import sqlalchemy

    if isinstance(error, ModuleNotFoundError):
        return StorageError(f"cannot open the storage {mask_password(url)}: its database driver {error.name!r} is "
                            "not installed; for PostgreSQL: pip install 'mapper[postgres]'")
    said = f"cannot open the storage {mask_password(url)} ({type(error).__name__}: {reason_in_words(url, error)})"
    if isinstance(error, (sqlalchemy.exc.ArgumentError, ValueError)):  # unparsable, or no such database kind
        return StorageError(f"{said}; {_EXPECTED}")
    return StorageError(said)


def reason_in_words(url: str, error: BaseException) -> str:
    """The first line of what the driver said, with the URL's password masked should
    the driver quote it."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    password = _password(url)
    said = mask_passwords(reason[0] if reason else "")
    if password:
        said = said.replace(password, MASK).replace(unquote(password), MASK)
    return said


def _password(url: str) -> str | None:
    """The URL's password, None where it has none or cannot be parsed (a stray
    bracket: the driver's error says so)."""
    try:
        return urlsplit(url).password if "://" in url else None
    except ValueError:
        return None


class StorageError(Exception):
    """A storage that cannot be opened or reached (its URL), or read (a damaged
    journal); the message never shows a password."""
