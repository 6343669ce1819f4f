"""Hardware sweeps in `mapper run` (mapper/hardware_sweep.py): a template's parameters
over a grid, each design point estimated and searched like any architecture, those
over the area budget left out, and the Pareto-optimal designs in area, energy and
cycles marked in the summary."""

from __future__ import annotations

import json
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from mapper.cli import main
from mapper.experiment import load_experiment
from mapper.hardware_sweep import pareto_flags
from mapper.plots import design_space

TEMPLATE = """\
architecture:
  name: toy
  technology: 45nm
  levels:
    - {name: DRAM, size: unbounded, word_bits: 8, component: LPDDR4}
    - {name: Buffer, size: 64, word_bits: 8, component: sram, fanout: 4}
    - {name: Register, size: 1, word_bits: 8, component: register}
  compute: {component: intmac, bits: 8}
"""
NET = """\
workload:
  layers:
    - conv: {name: wide, C: 2, M: 4, P: 4, Q: 4, R: 3, S: 3}
"""
EXPERIMENT = """\
name: sweep
architectures: [toy.yaml]
hardware:
  sweep:
    levels.Buffer.size: [64, 256, 4096]
    levels.Buffer.fanout: [2, 4]
workloads: [net.yaml]
search: {trials: 3, seed: 0}
"""


def write_experiment(folder: Path, text: str = EXPERIMENT, template: str = TEMPLATE) -> Path:
    (folder / "toy.yaml").write_text(template)
    (folder / "net.yaml").write_text(NET)
    path = folder / "experiment.yaml"
    path.write_text(text)
    return path


def test_every_combination_is_a_design_with_its_own_energies_and_area(tmp_path: Path) -> None:
    exp = load_experiment(write_experiment(tmp_path))
    assert [dict(d.params) for d in exp.designs] == [
        {"levels.Buffer.size": size, "levels.Buffer.fanout": fanout} for size in (64, 256, 4096) for fanout in (2, 4)]
    assert exp.designs[0].arch.name == "toy[Buffer.size=64, Buffer.fanout=2]"
    assert [a.name for a in exp.architectures] == [d.arch.name for d in exp.designs]
    by_size = {dict(d.params)["levels.Buffer.size"]: d for d in exp.designs
               if dict(d.params)["levels.Buffer.fanout"] == 4}
    assert by_size[64].area_mm2 < by_size[256].area_mm2 < by_size[4096].area_mm2
    reads = [by_size[size].arch.levels[1].read_energy for size in (64, 256, 4096)]
    assert reads == sorted(reads) and reads[0] < reads[-1]  # a bigger buffer costs more per access
    two, four = (d for d in exp.designs if dict(d.params)["levels.Buffer.size"] == 64)
    assert two.arch.compute.instances == 2 and four.arch.compute.instances == 4 and two.area_mm2 < four.area_mm2


def test_designs_over_the_area_budget_are_left_out(tmp_path: Path) -> None:
    all_designs = load_experiment(write_experiment(tmp_path)).designs
    budget = sorted(d.area_mm2 for d in all_designs)[3]
    text = EXPERIMENT.replace("workloads:", f"  area_budget_mm2: {budget}\nworkloads:")
    exp = load_experiment(write_experiment(tmp_path, text))
    assert len(exp.designs) == 4 and len(exp.over_budget) == 2
    assert all(d.area_mm2 <= budget for d in exp.designs) and all(d.area_mm2 > budget for d in exp.over_budget)


@pytest.mark.parametrize("change, key_path, found", [
    (("levels.Buffer.size", "levels.Bufer.size"), "hardware.sweep.levels.Bufer.size", "level 'Bufer'"),
    (("levels.Buffer.size", "levels.Buffer"), "hardware.sweep.levels.Buffer", "'levels.Buffer'"),
    (("[64, 256, 4096]", "[64, -1]"), "hardware.sweep", "levels[1].size is -1"),
    (("[64, 256, 4096]", "[]"), "hardware.sweep.levels.Buffer.size", "found an empty list"),
    (("[64, 256, 4096]", "[64, 256, 256]"), "hardware", "a second time"),
    (("workloads:", "  area_budget_mm2: 0.000001\nworkloads:"), "hardware.area_budget_mm2", "which every design "
     "exceeds"),
    (("levels.Buffer.fanout: [2, 4]", "levels.Buffer.fanout: [2, 4]\n    technology: [" + ", ".join(["45"] * 20)
      + "]\n    levels.Register.size: [" + ", ".join(["1"] * 100) + "]"), "hardware.sweep", "12,000 design points"),
])
def test_a_mistake_in_the_sweep_exits_2_with_its_key_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         change: tuple[str, str], key_path: str, found: str) -> None:
    assert change[0] in EXPERIMENT
    path = write_experiment(tmp_path, EXPERIMENT.replace(*change))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {key_path}: ") and found in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_template_without_technology_cannot_be_swept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = TEMPLATE.replace("  technology: 45nm\n", "").replace("component: LPDDR4", "energy: {read: 1, write: 1}")
    template = template.replace("component: sram", "energy: {read: 1, write: 1}")
    template = template.replace("component: register", "energy: {read: 1, write: 1}")
    template = template.replace("{component: intmac, bits: 8}", "{energy: 1}")
    path = write_experiment(tmp_path, template=template)
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    assert "which has no technology" in capsys.readouterr().err


def test_pareto_flags_keep_the_points_no_other_point_betters() -> None:
    points = [(1.0, 10.0, 5.0), (2.0, 8.0, 5.0), (2.0, 9.0, 6.0), (3.0, 8.0, 5.0), (1.0, 10.0, 5.0)]
    assert pareto_flags(points) == [True, True, False, False, True]


def test_the_summary_lists_every_design_with_area_totals_and_pareto(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    all_designs = load_experiment(write_experiment(tmp_path)).designs
    budget = sorted(d.area_mm2 for d in all_designs)[4]
    path = write_experiment(tmp_path, EXPERIMENT.replace("workloads:", f"  area_budget_mm2: {budget}\nworkloads:"))
    out = tmp_path / "out"
    with redirect_stdout(StringIO()):
        assert main(["run", str(path), "-o", str(out), "--jobs", "2"]) == 0
    designs = json.loads((out / "summary.json").read_text())["designs"]
    searched = [d for d in designs if d["energy_pJ"] is not None]
    assert len(designs) == 6 and len(searched) == 5
    assert [d["status"] for d in designs if d["energy_pJ"] is None] == ["over the area budget, not searched"]
    cells = {c["architecture"]: c for c in json.loads((out / "summary.json").read_text())["cells"]}
    for d in searched:
        totals = cells[d["architecture"]]["totals"]
        assert d["edp_J_cycles"] == pytest.approx(totals["energy_pJ"] * 1e-12 * totals["cycles"])
        assert d["area_mm2"] > 0 and set(d["params"]) == {"levels.Buffer.size", "levels.Buffer.fanout"}
    flags = pareto_flags([(d["area_mm2"], d["energy_pJ"], d["cycles"]) for d in searched])
    assert [d["pareto"] for d in searched] == flags and any(flags)
    assert (out / "plots" / "designs-net.png").read_bytes().startswith(b"\x89PNG")
    table = (out / "summary.md").read_text().split("Design points")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.count("over the area budget") for row in rows] == [0] * 5 + [1]  # the unsearched last
    columns = [[cell.strip() for cell in row.strip(" |").split(" | ")] for row in rows]
    assert [(c[7] != "", c[9]) for c in columns] == [(True, "complete")] * 5 + [(False, "over the area budget, "
                                                                                "not searched")]  # EDP, status
    assert all(f"{d['energy_pJ']:.4g} {d['energy_unit']}" in table for d in searched)
    # run again: every design's search is finished, nothing is redone, the same summary
    summary = (out / "summary.json").read_text()
    capsys.readouterr()
    with redirect_stdout(StringIO()):
        assert main(["run", str(path), "-o", str(out), "--jobs", "2"]) == 0
    assert (out / "summary.json").read_text() == summary
    err = capsys.readouterr().err
    assert err.count("(searched earlier)") == 5 and "trials," not in err


def test_the_design_plot_shows_energy_and_cycles_from_zero() -> None:
    """Designs 2% apart in energy look 2% apart, as the README says of every plot
    (from zero unless the points span more than a decade)."""
    designs = [{"dataflow": "rs", "objective": "edp", "workload": "net", "area_mm2": area, "energy_pJ": energy,
                "cycles": cycles, "pareto": True, "energy_unit": "pJ"}
               for area, energy, cycles in ((0.00925, 1.30e5, 2400), (0.0105, 1.328e5, 5000))]
    figure = design_space(designs)
    assert [ax.get_ylim()[0] for ax in figure.axes[:2]] == [0, 0]
    assert [ax.get_ylabel() for ax in figure.axes[:2]] == ["energy (uJ)", "cycles"]

