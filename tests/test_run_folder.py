"""A run and its output folder: one live run per folder (a second is refused, naming
the owner); a run killed outright (kill -9 of its process group) leaves nothing that
blocks the next, which resumes to the answer of a run never killed; its worker
processes die with it; a full disk, a read-only or unwritable target, or an output
path that is a file where a folder belongs (or the reverse) is one line and exit 2,
and the journal stays resumable; a single-layer search refuses a folder written with
other settings, as a network search does."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.trial import TrialState

from mapper import interrupt, run_folder
from mapper.cli import main
from mapper.search import storage
from mapper.specs.errors import SpecError
from run_details import without_run_details
from test_interrupt import completed_trials, judged_in
from tiny_network import SEARCHED, best_mappings, finish, start, write_layer, write_specs

ROOT = Path(__file__).resolve().parents[1]
# A search of some seconds, so that what happens to it happens mid-search.
LONG = ["--trials", "150", "--patience", "0", "--seed", "5"]
NETWORK = ["--trials", "30", "--patience", "0", "--jobs", "2"]


def wait_until(condition, process: subprocess.Popen, what: str) -> None:
    """Poll (the bound only guards against a hang; nothing here is timed)."""
    deadline = time.monotonic() + 240
    while not condition():
        assert process.poll() is None, finish(process)
        assert time.monotonic() < deadline, f"never got to: {what}"
        time.sleep(0.05)


def start_in_own_group(*args: str) -> subprocess.Popen[str]:
    """`mapper ARGS` as the leader of a process group of its own (its workers join it)."""
    return subprocess.Popen([sys.executable, "-m", "mapper.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def error_line(err: str) -> str:
    """The one error line a failed run ends with (after any progress lines; no
    traceback)."""
    lines = err.strip().splitlines()
    assert [line for line in lines if "error" in line.lower()] == lines[-1:] and lines[-1].startswith("error: ") \
        and "Traceback" not in err, err
    return lines[-1]


@pytest.fixture(scope="module")
def network_whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    """The network's specs, and the folder of a run never disturbed."""
    folder = tmp_path_factory.mktemp("network")
    specs = write_specs(folder)
    assert main(["search", *specs, *NETWORK, "-o", str(folder / "whole")]) == 0
    return specs, folder / "whole"


@pytest.fixture(scope="module")
def layer_whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict]:
    """One layer's specs, and the best.json of a search never disturbed."""
    folder = tmp_path_factory.mktemp("layer")
    specs = write_layer(folder)
    assert main(["search", *specs, *LONG, "-o", str(folder / "whole")]) == 0
    return specs, without_run_details(json.loads((folder / "whole" / "best.json").read_text()))


def best_of(folder: Path) -> dict:
    return without_run_details(json.loads((folder / "best.json").read_text()))


# ------------------------------------------------------------ one owner per folder


def test_a_run_into_a_folder_another_live_run_owns_exits_2_naming_the_owner(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with run_folder.owning(out, "mapper search a.yaml --storage postgresql://alice:s3cret@db/x"):
        assert main(["search", *write_layer(tmp_path), "-o", str(out), "--trials", "2"]) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {out}: in use by another run (pid {os.getpid()} on ")
    assert "mapper search a.yaml --storage postgresql://alice:***@db/x" in line and "s3cret" not in line
    assert not (out / "best.json").exists()
    with run_folder.owning(out, "mapper run x.yaml"):  # networks, experiments and dataflow comparisons alike
        for args in (["search", *write_specs(tmp_path), "--trials", "2"],
                     ["run", str(ROOT / "specs/experiments/example.yaml")],
                     ["run", str(ROOT / "specs/experiments/eyeriss-dataflows.yaml")]):
            assert main([*args, "-o", str(out)]) == 2
            assert f"error: {out}: in use by another run (pid {os.getpid()} on " in error_line(capsys.readouterr().err)
    # the owner gone, the folder is free
    assert main(["search", *write_layer(tmp_path), "-o", str(out), "--trials", "2"]) == 0


def test_two_identical_network_searches_started_together_one_runs_and_the_answer_is_a_single_runs(
        tmp_path: Path, network_whole: tuple[list[str], Path]) -> None:
    specs, whole = network_whole
    args = ["search", *specs, *NETWORK, "-o", str(tmp_path / "out")]
    runs = [start(*args), start(*args)]
    results = [finish(run) for run in runs]

    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(text for code, text in results if code == 2)
    assert f"in use by another run (pid {runs[0].pid if results[0][0] == 0 else runs[1].pid} on " in \
        error_line(refused)
    assert best_mappings(tmp_path / "out") == best_mappings(whole)
    for layer in SEARCHED:  # the issue saw a layer end with 13 trials of 12
        assert completed_trials(tmp_path / "out" / "layers" / layer / "study.journal") == 30


def test_a_network_search_killed_with_its_process_group_resumes_to_the_undisturbed_answer(
        tmp_path: Path, network_whole: tuple[list[str], Path]) -> None:
    specs, whole = network_whole
    args = ["search", *specs, *NETWORK, "-o", str(tmp_path / "out")]
    search = start_in_own_group(*args)
    layers = tmp_path / "out" / "layers"
    wait_until(lambda: any(completed_trials(layers / name / "study.journal") >= 2 for name in SEARCHED),
               search, "two trials of a layer")
    os.killpg(search.pid, signal.SIGKILL)
    search.wait()

    assert (tmp_path / "out" / run_folder.LOCK_NAME).exists()  # left behind, and no obstacle
    resumed = start(*args)
    code, text = finish(resumed)
    assert code == 0, text
    assert best_mappings(tmp_path / "out") == best_mappings(whole)


def test_optunas_journal_lock_left_behind_does_not_block_a_resume(
        tmp_path: Path, layer_whole: tuple[list[str], dict]) -> None:
    """Optuna's own lock is a `study.journal.lock` symlink that a killed run leaves;
    the next run used to wait on it for ever."""
    specs, whole = layer_whole
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.journal").touch()
    (out / "study.journal.lock").symlink_to(out / "study.journal")
    code, text = finish(start("search", *specs, *LONG, "-o", str(out)))
    assert code == 0, text
    assert best_of(out) == whole


# ------------------------------------------------------------------- orphans


def child_pids(parent: int) -> set[int]:
    """The processes whose parent is `parent` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_the_worker_processes_die_with_a_main_process_killed_outright(
        tmp_path: Path, network_whole: tuple[list[str], Path]) -> None:
    specs, _ = network_whole
    search = start_in_own_group("search", *specs, "--trials", "400", "--patience", "0", "--jobs", "2",
                                "-o", str(tmp_path / "out"))
    layers = tmp_path / "out" / "layers"
    wait_until(lambda: sum(completed_trials(layers / name / "study.journal") >= 1 for name in SEARCHED) >= 2,
               search, "both workers searching")
    workers = {pid for pid in child_pids(search.pid)
               if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}
    assert len(workers) == 2

    os.kill(search.pid, signal.SIGKILL)
    search.wait()
    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


# ------------------------------------------------- full disks, unwritable targets


def test_a_full_disk_while_the_journal_is_written_is_one_line_and_the_search_resumes(
        tmp_path: Path, layer_whole: tuple[list[str], dict], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The write that fails leaves half a record, as a full disk does; it is cut off
    again, so that the journal reads back, and the next run ends where a run never
    stopped does."""
    specs, whole = layer_whole
    out = tmp_path / "out"
    writes, real = 0, storage._write_all

    def disk_full_at_the_40th_write(fd: int, data: bytes) -> None:
        nonlocal writes
        writes += 1
        if writes == 40:
            os.write(fd, data[:len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    monkeypatch.setattr(storage, "_write_all", disk_full_at_the_40th_write)
    assert main(["search", *specs, *LONG, "-o", str(out)]) == 2
    assert error_line(capsys.readouterr().err) == (
        f"error: {out / 'study.journal'}: no space left on device; free some space and run the same command "
        "again: it resumes")
    monkeypatch.undo()
    assert (out / "study.journal").read_bytes().endswith(b"\n")

    assert main(["search", *specs, *LONG, "-o", str(out)]) == 0
    assert best_of(out) == whole


def test_a_full_disk_while_the_results_are_written_is_one_line_naming_the_file(
        tmp_path: Path, layer_whole: tuple[list[str], dict], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    specs, whole = layer_whole
    out = tmp_path / "out"

    def disk_full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_folder, "_write_beside", disk_full)
    assert main(["search", *specs, *LONG, "-o", str(out)]) == 2
    assert error_line(capsys.readouterr().err).startswith(f"error: {out / 'search.json'}: no space left on device")
    monkeypatch.undo()
    assert main(["search", *specs, *LONG, "-o", str(out)]) == 0
    assert best_of(out) == whole


def test_a_result_written_to_a_link_replaces_the_file_it_names_and_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real.json")
    run_folder.write_atomically(tmp_path / "link.json", "new")
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_text() == "new"


def test_a_result_written_to_a_fifo_goes_through_it(tmp_path: Path) -> None:
    """`--json /dev/stdout` or a named pipe: a stream to write to, not a file to replace."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.append(fifo.read_text()))
    reader.start()
    run_folder.write_atomically(fifo, "through")
    reader.join(timeout=30)
    assert read == ["through"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_journal_whose_last_record_was_torn_resumes_to_the_undisturbed_answer(
        tmp_path: Path, layer_whole: tuple[list[str], dict]) -> None:
    """As a kill in the middle of a write leaves it: the journal of a finished search
    cut in the middle of a record, its results removed."""
    specs, whole = layer_whole
    out = tmp_path / "out"
    assert main(["search", *specs, *LONG, "-o", str(out)]) == 0
    journal = out / "study.journal"
    data = journal.read_bytes()
    cut = data.rfind(b"\n", 0, len(data) * 3 // 5) + 40  # 40 bytes into a record
    journal.write_bytes(data[:cut])
    for name in ("best.json", "best.txt", "best.map.yaml", "best.mapping.yaml"):
        (out / name).unlink()

    assert main(["search", *specs, *LONG, "-o", str(out)]) == 0
    assert best_of(out) == whole


def test_only_the_torn_records_at_the_end_of_a_journal_are_dropped(tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    journal.write_bytes(b'{"a":1}\n{"b":2}\n{"c":3')
    assert storage.drop_torn_tail(journal) and journal.read_bytes() == b'{"a":1}\n{"b":2}\n'
    journal.write_bytes(b'{"a":1}\n{"b":2}\n{"c":3{"d":4}\n')  # a torn record, and one written after it
    assert storage.drop_torn_tail(journal) and journal.read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert not storage.drop_torn_tail(journal) and journal.read_bytes() == b'{"a":1}\n{"b":2}\n'


def test_a_journal_damaged_before_its_last_record_is_one_line(
        tmp_path: Path, layer_whole: tuple[list[str], dict], capsys: pytest.CaptureFixture[str]) -> None:
    specs, _ = layer_whole
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.journal").write_bytes(b'{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}\n'
                                        b'not a record\n{"op_code": 99}\n')
    assert main(["search", *specs, "--trials", "2", "-o", str(out)]) == 2
    assert error_line(capsys.readouterr().err).startswith(f"error: {out / 'study.journal'}: a damaged record before "
                                                          "the last")


@pytest.mark.parametrize("code, said", [(errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")])
def test_an_output_folder_that_cannot_be_written_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], code: int,
        said: str) -> None:
    """Injected: as root (the tests may run as root) chmod does not stop a write."""
    out = tmp_path / "out"
    real_open = os.open

    def refused(path, flags, *args, **kwargs):
        if Path(path).parent == out:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(run_folder.os, "open", refused)
    assert main(["search", *write_layer(tmp_path), "-o", str(out), "--trials", "2"]) == 2
    assert error_line(capsys.readouterr().err).startswith(f"error: {out / run_folder.LOCK_NAME}: {said}; choose ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_output_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["search", *write_layer(tmp_path), "-o", str(out), "--trials", "2"]) == 2
    finally:
        out.chmod(0o755)
    assert "permission denied" in error_line(capsys.readouterr().err)


def test_a_journal_locked_by_another_process_is_waited_for_a_bounded_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The folder's owner is the only writer of its journals, so this takes a process
    that writes into the folder without owning it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "study.journal").touch()
    monkeypatch.setattr(storage, "JOURNAL_LOCK_WAIT_SECONDS", 0.5)
    fd = os.open(out / "study.journal", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert main(["search", *write_layer(tmp_path), "-o", str(out), "--trials", "2"]) == 2
    finally:
        os.close(fd)
    assert "another process has held its lock for over 0.5 s" in error_line(capsys.readouterr().err)


# ---------------------------------------------------------- output-path mistakes


def test_output_paths_of_the_wrong_kind_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file, a_folder = tmp_path / "a-file", tmp_path / "a-folder"
    a_file.write_text("kept\n")
    a_folder.mkdir()
    layer, network = write_layer(tmp_path / "layer"), write_specs(tmp_path / "network")
    experiment = ROOT / "specs/experiments/example.yaml"
    toy = [str(ROOT / "specs" / part) for part in ("arch/toy-3level.yaml", "workloads/tiny-conv.yaml",
                                                   "mappings/toy-3level-tiny-conv.yaml")]
    cases = {
        "search -o FILE": (["search", *layer, "-o", str(a_file), "--trials", "2"], f"{a_file}: found a file"),
        "network -o FILE": (["search", *network, "-o", str(a_file), "--trials", "2"], f"{a_file}: found a file"),
        "run -o FILE": (["run", str(experiment), "-o", str(a_file)], f"{a_file}: found a file"),
        "-o below a file": (["search", *layer, "-o", str(a_file / "sub"), "--trials", "2"],
                            f"{a_file / 'sub'}: part of the path is a file, not a folder"),
        "evaluate --json FOLDER": (["evaluate", *toy, "--json", str(a_folder)], f"{a_folder}: a folder, not a file"),
    }
    for case, (args, said) in cases.items():
        capsys.readouterr()
        assert main(args) == 2, case
        err = capsys.readouterr().err
        assert error_line(err).startswith(f"error: {said}"), (case, err)
    assert a_file.read_text() == "kept\n" and not any(a_folder.iterdir())


# ------------------------------------------------ what a folder's results are


def test_a_network_folder_refused_for_other_layers_says_their_constraints_may_be_it(tmp_path: Path) -> None:
    """A job's layers carry their constraints: a changed constraints file differs there."""
    record = tmp_path / run_folder.NETWORK_RECORD
    run_folder.keep_results_of(record, {"fingerprint": run_folder.fingerprint({"layers": ["conv, M=8"]})}, "job", "")
    with pytest.raises(SpecError, match=re.escape("another job (it differs in layers or their constraints)")):
        run_folder.keep_results_of(record, {"fingerprint": run_folder.fingerprint({"layers": ["conv, M=4"]})},
                                   "job", "")


def test_a_single_layer_search_refuses_a_folder_of_another_search(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    specs = write_layer(tmp_path / "conv")
    assert main(["search", *specs, "-o", str(out), "--trials", "3"]) == 0
    best = (out / "best.json").read_text()
    others = {"settings: seed 0 there, 4 here": [*specs, "--trials", "3", "--seed", "4"],
              "problem": [*write_layer(tmp_path / "mm", "mm_a"), "--trials", "3"]}
    for differs, args in others.items():
        capsys.readouterr()
        assert main(["search", *args, "-o", str(out)]) == 2
        line = error_line(capsys.readouterr().err)
        assert line.startswith(f"error: {out / 'search.json'}: fingerprint: found the results of another search "
                               f"(it differs in {differs})"), line
    assert (out / "best.json").read_text() == best
    assert main(["search", *specs, "-o", str(out), "--trials", "3"]) == 0  # the same search is welcome


def test_a_layer_search_and_a_network_search_refuse_each_others_folders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layer, network = write_layer(tmp_path / "conv"), write_specs(tmp_path / "net")
    for k, (first, second) in enumerate(((layer, network), (network, layer))):
        out = tmp_path / f"out{k}"
        assert main(["search", *first, "-o", str(out), "--trials", "3", "--jobs", "1"]) == 0
        capsys.readouterr()
        assert main(["search", *second, "-o", str(out), "--trials", "3", "--jobs", "1"]) == 2
        line = error_line(capsys.readouterr().err)
        assert line.startswith(f"error: {out}: found the results of another kind of run"), line
        assert not ((out / "search.json").is_file() and (out / "network.json").is_file())


# ---------------------------------------------------------- stopping is bounded


def test_a_stop_deferred_while_the_storage_is_written_comes_within_the_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A storage call that never returns (a lock never released, a database out of
    reach) no longer holds back the one signal that asks to stop."""
    monkeypatch.setattr(interrupt, "DEFER_LIMIT_SECONDS", 0.2)

    def waiting_for_ever(frame) -> bool:
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return False

    with pytest.raises(interrupt.Interrupted), interrupt.stopping_on_signals():
        judged_in(waiting_for_ever, "mapper.search.engine", "optuna.storages.journal._storage")


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 256 KiB tmpfs (needs root and `mount`; skipped elsewhere), and a way to grow it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)

    try:
        yield disk, grow
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_real_full_disk_is_one_line_and_the_search_resumes_once_there_is_space(
        small_disk, layer_whole: tuple[list[str], dict], capsys: pytest.CaptureFixture[str]) -> None:
    (disk, grow), (specs, whole) = small_disk, layer_whole
    out = disk / "out"
    assert main(["search", *specs, *LONG, "-o", str(out)]) == 2
    assert ": no space left on device; free some space and run the same command again: it resumes" in \
        error_line(capsys.readouterr().err)
    grow()
    assert main(["search", *specs, *LONG, "-o", str(out)]) == 0
    assert best_of(out) == whole


def test_the_journal_writes_a_trial_once_and_a_trial_cut_short_leaves_no_trace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = []
    real = storage.Journal._write
    monkeypatch.setattr(storage.Journal, "_write", lambda self, logs: (writes.append(len(logs)), real(self, logs)))
    path = tmp_path / "study.journal"
    study = optuna.create_study(storage=JournalStorage(storage.Journal(path)), study_name="s")
    before = len(writes)
    trial = study.ask()
    for name in "abcde":
        trial.suggest_int(name, 0, 9)
    trial.set_user_attr("found", [1, 2])
    study.tell(trial, 1.0)
    assert len(writes) == before + 1 and writes[-1] == 8  # created, 5 parameters, 1 attribute, told

    cut_short = study.ask()  # a kill now: its records were never written
    cut_short.suggest_int("a", 0, 9)
    reopened = optuna.load_study(storage=JournalStorage(storage.Journal(path)), study_name="s")
    assert [(t.state, t.params) for t in reopened.get_trials()] == [(TrialState.COMPLETE, trial.params)]
