"""Where a search keeps its Optuna study, so an interrupted search resumes.

By default a journal file in the run's output folder: appending one line per event
costs a few milliseconds per trial here, against tens for SQLite. `--storage URL`
takes any Optuna storage URL instead (sqlite:///..., postgresql://...), e.g. to share
one database between machines. URLs may carry a password: only `mask_password(url)`
ever appears in a message.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend

from ..safe_names import MASK, mask_password, mask_passwords

JOURNAL_NAME = "study.journal"
_EXPECTED = "expected an Optuna storage URL such as sqlite:///runs/study.db or postgresql://user@host/db"


def open_storage(url: str | None, folder: Path) -> BaseStorage:
    """The journal file in `folder` by default, else the storage the URL names."""
    if url is None:
        folder.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(folder / JOURNAL_NAME)))
    return _database(url)


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
    password = urlsplit(url).password if "://" in url else None
    said = mask_passwords(reason[0] if reason else "")
    if password:
        said = said.replace(password, MASK).replace(unquote(password), MASK)
    return said


class StorageError(Exception):
    """A storage that cannot be opened or reached; the message never shows a password."""
