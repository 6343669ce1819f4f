"""Dataflows compared under equal area, as Chen, Emer and Sze compare them (ISCA 2016,
Sec. VI-VII): each dataflow is an architecture (its split of one storage area between
register files and global buffer) paired with the constraints that make a mapping
that dataflow; every layer of a workload is searched on each; and the energy per MAC
is split the way the paper splits it, by level of the hierarchy (ALU, RF, array,
buffer, DRAM) and by data type (weights, inputs, psums).

The file (`mapper run FILE` recognizes it by its `baseline`; strict, every mistake a
SpecError with its key path; paths relative to the file):

    name: eyeriss-dataflows            # results go to results/<name>/ (or mapper run -o DIR)
    description: ...                   # optional
    workload: {workload: alexnet, batch: 16}    # as a `mapper run` workloads entry
    dataflows:                         # each its own architecture and constraints (optional)
      - {name: WS, architecture: ../arch/eyeriss-dataflows/ws.yaml,
         constraints: ../constraints/eyeriss-dataflows/ws.yaml}
      - ...
    baseline: RS                       # the dataflow the others are divided by
    objective: energy                  # optional, default energy (edp, delay also)
    min_utilization: 0.5               # optional, see below
    search: {trials: 40, seed: 0}      # optional, per layer

Equal parallelism: with energy as the objective and no static energy in the model, a
search may leave PEs idle for free. The paper gives every dataflow the same number of
PEs and assumes throughput proportional to the active ones, so a mapping here must
keep at least `min_utilization` of the MACs busy, or all that the dataflow can keep
busy on that layer if that is less (`utilization_floor`): a dataflow that cannot use
the array on a layer (one output plane of an FC layer is one pixel) is not ruled out;
it is charged what it can do.

Each dataflow is a network search (mapper/network.py) in DIR/cells/<dataflow>/,
resumable; then DIR/ gets summary.json ({DATAFLOW: {LAYER: energy per MAC}}),
ratios.json, breakdown.csv, tables.md and the charts energy-by-level.png and
energy-by-data-type.png. Nothing here prints (mapper/cli.py does).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from math import prod
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema

from .architecture import Architecture
from .constraints import Constraints, array_levels, pe_local_levels
from .experiment import EXPERIMENT_DOCUMENT, SearchSpec, WorkloadEntrySpec, located, search_settings, workload_entry
from .mapping import Mapping
from .mapspace import Mapspace
from .model.vectorized import evaluate_mapping
from .network import BEST, Layer, NetworkEvent, NetworkJob, level_accesses, read_json, run_network
from .problem import Problem
from .run_folder import write_atomically
from .safe_names import safe_file_name
from .json_output import json_text
from .search.run import Settings
from .specs.errors import SpecError
from .specs.load import load_specs
from .specs.fields import SpecModel, Text, invalid, is_number, validated
from .specs.files import DocumentKind, load_yaml
from .specs.native.mapping import parse_mapping

LEVEL_CLASSES = ("ALU", "RF", "array", "buffer", "DRAM")  # the paper's legend, innermost first
DATA_TYPES = {"Weights": "weights", "Inputs": "inputs", "Outputs": "psums"}
GROUPS = ("CONV", "FC")
Energy = dict[str, dict[str, float]]  # level class -> data type (the ALU: "MAC") -> energy


# ---------------------------------------------------------------------------
# Where the energy goes


def level_classes(arch: Architecture) -> list[str]:
    """Per storage level: "DRAM" (the outermost), "RF" (inside the PEs) or "buffer"
    (on chip, above the PE array). The network of a fan-out is the "array" class."""
    local = set(pe_local_levels(arch))
    return ["DRAM" if i == 0 else "RF" if i in local else "buffer" for i in range(len(arch.levels))]


def energy_breakdown(problem: Problem, arch: Architecture, mapping: Mapping, best: dict[str, Any]) -> Energy:
    """The energy of `best` (a best.json: `mapper evaluate --json`'s stats of `mapping`)
    by level class and data type; it adds up to best["energy_pJ"]."""
    energy: Energy = {c: {} for c in LEVEL_CLASSES}
    energy["ALU"]["MAC"] = best["compute_energy_pJ"]
    for cls, level in zip(level_classes(arch), best["levels"], strict=True):
        for name, tensor in level["tensors"].items():
            _add(energy[cls], DATA_TYPES.get(name, name), tensor["energy_pJ"])
    fanouts = set(array_levels(arch))
    for i, level in enumerate(evaluate_mapping(problem, arch, mapping).levels):
        if i in fanouts:
            for name, w in level.network_words.items():
                _add(energy["array"], DATA_TYPES.get(name, name), arch.levels[i].network_energy * w)
    accounted = sum(by_level(energy).values())
    if abs(accounted - best["energy_pJ"]) > 1e-6 * best["energy_pJ"]:
        raise RuntimeError(f"the breakdown of {problem.name} adds up to {accounted} pJ, the model's total is "
                           f"{best['energy_pJ']} pJ: the breakdown misses part of the model's energy")
    return energy


def _add(row: dict[str, float], key: str, value: float) -> None:
    row[key] = row.get(key, 0.0) + value


def by_level(energy: Energy) -> dict[str, float]:
    return {c: sum(energy[c].values()) for c in LEVEL_CLASSES}


def by_data_type(energy: Energy) -> dict[str, float]:
    """Data-movement energy per data type (the ALU's belongs to none)."""
    return {t: sum(energy[c].get(t, 0.0) for c in LEVEL_CLASSES) for t in DATA_TYPES.values()}


def summed(energies: Sequence[Energy]) -> Energy:
    total: Energy = {c: {} for c in LEVEL_CLASSES}
    for energy in energies:
        for c in LEVEL_CLASSES:
            for key, value in energy[c].items():
                _add(total[c], key, value)
    return total


# ---------------------------------------------------------------------------
# Equal parallelism


def most_used_macs(problem: Problem, arch: Architecture, constraints: Constraints | None) -> int:
    """The most MACs any spatial unrolling the constraints allow keeps busy."""
    space = Mapspace(problem, arch, replace(constraints or Constraints(), min_utilization=None))
    return max((prod(prod(x) * prod(y) for x, y in zip(sx, sy)) for sx, sy in space.spatial_combinations()),
               default=1)


def utilization_floor(problem: Problem, arch: Architecture, constraints: Constraints | None,
                      wanted: float) -> float:
    """`wanted`, or the most the dataflow can reach on this layer if that is less (the
    module docstring says why)."""
    return min(wanted, most_used_macs(problem, arch, constraints) / arch.compute.instances)


# ---------------------------------------------------------------------------
# The file


def _fraction(value: object) -> float:
    if not is_number(value) or not 0 <= value <= 1:
        raise invalid(value, "a fraction from 0 to 1")
    return float(value)


class DataflowSpec(SpecModel):
    name: Text
    architecture: Text
    constraints: Text | None = None  # none: the architecture unconstrained


class ComparisonSpec(SpecModel):
    name: Text
    description: Text | None = None
    workload: WorkloadEntrySpec
    dataflows: Annotated[list[DataflowSpec], Field(min_length=2)]
    baseline: Text
    objective: Literal["energy", "edp", "delay"] = "energy"
    min_utilization: Annotated[float, PlainValidator(_fraction),
                               WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1})] = 0.0
    search: SearchSpec = SearchSpec()


COMPARISON_DOCUMENT = DocumentKind("a dataflow comparison", tuple(ComparisonSpec.model_fields))
# What `mapper run` takes: an experiment or a comparison.
RUN_DOCUMENT = DocumentKind("an experiment", tuple(dict.fromkeys([*EXPERIMENT_DOCUMENT.keys,
                                                                   *COMPARISON_DOCUMENT.keys])))


@dataclass(frozen=True)
class Dataflow:
    name: str
    arch: Architecture
    constraints: Constraints | None


@dataclass(frozen=True)
class Comparison:
    name: str
    description: str | None
    file: Path
    problems: tuple[Problem, ...]  # the workload's selected layers, batch applied
    workload: str  # its label (experiment.workload_entry)
    batch: int
    dataflows: tuple[Dataflow, ...]
    baseline: str
    min_utilization: float
    settings: Settings


def is_comparison(path: str | Path) -> bool:
    """Whether an experiment file is a dataflow comparison (it names a baseline)."""
    doc = load_yaml(path, RUN_DOCUMENT)
    return isinstance(doc, dict) and "baseline" in doc


def load_comparison(path: str | Path) -> Comparison:
    """Read and check the whole file before anything runs."""
    path = Path(path)
    spec = validated(ComparisonSpec.model_validate, load_yaml(path, COMPARISON_DOCUMENT), path, "")
    if spec.search.fusion:
        raise SpecError(path, "search.fusion", "true", "false: a dataflow comparison maps each layer alone",
                        "compare fused and unfused networks with `mapper run` or `mapper search --fusion`")
    workload = workload_entry(spec.workload, path, "workload")
    dataflows = []
    for i, d in enumerate(spec.dataflows):
        files = [located(d.architecture, path, f"dataflows[{i}].architecture")]
        if d.constraints is not None:
            files.append(located(d.constraints, path, f"dataflows[{i}].constraints"))
        specs = load_specs(files)
        if specs.architecture is None:
            raise SpecError(path, f"dataflows[{i}].architecture", repr(d.architecture), "an architecture file")
        dataflows.append(Dataflow(d.name, specs.architecture, specs.constraints))
    names = [d.name for d in dataflows]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise SpecError(path, f"dataflows[{i}].name", f"{name!r} a second time", "each name once")
    if spec.baseline not in names:
        raise SpecError(path, "baseline", repr(spec.baseline), "the name of one of the dataflows: " + ", ".join(names))
    return Comparison(spec.name, spec.description, path, workload.problems, workload.label, workload.batch,
                      tuple(dataflows), spec.baseline, spec.min_utilization,
                      search_settings(spec.search, path, spec.objective))


# ---------------------------------------------------------------------------
# Running


def dataflow_job(comparison: Comparison, dataflow: Dataflow, folder: Path) -> NetworkJob:
    """The network search of one dataflow, with each layer's utilization floor."""
    layers = []
    for problem in comparison.problems:
        try:
            constraints = (dataflow.constraints or Constraints()).resolve(problem, dataflow.arch)
        except ValueError as e:
            raise SpecError(comparison.file, f"dataflows.{dataflow.name}", f"a dataflow that layer "
                            f"{problem.name!r} does not allow", "constraints every layer can meet", str(e)) from None
        floor = utilization_floor(problem, dataflow.arch, constraints, comparison.min_utilization)
        layers.append(Layer(problem, replace(constraints, min_utilization=floor)))
    return NetworkJob(f"{comparison.workload} / {dataflow.name}", dataflow.arch, tuple(layers),
                      comparison.settings, folder / "cells" / safe_file_name(dataflow.name))


EventCallback = Callable[[str, NetworkEvent], None]


def run_comparison(comparison: Comparison, folder: Path, pool: Executor, on_event: EventCallback | None = None,
                   with_charts: bool = True, on_progress: EventCallback | None = None) -> list[dict[str, Any]]:
    """Every dataflow's network search (each resuming what it finished before), then
    the outputs (module docstring); returns one record per dataflow and layer.
    `on_event` hears of each finished shape, `on_progress` of the shapes in work."""
    records = []
    for dataflow in comparison.dataflows:
        job = dataflow_job(comparison, dataflow, folder)
        forward = None if on_event is None else (lambda e, name=dataflow.name: on_event(name, e))
        progress = None if on_progress is None else (lambda e, name=dataflow.name: on_progress(name, e))
        result = run_network(job, pool, forward, progress)
        if result.failed:
            reasons = "; ".join(f"{layer}: {' '.join(why)}" for layer, why in result.failed.items())
            raise SpecError(comparison.file, f"dataflows.{dataflow.name}", "layers without a valid mapping",
                            "a dataflow that maps every layer", reasons)
        records += [layer_record(dataflow, layer, job) for layer in job.layers]
    write_outputs(comparison, records, folder, with_charts)
    return records


def layer_record(dataflow: Dataflow, layer: Layer, job: NetworkJob) -> dict[str, Any]:
    """What the outputs need of one layer's best mapping."""
    best_file = job.layer_folder(layer.problem.name) / BEST
    best = read_json(best_file)
    mapping = parse_mapping(best["mapping"], layer.problem, dataflow.arch, best_file)
    return {"dataflow": dataflow.name, "layer": layer.problem.name, "macs": best["computes"],
            "energy": best["energy_pJ"], "energy_per_mac": best["energy_pJ"] / best["computes"],
            "utilization": best["utilization"],
            "utilization_floor": layer.constraints.min_utilization if layer.constraints else 0.0,
            "dram_accesses": level_accesses(best["levels"][0]),
            "breakdown": energy_breakdown(layer.problem, dataflow.arch, mapping, best)}


# ---------------------------------------------------------------------------
# Outputs


def layer_label(name: str) -> str:
    """The paper's spelling: conv1 -> CONV1, fc6 -> FC6."""
    return name.upper()


def layer_group(layer: str) -> str:
    return "FC" if layer_label(layer).startswith("FC") else "CONV"


def summary(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """{DATAFLOW: {LAYER: energy per MAC}}, in units of one MAC with a normalized
    energy table."""
    found: dict[str, dict[str, float]] = {}
    for r in records:
        found.setdefault(r["dataflow"], {})[layer_label(r["layer"])] = r["energy_per_mac"]
    return found


def dataflow_names(records: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["dataflow"] for r in records))


def groups(records: Sequence[dict[str, Any]]) -> list[str]:
    return [g for g in GROUPS if any(layer_group(r["layer"]) == g for r in records)]


def group_energy(records: Sequence[dict[str, Any]], dataflow: str, group: str) -> tuple[Energy, int]:
    """The summed breakdown and MACs of one dataflow over the CONV or the FC layers."""
    chosen = [r for r in records if r["dataflow"] == dataflow and layer_group(r["layer"]) == group]
    return summed([r["breakdown"] for r in chosen]), sum(r["macs"] for r in chosen)


def ratios_to_baseline(records: Sequence[dict[str, Any]], baseline: str) -> dict[str, dict[str, float]]:
    """Per dataflow: its energy over the baseline's, on the CONV layers together, the
    FC layers together, and each layer."""
    found: dict[str, dict[str, float]] = {}
    base = {r["layer"]: r["energy"] for r in records if r["dataflow"] == baseline}
    for d in dataflow_names(records):
        found[d] = {g: sum(by_level(group_energy(records, d, g)[0]).values())
                    / sum(by_level(group_energy(records, baseline, g)[0]).values()) for g in groups(records)}
        found[d] |= {layer_label(r["layer"]): r["energy"] / base[r["layer"]] for r in records if r["dataflow"] == d}
    return found


def breakdown_csv(records: Sequence[dict[str, Any]]) -> str:
    """One row per dataflow, layer, level class and data type: energy per MAC."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dataflow", "layer", "level", "data_type", "energy_per_mac"])
    for r in records:
        for c in LEVEL_CLASSES:
            for t, e in r["breakdown"][c].items():
                writer.writerow([r["dataflow"], layer_label(r["layer"]), c, t, f"{e / r['macs']:.6g}"])
    return out.getvalue()


def headline_markdown(comparison: Comparison, records: Sequence[dict[str, Any]]) -> str:
    """Energy per MAC per dataflow and layer (and over the CONV and the FC layers), and
    relative to the baseline: what `mapper run` prints."""
    names, found = dataflow_names(records), summary(records)
    layers = list(dict.fromkeys(layer_label(r["layer"]) for r in records))
    ratios = ratios_to_baseline(records, comparison.baseline)
    s = comparison.settings
    out = [f"{comparison.workload} ({len(layers)} layers, batch {comparison.batch}); objective {s.objective}; "
           f"{s.trials} trials per layer, seed {s.seed}; energies per MAC in the units of the energy table "
           "(one MAC, for a normalized table).", "",
           "## Energy per MAC", "",
           _row(["dataflow", *layers, *(f"{g} layers" for g in groups(records)),
                 *(f"{g} share of the energy" for g in groups(records))]),
           _rule(1, len(layers) + 2 * len(groups(records)))]
    for d in names:
        energies = {g: group_energy(records, d, g) for g in groups(records)}
        totals = {g: sum(by_level(energy).values()) for g, (energy, _) in energies.items()}
        out.append(_row([d, *(f"{found[d][l]:.3f}" for l in layers),
                         *(f"{totals[g] / macs:.3f}" for g, (_, macs) in energies.items()),
                         *(f"{totals[g] / sum(totals.values()):.0%}" for g in totals)]))
    out += ["", f"## Energy relative to {comparison.baseline}", "",
            _row(["dataflow", *(f"{g} layers" for g in groups(records)), *layers]),
            _rule(1, len(groups(records)) + len(layers))]
    out += [_row([d, *(f"{ratios[d][k]:.2f}" for k in [*groups(records), *layers])]) for d in names]
    return "\n".join(out) + "\n"


def tables_markdown(comparison: Comparison, records: Sequence[dict[str, Any]]) -> str:
    """The generated tables: the headline ones; by level and by data type over the
    CONV and the FC layers and per layer, with the utilization each mapping reached
    and the DRAM accesses per MAC."""
    names = dataflow_names(records)
    out = [f"# {comparison.name}: generated tables", "", f"Written by `mapper run {comparison.file}`.", "",
           headline_markdown(comparison, records).rstrip("\n")]
    for g in groups(records):
        out += ["", f"## {g} layers: energy per MAC by level and by data type", "",
                _row(["dataflow", *LEVEL_CLASSES, "total", *DATA_TYPES.values()]),
                _rule(1, len(LEVEL_CLASSES) + 1 + len(DATA_TYPES))]
        for d in names:
            energy, macs = group_energy(records, d, g)
            levels, types = by_level(energy), by_data_type(energy)
            out.append(_row([d, *(f"{levels[c] / macs:.3f}" for c in LEVEL_CLASSES),
                             f"{sum(levels.values()) / macs:.3f}", *(f"{types[t] / macs:.3f}" for t in types)]))
    out += ["", "## Per layer: energy per MAC by level and by data type", "",
            _row(["dataflow", "layer", *LEVEL_CLASSES, *DATA_TYPES.values(), "total", "PEs busy", "floor",
                  "DRAM accesses / MAC"]), _rule(2, len(LEVEL_CLASSES) + len(DATA_TYPES) + 4)]
    for r in records:
        levels, types = by_level(r["breakdown"]), by_data_type(r["breakdown"])
        m = r["macs"]
        out.append(_row([r["dataflow"], layer_label(r["layer"]), *(f"{levels[c] / m:.3f}" for c in LEVEL_CLASSES),
                         *(f"{types[t] / m:.3f}" for t in types), f"{r['energy_per_mac']:.3f}",
                         f"{r['utilization']:.3g}", f"{r['utilization_floor']:.3g}", f"{r['dram_accesses'] / m:.4f}"]))
    return "\n".join(out) + "\n"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _rule(text_columns: int, number_columns: int) -> str:
    return _row(["---"] * text_columns + ["---:"] * number_columns)


def charts(records: Sequence[dict[str, Any]], workload: str) -> dict[str, Any]:
    """The paper's bar charts (matplotlib Figures): per layer group (CONV, FC), one
    stacked bar per dataflow of its energy per MAC, by level (energy-by-level) and by
    data type (energy-by-data-type)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib only when drawing
    from matplotlib.figure import Figure
    names, found = dataflow_names(records), {}
    for stem, keys, split, what in (
            ("energy-by-level", LEVEL_CLASSES, by_level, "energy per MAC"),
            ("energy-by-data-type", tuple(DATA_TYPES.values()), by_data_type, "data-movement energy per MAC")):
        fig = Figure(figsize=(5.0 * len(groups(records)) + 1.5, 4.2), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(groups(records)), squeeze=False)[0]
        for ax, g in zip(axes, groups(records)):
            bottom = [0.0] * len(names)
            for key in keys:
                heights = []
                for d in names:
                    energy, macs = group_energy(records, d, g)
                    heights.append(split(energy)[key] / macs)
                ax.bar(names, heights, bottom=bottom, label=key, edgecolor="black", linewidth=0.4)
                bottom = [b + h for b, h in zip(bottom, heights)]
            ax.set_title(f"{workload}: {g} layers")
            ax.set_ylabel(f"{what} (MAC = 1)")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles[::-1], labels[::-1], loc="outside right upper", fontsize="small")
        found[stem] = fig
    return found


def write_outputs(comparison: Comparison, records: Sequence[dict[str, Any]], folder: Path,
                  with_charts: bool = True) -> list[Path]:
    """summary.json, ratios.json, breakdown.csv, tables.md and the charts (PNG)."""
    files = {folder / "summary.json": json_text(summary(records)) + "\n",
             folder / "ratios.json": json_text(ratios_to_baseline(records, comparison.baseline)) + "\n",
             folder / "breakdown.csv": breakdown_csv(records),
             folder / "tables.md": tables_markdown(comparison, records)}
    for path, text in files.items():
        write_atomically(path, text)
    written = list(files)
    if with_charts:
        from .plots import save_png  # matplotlib only when drawing
        for stem, fig in charts(records, comparison.workload).items():
            save_png(fig, folder / f"{stem}.png")
            written.append(folder / f"{stem}.png")
    return written
