"""The plots of an experiment (mapper/experiment.py), as PNG files.

- energy per layer of each cell, stacked by storage level and by tensor (MACs and
  the network apart, so each bar adds up to the layer's energy);
- energy against cycles per layer, for every cell of a workload, with the Pareto front
  of those points (and of the front a `pareto` cell found, when there is one); one
  plot per energy unit when the workload's architectures use tables in different
  units, whose energies do not compare;
- of a hardware sweep, per workload, each design's area against its network's energy
  and against its cycles, the Pareto-optimal designs (area, energy, cycles) marked.

Figures are drawn on matplotlib's Figure objects with the Agg canvas, never through
pyplot: no global backend to set, nothing shown on a screen.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .compare import FIGURES, figure_entries, noise_marked
from .network import PARETO, read_json
from .safe_names import file_in

_CELL_LABELS = ("architecture", "workload", "dataflow", "objective")


def experiment_plots(folder: Path, summary: dict[str, Any]) -> list[Path]:
    """Draw every plot of the experiment into folder/plots; returns their paths."""
    plots, cells = folder / "plots", [c for c in summary["cells"] if c["layers"]]
    written = []
    for cell in cells:
        path = file_in(plots, "energy-" + "-".join(cell[k] for k in _CELL_LABELS), ".png")
        save_png(energy_breakdown(cell), path)
        written.append(path)
    for workload in dict.fromkeys(c["workload"] for c in cells):
        of_workload = [c for c in cells if c["workload"] == workload]
        units = list(dict.fromkeys(c["energy_unit"] for c in of_workload))
        for unit in units:
            path = file_in(plots, f"energy-delay-{workload}" + (f"-{unit}" if len(units) > 1 else ""), ".png")
            save_png(energy_delay([c for c in of_workload if c["energy_unit"] == unit], folder), path)
            written.append(path)
    searched = [d for d in summary.get("designs", []) if d["energy_pJ"] is not None]
    for workload in dict.fromkeys(d["workload"] for d in searched):
        path = file_in(plots, f"designs-{workload}", ".png")
        save_png(design_space([d for d in searched if d["workload"] == workload]), path)
        written.append(path)
    _remove_stale(plots, written)
    return written


def _remove_stale(plots: Path, written: list[Path]) -> None:
    """The plots an earlier run of the experiment drew into the folder that this one
    did not (a cell or workload since left out): they would pass for this run's. Only
    the kinds drawn here are removed."""
    for path in plots.glob("*.png"):
        if path not in written and path.name.startswith(("energy-", "designs-")):
            path.unlink(missing_ok=True)


def design_space(designs: list[dict[str, Any]]) -> Figure:
    """Two panels: area against the network's energy, and against its cycles; one
    color per dataflow and objective, the Pareto-optimal designs ringed."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    groups = list(dict.fromkeys((d["dataflow"], d["objective"]) for d in designs))
    unit = designs[0].get("energy_unit", "pJ")
    energy = "energy (uJ)" if unit == "pJ" else f"energy (millions of {unit})"
    for ax, key, label in zip(fig.subplots(1, 2), ("energy_pJ", "cycles"), (energy, "cycles")):
        scale = 1e-6 if key == "energy_pJ" else 1.0
        for group, color in zip(groups, _colors(len(groups))):
            of_group = [d for d in designs if (d["dataflow"], d["objective"]) == group]
            ax.scatter([d["area_mm2"] for d in of_group], [d[key] * scale for d in of_group], s=30, color=color,
                       label=" / ".join(group))
            front = [d for d in of_group if d["pareto"]]
            ax.scatter([d["area_mm2"] for d in front], [d[key] * scale for d in front], s=110, facecolor="none",
                       edgecolor="black", linewidth=0.8, label="Pareto-optimal" if group == groups[0] else None)
        # the figures of merit from zero (`_scale`); the areas are the designs' own
        y_log = _scale(ax.set_yscale, ax.set_ylim, [d[key] * scale for d in designs])
        ax.xaxis.set_major_locator(MaxNLocator(5))  # areas like 0.00925 overlap at matplotlib's default count
        ax.set_xlabel("area (mm2, storage and MACs)")
        ax.set_ylabel(label + (" (log scale)" if y_log else ""))
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small")
    fig.suptitle(f"Design points: {designs[0]['workload']}")
    return fig


def energy_breakdown(cell: dict[str, Any]) -> Figure:
    """Two panels of stacked bars, one bar per layer: energy by level, by tensor."""
    layers = cell["layers"]
    fig = Figure(figsize=(max(6.0, 0.45 * len(layers) + 2.5), 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    names = [l["layer"] for l in layers]
    for ax, key, title in zip(fig.subplots(2, 1, sharex=True), ("energy_by_level_pJ", "energy_by_tensor_pJ"),
                              ("by storage level", "by tensor")):
        # a level or tensor that costs nothing in every layer would only crowd the legend
        categories = [c for c in dict.fromkeys(c for l in layers for c in l[key]) if any(l[key].get(c) for l in layers)]
        bottom = [0.0] * len(layers)
        colors = _colors(len(categories))
        for category, color in zip(categories, colors):
            heights = [l[key].get(category, 0.0) * 1e-6 for l in layers]
            ax.bar(names, heights, bottom=bottom, label=category, color=color)
            bottom = [b + h for b, h in zip(bottom, heights)]
        ax.set_ylabel("energy (uJ)" if cell["energy_unit"] == "pJ" else f"energy (millions of {cell['energy_unit']})")
        ax.set_title(f"Energy per layer {title}")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.tick_params(axis="x", labelrotation=60, labelsize="small")
    fig.suptitle(" / ".join(cell[k] for k in _CELL_LABELS))
    return fig


def energy_delay(cells: list[dict[str, Any]], folder: Path) -> Figure:
    """One panel per layer: each cell's mapping (and the points of a pareto cell's
    front) at (cycles, energy), and the Pareto front of all of them (cells of one
    energy unit)."""
    layers = list(dict.fromkeys(l["layer"] for c in cells for l in c["layers"]))
    cols = min(4, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig = Figure(figsize=(3.6 * cols + 2.5, 3.0 * rows + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colors = _colors(len(cells))
    for ax, layer in zip(axes, layers):
        points = []
        for cell, color in zip(cells, colors):
            label = " / ".join(cell[k] for k in ("architecture", "dataflow", "objective"))
            row = next((l for l in cell["layers"] if l["layer"] == layer), None)
            if row is None:
                continue
            front = _pareto_points(folder / cell["folder"], layer)
            if front:
                ax.scatter([c for _, c in front], [e for e, _ in front], s=10, color=color, alpha=0.5)
            ax.scatter([row["cycles"]], [row["energy_pJ"]], s=40, color=color, edgecolor="black", label=label)
            points += front + [(row["energy_pJ"], row["cycles"])]
        front = pareto_front(points)
        ax.step([c for _, c in front], [e for e, _ in front], where="post", color="black", linestyle="--",
                linewidth=0.8, marker="o", markersize=11, markerfacecolor="none", label="Pareto front")
        x_log = _scale(ax.set_xscale, ax.set_xlim, [c for _, c in points])
        y_log = _scale(ax.set_yscale, ax.set_ylim, [e for e, _ in points])
        ax.set_title(layer, fontsize="medium")
        ax.set_xlabel("cycles" + (" (log scale)" if x_log else ""))
        ax.set_ylabel(f"energy ({cells[0]['energy_unit']})" + (" (log scale)" if y_log else ""))
    for ax in axes[len(layers):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small")
    fig.suptitle(f"Energy against delay per layer: {cells[0]['workload']}")
    return fig


def comparison_figure(data: dict[str, Any]) -> Figure:
    """`mapper compare`: each run's energy, cycles and EDP over the first run's (bars
    from zero, the first run at 1), in total and per layer."""
    runs, layers = data["runs"], data["layers"]
    panels = 2 if len(layers) > 1 else 1
    fig = Figure(figsize=(max(7.0, 0.5 * len(layers) + 3.0), 3.6 * panels + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(panels, 1, squeeze=False).ravel()
    colors = _colors(len(runs))
    labels = [f"{i + 1}: {r['name']}" for i, r in enumerate(runs)]
    width = 0.8 / len(runs)
    for k, (run, color, label) in enumerate(zip(runs, colors, labels)):
        ratios = [run["ratio_to_first"][f] or 0.0 for f in FIGURES]
        axes[0].bar([x + k * width for x in range(3)], ratios, width, color=color, label=label,
                    hatch=[_noise_hatch(run, f) for f in FIGURES])
    axes[0].set_xticks([x + 0.4 - width / 2 for x in range(3)], ["energy", "cycles", "EDP"])
    axes[0].set_title("Totals over the first run")
    if panels == 2:
        for k, (color, label) in enumerate(zip(colors, labels)):
            cells = [layer["runs"][k] or {} for layer in layers]
            edp = [cell.get("ratio_to_first", {}).get("edp_J_cycles") or 0.0 for cell in cells]
            axes[1].bar([x + k * width for x in range(len(layers))], edp, width, color=color, label=label,
                        hatch=[_noise_hatch(cell, "edp_J_cycles") for cell in cells])
        axes[1].set_xticks([x + 0.4 - width / 2 for x in range(len(layers))], [l["layer"] for l in layers],
                           rotation=60, fontsize="small")
        axes[1].set_title("EDP per layer over the first run's")
    for ax in axes:
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("ratio to run 1")
    axes[0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if any(noise_marked(e) for e in figure_entries(data)):
        fig.suptitle("hatched: within how far apart the runs' seeds ended (search noise may explain it)",
                     fontsize="small")
    return fig


def _noise_hatch(entry: dict[str, Any], figure: str) -> str:
    """Hatching for a bar whose ratio the search's noise may explain (`noise_marked`)."""
    return "//" if entry and noise_marked(entry) == figure else ""


def pareto_front(points: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """The (energy, cycles) points no other point beats on both, fastest first."""
    front: list[tuple[float, int]] = []
    for energy, cycles in sorted(set(points), key=lambda p: (p[1], p[0])):
        if not front or energy < front[-1][0]:
            front.append((energy, cycles))
    return front


def _pareto_points(cell_folder: Path, layer: str) -> list[tuple[float, int]]:
    """(energy, cycles) of each point of a layer's pareto.json, if it has one."""
    path = file_in(cell_folder / "layers", layer) / PARETO
    return [(p["energy_pJ"], p["cycles"]) for p in read_json(path)["points"]] if path.is_file() else []


def _scale(set_scale: Any, set_limits: Any, values: list[float]) -> bool:
    """Logarithmic where the values span more than a decade (mappings of one layer can
    differ a hundredfold in energy or cycles), else linear from zero, so that a few
    percent look like a few percent; returns whether it is logarithmic, for the label."""
    if values and min(values) > 0 and max(values) / min(values) > 10:
        set_scale("log")
        return True
    set_limits(0, max(values, default=1) * 1.05 or 1)
    return False


def _colors(n: int) -> list[Any]:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def save_png(fig: Figure, path: Path) -> None:
    """Write the PNG beside its place, then rename: never a half-written plot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
