"""`mapper run EXPERIMENT.yaml`: a sweep of network searches over architectures x
workloads x dataflows x objectives, declared in one YAML file, with a summary table
and plots.

The file (strict: an unknown key or a wrong type is a SpecError with its key path):

    name: example                  # results go to results/<name>/ (or mapper run -o DIR)
    description: ...               # optional, one line for the summary
    architectures: [eyeriss-like]  # shipped names or paths of architecture files
    workloads:                     # shipped names or paths of workload files, or entries:
      - alexnet
      - {workload: alexnet, layers: [conv1, conv2], batch: 4, name: alexnet-b4}
    dataflows:                     # optional, default [unconstrained]:
      - row-stationary             # a preset (mapper/constraints.py), `unconstrained`,
      - my-constraints.yaml        # or a constraints file (native or Timeloop)
    objectives: [edp, energy]      # optional, default [edp]; also delay, pareto
    search: {trials: 20, time: null, patience: 20, seed: 0, seeds: 1, remainders: true,   # optional, per layer
             remainder_searches: 2,  # (mapper search's; remainders: false is its --no-remainders)
             fusion: false}          # mapper search's --fusion, in every cell (not with pareto)
    hardware:                      # optional: sweep the architectures' parameters
      sweep: {levels.shared_glb.depth: [8192, 16384], technology: [32nm, 45nm]}
      area_budget_mm2: 2.0         # optional (mapper/hardware_sweep.py)

Paths are relative to the experiment file, else to the working directory; names of
shipped specs are looked up in specs/ (constraints files in specs/constraints/).
Each architecture, workload and dataflow gets a label (the architecture's name, the
workload's `name` or its file name with `-bN` for a batch N, the preset or the
constraints file's name); labels must differ.

Every combination (a cell) is a network search (mapper/network.py) in
`DIR/cells/<architecture>/<workload>/<dataflow>/<objective>/`, run one after the
other, each searching its layers in parallel. A cell whose dataflow does not apply
(a preset the architecture cannot run, a constraints file written for another
architecture) is reported as not applicable; where it does not apply to some of the
workload's layers only (a constraint on C, which a matmul lacks), those layers are
skipped, with the reason, before any search, and the cell's other layers searched.
Running the experiment again skips what is finished. At the end:

    DIR/summary.md, summary.csv, summary.json   one row per cell: the network's totals
                                                (in summary.json with the cell's
                                                energy_unit, that of its architecture)
    DIR/layers.csv                              one row per layer of every cell
    DIR/plots/energy-<cell>.png                 energy per layer by level and by tensor
    DIR/plots/energy-delay-<workload>.png       energy against cycles per layer, every
                                                cell of the workload, and the Pareto front
With a hardware sweep, each architecture is a template and each of its design points
an architecture of the experiment (mapper/hardware_sweep.py); summary.json then has
`designs`, one per design and workload, dataflow and objective: {architecture, params,
area_mm2, energy_unit, energy_pJ, cycles, edp_J_cycles (the network's energy x its cycles), pareto
(in area, energy and cycles among the designs of the same workload, dataflow and
objective)}, with those over the area budget listed but not searched; summary.md a
table of them, and DIR/plots/designs-<workload>.png area against energy and cycles.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainValidator, StrictBool, WithJsonSchema

from .architecture import Architecture
from .constraints import PRESETS, Constraints
from .fusion import no_candidates_reason
from .hardware_sweep import Design, HardwareSpec, pareto_flags, sweep_designs
from .mapspace import layer_constraints, not_applicable_reason
from .network import SUMMARY_FIELDS, Layer, NetworkEvent, NetworkJob, event_text, fusion_candidates, run_network
from .problem import Problem
from .report import edp_text
from .run_folder import write_atomically
from .safe_names import file_in, safe_file_name
from .json_output import json_text
from .search.objectives import OBJECTIVES, Objective
from .search.run import DEFAULT_PATIENCE, REMAINDER_SEARCHES, Settings
from .specs.constraints import parse_constraints, take_constraints
from .specs.errors import SpecError, did_you_mean
from .specs.limits import MAX_SEED, MAX_SEEDS
from .specs.fields import PositiveInt, PositiveNumber, SpecModel, Text, invalid, is_int, validated
from .specs.files import DocumentKind, find_spec_file, load_yaml, shipped_specs_dir
from .specs.native import SPEC_DOCUMENT, load_native
from .specs.native.architecture import check_keeps

UNCONSTRAINED = "unconstrained"
DEFAULT_ROOT = Path("results")


# ------------------------------------------------------------------ the file


def _objective(value: object) -> str:
    if value not in OBJECTIVES:
        raise invalid(value, "one of " + ", ".join(OBJECTIVES), did_you_mean(value, OBJECTIVES))
    return str(value)


def _seed(value: object) -> int:
    if not is_int(value) or not 0 <= value <= MAX_SEED:
        raise invalid(value, f"an integer from 0 to {MAX_SEED} (2**32 - 1)")
    return int(value)


def _seeds(value: object) -> int:
    if not is_int(value) or not 1 <= value <= MAX_SEEDS:
        raise invalid(value, f"an integer from 1 to {MAX_SEEDS} (independent searches of each layer)")
    return int(value)


def _patience(value: object) -> int | None:
    """Trials without progress before a layer's search stops; 0: never (None)."""
    if not is_int(value) or value < 0:
        raise invalid(value, "a number of trials, or 0 to never stop early")
    return int(value) or None


def _entry(value: object) -> object:
    """A workload given by its name alone is an entry without options."""
    return {"workload": value} if isinstance(value, str) else value


class WorkloadEntrySpec(SpecModel):
    workload: Text
    layers: Annotated[list[Text], Field(min_length=1)] | None = None
    batch: PositiveInt = 1
    name: Text | None = None


class SearchSpec(SpecModel):
    trials: PositiveInt | None = None
    time: PositiveNumber | None = None
    patience: Annotated[int | None, PlainValidator(_patience), WithJsonSchema(
        {"type": "integer", "minimum": 0, "description": "trials without progress before a layer's search stops; "
         "0: never"})] = DEFAULT_PATIENCE
    seed: Annotated[int, PlainValidator(_seed),
                    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_SEED})] = 0
    seeds: Annotated[int, PlainValidator(_seeds),
                     WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_SEEDS})] = 1
    remainders: StrictBool = True
    remainder_searches: PositiveInt = REMAINDER_SEARCHES
    fusion: StrictBool = False


class ExperimentSpec(SpecModel):
    name: Text
    description: Text | None = None
    architectures: Annotated[list[Text], Field(min_length=1)]
    workloads: Annotated[list[Annotated[WorkloadEntrySpec, BeforeValidator(
        _entry, json_schema_input_type=Text | WorkloadEntrySpec)]], Field(min_length=1)]
    dataflows: Annotated[list[Text], Field(min_length=1, default_factory=lambda: [UNCONSTRAINED])]
    objectives: Annotated[list[Annotated[str, PlainValidator(_objective), WithJsonSchema({"enum": list(OBJECTIVES)})]],
                          Field(min_length=1, default_factory=lambda: ["edp"])]
    search: SearchSpec = SearchSpec()
    hardware: HardwareSpec | None = None


EXPERIMENT_DOCUMENT = DocumentKind("an experiment", tuple(ExperimentSpec.model_fields))


@dataclass(frozen=True)
class Workload:
    label: str
    problems: tuple[Problem, ...]  # the selected layers, batch applied
    path: Path
    batch: int = 1


@dataclass(frozen=True)
class Dataflow:
    """A preset by name, a constraints file, or neither (`unconstrained`)."""

    label: str
    preset: str | None = None
    file: Path | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str | None
    file: Path
    architectures: tuple[Architecture, ...]
    workloads: tuple[Workload, ...]
    dataflows: tuple[Dataflow, ...]
    objectives: tuple[Objective, ...]
    settings: Settings  # every cell's, but for the objective
    designs: tuple[Design, ...] = ()  # of a hardware sweep: those within the area budget, in `architectures`
    over_budget: tuple[Design, ...] = ()  # of a hardware sweep: left out
    fusion: bool = False  # fused groups searched in every cell (mapper search --fusion)

    def cells(self) -> list[Cell]:
        """Every combination, architectures outermost, objectives innermost."""
        return [Cell(a, w, d, o) for a in self.architectures for w in self.workloads
                for d in self.dataflows for o in self.objectives]


@dataclass(frozen=True)
class Cell:
    arch: Architecture
    workload: Workload
    dataflow: Dataflow
    objective: Objective

    @property
    def labels(self) -> tuple[str, str, str, str]:
        return self.arch.name, self.workload.label, self.dataflow.label, self.objective

    def folder(self, root: Path) -> Path:
        folder = root / "cells"
        for label in self.labels:
            folder = file_in(folder, label)
        return folder


def load_experiment(path: str | Path) -> Experiment:
    """Read and check the whole experiment before anything runs: every architecture,
    workload, selected layer and constraints file must be there."""
    path = Path(path)
    spec = _experiment_spec(load_yaml(path, EXPERIMENT_DOCUMENT), path)
    designs, over_budget = [], []
    if spec.hardware is None:
        archs = tuple(_architecture(name, path, f"architectures[{i}]") for i, name in enumerate(spec.architectures))
    else:
        budget = spec.hardware.area_budget_mm2
        for i, name in enumerate(spec.architectures):
            file = _found(name, path, f"architectures[{i}]", "architecture")
            raw = load_yaml(file, SPEC_DOCUMENT).get("architecture")
            if raw is None:
                raise SpecError(path, f"architectures[{i}]", f"{name!r}, a file without an architecture",
                                "an architecture file (specs/arch/)")
            for design in sweep_designs(raw, file, spec.hardware, path):
                (designs if budget is None or design.area_mm2 <= budget else over_budget).append(design)
        archs = tuple(d.arch for d in designs)
        names = [d.arch.name for d in designs + over_budget]
        twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
        if twice is not None:
            raise SpecError(path, "hardware", f"the design {twice} a second time", "each design once",
                            "list each value of a swept parameter once")
        if not archs:
            raise SpecError(path, "hardware.area_budget_mm2", f"{budget} mm2, which every "
                            f"design exceeds (the smallest: {min(d.area_mm2 for d in over_budget):.4g} mm2)",
                            "a budget that leaves some design to search")
    workloads = tuple(workload_entry(entry, path, f"workloads[{i}]") for i, entry in enumerate(spec.workloads))
    dataflows = tuple(_dataflow(name, path, f"dataflows[{i}]") for i, name in enumerate(spec.dataflows))
    for key, labels in (("architectures", [a.name for a in archs]), ("workloads", [w.label for w in workloads]),
                        ("dataflows", [d.label for d in dataflows]), ("objectives", spec.objectives)):
        _unique(labels, path, key)
    settings = search_settings(spec.search, path)
    if spec.search.fusion and "pareto" in spec.objectives:
        raise SpecError(path, "search.fusion", "true with objective pareto", "fusion with the objectives edp, "
                        "energy and delay", "fused groups are chosen for one objective: drop pareto or fusion")
    return Experiment(spec.name, spec.description, path, archs, workloads, dataflows, tuple(spec.objectives),
                      settings, tuple(designs), tuple(over_budget), spec.search.fusion)


def search_settings(search: SearchSpec, path: Path, objective: Objective = "edp") -> Settings:
    """The settings of an experiment file's `search:` (a dataflow comparison's too),
    every key of it."""
    if search.seed + search.seeds - 1 > MAX_SEED:
        raise SpecError(path, "search.seeds", f"seeds {search.seed} to {search.seed + search.seeds - 1}",
                        f"seeds up to {MAX_SEED} (2**32 - 1)", "a lower search.seed")
    return Settings(objective=objective, trials=search.trials, seconds=search.time, patience=search.patience,
                    seed=search.seed, seeds=search.seeds, remainders=search.remainders,
                    remainder_searches=search.remainder_searches)


def _experiment_spec(raw: object, path: Path) -> ExperimentSpec:
    try:
        return validated(ExperimentSpec.model_validate, raw, path, "")
    except SpecError as e:  # a key of the root comes back as ".name": the path is the key alone
        raise SpecError(path, e.key_path.lstrip("."), e.found, e.allowed, e.suggestion) from None


def located(name: str, experiment: Path, key: str) -> Path:
    """A spec file named in an experiment (or a dataflow comparison) at `key`: beside
    it, else from the working directory, else a shipped spec (find_spec_file)."""
    beside = experiment.parent / name
    if beside.is_file():
        return beside
    try:
        return find_spec_file(name)
    except SpecError:
        raise SpecError(experiment, key, f"{name!r}, no such file", "a path relative to the experiment file or the "
                        "working directory, or the name of a shipped spec") from None


def _constraints_file(name: str, experiment: Path, key: str) -> Path | None:
    """A constraints file named as a dataflow: as `located` finds one, else a shipped
    one in specs/constraints/ (None: no such file)."""
    try:
        return located(name, experiment, key)
    except SpecError:
        shipped = shipped_specs_dir() / "constraints"
        return next((c for c in (shipped / name, shipped / f"{name}.yaml") if c.is_file()), None)


def _architecture(name: str, experiment: Path, key: str) -> Architecture:
    arch = load_native([_found(name, experiment, key, "architecture")])["architecture"]
    if arch is None:
        raise SpecError(experiment, key, f"{name!r}, a file without an architecture",
                        "an architecture file (specs/arch/)")
    return arch


_SHIPPED_FOLDER = {"architecture": "arch", "workload": "workloads"}  # in specs/, by the kind _found looks for


def _found(name: str, experiment: Path, key: str, kind: str) -> Path:
    try:
        return located(name, experiment, key)
    except SpecError:
        shipped = sorted(p.stem for p in (shipped_specs_dir() / _SHIPPED_FOLDER[kind]).glob("*.yaml"))
        raise SpecError(experiment, key, f"{name!r}, no such file nor shipped spec",
                        f"the name of a shipped {kind} spec ({', '.join(shipped)}) or a path to one (relative to "
                        "the experiment file or the working directory)", did_you_mean(name, shipped)) from None


def workload_entry(entry: WorkloadEntrySpec, experiment: Path, key: str) -> Workload:
    """The layers an experiment file's workload entry selects (a dataflow comparison's
    too), with its label: its name, else the file's stem, with -bN for a batch N."""
    path = _found(entry.workload, experiment, f"{key}.workload", "workload")
    problems = load_native([path], entry.batch)["problems"]
    if not problems:
        raise SpecError(experiment, f"{key}.workload", f"{entry.workload!r}, a file without layers",
                        "a workload file (specs/workloads/)")
    if entry.layers is not None:
        names = [p.name for p in problems]
        for j, layer in enumerate(entry.layers):
            if layer not in names:
                raise SpecError(experiment, f"{key}.layers[{j}]", repr(layer), f"a layer of {path}",
                                did_you_mean(layer, names))
        problems = tuple(p for p in problems if p.name in entry.layers)
    label = entry.name or Path(entry.workload).stem + (f"-b{entry.batch}" if entry.batch > 1 else "")
    return Workload(label, problems, path, entry.batch)


def _dataflow(name: str, experiment: Path, key: str) -> Dataflow:
    if name == UNCONSTRAINED:
        return Dataflow(name)
    if name in PRESETS:
        return Dataflow(name, preset=name)
    path = _constraints_file(name, experiment, key)
    if path is None:
        raise SpecError(experiment, key, repr(name), f"a dataflow preset ({', '.join(PRESETS)}), "
                        f"{UNCONSTRAINED}, or a constraints file", did_you_mean(name, [*PRESETS, UNCONSTRAINED]))
    found = take_constraints([(path, load_yaml(path, SPEC_DOCUMENT))])[1]
    if not found:
        raise SpecError(experiment, key, f"{name!r}, a file without constraints",
                        "a file with a `constraints:` key (native or Timeloop)")
    # Its mistakes (a key misspelt, a value out of range) are said now, before anything
    # runs; whether it fits each cell's architecture and layers, per cell (cell_job).
    parse_constraints(found, (), None)
    return Dataflow(path.stem, file=path)


def _unique(labels: list[str], experiment: Path, key: str) -> None:
    for i, label in enumerate(labels):
        if label in labels[:i]:
            raise SpecError(experiment, f"{key}[{i}]", f"{label!r} a second time",
                            "each label once",
                            "give each workload entry a `name` of its own" if key == "workloads" else None)


# -------------------------------------------------------------------- running


@dataclass(frozen=True)
class ExperimentEvent:
    """For the progress display: a cell starts (`network` None) or a layer of it is done."""

    cell: Cell
    index: int  # of the cell, from 1
    total: int
    network: NetworkEvent | None = None
    not_applicable: str | None = None
    skipped: tuple[tuple[str, str], ...] = ()  # as the cell starts: its layers the constraints do not apply to
    unfused: str | None = None  # as the cell starts, with search.fusion: why it considers no fused group


EventCallback = Callable[[ExperimentEvent], None]


@dataclass(frozen=True)
class ExperimentResult:
    folder: Path
    summary: dict[str, Any]
    plots: list[Path]


def run_experiment(exp: Experiment, folder: Path, pool: Executor, on_event: EventCallback | None = None,
                   on_progress: EventCallback | None = None) -> ExperimentResult:
    """Every cell in turn (each skipping what it finished before), then the tables and plots."""
    cells, rows = exp.cells(), []
    for index, cell in enumerate(cells, 1):
        job = cell_job(exp, cell, folder)
        reason = job if isinstance(job, str) else None
        if on_event:
            searched = job if isinstance(job, NetworkJob) else None
            on_event(ExperimentEvent(cell, index, len(cells), not_applicable=reason,
                                     skipped=searched.skipped if searched else (),
                                     unfused=unfused_reason(exp, searched) if searched else None))
        if reason is not None:
            rows.append(cell_row(cell, folder, None, reason))
            continue
        forward = None if on_event is None else (
            lambda e, c=cell, i=index: on_event(ExperimentEvent(c, i, len(cells), e)))
        forward_progress = None if on_progress is None else (
            lambda e, c=cell, i=index: on_progress(ExperimentEvent(c, i, len(cells), e)))
        result = run_network(job, pool, forward, forward_progress)
        rows.append(cell_row(cell, folder, result.summary, None))
    summary = {"experiment": exp.name, "description": exp.description, "file": str(exp.file), "cells": rows}
    if exp.designs:
        summary["designs"] = design_rows(exp, rows)
    write_tables(folder, summary)
    from .plots import experiment_plots  # matplotlib only when plotting
    return ExperimentResult(folder, summary, experiment_plots(folder, summary))


def cell_job(exp: Experiment, cell: Cell, folder: Path) -> NetworkJob | str:
    """The cell's network search, or why its dataflow does not apply."""
    problems, arch = cell.workload.problems, cell.arch
    for problem in problems:
        try:
            check_keeps(arch, problem, None, "architecture")
        except SpecError as e:  # a level wired for tensors the layer does not have
            return f"{arch.name}'s {e.key_path} names {e.found}, not one of the {e.allowed}"
    constraints = None
    if cell.dataflow.preset:
        constraints = Constraints(preset=cell.dataflow.preset)
    elif cell.dataflow.file:
        try:
            found = take_constraints([(cell.dataflow.file, load_yaml(cell.dataflow.file, SPEC_DOCUMENT))])[1]
            constraints = parse_constraints(found, problems, arch)
        except SpecError as e:
            return f"the constraints do not fit {arch.name}: {e}"
    layers, skipped = [], []
    for problem in problems:
        try:
            layers.append(Layer(problem, layer_constraints(constraints, problem, arch)))
        except SpecError as e:  # checked before any search: the cell's other layers are searched
            skipped.append((problem.name, not_applicable_reason(e)))
    if not layers:
        name, reason = skipped[0]
        return f"{cell.dataflow.label} on {arch.name}, layer {name}: {reason}"
    settings = replace(exp.settings, objective=cell.objective)  # the storage too (mapper run --storage)
    fusion = (fusion_candidates([cell.workload.path], cell.workload.batch, tuple(layers), arch, cell.objective)
              if exp.fusion and len(layers) > 1 else ())
    return NetworkJob(cell.workload.label, arch, tuple(layers), settings, cell.folder(folder), tuple(skipped), fusion)


def unfused_reason(exp: Experiment, job: NetworkJob) -> str | None:
    """Why the cell's search considers no fused group though the experiment asks for
    fusion (None: it considers some, or fusion is off)."""
    if not exp.fusion or job.fusion:
        return None
    if len(job.layers) < 2:
        return f"one layer to search ({job.layers[0].problem.name})"
    return no_candidates_reason(job.arch)


def cells_with_unmapped_layers(summary: dict[str, Any]) -> list[str]:
    """The cells (labels joined) with a layer that no mapping fits: `mapper run` then
    exits 2, as `mapper search` does for such a network. Cells that do not apply, and
    layers the constraints do not apply to, are what an experiment sets out to find."""
    return [" / ".join(row[c] for c in _CELL_COLUMNS) for row in summary["cells"] if row["unmapped"]]


def cell_row(cell: Cell, root: Path, summary: dict[str, Any] | None, reason: str | None) -> dict[str, Any]:
    """A cell's line of the experiment's summary: its labels and its network's totals."""
    arch, workload, dataflow, objective = cell.labels
    row: dict[str, Any] = {"architecture": arch, "workload": workload, "dataflow": dataflow, "objective": objective,
                           "folder": str(cell.folder(root).relative_to(root)), "energy_unit": cell.arch.energy_unit}
    if summary is None:
        return row | {"status": f"not applicable: {reason}", "totals": None, "layers": [], "unmapped": []}
    failed, skipped = summary["failed"], summary["skipped"]
    problems = ([f"{len(failed)} layer(s) without a mapping: " + ", ".join(failed)] if failed else []) + (
        [f"{len(skipped)} layer(s) skipped, the constraints do not apply: " + ", ".join(skipped)] if skipped else [])
    status = "; ".join(problems) or "complete"
    return row | {"status": status, "totals": summary["totals"], "layers": summary["layers"], "unmapped": list(failed)}


def design_rows(exp: Experiment, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per design point and workload, dataflow and objective, with the network's
    totals and whether it is Pareto-optimal in (area, energy, cycles) among the designs
    of the same workload, dataflow and objective; the designs over the area budget
    after them, unsearched."""
    by_name = {d.arch.name: d for d in exp.designs}
    found = []
    for row in rows:
        totals = row["totals"] if row["status"] == "complete" else None
        found.append(by_name[row["architecture"]].to_json() | {
            "workload": row["workload"], "dataflow": row["dataflow"], "objective": row["objective"],
            "energy_unit": row["energy_unit"], "energy_pJ": totals["energy_pJ"] if totals else None,
            "cycles": totals["cycles"] if totals else None,
            "edp_J_cycles": totals["network_edp_J_cycles"] if totals else None, "pareto": False,
            "status": row["status"]})
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for design in found:
        if design["energy_pJ"] is not None:
            groups.setdefault((design["workload"], design["dataflow"], design["objective"]), []).append(design)
    for group in groups.values():
        for design, flag in zip(group, pareto_flags([(d["area_mm2"], d["energy_pJ"], d["cycles"]) for d in group])):
            design["pareto"] = flag
    return found + [d.to_json() | {"energy_pJ": None, "cycles": None, "edp_J_cycles": None, "pareto": False,
                                   "status": "over the area budget, not searched"} for d in exp.over_budget]


# -------------------------------------------------------------------- outputs

_CELL_COLUMNS = ("architecture", "workload", "dataflow", "objective")
_TOTAL_COLUMNS = ("layers", "layers_mapped", "macs", "energy_pJ", "pJ_per_MAC", "cycles", "utilization",
                  "edp_J_cycles", "network_edp_J_cycles")


def write_tables(folder: Path, summary: dict[str, Any]) -> None:
    write_atomically(folder / "summary.json", json_text(summary))
    write_atomically(folder / "summary.csv", _cells_csv(summary))
    write_atomically(folder / "summary.md", summary_markdown(summary))
    write_atomically(folder / "layers.csv", _layers_csv(summary))


def _cells_csv(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*_CELL_COLUMNS, "energy_unit", *_TOTAL_COLUMNS, "status"])
    for row in summary["cells"]:
        totals = row["totals"] or {}
        writer.writerow([*(row[c] for c in _CELL_COLUMNS), row["energy_unit"],
                         *(totals.get(c, "") for c in _TOTAL_COLUMNS), row["status"]])
    return out.getvalue()


def _layers_csv(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*_CELL_COLUMNS, "energy_unit", *SUMMARY_FIELDS])
    for row in summary["cells"]:
        for layer in row["layers"]:
            writer.writerow([*(row[c] for c in _CELL_COLUMNS), row["energy_unit"],
                             *(layer.get(f) for f in SUMMARY_FIELDS)])
    return out.getvalue()


def summary_markdown(summary: dict[str, Any]) -> str:
    """The table `mapper run` prints: one row per cell, its network's totals, each in the
    unit of its architecture's energy table (cells may differ)."""
    head = ("architecture", "workload", "dataflow", "objective", "layers", "energy", "energy per MAC", "cycles",
            "util.", "EDP (sum)", "status")
    lines = [f"Experiment {summary['experiment']}" + (f": {summary['description']}" if summary["description"] else ""),
             "", "| " + " | ".join(head) + " |", "| " + "--- | " * 4 + "---: | " * 6 + "--- |"]
    for row in summary["cells"]:
        t = row["totals"]
        unit = row["energy_unit"]
        figures = ["", "", "", "", "", ""] if t is None or not t["layers_mapped"] else [
            f"{t['layers_mapped']}/{t['layers']}", f"{t['energy_pJ']:.4g} {unit}", f"{t['pJ_per_MAC']:.3f} {unit}/MAC",
            f"{t['cycles']:,}", f"{100 * t['utilization']:.1f}%", edp_text(t['edp_J_cycles'], unit)]
        status = row["status"].replace("|", "/")
        lines.append("| " + " | ".join([*(row[c] for c in _CELL_COLUMNS), *figures, status]) + " |")
    if "designs" in summary:
        lines += ["", _designs_markdown(summary["designs"])]
    return "\n".join(lines) + "\n"


def _designs_markdown(designs: list[dict[str, Any]]) -> str:
    """The design points, smallest first per workload, dataflow and objective, those
    over the area budget last; energies in each design's unit."""
    head = ("design", "workload", "dataflow", "objective", "area mm2", "energy", "cycles", "EDP", "Pareto", "status")
    lines = ["Design points (EDP: the network's energy x its cycles; Pareto: in area, energy and cycles)", "",
             "| " + " | ".join(head) + " |", "| --- | --- | --- | --- | " + "---: | " * 4 + "--- | --- |"]
    ordered = sorted(designs, key=lambda d: ("workload" not in d, d.get("workload", ""), d.get("dataflow", ""),
                                             d.get("objective", ""), d["area_mm2"]))
    for d in ordered:
        unit = d.get("energy_unit", "pJ")
        figures = ([f"{d['energy_pJ']:.4g} {unit}", f"{d['cycles']:,}", edp_text(d["edp_J_cycles"], unit)]
                   if d["energy_pJ"] is not None else ["", "", ""])
        lines.append("| " + " | ".join([d["architecture"], d.get("workload", ""), d.get("dataflow", ""),
                                        d.get("objective", ""), f"{d['area_mm2']:.4g}", *figures,
                                        "yes" if d["pareto"] else "", d["status"].replace("|", "/")]) + " |")
    return "\n".join(lines)


def cell_title(event: ExperimentEvent) -> str:
    return f"cell {event.index}/{event.total} " + " / ".join(event.cell.labels)


def event_line(event: ExperimentEvent) -> str:
    """One line of the progress display."""
    head = f"[{cell_title(event)}]"
    if event.not_applicable is not None:
        return f"{head}: not applicable: {event.not_applicable}"
    if event.network is None:
        unfused = [] if event.unfused is None else [
            f"  fusion: no fused group to consider: {event.unfused}; each layer is searched alone"]
        return "\n".join([head] + [f"  {name}: skipped, the constraints do not apply: {reason}"
                                    for name, reason in event.skipped] + unfused)
    return "  " + event_text(event.network)


def default_folder(name: str) -> Path:
    """Where `mapper run` writes an experiment (or a dataflow comparison) of this name
    without -o."""
    return DEFAULT_ROOT / safe_file_name(name)

