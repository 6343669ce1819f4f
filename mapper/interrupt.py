"""Stopping a long run cleanly on SIGINT (Ctrl-C) or SIGTERM (`kill`, a batch scheduler).

Both become an `Interrupted` exception in the main thread, a KeyboardInterrupt, so one
path handles them: the search fails the trial in hand (it is redone on resume; the
completed ones are in the storage), files are written whole or not at all, and the CLI
says how to resume and exits 128 + the signal's number (130, 143), as a shell does.

The exception waits while the storage is being written: raised inside Optuna's storage
code or a database driver, it can leave a journal's file lock half released or a
commit half acknowledged (seen in testing: the journal's lock release, interrupted, raised
FileNotFoundError instead). The handler then re-checks every few milliseconds until
the storage call has returned, for at most DEFER_LIMIT_SECONDS: a storage call that
waits (for a lock, a database out of reach) is then interrupted anyway. It waits too
while a finalizer (`__del__`) runs or llvmlite calls back into Python from C (numba
compiling), where Python would print it with a traceback and drop it (seen in testing:
numba's compiler objects collected in the main process, its compiled code cached). A second
signal ends the process at once, as without these handlers; it loses the trial in
hand only.

Worker processes get exactly one interruption each, whoever was signalled: they ignore
SIGINT (Ctrl-C reaches the terminal's whole process group) and the main process
forwards a SIGTERM to each, which they turn into `Interrupted` too. A plain SIGTERM
would kill them in the middle of a trial, and a SIGINT to the main process alone (from
`kill -INT`) would leave them running. A worker whose main process dies without a
word (SIGKILL, a crash) is killed by the kernel (Linux: PR_SET_PDEATHSIG; elsewhere a
thread that watches the parent), so no orphan goes on writing a folder that the next
run owns.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

# Code that must not be interrupted halfway: the storages and what they call.
_STORAGE_MODULES = ("optuna.storages", "mapper.search.db_storage", "sqlalchemy", "psycopg", "psycopg2", "pymysql",
                    "MySQLdb")
# Where a worker process is handing tasks and results to and from the main process.
_POOL_MODULES = ("multiprocessing", "concurrent.futures")
_RECHECK_SECONDS = 0.005
DEFER_LIMIT_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_pending: list[int] = []  # the signal waiting for the storage call to return
_deferred_until: list[float] = []  # when the wait for the storage call ends


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `exit_code` is what a shell reports for it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    def __reduce__(self) -> tuple[type[Interrupted], tuple[int]]:
        """A worker's interruption goes back to the main process pickled, as its task's
        outcome. By its args ("SIGTERM") it would not unpickle there, and a process pool
        takes a result it cannot read for a broken pool, and kills its workers
        wherever they are (one with the lock of the result queue in hand, seen in
        testing: the pool then waits forever)."""
        return Interrupted, (self.signum,)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(interruption: KeyboardInterrupt) -> int:
    """130 for Ctrl-C (a plain KeyboardInterrupt too), 143 for SIGTERM."""
    return interruption.exit_code if isinstance(interruption, Interrupted) else 128 + signal.SIGINT


@contextmanager
def stopping_on_signals() -> Iterator[None]:
    """For the main process, while the body runs: SIGINT and SIGTERM raise
    `Interrupted`, once each worker process has been told to stop."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    for s in (signal.SIGINT, signal.SIGTERM):
        if previous[s] != signal.SIG_IGN:  # e.g. a shell script's `mapper ... &` ignores Ctrl-C, and keeps doing so
            signal.signal(s, _stop_with_children)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _pending.clear()
        _deferred_until.clear()
        for s, handler in previous.items():
            signal.signal(s, handler)


def raise_pending() -> None:
    """Raise the interruption now if a signal has come: for code that would otherwise
    wait for an unreachable storage (mapper/search/db_storage.py). In the main thread
    the deferred raise is called off, so that the interruption comes once."""
    if not _pending:
        return
    if threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, 0)
    raise Interrupted(_pending[0])


def worker_process_init() -> None:
    """For worker processes (an initializer of a process pool): stop on the main
    process's SIGTERM only, and never inside the pool's own plumbing: a worker
    interrupted while it holds the lock of the pool's result queue (sending back a
    result) dies with the lock taken, and the other workers, and the main process
    joining them, wait for it forever (seen in testing)."""
    global _must_wait
    _die_with_parent()
    _must_wait = _in_storage_or_pool
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    if hasattr(signal, "pthread_sigmask"):  # a stop that came during the start-up (worker_context) comes now
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        except Interrupted as stop:
            # Stopped before it took a task: nothing to keep. Raised from here, the
            # interruption would have the pool print it with a traceback.
            os._exit(stop.exit_code)


class _WorkerProcess(multiprocessing.context.SpawnProcess):
    """A spawned process that is born with SIGINT and SIGTERM blocked (a signal mask
    survives fork and exec), until worker_process_init has its handlers in place.
    Without, a stop that reaches a worker still importing kills it outright (Python's
    default), a process pool takes that for a crash and SIGTERMs the other workers
    again, and one that dies while it holds the lock of the pool's result queue leaves
    the last worker, and the main process joining it, waiting forever (seen in testing,
    about one stop in twenty-five)."""

    def start(self) -> None:
        if not hasattr(signal, "pthread_sigmask"):
            super().start()
            return
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


class _WorkerContext(multiprocessing.context.SpawnContext):
    Process = _WorkerProcess


def worker_context() -> multiprocessing.context.SpawnContext:
    """The multiprocessing context of every worker process: spawn (the same behaviour on
    every platform, no fork of a process that holds threads or connections), with the
    stop signals held back until the worker can take them (_WorkerProcess)."""
    return _WorkerContext()


def _die_with_parent() -> None:
    """Have this process killed when the process that started it ends."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent.pid:  # it died before the prctl took effect
                os._exit(1)
            return
    threading.Thread(target=_die_when_orphaned, args=(parent.pid,), name="mapper-parent-watch",
                     daemon=True).start()


def _die_when_orphaned(parent: int) -> None:
    """Where the kernel cannot be asked: look every second whether the parent is gone
    (this process is then re-parented)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)


def _stop_with_children(signum: int, frame: FrameType | None) -> None:
    for child in multiprocessing.active_children():
        try:
            os.kill(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it has just ended
    _stop(signum, frame)


def _stop(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _pending.append(signum)
    _deferred_until.append(time.monotonic() + DEFER_LIMIT_SECONDS)
    signal.signal(signal.SIGALRM, _stop_when_out_of_storage)
    _stop_when_out_of_storage(signal.SIGALRM, frame)


def _stop_when_out_of_storage(alarm: int, frame: FrameType | None) -> None:
    if ((_must_wait(frame) or _in_finalizer(frame) or _in_compiler_callback(frame))
            and time.monotonic() < _deferred_until[0]):
        signal.setitimer(signal.ITIMER_REAL, _RECHECK_SECONDS)
        return
    raise Interrupted(_pending[0])


def _in_finalizer(frame: FrameType | None) -> bool:
    """Whether a `__del__` is running: an exception raised in it is only printed."""
    return _on_stack(frame, lambda f: f.f_code.co_name == "__del__")


def _in_compiler_callback(frame: FrameType | None) -> bool:
    """Whether numba's compiler is in llvmlite, which calls back into Python from C (to
    cache the code it made): an exception raised in such a callback is only printed
    (seen in testing: a network search stopped while its main process compiled)."""
    return _on_stack(frame, lambda f: _module(f).startswith("llvmlite"))


def _in_storage(frame: FrameType | None) -> bool:
    return _on_stack(frame, lambda f: _module(f).startswith(_STORAGE_MODULES))


def _on_stack(frame: FrameType | None, found: Callable[[FrameType], bool]) -> bool:
    """Whether `found` holds for `frame` or a frame that called it."""
    while frame is not None:
        if found(frame):
            return True
        frame = frame.f_back
    return False


def _in_storage_or_pool(frame: FrameType | None) -> bool:
    """In a worker: the pool's plumbing is at the bottom of every stack, so only the
    innermost frame tells whether the worker is in it (taking a task, sending back a
    result) rather than in the task."""
    return _in_storage(frame) or (frame is not None and _module(frame).startswith(_POOL_MODULES))


def _module(frame: FrameType) -> str:
    return frame.f_globals.get("__name__", "")


_must_wait = _in_storage  # the main process's rule; worker_process_init sets the workers'
