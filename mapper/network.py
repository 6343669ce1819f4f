"""Network search: the best mapping of every layer of a workload on one architecture.

Layers of one shape (the same loop bounds, tensors and coefficients, and the same
constraints; only the name differs) have the same best mapping, so each shape is
searched once, by its first layer, and the answer is evaluated anew for the other
layers of that shape. Shapes are searched in parallel worker processes;
what each finds depends only on the settings and its seed, never on how many workers
run or in which order they finish.

The job lives in one folder, and everything in it is written atomically:

    DIR/network.json          what the job is: architecture, layers, constraints and
                              settings; a run on a folder written by another job is
                              refused rather than mixing the two
    DIR/layers/<layer>/       as `mapper search` writes for one layer (best.json ...);
                              a layer is finished when its best.json exists
    DIR/summary.{csv,json,md} per layer: energy, energy per MAC, cycles, utilization,
                              EDP and the mapping in one line; the network's totals;
                              energies in the architecture's `energy_unit` (the
                              `_pJ` keys keep their names whatever the unit); the
                              layers without a mapping (`failed`) and those the
                              constraints do not apply to (`skipped`), with why

Running the job again skips the finished layers; an unfinished search resumes from
its Optuna journal in the layer's folder.

With fused groups to consider (`NetworkJob.fusion`, mapper/fusion.py), the tile of each
layer of each group is searched as one more layer (under `layers/` too, named after
the group), and the summary runs the groups that lower the network's objective fused
(search/fused.py, `choose_groups`): their layers' rows give the figures over every tile,
with the group's name; `fusion_groups` lists the groups run fused, `fusion_candidates`
every group considered, with its figures or why it has no mapping.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import queue
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .architecture import Architecture
from .constraints import Constraints
from .explain import Explanation, why_line
from .fusion import FusedGroup, candidate_groups
from .fusion import constraints as fused_constraints
from .interrupt import raise_pending, worker_context, worker_process_init
from .mapping import Mapping
from .mapspace import NoValidMapping
from .model.fused import FusedEvaluation, evaluate_fused
from .model.stats import Evaluation
from .model.vectorized import evaluate_mapping
from .problem import Problem
from .report import edp_text, edp_unit, edp_value
from .safe_names import file_in
from .json_output import json_text
from .search.outputs import write_best, write_pareto
from .run_folder import NETWORK_RECORD, fingerprint, keep_results_of, write_atomically
from .search.engine import Progress, search_label
from .search.fused import Option, choose_groups
from .search.run import Settings, decisive_settings, recorded_settings, search_layer, seed_spread
from .specs.errors import SpecError
from .specs.files import load_yaml
from .specs.native import SPEC_DOCUMENT, load_workload_inputs
from .specs.native.mapping import parse_mapping
from .typed_json import from_json, to_json
from .workload_graph import workload_graph

MANIFEST = NETWORK_RECORD
BEST = "best.json"
PARETO = "pareto.json"
PROGRESS = "progress.json"  # in a layer's folder while a worker searches it (LayerProgress)
PROGRESS_PERIOD = 1.0  # seconds between progress reports
SUMMARY_FIELDS = ("layer", "same_shape_as", "macs", "energy_pJ", "pJ_per_MAC", "cycles", "utilization",
                  "edp_J_cycles", "mapping", "why")


@dataclass(frozen=True)
class Layer:
    """One layer to map, with its constraints already resolved for the architecture."""

    problem: Problem
    constraints: Constraints | None = None


@dataclass(frozen=True)
class NetworkJob:
    name: str  # the network's, for the summary
    arch: Architecture
    layers: tuple[Layer, ...]
    settings: Settings
    folder: Path
    # layers of the workload that the constraints cannot apply to, with the reason:
    # not searched, listed in the summary (they follow from `layers` and the files)
    skipped: tuple[tuple[str, str], ...] = ()
    fusion: tuple[FusedGroup, ...] = ()  # the fused groups to consider (fusion.candidate_groups)

    def layer_folder(self, layer: str) -> Path:
        return file_in(self.folder / "layers", layer)

    def tile_layers(self, group: FusedGroup) -> tuple[Layer, ...]:
        """The tile of each layer of `group`, as a layer to search: named after the
        group, under the constraints of its layer and of the group."""
        constraints = {layer.problem.name: layer.constraints for layer in self.layers}
        return tuple(Layer(replace(group.tile_problem(i), name=tile_name(group.name, problem.name)),
                           fused_constraints(group, self.arch, i, constraints[problem.name]))
                     for i, problem in enumerate(group.layers))

    @property
    def searched_layers(self) -> tuple[Layer, ...]:
        """The network's layers, then the tiles of the fused groups'."""
        return self.layers + tuple(tile for group in self.fusion for tile in self.tile_layers(group))


def tile_name(group: str, layer: str) -> str:
    """The name a fused group's tile of `layer` is searched under (its folder's, its
    manifest entry's)."""
    return f"{group}: {layer}"


@dataclass(frozen=True)
class ShapeTask:
    """What one worker does: search the first layer of a shape, then give every other
    layer of that shape the same mapping."""

    arch: Architecture
    constraints: Constraints | None
    settings: Settings
    layers: tuple[tuple[Problem, Path], ...]  # the searched layer first


@dataclass(frozen=True)
class ShapeReport:
    """How a shape's task went; `reasons` is set when no mapping fits."""

    layers: tuple[str, ...]
    searched: bool
    trials: int = 0
    scored: int = 0
    seconds: float = 0.0
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerProgress:
    """Where the search of a layer in a worker stands: the worker writes it into the
    layer's folder (PROGRESS) every second or so, and the main process reads it there.
    A file and not a queue: a worker killed while writing to a pipe can leave the
    others and the reader blocked, while a file is replaced whole or not at all."""

    layer: str
    trials: int | None  # completed in the study (None: exhaustive)
    budget: int | None
    seconds: float
    polishing: bool
    energy_pJ: float | None  # of the best mapping so far
    cycles: int | None
    remainder: str | None = None  # the padded layer in search (Progress.remainder)
    seed: int | None = None  # the seed in search, where the layer has several (Progress.seed)


@dataclass(frozen=True)
class NetworkEvent:
    """A shape finished (searched now, or found finished on disk) or failed, or how the
    search of one in work stands (`progress`): for a live display. `done` and `total`
    count shapes."""

    kind: Literal["searched", "resumed", "failed", "progress"]
    report: ShapeReport
    done: int
    total: int
    energy_unit: str  # the architecture's: the row's energies are in it
    row: dict[str, Any] | None = None  # the searched layer's summary row, unless it failed
    progress: LayerProgress | None = None


EventCallback = Callable[[NetworkEvent], None]


@dataclass(frozen=True)
class NetworkResult:
    folder: Path
    summary: dict[str, Any]
    failed: dict[str, tuple[str, ...]] = field(default_factory=dict)  # layer -> why no mapping fits


# --------------------------------------------------------------------- running


def default_jobs() -> int:
    """All the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextmanager
def worker_pool(jobs: int) -> Iterator[Executor]:
    """Worker processes for the searches, started with `spawn` on every platform (the
    same behaviour everywhere, and no fork of a process that holds threads). On an
    interruption the searches not yet started are dropped; the running ones stop at
    the SIGTERM the main process forwards to its workers (mapper/interrupt.py)."""
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=worker_context(), initializer=worker_process_init)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run_network(job: NetworkJob, pool: Executor, on_event: EventCallback | None = None,
                on_progress: EventCallback | None = None) -> NetworkResult:
    """Search every unfinished shape of the job in `pool`, then write the summary.
    `on_event` hears of each shape as it finishes, `on_progress` every second or so
    how the search of each shape in work stands."""
    prepare_folder(job)
    tasks = shape_tasks(job)
    total, done, failed = len(tasks), 0, {}
    start, unit = time.time(), job.arch.energy_unit
    pending: dict[Future[ShapeReport], ShapeTask] = {}
    for task in tasks:
        if all(finished(folder) for _, folder in task.layers):
            done += 1
            if on_event:
                on_event(NetworkEvent("resumed", _resumed(task), done, total, unit, _row_of(task)))
        else:
            pending[pool.submit(search_shape, task)] = task
    # Finished futures come through a queue that the pool's thread fills: not through
    # concurrent.futures.wait, whose taking of every future's lock an interruption can
    # cut in half, leaving a lock taken that the pool's thread then waits for forever.
    finished_queue: queue.SimpleQueue[Future[ShapeReport]] = queue.SimpleQueue()
    for future in pending:
        future.add_done_callback(finished_queue.put)
    shown: dict[str, LayerProgress] = {}
    while pending:
        try:
            finished_now = [finished_queue.get(timeout=PROGRESS_PERIOD)]
        except queue.Empty:
            finished_now = []
        for future in finished_now:
            task, report, done = pending.pop(future), future.result(), done + 1
            if report.reasons:
                failed.update({name: report.reasons for name in report.layers})
            if on_event:
                row = None if report.reasons else _row_of(task)
                on_event(NetworkEvent("failed" if report.reasons else "searched", report, done, total, unit, row))
        for task in pending.values() if on_progress else ():
            progress = read_progress(task.layers[0][1], since=start)
            if progress is not None and progress != shown.get(progress.layer):
                shown[progress.layer] = progress
                in_work = ShapeReport(tuple(p.name for p, _ in task.layers), searched=True)
                on_progress(NetworkEvent("progress", in_work, done, total, unit, progress=progress))
    summary = network_summary(job, failed)
    write_summary(job.folder, summary)
    # the network's layers only: a fused group's tile without a mapping is a candidate less
    return NetworkResult(job.folder, summary, {name: tuple(why) for name, why in summary["failed"].items()})


def _resumed(task: ShapeTask) -> ShapeReport:
    return ShapeReport(tuple(p.name for p, _ in task.layers), searched=False)


def _row_of(task: ShapeTask) -> dict[str, Any]:
    problem, folder = task.layers[0]
    return layer_row(problem.name, None, read_json(folder / BEST))


def search_shape(task: ShapeTask) -> ShapeReport:
    """The worker's job (a top-level function, so `spawn` can find it): search the
    shape's first layer unless it is finished, then write every other layer's result.
    None starts once the worker has been stopped: a process pool's worker whose task
    ended in the stop goes on to the tasks already queued to it, whole searches that
    the stopped run would wait for."""
    raise_pending()
    (problem, folder), names = task.layers[0], tuple(p.name for p, _ in task.layers)
    trials = scored = 0
    start, searched = time.perf_counter(), not finished(folder)
    evaluated: dict[Mapping, Evaluation] = {}
    if searched:
        try:
            result = search_layer(problem, task.arch, task.constraints, task.settings, folder,
                                  progress_writer(problem.name, folder))
        except NoValidMapping as e:
            return ShapeReport(names, True, seconds=time.perf_counter() - start, reasons=tuple(e.reasons))
        finally:
            (folder / PROGRESS).unlink(missing_ok=True)
        trials, scored = result.outcome.trials, result.outcome.scored
        evaluated = {m.without_unit_loops(): ev for m, ev in result.points}
    for other, other_folder in task.layers[1:]:
        if not finished(other_folder):
            write_same_shape(problem.name, folder, other, task.arch, other_folder, evaluated)
    return ShapeReport(names, searched, trials, scored, time.perf_counter() - start)


def progress_writer(layer: str, folder: Path) -> Callable[[Progress], None]:
    """A search's progress callback that writes LayerProgress into `folder` at most
    every PROGRESS_PERIOD seconds (and when the polish starts)."""
    last = -math.inf

    def write(progress: Progress) -> None:
        nonlocal last
        if time.monotonic() - last < PROGRESS_PERIOD and not progress.polishing:
            return
        last = time.monotonic()
        best = progress.best if progress.best is not None and len(progress.best) else None
        write_atomically(folder / PROGRESS, json.dumps(to_json(LayerProgress(
            layer, progress.trials, progress.budget, progress.elapsed, progress.polishing,
            None if best is None else float(best.scores.energy_pJ[0]),
            None if best is None else int(best.scores.cycles[0]), progress.remainder, progress.seed))))
    return write


def read_progress(folder: Path, since: float) -> LayerProgress | None:
    """The progress a worker wrote into `folder` after `since` (a time.time()), if any:
    an older file is one a killed run left behind."""
    path = folder / PROGRESS
    try:
        if path.stat().st_mtime < since:
            return None
        return from_json(LayerProgress, json.loads(path.read_text()))
    except (OSError, ValueError):  # not there (yet, or any more)
        return None


def finished(folder: Path) -> bool:
    return (folder / BEST).is_file()


def write_same_shape(searched: str, searched_folder: Path, problem: Problem, arch: Architecture,
                     folder: Path, evaluated: dict[Mapping, Evaluation]) -> None:
    """The searched layer's answer for a layer of the same shape, under this layer's
    name (the figures are the same: the shape is). `evaluated`: the searched layer's
    mappings (without unit loops) with their evaluations, where this process has them:
    one with a remainder takes the reference model up to a second, not spent again
    per layer. best.json last: it marks the layer finished."""
    best = read_json(searched_folder / BEST)
    info = {**best["search"], "same_shape_as": searched}
    if (searched_folder / PARETO).is_file():
        points = read_json(searched_folder / PARETO)["points"]
        write_pareto(folder, problem, arch, [_rescored(p["mapping"], problem, arch, searched_folder / PARETO,
                                                       evaluated) for p in points], info)
    mapping, ev = _rescored(best["mapping"], problem, arch, searched_folder / BEST, evaluated)
    folder.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=folder, prefix=".staged-"))  # write_best writes best.json first
    write_best(staged, problem, arch, mapping, ev, info)
    for name in sorted(os.listdir(staged), key=lambda n: n == BEST):
        os.replace(staged / name, folder / name)
    staged.rmdir()


def _rescored(entries: list[dict[str, Any]], problem: Problem, arch: Architecture, source: Path,
              evaluated: dict[Mapping, Evaluation]) -> tuple[Mapping, Evaluation]:
    mapping = parse_mapping(entries, problem, arch, source)
    return mapping, evaluated.get(mapping.without_unit_loops()) or evaluate_mapping(problem, arch, mapping)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object a search wrote (best.json, a summary); one that a hand or a tool
    broke is a one-line error naming the file."""
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise SpecError(path, "", f"a file that is not JSON ({e.msg} at line {e.lineno})", "the JSON a search "
                        "writes", "remove it and run the search again, which writes it anew") from None
    if not isinstance(data, dict):
        raise SpecError(path, "", f"a JSON {type(data).__name__}", "a JSON object, as a search writes it")
    return data


# ------------------------------------------------------------ shapes, folder


def shape_tasks(job: NetworkJob) -> list[ShapeTask]:
    """One task per shape, in the order of each shape's first layer."""
    groups: dict[str, list[Layer]] = {}
    for layer in job.searched_layers:
        groups.setdefault(shape_key(layer), []).append(layer)
    return [ShapeTask(job.arch, layers[0].constraints, job.settings,
                      tuple((l.problem, job.layer_folder(l.problem.name)) for l in layers))
            for layers in groups.values()]


def shape_key(layer: Layer) -> str:
    """Equal for layers that differ only in name."""
    return json.dumps(to_json((replace(layer.problem, name=""), layer.constraints)), sort_keys=True)


def manifest(job: NetworkJob) -> dict[str, Any]:
    """What the job is. The fingerprint covers everything that decides its results
    (not the storage URL, which only says where the studies are kept)."""
    decisive = {"arch": to_json(job.arch), "layers": to_json(job.layers), "settings": decisive_settings(job.settings)}
    if job.fusion:  # (only then: a job without stays the job it was before fusion existed)
        decisive["fusion"] = [[group.name, group.level] for group in job.fusion]
    first = {}
    for layer in job.searched_layers:
        first.setdefault(shape_key(layer), layer.problem.name)

    def entry(layer: Layer) -> dict[str, Any]:
        name = layer.problem.name
        return {"name": name, "folder": str(job.layer_folder(name).relative_to(job.folder)),
                "same_shape_as": _other(first[shape_key(layer)], name)}

    # A fused group's tiles are searched as layers of their own, marked with the group
    # (mapper/runs.py reads the network's layers apart from them).
    tiles = [entry(tile) | {"fusion_group": group.name} for group in job.fusion for tile in job.tile_layers(group)]
    return {"network": job.name, "architecture": job.arch.name,
            "settings": recorded_settings(job.settings),
            "layers": [entry(layer) for layer in job.layers] + tiles,
            "fingerprint": fingerprint(decisive)}


def _other(first: str, name: str) -> str | None:
    return None if first == name else first


def prepare_folder(job: NetworkJob) -> None:
    """Write the manifest, or check that the folder holds this job's results."""
    keep_results_of(job.folder / MANIFEST, manifest(job), "job",
                    "the same architecture, layers, constraints and settings")


# -------------------------------------------------------------------- summary


def network_summary(job: NetworkJob, failed: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Per layer its figures (read back from its best.json) and the network's totals;
    with fused groups to consider, those run fused in their layers' rows."""
    same = {l["name"]: l["same_shape_as"] for l in manifest(job)["layers"]}
    rows, missing = [], {}
    for layer in job.layers:
        name, best = layer.problem.name, job.layer_folder(layer.problem.name) / BEST
        if best.is_file():
            rows.append(layer_row(name, same[name], read_json(best)))
        else:
            missing[name] = list(failed.get(name, ("not searched",)))
    fusion = fused_rows(job, rows, failed) if job.fusion else {}
    return {"network": job.name, "architecture": job.arch.name, "energy_unit": job.arch.energy_unit,
            "objective": job.settings.objective, "seed": job.settings.seed, "seeds": job.settings.seeds,
            "layers": rows, "failed": missing,
            "skipped": dict(job.skipped), "totals": totals(rows, len(job.layers) + len(job.skipped)), **fusion}


def fused_rows(job: NetworkJob, rows: list[dict[str, Any]], failed: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """Run the groups that lower the network's objective fused (`choose_groups`): their
    layers' rows in `rows` replaced by their figures over every tile; returns the
    summary's `fusion_groups` (those), `fusion_candidates` (every group considered: its
    figures, or why it has none) and `totals_unfused` (the network with none fused)."""
    index = {row["layer"]: k for k, row in enumerate(rows)}
    candidates, options, evaluated = [], [], []
    for group in job.fusion:
        tiles = job.tile_layers(group)
        reasons = [f"{tile.problem.name}: " + "; ".join(failed.get(tile.problem.name, ("not searched",)))
                   for tile in tiles if not finished(job.layer_folder(tile.problem.name))]
        if reasons or any(p.name not in index for p in group.layers):
            candidates.append({"group": group.name, "no_mapping": reasons or ["a layer of it has no mapping alone"]})
            continue
        files = [job.layer_folder(t.problem.name) / BEST for t in tiles]
        entries = [read_json(f)["mapping"] for f in files]
        fused = evaluate_fused(group, job.arch, [parse_mapping(e, t.problem, job.arch, f)
                                                 for e, t, f in zip(entries, tiles, files)])
        candidates.append({"group": group.name, "energy_pJ": fused.energy_pJ, "cycles": fused.cycles})
        first = index[group.layers[0].name]
        options.append(Option(first, first + len(group.layers), fused.energy_pJ, fused.cycles))
        evaluated.append((fused, [one_line(e) for e in entries]))
    unfused = [(row["energy_pJ"], row["cycles"]) for row in rows]
    alone = totals(rows, len(job.layers) + len(job.skipped))
    chosen = choose_groups(unfused, options, job.settings.objective) if options else []
    groups = []
    for k in chosen:
        fused, lines = evaluated[k]
        run = slice(options[k].first, options[k].stop)
        before = rows[run]
        rows[run] = [fused_row(fused, i, row, line, job.arch) for i, (row, line) in enumerate(zip(before, lines))]
        groups.append(group_entry(fused, job.arch, rows[run], before))
    return {"fusion_groups": groups, "fusion_candidates": candidates, "totals_unfused": alone}


def fused_row(fused: FusedEvaluation, i: int, alone: dict[str, Any], mapping: str,
              arch: Architecture) -> dict[str, Any]:
    """Layer i of a group run fused: its figures over every tile of the group (its
    MACs as the layer's; `macs_run` counts the halo rows recomputed too)."""
    energy, cycles, run = fused.layer_energy_pJ(i), fused.layer_cycles(i), fused.layer_computes(i)
    return {**alone, "energy_pJ": energy, "pJ_per_MAC": energy / alone["macs"], "cycles": cycles,
            "utilization": run / (cycles * arch.compute.instances), "edp_J_cycles": energy * 1e-12 * cycles,
            "mapping": f"{mapping} (each tile)", "why": f"fused: {fused.group.name}", "macs_run": run,
            "fusion_group": fused.group.name, "energy_by_level_pJ": fused.energy_by_level_pJ(i),
            "energy_by_tensor_pJ": fused.energy_by_tensor_pJ(i), "accesses_by_level": fused.accesses_by_level(i)}


def group_entry(fused: FusedEvaluation, arch: Architecture, rows: list[dict[str, Any]],
                alone: list[dict[str, Any]]) -> dict[str, Any]:
    """A fused group's line of the summary, from its layers' rows run fused (`rows`) and
    alone (`alone`)."""
    group, dram = fused.group, arch.levels[0].name

    def figures(layers: list[dict[str, Any]]) -> dict[str, Any]:
        return {"energy_pJ": sum(r["energy_pJ"] for r in layers), "cycles": sum(r["cycles"] for r in layers),
                "dram_energy_pJ": sum(r["energy_by_level_pJ"].get(dram, 0.0) for r in layers),
                "dram_accesses": sum(r["accesses_by_level"][dram] for r in layers)}

    return {"group": group.name, "layers": [p.name for p in group.layers], "level": arch.levels[group.level].name,
            "rows": group.rows, "tiles": group.tiles, "macs_run": fused.computes, **figures(rows),
            "alone": figures(alone)}


def level_accesses(level: dict[str, Any]) -> float:
    """A level's reads, fills and updates over all its instances, from a best.json's
    `levels` entry."""
    return sum((t["reads"] + t["fills"] + t["updates"]) * t["utilized_instances"] for t in level["tensors"].values())


def layer_row(name: str, same_shape_as: str | None, best: dict[str, Any]) -> dict[str, Any]:
    """One layer's line of the summary, with its energy broken down by level and by
    tensor (MACs and network apart, so that each breakdown adds up to the total)."""
    by_level, by_tensor = {}, {}
    for level in best["levels"]:
        by_level[level["name"]] = sum(t["energy_pJ"] for t in level["tensors"].values())
        for tensor, t in level["tensors"].items():
            by_tensor[tensor] = by_tensor.get(tensor, 0.0) + t["energy_pJ"]
    energy, compute = best["energy_pJ"], best["compute_energy_pJ"]
    # best.json gives no level's network energy apart: it is what the rest leaves
    network = max(0.0, energy - compute - sum(by_level.values()))
    extra = {"MAC": compute} | ({"network": network} if network > 1e-9 * energy else {})
    return {"layer": name, "same_shape_as": same_shape_as, "macs": best["computes"], "energy_pJ": energy,
            "pJ_per_MAC": energy / best["computes"], "cycles": best["cycles"], "utilization": best["utilization"],
            "edp_J_cycles": best["edp_J_cycles"], "mapping": one_line(best["mapping"]), "why": _why(best),
            "energy_by_level_pJ": by_level | extra, "energy_by_tensor_pJ": by_tensor | extra,
            "accesses_by_level": {level["name"]: level_accesses(level) for level in best["levels"]},
            "search": {k: best["search"].get(k) for k in ("objective", "mode", "trials", "seed")} | _seeds(best)}


def _seeds(best: dict[str, Any]) -> dict[str, Any]:
    """Where the layer was searched from several seeds (--seeds): how far apart they
    ended (each one's figures are in its best.json)."""
    seeds = best["search"].get("seeds")
    return {"seed_spread": seed_spread(seeds, best["search"]["objective"])} if seeds else {}


def _why(best: dict[str, Any]) -> str | None:
    """The layer's explanation in one line (None for a best.json written before there
    were explanations)."""
    return why_line(Explanation.from_json(best["explanation"])) if "explanation" in best else None


def one_line(entries: list[dict[str, Any]]) -> str:
    """A mapping in one line, outermost level first: each level with the initials of
    the tensors it keeps, then its temporal and spatial loops, e.g.
    `DRAM[WIO] / shared_glb[I] / PE_array[] M16X C4Y / spad[W] R3 S3`."""
    tensors = list(dict.fromkeys(t for e in entries for t in e["keep"]))
    initials = [t[0] for t in tensors]
    short = {t: (t[0] if initials.count(t[0]) == 1 else t + ",") for t in tensors}
    parts = []
    for e in entries:
        keep = "".join(short[t] for t in e["keep"]).rstrip(",")
        loops = " ".join(filter(None, (e.get("temporal"), e.get("spatial"))))
        parts.append(f"{e['level']}[{keep}]" + (f" {loops}" if loops else ""))
    return " / ".join(parts)


def totals(rows: list[dict[str, Any]], layers: int) -> dict[str, Any]:
    """The network run layer after layer: energies and cycles add up; utilization is
    the MACs over the MAC-cycles of the whole run; EDP both summed over the layers and
    of the network as a whole (its energy times its cycles). With no layer mapped there
    is nothing to total: the figures are None (not 0, which would rank first)."""
    macs = sum(r["macs"] for r in rows)
    energy = sum(r["energy_pJ"] for r in rows)
    cycles = sum(r["cycles"] for r in rows)
    busy = sum(r["utilization"] * r["cycles"] for r in rows)
    figures = {"macs": macs, "energy_pJ": energy, "pJ_per_MAC": energy / macs if macs else None, "cycles": cycles,
               "utilization": busy / cycles if cycles else None, "edp_J_cycles": sum(r["edp_J_cycles"] for r in rows),
               "network_edp_J_cycles": energy * 1e-12 * cycles}
    return {"layers": layers, "layers_mapped": len(rows), **(figures if rows else dict.fromkeys(figures))}


def write_summary(folder: Path, summary: dict[str, Any]) -> None:
    write_atomically(folder / "summary.json", json_text(summary))
    write_atomically(folder / "summary.csv", summary_csv(summary))
    write_atomically(folder / "summary.md", summary_markdown(summary))


def summary_csv(summary: dict[str, Any]) -> str:
    """One row per mapped layer, full precision, then a `TOTAL` row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary["layers"])
    t = summary["totals"]
    writer.writerow({"layer": "TOTAL", **{k: t[k] for k in ("macs", "energy_pJ", "pJ_per_MAC", "cycles",
                                                             "utilization", "edp_J_cycles")}})
    return out.getvalue()


def summary_markdown(summary: dict[str, Any]) -> str:
    """The table `mapper search` prints for a network."""
    unit = summary["energy_unit"]
    head = ("layer", "MACs", f"energy {unit}", f"{unit}/MAC", "cycles", "util.", f"EDP {edp_unit(unit)}", "mapping",
            "why")
    lines = [f"{summary['network']} on {summary['architecture']} ({summary['objective']}, {_seeds_named(summary)})", "",
             "| " + " | ".join(head) + " |", "| --- | " + "---: | " * 6 + "--- | --- |"]
    for r in summary["layers"]:
        name = r["layer"] + (f" (= {r['same_shape_as']})" if r["same_shape_as"] else "")
        lines.append(_md_row(name, r, f"`{r['mapping']}`", r.get("why") or "", unit))
    t = summary["totals"]
    if summary["layers"]:
        lines.append(_md_row(f"**total** ({t['layers_mapped']} of {t['layers']} layers)", t, "", "", unit))
        lines += ["", (f"Network EDP (total energy x total cycles): {edp_text(t['network_edp_J_cycles'], unit)}; "
                       "the table's total EDP is the sum over the layers.")]
    for name, reasons in summary["failed"].items():
        lines.append(f"- {name}: no mapping: " + "; ".join(reasons))
    lines += seeds_lines(summary)
    lines += fusion_lines(summary)
    for name, reason in summary.get("skipped", {}).items():  # a summary written before skipping existed has none
        lines.append(f"- {name}: skipped, the constraints do not apply: {reason}")
    return "\n".join(lines) + "\n"


def _seeds_named(summary: dict[str, Any]) -> str:
    seeds = summary.get("seeds", 1)  # a summary written before --seeds has none
    return f"seed {summary['seed']}" if seeds == 1 else f"seeds {summary['seed']}-{summary['seed'] + seeds - 1}"


def seeds_lines(summary: dict[str, Any], apart: float = 0.01) -> list[str]:
    """What the summary says of the layers' independent searches (--seeds): how many
    shapes' seeds ended within `apart` of each other, and those that did not."""
    searched = [r for r in summary["layers"] if r["same_shape_as"] is None and "seed_spread" in r["search"]]
    if not searched:
        return []
    spread = sorted((r for r in searched if r["search"]["seed_spread"] > apart),
                    key=lambda r: -r["search"]["seed_spread"])
    lines = ["", f"Seeds: {len(searched) - len(spread)} of {len(searched)} shapes searched end within "
             f"{100 * apart:g}% of each other from every seed (each shape's best.json: search.seeds)"
             + (", these do not:" if spread else ".")]
    lines += [f"- {r['layer']}: {100 * r['search']['seed_spread']:.1f}% apart, the best from seed {r['search']['seed']}"
              for r in spread]
    return lines


def fusion_lines(summary: dict[str, Any]) -> list[str]:
    """What the summary says of fused groups, if it considered any."""
    if "fusion_candidates" not in summary:
        return []
    unit = summary["energy_unit"]
    alone = summary["totals_unfused"]
    lines = ["", f"Fused groups: {len(summary['fusion_groups'])} run fused of {len(summary['fusion_candidates'])} "
             "considered (summary.json: fusion_groups, fusion_candidates); with none fused, the network takes "
             f"{alone['energy_pJ']:.4g} {unit}, {alone['cycles']:,} cycles, network EDP "
             f"{edp_text(alone['network_edp_J_cycles'], unit)}."]
    for g in summary["fusion_groups"]:
        alone = g["alone"]
        lines.append(f"- {g['group']} ({g['tiles']} tiles, intermediates in {g['level']}): energy {g['energy_pJ']:.4g} "
                     f"{unit} against {alone['energy_pJ']:.4g} alone (DRAM {g['dram_energy_pJ']:.4g} against "
                     f"{alone['dram_energy_pJ']:.4g}), {g['cycles']:,} cycles against {alone['cycles']:,}")
    return lines


def _md_row(name: str, r: dict[str, Any], mapping: str, why: str, energy_unit: str) -> str:
    cells = (name, f"{r['macs']:,}", f"{r['energy_pJ']:.4g}", f"{r['pJ_per_MAC']:.3f}", f"{r['cycles']:,}",
             f"{100 * r['utilization']:.1f}%", f"{edp_value(r['edp_J_cycles'], energy_unit):.4g}", mapping, why)
    return "| " + " | ".join(cells) + " |"


def event_text(event: NetworkEvent) -> str:
    """One line per finished shape, for the progress display."""
    report, head = event.report, f"[{event.done}/{event.total}] {event.report.layers[0]}"
    if len(report.layers) > 1:
        head += f" (+{len(report.layers) - 1} of the same shape)"
    if event.progress is not None:
        return f"{head}: {progress_text(event.progress, event.energy_unit)}"
    if event.kind == "failed":
        return f"{head}: no valid mapping: " + "; ".join(report.reasons)
    r = event.row
    if not report.searched:
        how = "searched earlier"
    elif not report.scored:  # the trials were run elsewhere: by workers sharing the storage
        how = f"{report.trials} trials, by other processes"
    else:
        how = f"{report.trials} trials, {report.scored:,} mappings in {report.seconds:.1f} s"
    return (f"{head}: {r['pJ_per_MAC']:.3f} {event.energy_unit}/MAC, {r['cycles']:,} cycles, "
            f"EDP {edp_text(r['edp_J_cycles'], event.energy_unit)} ({how})")


def progress_text(p: LayerProgress, energy_unit: str) -> str:
    """How far a layer's search is and the best it found so far."""
    done = (f"trial {p.trials}" + (f"/{p.budget}" if p.budget else "") if p.trials is not None
            else "exhaustive") + (", polishing" if p.polishing else "") + search_label(p.seed, p.remainder)
    if p.energy_pJ is None or p.cycles is None:
        return f"{done}, {p.seconds:.0f} s, no mapping yet"
    return f"{done}, {p.seconds:.0f} s, best EDP {edp_text(p.energy_pJ * 1e-12 * p.cycles, energy_unit)}"


def fusion_candidates(files: Sequence[str | Path], batch: int, layers: tuple[Layer, ...], arch: Architecture,
                      objective: str) -> tuple[FusedGroup, ...]:
    """The fused groups to consider (fusion.candidate_groups) among `layers`, from the
    graph of the workload in `files` (the native file that has one); SpecError where
    fusion cannot apply."""
    where = ", ".join(map(str, files))
    if objective == "pareto":
        raise SpecError(where, "--fusion", "--objective pareto", "edp, energy or delay with --fusion",
                        "fused groups are chosen for one objective")
    workload = next((f for f in files if isinstance(load_yaml(f, SPEC_DOCUMENT).get("workload"), dict)), None)
    if workload is None or len(layers) < 2:
        raise SpecError(where, "--fusion", "no native workload of several layers" if workload is None
                        else "one layer to search", "a native workload (`workload: layers:`) of two layers or more",
                        "drop --fusion, or --layer, or give the workload file")
    problems, inputs = load_workload_inputs(workload, batch)
    searched = {layer.problem.name: layer.problem for layer in layers}
    return tuple(group for group in candidate_groups(workload_graph(problems, inputs), arch)
                 if all(searched.get(p.name) == p for p in group.layers))


def network_name(files: list[str]) -> str:
    """The workload's name among spec files: its `workload.name`, else its file's stem."""
    for path in files:
        doc = load_yaml(path, SPEC_DOCUMENT)
        if isinstance(doc.get("workload"), dict):
            return str(doc["workload"].get("name") or Path(path).stem)
    return Path(files[-1]).stem
