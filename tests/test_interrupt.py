"""Interruptions: SIGINT (Ctrl-C) or SIGTERM during a search stops it cleanly, keeps
the completed trials, says the exact command that resumes, and exits 130 or 143; the
next run resumes and ends with the answer of a run never interrupted. A network
search's worker processes stop with it, and no output file is ever half-written."""

from __future__ import annotations

import json
import os
import pickle
import shlex
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mapper.cli import main
from mapper.interrupt import Interrupted, stopping_on_signals, worker_context, worker_process_init
from mapper.search.engine import POLISH, SHARED
from run_details import without_run_details
from tiny_network import SEARCHED, best_mappings, finish, start, write_layer, write_specs

# Past the sampler's start-up, so local moves resume too, and long enough (a few
# seconds) that the signal comes before the search ends; stopping by --patience is
# resumed in tests/test_search.py.
TRIALS = ["--trials", "150", "--patience", "0", "--seed", "5"]


def completed_trials(journal: Path) -> int:
    """Search trials completed in the (only) study of a journal that a search is
    writing (the polish's and the shared-tensor searches' not counted)."""
    if not journal.exists():
        return 0
    storage = JournalStorage(JournalFileBackend(str(journal)))
    studies = storage.get_all_studies()
    if not studies:
        return 0
    trials = storage.get_all_trials(studies[0]._study_id, deepcopy=False, states=(TrialState.COMPLETE,))
    return sum(POLISH not in t.user_attrs and SHARED not in t.user_attrs for t in trials)


def wait_until(condition, process) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, finish(process)
        assert time.monotonic() < deadline, "the search never got there"
        time.sleep(0.05)


def no_half_written_files(folder: Path) -> bool:
    """Atomic writes leave no temporary '.NAME.xxxx' files, and every JSON file parses."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return (not any(p.name.startswith(".") for p in files)
            and all(json.loads(p.read_text()) is not None for p in files if p.suffix == ".json"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("whole")
    assert main(["search", *write_layer(folder), "-o", str(folder / "out"), *TRIALS]) == 0
    best = without_run_details(json.loads((folder / "out" / "best.json").read_text()))
    assert best["search"]["stopped_by"] == "trials" and best["search"]["trials"] == 150
    return best


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_search_says_how_to_resume_and_resumes_to_the_same_answer(
        tmp_path: Path, signum: int, code: int, uninterrupted: dict) -> None:
    out = tmp_path / "out"
    args = ["search", *write_layer(tmp_path), "-o", str(out), *TRIALS]
    search = start(*args)
    wait_until(lambda: completed_trials(out / "study.journal") >= 4, search)
    search.send_signal(signum)
    exit_code, text = finish(search)

    assert exit_code == code, text
    assert "interrupted" in text and "Traceback" not in text
    assert f"to resume, run: {shlex.join(['mapper', *args])}" in text
    kept = completed_trials(out / "study.journal")
    assert 4 <= kept < uninterrupted["search"]["trials"] and not (out / "best.json").exists()
    assert no_half_written_files(out)

    assert main(args) == 0
    assert without_run_details(json.loads((out / "best.json").read_text())) == uninterrupted


def test_a_stopped_network_search_stops_its_workers_and_resumes(tmp_path: Path) -> None:
    """SIGTERM to the main process alone (as `kill` sends it) stops the worker processes
    too: the run ends without waiting for their searches, and the next run finishes
    every layer with the answers of a run never stopped."""
    specs = write_specs(tmp_path)
    whole = ["search", *specs, "--trials", "12", "--jobs", "2"]
    assert main([*whole, "-o", str(tmp_path / "whole")]) == 0
    args = [*whole, "-o", str(tmp_path / "out")]
    search = start(*args)
    layers = tmp_path / "out" / "layers"
    wait_until(lambda: any(completed_trials(layers / name / "study.journal") >= 2 for name in SEARCHED), search)
    search.send_signal(signal.SIGTERM)
    exit_code, text = finish(search)

    assert exit_code == 143, text
    assert f"to resume, run: {shlex.join(['mapper', *args])}" in text and "Traceback" not in text
    unfinished = [name for name in SEARCHED if not (layers / name / "best.json").exists()]
    assert unfinished and no_half_written_files(tmp_path / "out")
    assert main(args) == 0
    assert best_mappings(tmp_path / "out") == best_mappings(tmp_path / "whole")


def _call(inner):
    return inner()


def judged_in(rule, *modules: str) -> bool:
    """What `rule` says of a live stack of calls from one function of each of
    `modules`, outermost first (the last one's frame is the innermost)."""
    call = types.FunctionType(_call.__code__, {"__name__": modules[0]})  # a function "of" that module
    return call(lambda: judged_in(rule, *modules[1:]) if modules[1:] else rule(sys._getframe(1)))


def test_a_worker_defers_its_stop_while_handing_a_result_to_the_pool_but_not_during_a_task() -> None:
    """A worker stopped while it holds the lock of the pool's result queue would leave
    every other worker, and the main process joining them, waiting forever."""
    from mapper.interrupt import _in_storage, _in_storage_or_pool
    sending_back_a_result = ("concurrent.futures.process", "multiprocessing.queues")
    running_a_task = ("concurrent.futures.process", "mapper.search.engine")
    writing_the_journal = ("concurrent.futures.process", "mapper.search.engine", "optuna.storages.journal._storage")
    assert judged_in(_in_storage_or_pool, *sending_back_a_result) and not judged_in(_in_storage, *sending_back_a_result)
    assert not judged_in(_in_storage_or_pool, *running_a_task)
    assert judged_in(_in_storage_or_pool, *writing_the_journal) and judged_in(_in_storage, *writing_the_journal)


def test_a_workers_interruption_reaches_the_main_process_as_it_was() -> None:
    """It travels pickled, as the outcome of the worker's task: one that did not
    unpickle made the pool kill its workers wherever they were (a hang, once in ~20)."""
    back = pickle.loads(pickle.dumps(Interrupted(signal.SIGTERM)))
    assert isinstance(back, Interrupted) and back.exit_code == 143


def _blocked_signals(before: bool, answer) -> None:  # a worker's task: its blocked signals, as Linux shows them
    if not before:
        worker_process_init()
    mask = int(Path("/proc/self/status").read_text().split("SigBlk:")[1].split()[0], 16)
    answer.put({s for s in (signal.SIGINT, signal.SIGTERM) if mask & (1 << (s - 1))})


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal mask from Linux's /proc")
def test_a_worker_holds_a_stop_back_until_it_can_take_it() -> None:
    """A stop that reached a worker still importing killed it outright: the pool took
    that for a crash and killed the others."""
    context = worker_context()
    for before, expected in ((True, {signal.SIGINT, signal.SIGTERM}), (False, set())):
        answer = context.SimpleQueue()
        process = context.Process(target=_blocked_signals, args=(before, answer))
        process.start()
        assert answer.get() == expected
        process.join()


def test_a_stopped_worker_starts_none_of_the_shapes_queued_to_it(tmp_path: Path) -> None:
    """A process pool hands a worker the next task as soon as one ends, stopped or not:
    the shape queued behind the one a stop ended must not be searched while the
    stopped run waits for its workers."""
    out = tmp_path / "out"
    search = start("search", *write_specs(tmp_path), "--trials", "12", "--jobs", "1", "-o", str(out))
    layers = out / "layers"
    wait_until(lambda: any(completed_trials(layers / name / "study.journal") >= 2 for name in SEARCHED), search)
    search.send_signal(signal.SIGTERM)
    exit_code, text = finish(search)

    assert exit_code == 143, text
    assert sum((layers / name / "study.journal").exists() for name in SEARCHED) == 1


# The pool of a network search (network.worker_pool), which shuts itself down: a pool
# left to the interpreter's exit may print "Exception ignored ... Bad file descriptor"
# (Python 3.11's exit handler wakes its manager thread as that thread closes the pipe).
STOPPED_AT_START = """
import multiprocessing, os, signal
from mapper.network import worker_pool
if __name__ == "__main__":
    with worker_pool(1) as pool:
        future = pool.submit(os.getpid)  # starts the worker, which imports for a while, its stops held back
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGTERM)
        try:
            future.result(timeout=60)
        except Exception as error:
            print(type(error).__name__)
"""


def test_a_worker_stopped_while_it_starts_ends_without_a_traceback(tmp_path: Path) -> None:
    """Its stop, held back until its handlers are in place (above), came in the pool's
    initializer, which printed it with a traceback (seen in a stopped network search)."""
    script = tmp_path / "stopped_at_start.py"
    script.write_text(STOPPED_AT_START)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)

    assert done.stdout.strip() == "BrokenProcessPool"  # the main process learns the worker is gone
    assert "Traceback" not in done.stderr, done.stderr


STOPPED_WHILE_COMPILING = """
import os, signal, sys, time
from llvmlite.binding.executionengine import ExecutionEngine
from numba import njit
from mapper.interrupt import Interrupted, stopping_on_signals
find_module = ExecutionEngine._find_module_ptr
signalled = []
def signalled_while_caching(self, pointer):  # in the callback from C that caches numba's code
    if sys._getframe(1).f_code.co_name == "_raw_object_cache_notify" and not signalled:
        signalled.append(True)  # once: a second stop ends the process at once
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            pass
    return find_module(self, pointer)
ExecutionEngine._find_module_ptr = signalled_while_caching
def plus_one(x):
    return x + 1
try:
    with stopping_on_signals():
        njit(plus_one)(1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pass
except Interrupted as stop:
    print(stop.exit_code)
"""


def test_a_stop_that_comes_while_numba_caches_its_code_is_raised_after_it(tmp_path: Path) -> None:
    """llvmlite calls back into Python from C to cache what numba compiled; raised in
    that callback, the interruption was printed with a traceback and dropped (seen in a
    network search stopped while its main process compiled)."""
    script = tmp_path / "stopped_while_compiling.py"
    script.write_text(STOPPED_WHILE_COMPILING)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "143", done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


class _SignalledWhileCollected:
    """An object whose finalizer receives SIGTERM and goes on for a moment, as numba's
    compiler objects did when the main process collected them as a stop came."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            pass


def test_a_stop_that_comes_in_a_finalizer_is_raised_after_it(capsys: pytest.CaptureFixture[str]) -> None:
    """Raised inside `__del__`, the interruption would be printed with a traceback and
    dropped; it waits until the finalizer has returned."""
    with stopping_on_signals(), pytest.raises(Interrupted) as stopped:
        _SignalledWhileCollected()  # collected at once: no name holds it
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pass
    assert stopped.value.exit_code == 143
    assert "Exception ignored" not in capsys.readouterr().err
