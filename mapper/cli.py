"""The `mapper` command. The only module that prints."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import signal
import sys
import time
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.live import Live
from rich.text import Text

from .architecture import Architecture
from .compare import comparison_text
from .constraints import Constraints
from .estimation import BACKENDS, BUILT_IN, EstimateError, hwcomponents_backend, technology_nm
from .explain import explain, explanation_text
from .mapping import Mapping
from .model import vectorized
from .model.stats import Evaluation
from .problem import Problem
from .runs import explanation_of, read_runs
from .mapspace import NoValidMapping
from . import api, dataflow_comparison, experiment, interrupt, network, run_folder, worker
from .fusion import no_candidates_reason
from .onnx_import import import_onnx, workload_yaml
from .report import counts_table, estimate_table, loop_nest, totals
from .safe_names import mask_passwords, masked_command, safe_file_name
from .json_output import json_text
from .search import command as search
from .run_folder import write_atomically
from .search.outputs import evaluation_json
from .search.run import Settings, claim_layer_folder
from .specs.errors import SpecError, did_you_mean
from .specs.load import load_specs
from .specs.files import find_spec_file, load_yaml
from .specs.native import SPEC_DOCUMENT, load_workload_inputs
from .specs.timeloop import is_timeloop
from .workload_graph import graph_stats, workload_graph
from .specs import schema
from .workload_stats import stats_table, workload_stats


def write_json_atomically(path: Path, data: dict) -> None:
    write_atomically(path, json_text(data))


class OneLineErrorParser(argparse.ArgumentParser):
    """A command-line mistake in one line, as a spec mistake is (argparse would print
    the whole usage first); --help still shows the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def non_negative_seconds(text: str) -> float:
    """An argparse type: a finite time of at least 0 seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"found {text!r}; allowed: seconds, a number >= 0")
    return value


def evaluated(files: list[str]) -> tuple[Problem, Architecture, Mapping, Evaluation, Constraints | None]:
    """The problem, architecture and mapping the files give together, the mapping's
    evaluation, and the constraints among the files (None: none)."""
    specs = load_specs(files)
    missing = [name for name, part in (("a problem", specs.problems), ("an architecture", specs.architecture),
                                       ("a mapping", specs.mapping)) if not part]
    if missing:
        raise SpecError(", ".join(files), "", "no " + " and no ".join(m.split(" ", 1)[1] for m in missing),
                        "files that together give a problem, an architecture and a mapping")
    problem, arch, mapping = specs.problems[0], specs.architecture, specs.mapping
    return problem, arch, mapping, api.evaluate(problem, arch, mapping, source=", ".join(files)), specs.constraints


def cmd_evaluate(args: argparse.Namespace) -> int:
    problem, arch, mapping, ev, constraints = evaluated(args.files)
    broken = None if constraints is None else api.broken_constraints(problem, arch, mapping, constraints)
    print(loop_nest(problem, arch, mapping))
    print()
    print(counts_table(ev, arch.energy_unit))
    print()
    print(totals(ev, arch.energy_unit))
    if broken is not None:
        print(constraints_text(broken))
    if args.json:
        checked = {} if broken is None else {"constraints_broken": broken}
        write_json_atomically(Path(args.json), {**evaluation_json(arch, ev), **checked})
    return 0


def constraints_text(broken: list[str]) -> str:
    """What `mapper evaluate` says of the constraints among its files: a mapping is
    evaluated whatever they say (a what-if), and the user learns which it breaks."""
    if not broken:
        return "constraints: the mapping meets every one"
    return f"constraints: the mapping breaks {len(broken)}:\n" + "\n".join(f"  - {b}" for b in broken)


def cmd_estimate(args: argparse.Namespace) -> int:
    """Energy per access, leakage and area of every component of an architecture from
    its parameters (mapper/estimation)."""
    found = api.estimate(api.load(*args.files, need_energies=False), args.technology, args.backend)
    print(estimate_table(found))
    if args.json:
        write_json_atomically(Path(args.json), found.to_json())
    return 0


def cmd_build_cacti(args: argparse.Namespace) -> int:
    try:
        print(f"built {hwcomponents_backend.build_cacti()}")
    except hwcomponents_backend.CactiFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def technology_argument(text: str) -> float:
    """An argparse type: a technology node the estimator covers."""
    try:
        return technology_nm(text)
    except EstimateError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cmd_explain(args: argparse.Namespace) -> int:
    """Why a mapping costs what it costs (mapper/explain.py): of the files of `mapper
    evaluate`, or of the best mappings of a finished run's folder."""
    folders = [Path(f) for f in args.files if Path(f).is_dir()]
    if folders:
        if len(folders) < len(args.files):
            raise SpecError(", ".join(args.files), "", "run folders and spec files together",
                            "run folders, or the spec files of one mapping")
        runs = [run for folder in folders for run in read_runs(folder)]
        found = [(run.name, layer.name, layer.fused_in, run.energy_unit, explanation_of(layer))
                 for run in runs for layer in run.layers if args.layer is None or layer.name == args.layer]
        if not found:
            finished = list(dict.fromkeys(layer.name for run in runs for layer in run.layers))
            raise SpecError(", ".join(args.files), "--layer" if args.layer else "",
                            f"no finished layer {args.layer!r}" if args.layer else "no finished layer",
                            "a finished layer: " + ", ".join(finished) if finished else "a run folder with a "
                            "best mapping", did_you_mean(args.layer, finished) if args.layer else None)
    elif args.layer is not None:
        raise SpecError(", ".join(args.files), "--layer", args.layer, "--layer with run folders only",
                        "the spec files give one layer: leave --layer out")
    else:
        problem, arch, mapping, ev, _ = evaluated(args.files)
        found = [(arch.name, problem.name, None, arch.energy_unit, explain(problem, arch, mapping, ev))]
    for run, layer, fused_in, unit, explanation in found:
        tile = f", fused in {fused_in}: the mapping of one tile" if fused_in else ""
        print(f"# {layer} ({run}{tile})\n\n{explanation_text(explanation, unit)}\n")
    if args.json:
        write_json_atomically(Path(args.json), {"explanations": [
            {"run": run, "layer": layer, "fused_in": fused_in, "energy_unit": unit, **explanation.to_json()}
            for run, layer, fused_in, unit, explanation in found]})
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Runs side by side (mapper/compare.py): a table, and with -o the JSON, the table
    and a PNG."""
    data = api.compare(*args.runs)
    text = comparison_text(data)
    print(text, end="")
    if args.out:
        from .plots import comparison_figure, save_png  # matplotlib only when drawing
        out = Path(args.out)
        write_json_atomically(out / "compare.json", data)
        write_atomically(out / "compare.txt", text)
        save_png(comparison_figure(data), out / "compare.png")
        print(f"wrote {out}/: compare.json, compare.txt, compare.png")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """A workload's layers (native, or a Timeloop problem, which names no other layer)."""
    path = find_spec_file(args.workload)
    if is_timeloop(load_yaml(path, SPEC_DOCUMENT)):
        problems, inputs = load_specs([path], args.batch, need_energies=False).problems, {}
        if not problems:
            raise SpecError(path, "problem", "no Timeloop problem", "a workload or a problem")
    else:
        problems, inputs = load_workload_inputs(path, args.batch)
    stats = workload_stats(problems, graph_stats(workload_graph(problems, inputs)))
    print(stats_table(stats))
    if args.json:
        write_json_atomically(Path(args.json), stats.to_json())
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """The JSON Schema of a kind of native file: printed, written to -o FILE, or with
    --all every kind into the folder -o DIR (as specs/schema/ is made)."""
    if args.all and (args.kind or not args.output):
        raise SpecError("mapper schema", "--all", "--all with a KIND" if args.kind else "--all without -o DIR",
                        "--all -o DIR (every kind, into DIR), or KIND [-o FILE]")
    if not args.all:
        text = schema.schema_text(args.kind or "spec")
        if args.output is None:
            print(text, end="")
        else:
            write_atomically(Path(args.output), text)
        return 0
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise SpecError(folder, "", "a file", "a folder for the schemas (made if missing)")
    folder.mkdir(parents=True, exist_ok=True)
    for kind in schema.KINDS:
        write_atomically(folder / schema.file_name(kind), schema.schema_text(kind))
    print(f"wrote {', '.join(str(folder / schema.file_name(kind)) for kind in schema.KINDS)}")
    return 0


def cmd_import_onnx(args: argparse.Namespace) -> int:
    result = import_onnx(args.model)
    write_atomically(Path(args.output), workload_yaml(result, args.model))
    imported = ", ".join(f"{op} {n}" for op, n in sorted(result.imported.items()))
    print(f"wrote {args.output}: {len(result.layers)} layers ({imported})")
    skipped = ", ".join(f"{op} {n}" for op, n in result.skipped.most_common())
    print(f"skipped operators: {skipped or 'none'}")
    return 0


class ProgressLine:
    """A search's live progress on stderr: rewritten in place on a terminal, else a
    line every few seconds (so logs stay short)."""

    def __init__(self, layer: str, energy_unit: str) -> None:
        self.layer, self.energy_unit, self.tty = layer, energy_unit, sys.stderr.isatty()
        self.last, self.width = 0.0, 0

    def update(self, progress: search.Progress) -> None:
        now = time.monotonic()
        if now - self.last < (0.25 if self.tty else 5.0) and not progress.polishing:  # say when the polish starts
            return
        self.last = now
        text = search.progress_text(self.layer, progress, self.energy_unit)
        if self.tty:
            print("\r" + text.ljust(self.width), end="", file=sys.stderr, flush=True)
            self.width = len(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and self.width:
            print(file=sys.stderr)
        self.width = 0


class LiveDisplay:
    """The live progress of a network or an experiment on stderr, from its first
    second: a line per finished shape above, and below a status that rich redraws in
    place: shapes done of total, time spent and an estimate of what is left, and per
    shape in work its trial and best so far. Not on a terminal (a batch job's log),
    the status comes as a line every LOG_PERIOD seconds instead."""

    LOG_PERIOD = 30.0

    def __init__(self, title: str) -> None:
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)  # a log's lines stay whole
        self.title, self.done, self.total = title, 0, None
        self.working: dict[str, str] = {}  # a shape's first layer -> how its search stands
        self.start = self.logged = time.monotonic()
        self.finished_here = 0  # shapes this run searched: they set the pace of the estimate
        self.live = Live(console=self.console, transient=True, refresh_per_second=4,
                         get_renderable=self._status) if self.console.is_terminal else None

    def __enter__(self) -> LiveDisplay:
        if self.live:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.stop()

    def finished(self, line: str, event: network.NetworkEvent, title: str | None = None) -> None:
        """A shape is done (or found done): its line above the status."""
        self.working.pop(event.report.layers[0], None)
        self.finished_here += event.kind in ("searched", "failed")
        self._count(event, title)
        self.console.print(line, markup=False)

    def progress(self, event: network.NetworkEvent, title: str | None = None) -> None:
        assert event.progress is not None
        self.working[event.report.layers[0]] = network.progress_text(event.progress, event.energy_unit)
        self._count(event, title)
        if not self.live and time.monotonic() - self.logged >= self.LOG_PERIOD:
            self.logged = time.monotonic()
            self.console.print(self._status(), markup=False)

    def _count(self, event: network.NetworkEvent, title: str | None) -> None:
        self.done, self.total, self.title = event.done, event.total, title or self.title

    def _status(self) -> Text:
        elapsed = time.monotonic() - self.start
        head = f"{self.title}: {_duration(elapsed)}"
        if self.total is not None:
            left = self.total - self.done
            head += f", {self.done}/{self.total} shapes done"
            if self.finished_here and left:
                head += f", about {_duration(elapsed / self.finished_here * left)} left"
        return Text("\n".join([head] + [f"  {layer}: {text}" for layer, text in self.working.items()]))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def load_kernels() -> None:
    """Load the model's compiled kernels before a search, with a status while numba
    compiles them (once per machine and version: about a minute), so that a first run
    does not sit silent."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    start = time.monotonic()
    with console.status("loading the model's kernels (compiled once per machine: about a minute)"):
        compiled = vectorized.load_kernels()
    if compiled:
        console.print(f"compiled the model's kernels in {time.monotonic() - start:.0f} s; later runs load them "
                      "from the cache", markup=False)


def cmd_search(args: argparse.Namespace) -> int:
    """Search each layer; the answers go to files, the report and progress to the terminal."""
    layers, skipped, metrics = search.layers(args)
    args.objective, instead = search.objective(args.objective, metrics)
    if instead:
        print(instead, file=sys.stderr)
    settings = search.settings(args)
    load_kernels()
    if len(layers) + len(skipped) > 1 or args.fusion:
        return cmd_search_network(args, settings, layers, skipped)
    problem, arch, constraints = layers[0]
    folder = search.layer_folder(args, problem)
    shared = shared_job(args, worker.layer_units(problem.name, problem, arch, constraints, settings), problem.name)
    with owning(args, folder):
        claim_layer_folder(problem, arch, constraints, settings, folder)
        share_work(args, shared)
        display = ProgressLine(problem.name, arch.energy_unit)
        try:
            result = search.search_layer(problem, arch, constraints, settings, folder, display.update)
        except NoValidMapping as e:
            display.close()
            print(f"{problem.name}: {e.headline}:", file=sys.stderr)
            for reason in e.reasons:
                print(f"  - {reason}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as e:
            display.close()
            print(f"{problem.name}: interrupted; {search.resume_hint(args, folder)}", file=sys.stderr)
            return interrupted(args, e)
        finally:
            display.close()  # an error's line starts a line of its own
    print(search.summary(result))
    return 0


def cmd_search_network(args: argparse.Namespace, settings: Settings,
                       layers: list[tuple[Problem, Architecture, Constraints | None]], skipped: dict[str, str]) -> int:
    """A workload of several layers: each shape searched once, in parallel; the
    summary table to the terminal (mapper/network.py). Exit 2 if a layer has no
    mapping or was skipped."""
    folder = Path(args.out) if args.out else search.DEFAULT_ROOT / safe_file_name(
        network.network_name(args.files))
    for name, reason in skipped.items():
        print(f"{name}: skipped, the constraints do not apply: {reason}", file=sys.stderr)
    arch, searched = layers[0][1], tuple(network.Layer(problem, constraints) for problem, _, constraints in layers)
    fusion = network.fusion_candidates(args.files, args.batch, searched, arch, args.objective) if args.fusion else ()
    if args.fusion and not fusion:
        print(f"--fusion: no fused group to consider: {no_candidates_reason(arch)}; the layers are searched alone",
              file=sys.stderr)
    job = network.NetworkJob(network.network_name(args.files), arch, searched, settings, folder,
                             tuple(skipped.items()), fusion)
    shared = shared_job(args, worker.network_units(job), job.name)
    try:
        with owning(args, folder), network.worker_pool(args.jobs) as pool:
            share_work(args, shared)
            with LiveDisplay(job.name) as display:
                result = network.run_network(job, pool, lambda e: display.finished(network.event_text(e), e),
                                             display.progress)
    except KeyboardInterrupt as e:
        print(f"interrupted; the finished layers are kept in {folder}/layers: run the same command again "
              "to resume", file=sys.stderr)
        return interrupted(args, e)
    print(network.summary_markdown(result.summary), end="")
    print(f"wrote {folder}/: summary.md, summary.csv, summary.json, layers/<layer>/")
    return 2 if result.failed or skipped else 0


def cmd_run(args: argparse.Namespace) -> int:
    """An experiment: its cells one after the other, a line per finished layer on
    stderr; the summary table to the terminal (mapper/experiment.py)."""
    if dataflow_comparison.is_comparison(args.experiment):
        return cmd_dataflow_comparison(args)
    exp = experiment.load_experiment(args.experiment)
    exp = replace(exp, settings=replace(exp.settings, storage=args.storage))
    folder = Path(args.out) if args.out else experiment.default_folder(exp.name)
    shared = shared_job(args, worker.experiment_units(exp, folder), exp.name)
    try:
        with owning(args, folder), network.worker_pool(args.jobs) as pool:
            share_work(args, shared)
            load_kernels()
            with LiveDisplay(exp.name) as display:
                result = experiment.run_experiment(exp, folder, pool, lambda e: experiment_event(display, e),
                                                   lambda e: display.progress(e.network, experiment.cell_title(e)))
    except KeyboardInterrupt as e:
        print(f"interrupted; what is finished is kept in {folder}: run the same command again to resume",
              file=sys.stderr)
        return interrupted(args, e)
    print(experiment.summary_markdown(result.summary), end="")
    print(f"wrote {folder}/: summary.md, summary.csv, summary.json, layers.csv, cells/, and "
          f"{len(result.plots)} plots in plots/")
    unmapped = experiment.cells_with_unmapped_layers(result.summary)
    if unmapped:  # a batch job must not pass for finished when layers have no mapping
        print(f"{len(unmapped)} cell(s) with layers that no mapping fits (their status above): "
              + "; ".join(unmapped), file=sys.stderr)
        return 2
    return 0


def experiment_event(display: LiveDisplay, event: experiment.ExperimentEvent) -> None:
    if event.network is None:
        display.console.print(experiment.event_line(event), markup=False)
    else:
        display.finished(experiment.event_line(event), event.network, experiment.cell_title(event))


def cmd_dataflow_comparison(args: argparse.Namespace) -> int:
    """A dataflow comparison, an experiment file with a `baseline`: each dataflow's
    layers, a line per finished layer on stderr; the energy tables to the terminal
    (mapper/dataflow_comparison.py)."""
    if args.storage:
        raise SpecError(args.experiment, "baseline", "a dataflow comparison with --storage",
                        "a comparison run on this machine", "leave out --storage")
    comparison = dataflow_comparison.load_comparison(args.experiment)
    folder = Path(args.out) if args.out else experiment.default_folder(comparison.name)
    try:
        with owning(args, folder), network.worker_pool(args.jobs) as pool:
            load_kernels()
            with LiveDisplay(comparison.name) as display:
                records = dataflow_comparison.run_comparison(
                    comparison, folder, pool,
                    lambda name, e: display.finished(f"{name}: {network.event_text(e)}", e, name),
                    on_progress=lambda name, e: display.progress(e, name))
    except KeyboardInterrupt as e:
        print(f"interrupted; what is finished is kept in {folder}: run the same command again to resume",
              file=sys.stderr)
        return interrupted(args, e)
    print(dataflow_comparison.headline_markdown(comparison, records), end="")
    print(f"wrote {folder}/: summary.json, ratios.json, breakdown.csv, tables.md, energy-by-level.png, "
          "energy-by-data-type.png, cells/")
    return 0


class WorkerDisplay:
    """A shared job's progress on stderr: the search in hand, a line per search done,
    and when every search left is in other workers' hands."""

    def __init__(self) -> None:
        self.line, self.waited_for = ProgressLine("", "pJ"), -1  # replaced when a search starts

    def started(self, unit: worker.Unit) -> None:
        self.line = ProgressLine(unit.name, unit.arch.energy_unit)

    def progress(self, unit: worker.Unit, progress: search.Progress) -> None:
        self.line.update(progress)

    def finished(self, unit: worker.Unit, outcome: worker.Outcome | None) -> None:
        self.line.close()
        print(worker.finished_text(unit, outcome), file=sys.stderr, flush=True)

    def waiting(self, running: int) -> None:
        if running != self.waited_for:
            print(f"waiting for the {running} searches that other workers run", file=sys.stderr, flush=True)
            self.waited_for = running


def shared_job(args: argparse.Namespace, units: list[worker.Unit], base: str) -> worker.Job | None:
    """With --storage, the job that shares the searches with workers (None without
    one, or for an exhaustive search); made, and so checked, before the command writes
    anything into its output folder, so that a refused command leaves nothing in the
    way of the corrected one."""
    if args.storage is None or getattr(args, "exhaustive", False):
        return None
    return worker.make_job(args.job, units, args.heartbeat, base)


def share_work(args: argparse.Namespace, job: worker.Job | None) -> None:
    """With a job (`shared_job`), the searches go up as that job in the storage, and this
    process (with --jobs N, N processes) searches them together with any `mapper worker`
    that joins, until all are done. The command then writes its outputs as usual, from
    studies that are all at their budget."""
    if job is None:
        return
    worker.submit(args.storage, job)
    print(worker.joining_text(job, args.storage), file=sys.stderr, flush=True)
    worker.work_in_processes(args.storage, job.name, args.jobs, WorkerDisplay())


def cmd_worker(args: argparse.Namespace) -> int:
    """Join a job that `mapper search` or `mapper run` put into a storage."""
    worker.wait_for_job(args.storage, args.job, args.wait, lambda: print(
        f"waiting up to {args.wait:g} s for the job {args.job} to be put up", file=sys.stderr, flush=True))
    load_kernels()
    status = worker.job_status(args.storage, args.job)
    print(f"job {args.job}: {status.done} of {status.units} searches done, {status.running} in other workers' hands",
          file=sys.stderr, flush=True)
    try:
        done = worker.work_in_processes(args.storage, args.job, args.jobs, WorkerDisplay())
    except KeyboardInterrupt as e:
        print(f"interrupted; the job {args.job} keeps every completed trial, and other workers take over "
              "the searches this one had in hand", file=sys.stderr)
        return interrupted(args, e)
    print(f"job {args.job}: every search is done ({done} by this worker); the command that started the job "
          "writes the results (run it again if it has stopped)", file=sys.stderr)
    return 0


def add_sharing_arguments(parser: argparse.ArgumentParser) -> None:
    """--job and --heartbeat, for a search whose --storage is shared with workers."""
    parser.add_argument("--job", metavar="NAME", help="with --storage: the job's name, for `mapper worker --job NAME` "
                        "to join (default: made from the inputs, and printed)")
    parser.add_argument("--heartbeat", type=search.positive(int), default=worker.DEFAULT_HEARTBEAT, metavar="SECONDS",
                        help="with --storage: how often workers show they are alive; one silent for "
                        f"{worker.MISSED_HEARTBEATS} heartbeats is presumed dead and its search taken over "
                        f"(default {worker.DEFAULT_HEARTBEAT})")


def owning(args: argparse.Namespace, folder: Path) -> AbstractContextManager[None]:
    """This run owns its output folder while it lasts (mapper/run_folder.py)."""
    return run_folder.owning(folder, masked_command(["mapper", *args.argv]))


def interrupted(args: argparse.Namespace, interruption: KeyboardInterrupt) -> int:
    """Say how to carry on (the same command resumes), and the exit code for the signal."""
    command = masked_command(["mapper", *args.argv])
    masked = " (with the password in place of ***)" if command != shlex.join(["mapper", *args.argv]) else ""
    print(f"to resume, run{masked}: {command}", file=sys.stderr)
    return interrupt.exit_code(interruption)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog="mapper", description="Dataflow mapping of DNN layers onto spatial accelerators.")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="evaluate one mapping (native or Timeloop YAML, merged)",
                        description="Evaluate one mapping of one layer on one architecture: the loop nest with "
                        "each level's tiles, per level and tensor the reads, fills, updates and energy, and the "
                        "totals. The files (native or Timeloop YAML, merged at the top level as Timeloop does) "
                        "give the architecture, the layer and the mapping, and optionally constraints: it then "
                        "says which of them the mapping breaks.")
    ev.add_argument("files", nargs="+", metavar="FILE",
                    help="spec files: architecture, layer and mapping (and constraints to check it against)")
    ev.add_argument("--json", metavar="PATH", help="write the stats (and the constraints broken) as JSON")
    ev.set_defaults(run=cmd_evaluate)
    es = sub.add_parser("estimate", help="energy per access, leakage and area of each level and the MACs, "
                        "from the hardware's parameters", description="Estimate every component of an "
                        "architecture from its technology node, capacity, port width and kind (built-in: CACTI 7 "
                        "and Aladdin tables from hwcomponents, Horowitz's MACs), beside the energies the "
                        "architecture gives.")
    es.add_argument("files", nargs="+", metavar="FILE", help="spec files that give an architecture")
    es.add_argument("--technology", type=technology_argument, metavar="NODE",
                    help="technology node, e.g. 45nm (default: the architecture's technology)")
    es.add_argument("--backend", choices=BACKENDS, default=BUILT_IN, help="built-in (tables, nothing to "
                    "install; default) or hwcomponents itself (Python >= 3.12, pip install 'mapper[hwcomponents]')")
    es.add_argument("--json", metavar="PATH", help="write the estimates as JSON")
    es.set_defaults(run=cmd_estimate)
    bc = sub.add_parser("build-cacti", help="rebuild hwcomponents-cacti's CACTI for this machine (for mapper "
                        "estimate --backend hwcomponents)", description="The CACTI binary in the hwcomponents-cacti "
                        "wheel needs glibc 2.38; this rebuilds it from the sources the wheel ships (make, g++).")
    bc.set_defaults(run=cmd_build_cacti)
    ex = sub.add_parser("explain", help="why a mapping is good: reuse, stationarity, accesses per MAC, cycles",
                        description="Explain a mapping (the files of `mapper evaluate`) or the best mappings of a "
                        "finished run (its folder): per level and tensor the accesses per MAC, temporal and spatial "
                        "reuse, what stays stationary, the reuse kept on chip, where the cycles go.")
    ex.add_argument("files", nargs="+", metavar="FILE_OR_RUN_DIR",
                    help="the spec files of one mapping, or one or more folders of finished runs")
    ex.add_argument("--layer", metavar="NAME", help="of run folders, only this layer")
    ex.add_argument("--json", metavar="PATH", help="write the explanations as JSON")
    ex.set_defaults(run=cmd_explain)
    cp = sub.add_parser("compare", help="finished runs side by side: totals and per layer, ratios to the first",
                        description="Compare the results of finished runs (folders of mapper search on a layer "
                        "or a workload, or of mapper run: one run per cell): energy, cycles and EDP in total and "
                        "per layer, with their ratios to the first run.")
    cp.add_argument("runs", nargs="+", metavar="RUN_DIR")
    cp.add_argument("-o", "--out", metavar="DIR", help="also write compare.json, compare.txt and compare.png here")
    cp.set_defaults(run=cmd_compare)
    st = sub.add_parser("stats",
                        help="per layer shape, MACs and weights of a workload; totals; worst-case DRAM traffic")
    st.add_argument("workload", help="a workload file, or a shipped one by name (alexnet, resnet50, ...)")
    st.add_argument("--batch", type=search.positive(int), default=1, help="samples per layer (default 1)")
    st.add_argument("--json", metavar="PATH", help="write the per-layer and total counts as JSON")
    st.set_defaults(run=cmd_stats)
    im = sub.add_parser("import-onnx", help="write the Conv, Gemm and MatMul layers of an ONNX model as a workload")
    im.add_argument("model", help="an ONNX model file")
    im.add_argument("-o", "--output", required=True, metavar="WORKLOAD.yaml", help="the workload file to write")
    im.set_defaults(run=cmd_import_onnx)
    sp = search.add_parser(sub)
    sp.add_argument("--jobs", type=search.positive(int), default=network.default_jobs(), metavar="N",
                    help="layers searched in parallel, for a workload of several layers (default: all cores)")
    add_sharing_arguments(sp)
    sp.set_defaults(run=cmd_search)
    rn = sub.add_parser("run", help="run an experiment: architectures x workloads x dataflows x objectives")
    rn.add_argument("experiment", metavar="EXPERIMENT.yaml", help="an experiment file (specs/experiments/)")
    rn.add_argument("-o", "--out", metavar="DIR", help="output folder (default results/<experiment name>)")
    rn.add_argument("--jobs", type=search.positive(int), default=network.default_jobs(), metavar="N",
                    help="layers searched in parallel (default: all cores)")
    rn.add_argument("--storage", metavar="URL", help="an Optuna storage URL (a database such as "
                    "postgresql://user:password@host/db) to share the experiment with `mapper worker`s")
    add_sharing_arguments(rn)
    rn.set_defaults(run=cmd_run)
    wk = sub.add_parser("worker", help="join a job that `mapper search` or `mapper run` shares through --storage",
                        description="Search the layers of a job in a shared storage, together with the other "
                        "workers, until every one is done.")
    wk.add_argument("--storage", required=True, metavar="URL", help="the job's storage, as given to search or run")
    wk.add_argument("--job", required=True, metavar="NAME", help="the job's name, as search or run printed it")
    wk.add_argument("--jobs", type=search.positive(int), default=network.default_jobs(), metavar="N",
                    help="worker processes on this machine (default: all cores)")
    wk.add_argument("--wait", type=non_negative_seconds, default=worker.DEFAULT_WAIT, metavar="SECONDS",
                    help="how long to wait for a job that is not there yet, for workers started together with "
                    f"the command that puts it up (default {worker.DEFAULT_WAIT})")
    wk.set_defaults(run=cmd_worker)
    sc = sub.add_parser("schema", help="the JSON Schema of a kind of native spec file, for editors",
                        description="Print the JSON Schema of one kind of native YAML file, for an editor's "
                        "completion and checking: `# yaml-language-server: $schema=specs/schema/spec.json`.")
    sc.add_argument("kind", nargs="?", choices=schema.KINDS, help="spec (default: problem, workload, architecture, "
                    "mapping, constraints), energy-table, or experiment (mapper run's files)")
    sc.add_argument("-o", "--output", metavar="PATH", help="write to this file (with --all: this folder)")
    sc.add_argument("--all", action="store_true", help="write every kind to -o DIR as KIND.json")
    sc.set_defaults(run=cmd_schema)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with interrupt.stopping_on_signals():
            return args.run(args)
    except (SpecError, search.StorageError, worker.JobError, run_folder.FolderInUse) as e:
        print(f"error: {mask_passwords(str(e))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output's reader has gone (`mapper ... | head`): stop, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor fail to flush the rest at exit
        return 128 + signal.SIGPIPE
    except OSError as e:  # a full disk, a read-only folder, a path through a file
        print(f"error: {mask_passwords(run_folder.write_failure_text(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # between layers, or while a job's outputs are written
        print("interrupted; what is finished is kept", file=sys.stderr)
        return interrupted(args, e)


if __name__ == "__main__":
    sys.exit(main())
