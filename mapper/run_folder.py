"""An output folder has one owner at a time, holds the results of one run only, gets
each file whole (`write_atomically`), and a failed write says which path and why in
one line.

A run (`mapper search`, `mapper run`) takes `DIR/run.lock` for its whole life: an
exclusive `flock` on the open file, and a record of the owner in it (pid, host, start
time, command). A second run into the folder is refused with that record. The kernel
releases the lock when the owner's process ends, however it ends (SIGKILL, a crash),
so a lock left by a dead run never blocks the next one: there is no stale lock to
judge by pids or times. The file stays behind, unlocked (removing it would let two
runs lock two different files of the same name).

What a folder's results are (the layers, architecture, constraints and settings) is
recorded beside them with a fingerprint; a run whose fingerprint differs is refused
rather than mixing its results with the other run's.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .json_output import json_text
from .safe_names import mask_passwords
from .specs.errors import SpecError

LOCK_NAME = "run.lock"
# What a layer's search and a network job record of themselves in their folder
# (keep_results_of): a folder holds one of them.
LAYER_RECORD, NETWORK_RECORD = "search.json", "network.json"
# How long a refused run waits for the owner's record: the owner writes it just after
# taking the lock.
_RECORD_WAIT_SECONDS = 2.0


class FolderInUse(Exception):
    """Another live run owns the folder; the message names the folder and the owner."""


def write_atomically(path: Path, text: str) -> None:
    """Write beside the target, then rename: readers see the old file or the new one.
    A symbolic link is followed (the file it names is replaced, the link stays); what
    is not a file (a FIFO, a terminal, /dev/stdout) is written to as a stream, not
    replaced. A failure names the target (not the temporary file), for a one-line
    error."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    try:
        if path.exists() and not path.is_file():
            with open(path, "w") as stream:
                stream.write(text)
        else:
            _write_beside(Path(os.path.realpath(path)), text)
    except OSError as error:
        raise OSError(error.errno, error.strerror, error.filename if error.errno == errno.ENOTDIR
                      else str(path)) from None


def _write_beside(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def owning(folder: Path, command: str) -> Iterator[None]:
    """Own `folder` (made if missing) while the body runs, or raise FolderInUse.
    `command` is recorded for the message a second run gets, its passwords masked."""
    if folder.exists() and not folder.is_dir():
        raise SpecError(folder, "", "a file", "a folder for the run's outputs (made if missing)",
                        "choose another output folder (-o)")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUse(f"{folder}: in use by another run ({owner_text(path)}); wait for it to end, "
                              "or choose another output folder (-o)") from None
        _record_owner(fd, path, mask_passwords(command))
        yield
    finally:
        os.close(fd)  # releases the lock


def _record_owner(fd: int, path: Path, command: str) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"), "command": command}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None


def owner_text(path: Path) -> str:
    """`pid 12 on host, since 2026-12-02 06:30:00 UTC: mapper search ...`, or what is
    known of it."""
    deadline = time.monotonic() + _RECORD_WAIT_SECONDS
    while True:
        try:
            record = json.loads(path.read_text())
            return f"pid {record['pid']} on {record['host']}, since {record['started']}: {record['command']}"
        except (OSError, ValueError, KeyError, TypeError):
            if time.monotonic() > deadline:
                return "its record is unreadable"
            time.sleep(0.05)


# ------------------------------------------------------------ what the results are


def fingerprint(parts: dict[str, Any]) -> dict[str, str]:
    """A digest of each part that decides a run's results, and of all of them."""
    return {part: _digest(value)[:16] for part, value in parts.items()} | {"all": _digest(parts)}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def keep_results_of(path: Path, record: dict[str, Any], run: str, same: str) -> None:
    """Write `record` (what the run is, with its "fingerprint") to `path`, or check
    that the record there is this run's. `run` names the kind of run ("job"), `same`
    what must agree ("the same architecture, ...")."""
    mine = record["fingerprint"]
    for other in (path.parent / name for name in (LAYER_RECORD, NETWORK_RECORD)):
        if other != path and other.is_file():
            raise SpecError(path.parent, "", f"the results of another kind of run ({other.name})",
                            f"a folder of this {run} ({same}), whose finished work is kept",
                            "choose another output folder, or delete this one")
    if not path.is_file():
        write_atomically(path, json_text(record))
        return
    try:
        there = json.loads(path.read_text())
        theirs = there.get("fingerprint", {})
    except (ValueError, AttributeError):
        there, theirs = {}, {}
    if theirs.get("all") != mine["all"]:
        parts = dict.fromkeys([*mine, *theirs])  # a part only one of them has differs too (a job's fusion)
        differ = [_differing(part, there, record) for part in parts
                  if part != "all" and theirs.get(part) != mine.get(part)]
        raise SpecError(path, "fingerprint", f"the results of another {run} (it differs in "
                        f"{', '.join(differ) or 'its format'})",
                        f"a folder of this {run} ({same}), whose finished work is kept",
                        "choose another output folder, or delete this one")


# A job's layers carry their constraints (network.manifest): a changed constraints file
# shows there.
_PARTS = {"layers": "layers or their constraints"}


def _differing(part: str, there: dict[str, Any], here: dict[str, Any]) -> str:
    """A part of two records' fingerprints that differs, with its settings that differ
    where both records list them ("settings: patience 40 there, 20 here"): a default
    that changed between versions shows as what it is."""
    theirs, mine = there.get(part), here.get(part)
    if part != "settings" or not isinstance(theirs, dict) or not isinstance(mine, dict):
        return _PARTS.get(part, part)
    changed = [f"{key} {_said(theirs.get(key))} there, {_said(mine.get(key))} here"
               for key in sorted(set(theirs) | set(mine)) if key != "storage" and theirs.get(key) != mine.get(key)]
    return f"{part}: {'; '.join(changed)}" if changed else part


def _said(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# ------------------------------------------------------------------- failed writes

_FREE_SPACE = "free some space and run the same command again: it resumes"
_ANOTHER_PATH = "choose another output path"
_WHY = {errno.ENOSPC: ("no space left on device", _FREE_SPACE),
        errno.EDQUOT: ("disk quota exceeded", _FREE_SPACE),
        errno.EROFS: ("read-only file system", "choose an output path on a writable file system"),
        errno.EACCES: ("permission denied", "choose an output path you may write, or change its permissions"),
        errno.EPERM: ("permission denied", "choose an output path you may write, or change its permissions"),
        errno.ENOTDIR: ("part of the path is a file, not a folder", _ANOTHER_PATH),
        errno.EISDIR: ("a folder, not a file", "give a file name"),
        errno.EEXIST: ("a file is in the way", _ANOTHER_PATH),
        errno.ETIMEDOUT: (None, "is another program writing into this folder?")}


def write_failure_text(error: OSError) -> str:
    """One line for a path that could not be read or written: which, what failed, and
    what to do."""
    what, todo = _WHY.get(error.errno or 0, (None, "check the path"))
    where = error.filename if error.filename is not None else "an output file"
    return f"{where}: {what or (error.strerror or str(error)).lower()}; {todo}"
