"""Network search (`mapper search` on a workload of several layers): each shape is
searched once and its answer given to every layer of that shape; a job killed midway
resumes and completes with every layer searched exactly once; the results do not
depend on how many worker processes ran; the summary adds up the layers."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from mapper import network
from mapper.cli import LiveDisplay, main
from mapper.network import (
    Layer,
    LayerProgress,
    NetworkEvent,
    NetworkJob,
    ShapeReport,
    ShapeTask,
    one_line,
    read_progress,
    run_network,
    search_shape,
    shape_key,
    worker_pool,
)
from mapper.search.engine import search_trials
from mapper.search.run import Settings
from mapper.specs.load import load_specs
from mapper.specs.files import shipped_specs_dir
from mapper.specs.native import load_native
from mapper.typed_json import to_json

ROOT = Path(__file__).resolve().parents[1]
TOY_ARCH = shipped_specs_dir() / "arch/toy-3level.yaml"
# At most 8 trials per shape, fewer where 5 in a row bring no progress: `first` stops
# at 6, `other` and `last` run all 8.
BUDGET = ["--trials", "8", "--patience", "5"]

# Made up for these tests: `twin` and `third` have the shape of `first` under other
# names; `other` and `last` have shapes of their own.
WORKLOAD = """\
workload:
  name: tiny-net
  layers:
    - conv: {name: first, C: 2, M: 4, P: 4, Q: 4, R: 3, S: 3}
    - conv: {name: other, C: 4, M: 2, P: 2, Q: 2, R: 1, S: 1}
    - conv: {name: twin, C: 2, M: 4, P: 4, Q: 4, R: 3, S: 3}
    - conv: {name: last, C: 4, M: 4, P: 2, Q: 2, R: 1, S: 1}
    - conv: {name: third, C: 2, M: 4, P: 4, Q: 4, R: 3, S: 3}
"""
LAYERS = ["first", "other", "twin", "last", "third"]
SEARCHED = ["first", "other", "last"]


def workload(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-net.yaml"
    path.write_text(WORKLOAD)
    return path


def search(tmp_path: Path, out: Path, *extra: str) -> int:
    return main(["search", str(TOY_ARCH), str(workload(tmp_path)), "-o", str(out), *BUDGET, *extra])


def completed_trials(layer_folder: Path) -> int:
    """The search trials of the layer's study (the polish's not counted)."""
    storage = JournalStorage(JournalFileBackend(str(layer_folder / "study.journal")))
    (study,) = optuna.get_all_study_summaries(storage)
    return len(search_trials(optuna.load_study(study_name=study.study_name, storage=storage)))


def best(out: Path, layer: str) -> dict:
    return json.loads((out / "layers" / layer / "best.json").read_text())


@pytest.fixture(scope="module")
def network_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """One search of the tiny network with two workers: (its folder, stdout, stderr)."""
    tmp_path = tmp_path_factory.mktemp("network")
    command = [sys.executable, "-m", "mapper.cli", "search", str(TOY_ARCH), str(workload(tmp_path)),
               "-o", str(tmp_path / "out"), *BUDGET, "--jobs", "2"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return tmp_path / "out", done.stdout, done.stderr


def copy_of(network_run: tuple[Path, str, str], tmp_path: Path) -> Path:
    """A copy of the shared run's folder, for a test that changes it."""
    shutil.copytree(network_run[0], tmp_path / "out")
    return tmp_path / "out"


def test_layers_of_one_shape_are_searched_once_and_share_the_answer(network_run: tuple[Path, str, str]) -> None:
    out, _, err = network_run
    # a study (the trace of a search) only where a shape was searched
    assert sorted(p.parent.name for p in out.glob("layers/*/study.journal")) == sorted(SEARCHED)
    assert [completed_trials(out / "layers" / name) for name in SEARCHED] == [6, 8, 8]
    assert [best(out, name)["search"]["stopped_by"] for name in SEARCHED] == ["patience", "trials", "trials"]
    assert "first (+2 of the same shape)" in err and err.count("trials,") == 3
    for copy in ("twin", "third"):
        found = best(out, copy)
        assert found["search"]["same_shape_as"] == "first"
        for key in ("energy_pJ", "cycles", "utilization", "mapping", "levels"):
            assert found[key] == best(out, "first")[key]
        for name in ("best.mapping.yaml", "best.map.yaml", "best.txt"):
            assert (out / "layers" / copy / name).is_file()
        assert "layer twin" in (out / "layers" / "twin" / "best.mapping.yaml").read_text()


def test_a_shape_is_the_problem_without_its_name(tmp_path: Path) -> None:
    problems = load_native([workload(tmp_path)])["problems"]
    keys = [shape_key(Layer(p)) for p in problems]
    assert keys[0] == keys[2] == keys[4]
    assert len(set(keys)) == 3


def test_the_summary_has_every_layer_once_and_totals_that_add_up(network_run: tuple[Path, str, str]) -> None:
    out, printed, _ = network_run
    summary = json.loads((out / "summary.json").read_text())
    assert [row["layer"] for row in summary["layers"]] == LAYERS
    rows = {row["layer"]: row for row in summary["layers"]}
    for name in LAYERS:
        b = best(out, name)
        assert rows[name]["energy_pJ"] == b["energy_pJ"] and rows[name]["cycles"] == b["cycles"]
        assert rows[name]["pJ_per_MAC"] == pytest.approx(b["energy_pJ"] / b["computes"])
        assert rows[name]["edp_J_cycles"] == pytest.approx(b["edp_J_cycles"])
        assert rows[name]["mapping"] == one_line(b["mapping"])
        # the breakdowns account for all of the layer's energy
        for key in ("energy_by_level_pJ", "energy_by_tensor_pJ"):
            assert sum(rows[name][key].values()) == pytest.approx(b["energy_pJ"])
    t = summary["totals"]
    assert t["energy_pJ"] == pytest.approx(sum(best(out, n)["energy_pJ"] for n in LAYERS))
    assert t["cycles"] == sum(best(out, n)["cycles"] for n in LAYERS)
    assert t["macs"] == sum(best(out, n)["computes"] for n in LAYERS)
    assert t["edp_J_cycles"] == pytest.approx(sum(best(out, n)["edp_J_cycles"] for n in LAYERS))
    # utilization of the whole run: MACs over MAC-cycles (the toy has 4 MACs)
    assert t["utilization"] == pytest.approx(t["macs"] / (4 * t["cycles"]))
    with open(out / "summary.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["layer"] for r in table] == [*LAYERS, "TOTAL"]
    markdown = (out / "summary.md").read_text()
    assert markdown in printed
    assert "| twin (= first) |" in markdown and "**total**" in markdown


def test_the_same_seed_gives_the_same_results_with_one_or_two_workers(network_run: tuple[Path, str, str],
                                                                      tmp_path: Path) -> None:
    one, two = tmp_path / "one", network_run[0]
    assert search(tmp_path, one, "--jobs", "1") == 0
    assert json.loads((one / "summary.json").read_text()) == json.loads((two / "summary.json").read_text())
    for name in LAYERS:
        assert (one / "layers" / name / "best.mapping.yaml").read_text() == \
            (two / "layers" / name / "best.mapping.yaml").read_text()


def test_a_job_killed_midway_resumes_and_searches_every_layer_exactly_once(network_run: tuple[Path, str, str],
                                                                           tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mapper.cli", "search", str(TOY_ARCH), str(workload(tmp_path)), "-o", str(out),
               *BUDGET, "--jobs", "1"]
    job = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "layers/first/best.json").is_file() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGKILL)  # the main process and its worker, with no chance to clean up
    job.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("layers/*/best.json")}
    assert "first" in finished and len(finished) < len(LAYERS), "the kill must come midway"

    assert subprocess.run(command, cwd=ROOT, capture_output=True, check=False).returncode == 0
    for name, stamp in finished.items():  # finished layers are not redone
        assert (out / "layers" / name / "best.json").stat().st_mtime_ns == stamp
    # every searched layer's study has exactly the completed trials of the run never
    # killed (with two workers): the interrupted one went on from where it stopped, and
    # stopped where that run did
    assert [completed_trials(out / "layers" / name) for name in SEARCHED] == \
        [completed_trials(network_run[0] / "layers" / name) for name in SEARCHED]
    summary = json.loads((out / "summary.json").read_text())
    assert [row["layer"] for row in summary["layers"]] == LAYERS and not summary["failed"]


def test_a_lost_result_of_a_copied_layer_is_written_again_without_a_search(network_run: tuple[Path, str, str],
                                                                          tmp_path: Path) -> None:
    out = copy_of(network_run, tmp_path)
    kept = (out / "layers/twin/best.json").read_text()
    journal = (out / "layers/first/study.journal").stat().st_mtime_ns
    (out / "layers/twin/best.json").unlink()
    assert search(tmp_path, out) == 0
    assert (out / "layers/twin/best.json").read_text() == kept
    assert (out / "layers/first/study.journal").stat().st_mtime_ns == journal


def test_a_broken_result_of_a_copied_layer_is_one_line_naming_it(
        network_run: tuple[Path, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = copy_of(network_run, tmp_path)
    broken = out / "layers/twin/best.json"
    broken.write_text(broken.read_text()[:100])  # cut short by a hand or a tool
    assert search(tmp_path, out) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"error: {broken}: found a file that is not JSON")
    assert "Traceback" not in err


def test_the_other_layers_of_a_shape_take_the_evaluation_of_the_searched_layer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not evaluated again: under a remainder that is a walk of the loop nest per layer."""
    specs = load_specs([TOY_ARCH, workload(tmp_path)])
    first, twin = specs.problems[0], specs.problems[2]
    task = ShapeTask(specs.architecture, None, Settings(trials=4),
                     ((first, tmp_path / "layers/first"), (twin, tmp_path / "layers/twin")))
    monkeypatch.setattr(network, "evaluate_mapping", lambda *_: pytest.fail("the same shape evaluated again"))
    search_shape(task)
    for key in ("energy_pJ", "cycles", "mapping", "levels"):
        assert best(tmp_path, "twin")[key] == best(tmp_path, "first")[key]


def test_a_folder_of_another_job_is_refused(network_run: tuple[Path, str, str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = copy_of(network_run, tmp_path)
    assert search(tmp_path, out, "--seed", "2") == 2
    err = capsys.readouterr().err
    assert "network.json" in err and "differs in settings" in err and "Traceback" not in err


def test_layer_selects_the_layers_to_search(tmp_path: Path) -> None:
    # Several --layer: a network of those layers only, in the workload's order.
    assert search(tmp_path, tmp_path / "two", "--layer", "last", "--layer", "other") == 0
    summary = json.loads((tmp_path / "two/summary.json").read_text())
    assert [row["layer"] for row in summary["layers"]] == ["other", "last"]
    # One --layer: a one-layer search, its files in -o DIR itself.
    assert search(tmp_path, tmp_path / "one", "--layer", "twin") == 0
    assert json.loads((tmp_path / "one/search.json").read_text())["layer"] == "twin"


def test_an_unknown_layer_is_named_with_the_closest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert search(tmp_path, tmp_path / "out", "--layer", "frist") == 2
    err = capsys.readouterr().err
    assert "--layer: found layer 'frist'" in err and "did you mean 'first'?" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_layer_without_a_valid_mapping_is_reported_and_the_others_are_searched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "net.yaml").write_text("workload:\n  layers:\n"
                                       "    - conv: {name: fits, C: 2, M: 4, P: 2, Q: 2, R: 1, S: 1}\n"
                                       "    - conv: {name: odd, C: 3, M: 3, P: 3, Q: 3, R: 1, S: 1}\n")
    # every one of the toy's 4 MACs busy: no unrolling of odd's dimensions of 3 does that
    (tmp_path / "full.yaml").write_text("constraints: {min_utilization: 1.0}\n")
    out = tmp_path / "out"
    status = main(["search", str(TOY_ARCH), str(tmp_path / "net.yaml"), str(tmp_path / "full.yaml"), "-o", str(out),
                   *BUDGET, "--jobs", "1"])
    assert status == 2
    summary = json.loads((out / "summary.json").read_text())
    assert [row["layer"] for row in summary["layers"]] == ["fits"]
    assert list(summary["failed"]) == ["odd"] and summary["failed"]["odd"]
    assert "- odd: no mapping: " in capsys.readouterr().out


def test_a_network_with_no_layer_mapped_has_no_totals_not_zeros(tmp_path: Path) -> None:
    """Zeros would rank first among networks compared by their totals (an experiment's
    summary.csv); there is nothing to total."""
    (tmp_path / "net.yaml").write_text("workload:\n  layers:\n"
                                       "    - conv: {name: odd, C: 3, M: 3, P: 3, Q: 3, R: 1, S: 1}\n"
                                       "    - conv: {name: odder, C: 3, M: 3, P: 5, Q: 5, R: 1, S: 1}\n")
    (tmp_path / "full.yaml").write_text("constraints: {min_utilization: 1.0}\n")
    out = tmp_path / "out"
    assert main(["search", str(TOY_ARCH), str(tmp_path / "net.yaml"), str(tmp_path / "full.yaml"), "-o", str(out),
                 *BUDGET, "--jobs", "1"]) == 2
    totals = json.loads((out / "summary.json").read_text())["totals"]
    assert totals["layers_mapped"] == 0 and all(totals[k] is None for k in ("energy_pJ", "cycles", "edp_J_cycles",
                                                                            "network_edp_J_cycles"))
    (total,) = [row for row in csv.DictReader((out / "summary.csv").open()) if row["layer"] == "TOTAL"]
    assert total["energy_pJ"] == total["cycles"] == total["edp_J_cycles"] == ""


@pytest.mark.parametrize("constraint", ["Buffer: {y_dims: [C]}", "Register: {temporal: C=1}"])
def test_a_layer_the_constraints_cannot_apply_to_is_skipped_before_any_search(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], constraint: str) -> None:
    """A matmul has no C: the conv is searched, the matmul listed with the key that names C."""
    (tmp_path / "net.yaml").write_text("workload:\n  layers:\n"
                                       "    - conv: {name: conv, C: 2, M: 4, P: 2, Q: 2, R: 1, S: 1}\n"
                                       "    - matmul: {name: mm, M: 4, N: 4, K: 8}\n")
    (tmp_path / "c.yaml").write_text(f"constraints:\n  levels:\n    {constraint}\n")
    out = tmp_path / "out"
    status = main(["search", str(TOY_ARCH), str(tmp_path / "net.yaml"), "--constraints", str(tmp_path / "c.yaml"),
                   "-o", str(out), *BUDGET, "--jobs", "1"])
    assert status == 2
    summary = json.loads((out / "summary.json").read_text())
    assert [row["layer"] for row in summary["layers"]] == ["conv"] and summary["failed"] == {}
    key = "constraints.levels." + constraint.split(":")[0] + (".y_dims" if "y_dims" in constraint else ".temporal")
    assert summary["skipped"] == {"mm": f"{key} names dimension 'C', not a dimension of problem 'mm': M, N, K"}
    assert summary["totals"]["layers"] == 2 and summary["totals"]["layers_mapped"] == 1
    captured = capsys.readouterr()
    assert f"mm: skipped, the constraints do not apply: {key} names dimension 'C'" in captured.err
    assert f"- mm: skipped, the constraints do not apply: {key}" in captured.out
    assert not (out / "layers" / "mm").exists()  # checked before searching, not found by the search


def test_constraints_that_apply_to_no_layer_are_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "net.yaml").write_text("workload:\n  layers:\n    - matmul: {name: mm, M: 4, N: 4, K: 8}\n"
                                       "    - matmul: {name: mm2, M: 8, N: 4, K: 8}\n")
    (tmp_path / "c.yaml").write_text("constraints:\n  levels:\n    Buffer: {y_dims: [C]}\n")
    assert main(["search", str(TOY_ARCH), str(tmp_path / "net.yaml"), "--constraints", str(tmp_path / "c.yaml"),
                 "-o", str(tmp_path / "out"), *BUDGET]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "constraints.levels.Buffer.y_dims: found dimension 'C'" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_the_search_of_a_network_reports_each_shape_in_work_as_it_goes(tmp_path: Path) -> None:
    specs = load_specs([TOY_ARCH, workload(tmp_path)])
    job = NetworkJob("net", specs.architecture, tuple(Layer(p) for p in specs.problems[:2]),
                     Settings(seconds=2.5, patience=None), tmp_path / "out")
    events: list[NetworkEvent] = []
    with worker_pool(1) as pool:
        run_network(job, pool, on_progress=events.append)
    layers = {e.progress.layer for e in events if e.progress is not None}
    assert layers == {p.name for p in specs.problems[:2]}  # each searched for 2.5 s: seen at work
    assert all(e.kind == "progress" and e.progress.trials >= 1 and e.progress.energy_pJ > 0 for e in events)
    assert not list((tmp_path / "out").glob("layers/*/progress.json"))  # gone with the search


def test_progress_a_killed_run_left_behind_is_not_shown(tmp_path: Path) -> None:
    (tmp_path / "progress.json").write_text(json.dumps(to_json(LayerProgress("a", 3, 8, 1.0, False, 1.0, 2))))
    assert read_progress(tmp_path, since=0) == LayerProgress("a", 3, 8, 1.0, False, 1.0, 2)
    os.utime(tmp_path / "progress.json", (time.time() - 60, time.time() - 60))
    assert read_progress(tmp_path, since=time.time() - 30) is None


def test_a_log_gets_the_status_as_lines_with_an_estimate_of_what_is_left(capsys: pytest.CaptureFixture[str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LiveDisplay, "LOG_PERIOD", 0.0)
    report = ShapeReport(("conv_a",), True)
    with LiveDisplay("net") as display:
        display.finished("[1/3] conv_a: done", NetworkEvent("searched", report, 1, 3, "pJ"))
        display.progress(NetworkEvent("progress", ShapeReport(("conv_b",), True), 1, 3, "pJ",
                                      progress=LayerProgress("conv_b", 4, 300, 2.0, True, 5e6, 1000)))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[1/3] conv_a: done"
    assert err[1].startswith("net: 0 s, 1/3 shapes done, about 0 s left")
    assert err[2] == "  conv_b: trial 4/300, polishing, 2 s, best EDP 0.005 J*cycles"  # 5 uJ x 1000 cycles
