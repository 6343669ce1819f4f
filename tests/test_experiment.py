"""`mapper run EXPERIMENT.yaml`: every cell of the sweep is searched (or said not to
apply), the summary tables and the plots are written, a second run redoes nothing,
and a mistake in the experiment file exits 2 naming its key path."""

from __future__ import annotations

import csv
import json
import shutil
import textwrap
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from mapper.cli import main
from mapper.experiment import load_experiment
from mapper.plots import experiment_plots
from mapper.search.run import Settings

PNG = b"\x89PNG\r\n\x1a\n"
NET = """\
workload:
  layers:
    - conv: {name: wide, C: 2, M: 4, P: 4, Q: 4, R: 3, S: 3}
    - conv: {name: deep, C: 8, M: 4, P: 2, Q: 2, R: 1, S: 1}
"""
# eyeriss-row-stationary names Eyeriss' levels: it does not apply to the toy
EXPERIMENT = """\
name: tiny
description: a made-up sweep for the tests
architectures: [toy-3level]
workloads:
  - {workload: net.yaml, name: net}
dataflows: [output-stationary, eyeriss-row-stationary]
objectives: [edp, pareto]
search: {trials: 8, seed: 0}
"""


def write_experiment(folder: Path, text: str = EXPERIMENT) -> Path:
    (folder / "net.yaml").write_text(NET)
    path = folder / "experiment.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def experiment_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The tiny experiment, run once: (its file, its results folder, what it printed)."""
    folder = tmp_path_factory.mktemp("experiment")
    path, out = write_experiment(folder), folder / "results"
    printed = StringIO()
    with redirect_stdout(printed):
        assert main(["run", str(path), "-o", str(out), "--jobs", "2"]) == 0
    return path, out, printed.getvalue()


def test_every_cell_is_searched_or_said_not_to_apply(experiment_run: tuple[Path, Path, str]) -> None:
    _, out, printed = experiment_run
    cells = json.loads((out / "summary.json").read_text())["cells"]
    assert [(c["dataflow"], c["objective"]) for c in cells] == [
        ("output-stationary", "edp"), ("output-stationary", "pareto"),
        ("eyeriss-row-stationary", "edp"), ("eyeriss-row-stationary", "pareto")]
    assert [c["status"] for c in cells[:2]] == ["complete", "complete"]
    assert all(c["status"].startswith("not applicable: the constraints do not fit toy-3level") for c in cells[2:])
    for cell in cells[:2]:
        assert [l["layer"] for l in cell["layers"]] == ["wide", "deep"]
        network = json.loads((out / cell["folder"] / "summary.json").read_text())
        assert cell["totals"] == network["totals"]
    assert (out / "cells/toy-3level/net/output-stationary/pareto/layers/wide/pareto.json").is_file()
    assert (out / "summary.md").read_text() in printed


def test_the_tables_have_a_row_per_cell_and_per_layer(experiment_run: tuple[Path, Path, str]) -> None:
    _, out, _ = experiment_run
    with open(out / "summary.csv") as f:
        cells = list(csv.DictReader(f))
    assert len(cells) == 4 and cells[0]["layers_mapped"] == "2" and cells[2]["energy_pJ"] == ""
    # the energies' unit beside them, as summary.json has it: cells of one experiment may differ
    units = [c["energy_unit"] for c in json.loads((out / "summary.json").read_text())["cells"]]
    assert [c["energy_unit"] for c in cells] == units and all(units)
    with open(out / "layers.csv") as f:
        layers = list(csv.DictReader(f))
    assert [(r["objective"], r["layer"]) for r in layers] == [("edp", "wide"), ("edp", "deep"),
                                                              ("pareto", "wide"), ("pareto", "deep")]
    assert {r["energy_unit"] for r in layers} == {units[0]}
    markdown = (out / "summary.md").read_text()
    assert markdown.count("| toy-3level | net |") == 4


def test_the_plots_are_written(experiment_run: tuple[Path, Path, str]) -> None:
    _, out, _ = experiment_run
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == ["energy-delay-net.png", "energy-toy-3level-net-output-stationary-edp.png",
                     "energy-toy-3level-net-output-stationary-pareto.png"]
    for name in plots:
        data = (out / "plots" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000


def test_running_it_again_redoes_nothing(experiment_run: tuple[Path, Path, str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path, out, _ = experiment_run
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("cells/**/best.json")}
    summary = (out / "summary.json").read_text()
    assert main(["run", str(path), "-o", str(out), "--jobs", "2"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("cells/**/best.json")} == stamps
    assert (out / "summary.json").read_text() == summary
    err = capsys.readouterr().err
    assert err.count("(searched earlier)") == 4 and "trials," not in err


def test_plots_of_cells_no_longer_in_the_experiment_are_removed(experiment_run: tuple[Path, Path, str],
                                                                 tmp_path: Path) -> None:
    """Run again with fewer cells into the same folder, the plots of the cells left out
    would pass for this run's; a file of the user's in plots/ stays."""
    _, out, _ = experiment_run
    shutil.copytree(out / "plots", tmp_path / "plots")
    (tmp_path / "plots" / "energy-gone-cell.png").write_bytes(PNG)
    (tmp_path / "plots" / "mine.png").write_bytes(PNG)
    written = experiment_plots(tmp_path, json.loads((out / "summary.json").read_text()))
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted([p.name for p in written] + ["mine.png"])


def test_a_cell_with_a_layer_no_mapping_fits_makes_the_run_exit_2(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """As `mapper search` on such a network: the other cells and layers are searched and
    written, the status says which layer, and a batch job does not pass for finished."""
    (tmp_path / "full.yaml").write_text("constraints: {min_utilization: 1.0}\n")  # 4 MACs busy: no 3 x 3 does
    text = EXPERIMENT.replace("[output-stationary, eyeriss-row-stationary]", "[unconstrained, full.yaml]")
    path = write_experiment(tmp_path, text.replace("[edp, pareto]", "[edp]"))
    (tmp_path / "net.yaml").write_text(NET + "    - conv: {name: odd, C: 3, M: 3, P: 3, Q: 3, R: 1, S: 1}\n")
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--jobs", "1"]) == 2
    cells = {row["dataflow"]: row for row in json.loads((tmp_path / "out" / "summary.json").read_text())["cells"]}
    assert cells["unconstrained"]["status"] == "complete" and cells["unconstrained"]["unmapped"] == []
    assert cells["full"]["unmapped"] == ["odd"] and "1 layer(s) without a mapping: odd" in cells["full"]["status"]
    assert "1 cell(s) with layers that no mapping fits (their status above): toy-3level / net / full / edp" in \
        capsys.readouterr().err


@pytest.mark.parametrize("change, key_path, found", [
    (("architectures:", "architecture:"), "architecture", "did you mean 'architectures'?"),
    (("[edp, pareto]", "[edp, speed]"), "objectives[1]", "'speed'"),
    (("[toy-3level]", "[toy-4level]"), "architectures[0]", "'toy-4level', no such file"),
    (("[toy-3level]", "[]"), "architectures", "found an empty list; allowed: a non-empty list"),
    (("{workload: net.yaml, name: net}", "{workload: net.yaml, layers: [wide, dep]}"), "workloads[0].layers[1]",
     "did you mean 'deep'?"),
    (("{workload: net.yaml, name: net}", "net.yaml\n  - net.yaml"), "workloads[1]", "'net' a second time"),
    (("[output-stationary,", "[output-stationery,"), "dataflows[0]", "did you mean 'output-stationary'?"),
    (("{trials: 8, seed: 0}", "{trials: 0, seed: 0}"), "search.trials", "found 0"),
    (("{trials: 8, seed: 0}", "{trials: 8, sed: 0}"), "search.sed", "an unknown key"),
    (("{trials: 8, seed: 0}", "{trials: 8, seeds: 0}"), "search.seeds", "found 0"),
    (("{trials: 8, seed: 0}", "{seed: 4294967295, seeds: 2}"), "search.seeds", "seeds 4294967295 to 4294967296"),
    (("{trials: 8, seed: 0}", "{trials: 8, remainder_searches: 0}"), "search.remainder_searches", "found 0"),
    (("{trials: 8, seed: 0}", "{trials: 8, fusion: true}"), "search.fusion", "true with objective pareto"),
])
def test_a_mistake_in_the_experiment_exits_2_with_its_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                change: tuple[str, str], key_path: str,
                                                                found: str) -> None:
    assert change[0] in EXPERIMENT
    path = write_experiment(tmp_path, EXPERIMENT.replace(*change))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {key_path}: ") and found in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # checked before anything runs


def test_the_search_settings_are_mapper_searchs(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, EXPERIMENT.replace("{trials: 8, seed: 0}", "{trials: 8, remainder_searches: 3}"))
    assert load_experiment(path).settings == Settings(trials=8, remainder_searches=3)
    path = write_experiment(tmp_path, EXPERIMENT.replace("{trials: 8, seed: 0}", "{trials: 8, seed: 2, seeds: 3}"))
    assert load_experiment(path).settings == Settings(trials=8, seed=2, seeds=3)


def test_a_dataflow_or_architecture_a_layer_cannot_use_makes_its_cell_not_applicable(tmp_path: Path) -> None:
    # weight-stationary keeps the tensor named Weights in the PEs, and tpu-like's
    # levels are wired for Weights, Inputs and Outputs: this layer has A, B and Z
    (tmp_path / "ab.yaml").write_text(textwrap.dedent("""\
        problem:
          name: ab
          dimensions: {M: 4, N: 4, K: 8}
          tensors:
            - {name: A, ranks: [M, K]}
            - {name: B, ranks: [K, N]}
            - {name: Z, ranks: [M, N], read_write: true}
        """))
    text = textwrap.dedent("""\
        name: no-weights
        architectures: [toy-3level, tpu-like]
        workloads: [ab.yaml]
        dataflows: [weight-stationary, unconstrained]
        search: {trials: 8}
        """)
    out = tmp_path / "out"
    assert main(["run", str(write_experiment(tmp_path, text)), "-o", str(out), "--jobs", "1"]) == 0
    cells = json.loads((out / "summary.json").read_text())["cells"]
    assert cells[0]["status"].startswith("not applicable: weight-stationary on toy-3level, layer ab: ")
    assert "Weights" in cells[0]["status"]
    assert cells[1]["status"] == "complete" and cells[1]["layers"][0]["layer"] == "ab"
    for cell in cells[2:]:
        assert cell["architecture"] == "tpu-like"
        assert cell["status"].startswith("not applicable: tpu-like's architecture.levels[1].keeps names ")


def test_layers_a_constraints_file_cannot_apply_to_are_skipped_and_the_cell_still_searched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mixed.yaml").write_text("workload:\n  layers:\n"
                                         "    - conv: {name: conv, C: 2, M: 4, P: 2, Q: 2, R: 1, S: 1}\n"
                                         "    - matmul: {name: mm, M: 4, N: 4, K: 8}\n")
    (tmp_path / "only-c-along-y.yaml").write_text("constraints:\n  levels:\n    Buffer: {y_dims: [C]}\n")
    text = textwrap.dedent("""\
        name: mixed
        architectures: [toy-3level]
        workloads: [mixed.yaml]
        dataflows: [only-c-along-y.yaml]
        search: {trials: 4}
        """)
    out = tmp_path / "out"
    assert main(["run", str(write_experiment(tmp_path, text)), "-o", str(out), "--jobs", "1"]) == 0
    assert ("  mm: skipped, the constraints do not apply: constraints.levels.Buffer.y_dims names dimension 'C'"
            in capsys.readouterr().err)
    (cell,) = json.loads((out / "summary.json").read_text())["cells"]
    assert cell["status"] == "1 layer(s) skipped, the constraints do not apply: mm"
    assert [layer["layer"] for layer in cell["layers"]] == ["conv"]
    network = json.loads((out / cell["folder"] / "summary.json").read_text())
    assert network["skipped"] == {"mm": "constraints.levels.Buffer.y_dims names dimension 'C', not a dimension of "
                                        "problem 'mm': M, N, K"}


@pytest.mark.parametrize("constraints, key_path", [
    ("constraints: {min_utilisation: 0.5}\n", "constraints.min_utilisation"),
    ("constraints: {min_utilization: 1.5}\n", "constraints.min_utilization"),
])
def test_a_mistake_in_a_dataflows_constraints_file_exits_2_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], constraints: str, key_path: str) -> None:
    """Not a cell "not applicable" after the others ran: whether a file fits a cell's
    architecture is the cell's, but a key misspelt or a value out of range is the file's."""
    (tmp_path / "mine.yaml").write_text(constraints)
    path = write_experiment(tmp_path, EXPERIMENT.replace("[output-stationary, eyeriss-row-stationary]",
                                                         "[output-stationary, mine.yaml]"))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'mine.yaml'}: {key_path}: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
