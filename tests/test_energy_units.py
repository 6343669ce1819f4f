"""Energies are shown in the unit of the energy table they come from: pJ by default,
`MAC` for a table normalized to one MAC (specs/energy/eyeriss-normalized.yaml). EDP
is J*cycles only for pJ, else energy x cycles in <unit>*cycles. The JSON keys keep
their names (`energy_pJ`, `edp_J_cycles`) and gain an `energy_unit` beside them."""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from timeloop_reference import REFERENCE

from mapper.cli import main
from mapper.experiment import summary_markdown as experiment_markdown
from mapper.network import (
    NetworkEvent,
    ShapeReport,
    event_text,
    layer_row,
    summary_markdown,
    totals,
)
from mapper.plots import energy_breakdown, energy_delay
from mapper.specs.errors import SpecError
from mapper.specs.load import load_specs
from mapper.specs.native import load_native
from mapper.specs.native.energy_tables import load_energy_table

SPECS = Path(__file__).resolve().parents[1] / "specs"
TOY = [str(SPECS / "arch/toy-3level.yaml"), str(SPECS / "workloads/tiny-conv.yaml")]
TOY_MAPPING = str(SPECS / "mappings/toy-3level-tiny-conv.yaml")
TOTALS = re.compile(r"energy (\S+) (\S+)  \((\S+) (\S+)\)  cycles (\d+) .* EDP (\S+) (\S+)")


def toy_in_pj(tmp_path: Path) -> list[str]:
    """toy-3level with the same entries in a table without a symbol (so in pJ)."""
    table = (SPECS / "energy/eyeriss-normalized.yaml").read_text().replace("symbol: MAC\n", "")
    (tmp_path / "entries-in-pj.yaml").write_text(table)
    arch = (SPECS / "arch/toy-3level.yaml").read_text().replace("energy_table: eyeriss-normalized",
                                                                 "energy_table: entries-in-pj")
    (tmp_path / "toy.yaml").write_text(arch)
    return [str(tmp_path / "toy.yaml"), TOY[1]]


def evaluate(files: list[str], capsys: pytest.CaptureFixture[str], json_path: Path) -> tuple[str, dict]:
    assert main(["evaluate", *files, TOY_MAPPING, "--json", str(json_path)]) == 0
    return capsys.readouterr().out, json.loads(json_path.read_text())


# -- the table and the architecture ----------------------------------------------------

def test_architectures_on_the_normalized_table_are_in_macs_the_others_in_pj() -> None:
    expected = {"toy-3level": "MAC", "eyeriss": "MAC", "tpu-like": "MAC", "eyeriss-dataflows/rs": "MAC",
                "eyeriss-like": "pJ", "simba-like": "pJ"}
    units = {arch: load_native([SPECS / "arch" / f"{arch}.yaml"])["architecture"].energy_unit for arch in expected}
    assert units == expected
    for table in ("eyeriss-like-32nm", "horowitz-45nm", "simba-like-45nm"):  # pJ by default
        assert "symbol" not in (SPECS / "energy" / f"{table}.yaml").read_text()


def test_an_architecture_without_a_table_is_in_pj(tmp_path: Path) -> None:
    arch = (SPECS / "arch/toy-3level.yaml").read_text()
    arch = arch.replace("  energy_table: eyeriss-normalized\n", "").replace("dram", "200").replace(
        "global_buffer", "6").replace("inter_pe", "2").replace("rf", "1").replace("energy: mac", "energy: 1")
    (tmp_path / "toy.yaml").write_text(arch)
    assert load_native([tmp_path / "toy.yaml"])["architecture"].energy_unit == "pJ"


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")
def test_timeloop_inputs_are_in_pj() -> None:
    case = REFERENCE / "cases" / "t05_mapper_conv1d_oc_null" / "ref-output"
    specs = load_specs([case / "parsed-processed-input.yaml", case / "timeloop-mapper.ERT.yaml"])
    assert specs.architecture.energy_unit == "pJ"


@pytest.mark.parametrize("symbol", ["3", "[MAC]", "''", "pico joule", "2pJ", "a_very_long_symbol"])
def test_a_bad_symbol_is_a_spec_error_at_its_key(tmp_path: Path, symbol: str) -> None:
    table = (SPECS / "energy/eyeriss-normalized.yaml").read_text().replace("symbol: MAC", f"symbol: {symbol}")
    (tmp_path / "table.yaml").write_text(table)
    with pytest.raises(SpecError) as info:
        load_energy_table(tmp_path / "table.yaml")
    assert info.value.key_path == "symbol" and "a unit symbol" in str(info.value)


def test_an_architecture_may_not_mix_tables_of_two_units(tmp_path: Path) -> None:
    toy_in_pj(tmp_path)
    arch = (tmp_path / "toy.yaml").read_text().replace(
        "      size: 1\n", "      size: 1\n      energy_table: eyeriss-normalized\n")
    (tmp_path / "toy.yaml").write_text(arch)
    with pytest.raises(SpecError) as info:
        load_native([tmp_path / "toy.yaml"])
    assert info.value.key_path == "architecture.levels[2].energy_table"
    assert "in MAC" in str(info.value) and "'entries-in-pj' is in pJ" in str(info.value)


# -- mapper evaluate -----------------------------------------------------------------------

def test_evaluate_on_a_normalized_table_prints_macs_and_no_pj(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out, stats = evaluate(TOY, capsys, tmp_path / "ev.json")
    assert "pJ" not in out and "J*cycles" not in out
    assert "energy MAC" in out  # the counts table's column
    energy, unit, per_mac, per_mac_unit, cycles, edp, edp_unit = TOTALS.search(out).groups()
    assert (unit, per_mac_unit, edp_unit) == ("MAC", "MAC/MAC", "MAC*cycles")
    assert float(edp) == pytest.approx(float(energy) * int(cycles), rel=1e-3)  # energy x cycles, no 1e-12
    assert stats["energy_unit"] == "MAC" and float(energy) == pytest.approx(stats["energy_pJ"])
    assert float(per_mac) == pytest.approx(stats["energy_pJ"] / stats["computes"], rel=1e-3)


def test_evaluate_on_a_pj_table_prints_pj_and_joules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, stats = evaluate(toy_in_pj(tmp_path), capsys, tmp_path / "ev.json")
    energy, unit, _, per_mac_unit, cycles, edp, edp_unit = TOTALS.search(out).groups()
    assert (unit, per_mac_unit, edp_unit) == ("pJ", "pJ/MAC", "J*cycles")
    assert float(edp) == pytest.approx(float(energy) * 1e-12 * int(cycles), rel=1e-3)
    assert stats["energy_unit"] == "pJ"
    normalized, _ = evaluate(TOY, capsys, tmp_path / "ev2.json")  # the same numbers, another unit
    assert TOTALS.search(normalized).group(1) == energy


# -- mapper search, and the summaries built from its best.json ---------------------------------

@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One small Pareto search, shared by the tests below (capsys is per test)."""
    out = tmp_path_factory.mktemp("search") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        assert main(["search", *TOY, "-o", str(out), "--trials", "2", "--objective", "pareto"]) == 0
    return out, printed.getvalue()


def test_search_outputs_are_in_macs(searched: tuple[Path, str]) -> None:
    out, printed = searched
    assert "pJ" not in printed and "J*cycles" not in printed
    assert "MAC/MAC" in printed and "MAC*cycles" in printed  # the front's lines and the report
    best = json.loads((out / "best.json").read_text())
    assert best["energy_unit"] == "MAC" and "energy_pJ" in best and "edp_J_cycles" in best
    assert all(p["energy_unit"] == "MAC" for p in json.loads((out / "pareto.json").read_text())["points"])
    text = (out / "best.txt").read_text()
    assert "pJ" not in text and "MAC*cycles" in text


def network_summary(best: dict, energy_unit: str) -> dict:
    rows = [layer_row("conv", None, best)]
    return {"network": "net", "architecture": "toy-3level", "energy_unit": energy_unit, "objective": "edp",
            "seed": 0, "layers": rows, "failed": {}, "totals": totals(rows, 1)}


def test_network_summary_and_progress_lines_use_the_unit(searched: tuple[Path, str]) -> None:
    best = json.loads((searched[0] / "best.json").read_text())
    table = summary_markdown(network_summary(best, "MAC"))
    assert "| energy MAC | MAC/MAC |" in table and "EDP MAC*cycles" in table and "pJ" not in table
    edp = best["energy_pJ"] * best["cycles"]
    assert f"{edp:.4g} MAC*cycles" in table  # the network's EDP: energy x cycles
    event = NetworkEvent("searched", ShapeReport(("conv",), True, 2, 10, 0.1), 1, 1, "MAC",
                         layer_row("conv", None, best))
    line = event_text(event)
    assert "MAC/MAC" in line and f"EDP {edp:.4g} MAC*cycles" in line and "pJ" not in line
    elsewhere = replace(event, report=ShapeReport(("conv",), True, 5, 0, 0.0))  # workers ran its trials
    assert event_text(elsewhere).endswith("(5 trials, by other processes)")
    in_pj = summary_markdown(network_summary(best, "pJ"))
    assert "| energy pJ | pJ/MAC |" in in_pj and f"{edp * 1e-12:.4g} J*cycles" in in_pj


def two_cells(best: dict) -> list[dict]:
    """An experiment's cells (summary.json's rows) on an architecture in MAC and one in pJ."""
    return [{"architecture": arch, "workload": "net", "dataflow": "unconstrained", "objective": "edp",
             "folder": arch, "energy_unit": unit, "status": "complete", **network_summary(best, unit)}
            for arch, unit in (("toy-3level", "MAC"), ("toy-in-pj", "pJ"))]


def test_experiment_table_and_plots_give_each_cell_its_unit(searched: tuple[Path, str]) -> None:
    best = json.loads((searched[0] / "best.json").read_text())
    cells = two_cells(best)
    table = experiment_markdown({"experiment": "e", "description": "", "cells": cells}).splitlines()
    mac_row, pj_row = table[-2], table[-1]
    assert "MAC/MAC" in mac_row and "MAC*cycles" in mac_row and "pJ" not in mac_row
    assert "pJ/MAC" in pj_row and "J*cycles" in pj_row
    assert energy_breakdown(cells[0]).axes[0].get_ylabel() == "energy (millions of MAC)"
    assert energy_breakdown(cells[1]).axes[0].get_ylabel() == "energy (uJ)"
    assert energy_delay(cells[:1], searched[0]).axes[0].get_ylabel() == "energy (MAC)"


EXPERIMENT = """\
name: units
architectures: [toy-3level, eyeriss-like]
workloads: [two.yaml]
search: {trials: 2, seed: 0}
"""
TWO_LAYERS = """\
workload:
  layers:
    - conv: {name: a, C: 2, M: 4, R: 3, S: 3, P: 4, Q: 4}
    - conv: {name: b, C: 4, M: 4, R: 1, S: 1, P: 4, Q: 4}
"""


def test_an_experiment_over_two_units_says_each_cells_unit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Energies in MAC and in pJ do not compare: each cell keeps its unit, and each unit
    gets its own energy-delay plot (no shared axes, no Pareto front across them)."""
    (tmp_path / "units.yaml").write_text(EXPERIMENT)
    (tmp_path / "two.yaml").write_text(TWO_LAYERS)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "units.yaml"), "-o", str(out), "--jobs", "1"]) == 0
    printed = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert [(c["architecture"], c["energy_unit"]) for c in summary["cells"]] == [("toy-3level", "MAC"),
                                                                                  ("eyeriss-like", "pJ")]
    for cell in summary["cells"]:
        assert json.loads((out / cell["folder"] / "summary.json").read_text())["energy_unit"] == cell["energy_unit"]
    toy_line = next(line for line in printed.out.splitlines() if line.startswith("| toy-3level"))
    assert "MAC/MAC" in toy_line and "MAC*cycles" in toy_line and "pJ" not in toy_line
    assert sorted(p.name for p in (out / "plots").glob("energy-delay-*")) == ["energy-delay-two-MAC.png",
                                                                             "energy-delay-two-pJ.png"]
