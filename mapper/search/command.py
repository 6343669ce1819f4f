"""The `mapper search` command's arguments, inputs and texts; mapper/cli.py prints them.

    mapper search FILE... [-o DIR] [--objective edp|energy|delay|pareto] [--trials N]
                  [--time SECONDS] [--patience N] [--seed N] [--seeds N] [--exhaustive] [--no-remainders]
                  [--remainder-searches N] [--storage URL] [--constraints FILE] [--dataflow PRESET]
                  [--batch N] [--layer NAME] [--fusion]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import replace
from math import isfinite
from pathlib import Path

from ..architecture import Architecture
from ..constraints import PRESETS, Constraints
from ..mapspace import layer_constraints, not_applicable_reason
from ..problem import Problem
from ..report import edp_text
from ..safe_names import safe_file_name
from ..specs.errors import SpecError, did_you_mean
from ..specs.limits import MAX_SEED, MAX_SEEDS
from ..specs.load import load_specs
from .engine import MIN_IMPROVEMENT, Progress, search_label
from .objectives import OBJECTIVES
from .outputs import report_text
from .run import (
    DEFAULT_PATIENCE,
    DEFAULT_TRIALS,
    REMAINDER_SEARCHES,
    LayerResult,
    Settings,
    best_point,
    search_layer,
    seed_figure,
    seed_spread,
    study_location,
)
from .storage import JOURNAL_NAME, StorageError

__all__ = ["Progress", "StorageError", "add_parser", "layers", "positive", "progress_text", "resume_hint",
           "search_layer", "settings", "summary"]

DEFAULT_ROOT = Path("runs")


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type: a finite number above zero (nan and inf are no budget)."""
    what = "a positive integer" if kind is int else "a positive number"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not (isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"found {text!r}; allowed: {what}")
        return value
    return parse


def _seed(text: str) -> int:
    """An argparse type: a seed the random generators take."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"found {text!r}; allowed: an integer from 0 to {MAX_SEED} (2**32 - 1)")
    return value


def _seeds(text: str) -> int:
    """An argparse type: how many independent searches of a layer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"found {text!r}; allowed: an integer from 1 to {MAX_SEEDS} (each seed is "
                                         "a whole search)")
    return value


def _patience(text: str) -> int | None:
    """An argparse type: a number of trials, or 0 for none (None: no patience)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"found {text!r}; allowed: a number of trials, or 0 to never stop early")
    return value or None


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("search", help="find the best mapping of each layer (Optuna, or --exhaustive)",
                       description="Find the best mapping of each layer of the FILES (native or Timeloop YAML: "
                       "architecture, layers, constraints). Writes DIR/best.json, best.mapping.yaml, best.map.yaml, "
                       "best.txt (and pareto.json). Re-running the same command resumes an interrupted search.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-o", "--out", metavar="DIR",
                   help=f"output folder (default {DEFAULT_ROOT}/LAYER; for a workload of several layers "
                   f"{DEFAULT_ROOT}/WORKLOAD, each layer's in DIR/layers/LAYER)")
    p.add_argument("--objective", choices=OBJECTIVES,
                   help="what to minimize: energy x cycles (default; for Timeloop input, its mapper's first "
                   "optimization metric where that is one of these), energy, cycles, or the Pareto front of both")
    p.add_argument("--trials", type=positive(int), metavar="N",
                   help=f"Optuna trials in the study, resumed ones included (default {DEFAULT_TRIALS} "
                   "unless --time is given)")
    p.add_argument("--time", "--time-limit", dest="seconds", type=positive(float), metavar="SECONDS",
                   help="stop after this long (per layer); the result then depends on the machine's speed")
    p.add_argument("--patience", type=_patience, default=DEFAULT_PATIENCE, metavar="N",
                   help=f"stop a layer's search once N trials in a row have bettered its best by less than "
                   f"{100 * MIN_IMPROVEMENT:g}%% (default {DEFAULT_PATIENCE}; 0: never, only --trials or --time "
                   "stop it)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="the same seed, --trials and --patience give the same result (default 0)")
    p.add_argument("--seeds", type=_seeds, default=1, metavar="N",
                   help="independent searches of each layer, with seeds SEED to SEED+N-1, the best of them kept "
                   "(best.json lists each one's answer, to see how far apart they end); N times the time "
                   "(default 1)")
    p.add_argument("--exhaustive", action="store_true",
                   help="score every mapping: the exact optimum, small spaces only")
    p.add_argument("--no-remainders", action="store_true",
                   help="perfect factorizations only: no padded layers searched for mappings with a remainder "
                   "where PEs are left idle (by default searched for --objective edp and delay)")
    p.add_argument("--remainder-searches", type=positive(int), default=REMAINDER_SEARCHES, metavar="N",
                   help="padded layers searched per layer, at most: the best of a screen and those that would "
                   f"run fewest cycles, in turn (default {REMAINDER_SEARCHES})")
    p.add_argument("--storage", metavar="URL",
                   help=f"an Optuna storage URL (default: a journal file DIR/{JOURNAL_NAME})")
    p.add_argument("--constraints", metavar="FILE", help="a constraints file (native or Timeloop)")
    p.add_argument("--dataflow", choices=PRESETS, help="a named dataflow; replaces the files' preset, if any")
    p.add_argument("--batch", type=positive(int), default=1, metavar="N",
                   help="samples per layer: conv's N and matmul's/linear's B times N (native layers; default 1)")
    p.add_argument("--layer", action="append", metavar="NAME",
                   help="search only this layer of the workload (repeat for several; default: every layer)")
    p.add_argument("--fusion", action="store_true",
                   help="also search fused groups of consecutive convolutions or matrix products (up to 3, "
                   "their intermediate tensors kept on chip, tile by tile) and run those fused that lower the "
                   "network's objective (summary.json: fusion_groups)")
    return p


def settings(args: argparse.Namespace) -> Settings:
    """The search settings the arguments give; raises SpecError where they do not go together."""
    if args.seeds > 1 and args.exhaustive:
        raise SpecError(None, "--seeds", f"{args.seeds} with --exhaustive", "--seeds 1 with --exhaustive",
                        "an exhaustive search does not depend on the seed: leave --seeds out")
    if args.seed + args.seeds - 1 > MAX_SEED:
        raise SpecError(None, "--seeds", f"seeds {args.seed} to {args.seed + args.seeds - 1}",
                        f"seeds up to {MAX_SEED} (2**32 - 1)", "a lower --seed")
    return Settings(objective=args.objective, trials=args.trials, seconds=args.seconds, patience=args.patience,
                    seed=args.seed, seeds=args.seeds, exhaustive=args.exhaustive, storage=args.storage,
                    remainders=not args.no_remainders, remainder_searches=args.remainder_searches)


# Timeloop's optimization metrics that are objectives here; Timeloop's mapper breaks
# ties by the next metric, as these objectives do by the other figure.
TIMELOOP_OBJECTIVES = ("edp", "energy", "delay")


def objective(given: str | None, metrics: tuple[str, ...]) -> tuple[str, str | None]:
    """The objective to search for: --objective, else a Timeloop mapper's first
    optimization metric, else EDP; and, where the metric is not one of ours, a line
    saying what is searched for instead."""
    if given is not None or not metrics:
        return given or "edp", None
    if metrics[0] in TIMELOOP_OBJECTIVES:
        return metrics[0], None
    return "edp", (f"the Timeloop mapper's optimization metric {metrics[0]!r} is not an objective here "
                   f"({', '.join(TIMELOOP_OBJECTIVES)}): searching for edp; --objective chooses another")


def layers(args: argparse.Namespace) -> tuple[list[tuple[Problem, Architecture, Constraints | None]],
                                              dict[str, str], tuple[str, ...]]:
    """Per layer to search: its problem, the architecture and its constraints (presets
    resolved); the layers of a workload that the constraints cannot apply to, each
    with the reason (they are skipped; if all are, or the only layer is, that is an
    error); and a Timeloop mapper's optimization metrics (`objective`)."""
    files = list(args.files) + ([args.constraints] if args.constraints else [])
    where = ", ".join(files)
    specs = load_specs(files, args.batch)
    if not specs.problems or specs.architecture is None:
        missing = " and ".join(part for part, ok in (("no layer", specs.problems), ("no architecture",
                                                                                     specs.architecture)) if not ok)
        raise SpecError(where, "", missing, "files that together give an architecture and at least one layer "
                        "(problem or workload)")
    if specs.mapping is not None:
        raise SpecError(where, "mapping", "a mapping", "an architecture, layers and constraints",
                        "leave the mapping file out: the search finds the mapping")
    problems = _selected(specs.problems, args.layer, where)
    constraints = specs.constraints
    if args.dataflow:
        constraints = replace(constraints or Constraints(), preset=args.dataflow)
    arch, found, skipped, errors = specs.architecture, [], {}, []
    for problem in problems:
        try:
            found.append((problem, arch, layer_constraints(constraints, problem, arch)))
        except SpecError as e:
            errors.append(SpecError(where, e.key_path, e.found, e.allowed, e.suggestion))
            skipped[problem.name] = not_applicable_reason(e)
    if not found:
        raise errors[0]
    return found, skipped, specs.metrics


def _selected(problems: Sequence[Problem], names: list[str] | None, where: str) -> list[Problem]:
    """The layers `--layer` names, in the workload's order (every layer without it)."""
    if not names:
        return list(problems)
    known = [p.name for p in problems]
    for name in names:
        if name not in known:
            shown = ", ".join(known[:12]) + (f", ... ({len(known)} layers)" if len(known) > 12 else "")
            raise SpecError(where, "--layer", f"layer {name!r}", f"a layer of the files: {shown}",
                            did_you_mean(name, known))
    return [p for p in problems if p.name in names]


def layer_folder(args: argparse.Namespace, problem: Problem) -> Path:
    """The output folder of a search of one layer: -o DIR, else DEFAULT_ROOT/LAYER."""
    return Path(args.out) if args.out else DEFAULT_ROOT / safe_file_name(problem.name)


def progress_text(layer: str, progress: Progress, energy_unit: str) -> str:
    """One line: how far, how fast, and the best so far."""
    if progress.trials is None:
        done = f"{progress.scored:,} mappings"
    else:
        done = f"trial {progress.trials}" + (f"/{progress.budget}" if progress.budget else "")
        done += ", polishing" if progress.polishing else ""
        done += search_label(progress.seed, progress.remainder)
    best = progress.best
    if best is None or not len(best):
        found = "no mapping found yet"
    elif progress.objective == "pareto":
        found = f"front of {len(best)} points"
    else:
        energy, cycles = float(best.scores.energy_pJ[0]), int(best.scores.cycles[0])
        found = (f"best {energy:.4g} {energy_unit}, {cycles:,} cycles, "
                 f"EDP {edp_text(energy * 1e-12 * cycles, energy_unit)}")
    return f"{layer}: {done}  {progress.elapsed:.1f} s  {progress.rate:,.0f} mappings/s  {found}"


def remainders_text(result: LayerResult) -> str:
    """The padded layers searched for remainders (search/run.py), and what each found."""
    unit = result.arch.energy_unit
    found = "; ".join(f"{r['dimension']} padded to {r['padded_bound']} ({r['trials']} trials): EDP "
                      f"{edp_text(r['energy_pJ'] * 1e-12 * r['cycles'], unit)} at {r['cycles']:,} cycles"
                      for r in result.remainder_searches)
    chosen = "a remainder" if result.points[0][0].overshoots(result.problem.bounds) else "no remainder"
    return f"searched with remainders: {found}; the answer has {chosen}"


def seeds_text(result: LayerResult) -> str:
    """How far apart the layer's independent searches (--seeds) ended, by the objective
    (pareto: the least EDP of each one's front), the best first."""
    objective = result.outcome.objective
    figure = {"energy": "energy", "delay": "cycles"}.get(objective, "EDP")
    runs = sorted(result.seeds, key=lambda r: (seed_figure(r, objective), r["seed"]))
    best = seed_figure(runs[0], objective)
    above = ", ".join(f"seed {r['seed']} +{100 * (seed_figure(r, objective) / best - 1):.2f}%" for r in runs[1:])
    return (f"searched from {len(runs)} seeds: seed {runs[0]['seed']} found the best; the others' {figure}: "
            f"{above} (spread {100 * seed_spread(runs, objective):.2f}%)")


def summary(result: LayerResult) -> str:
    """What the terminal shows when a layer is done: how it was searched, the best
    mapping's report, the front (pareto) and the files written."""
    o, problem = result.outcome, result.problem
    trials = f"{o.trials} trials in the study" + (" (stopped by --patience)"
                                                  if o.details.get("stopped_by") == "patience" else "")
    how = (trials if not o.exhaustive else "every mapping"
           if o.details.get("complete", True) else "an exhaustive search cut short by --time: not the optimum") + \
        f"; {o.scored:,} mappings scored in {o.seconds:.1f} s this run"
    lines = [f"== {problem.name} ({o.objective}): {how}; mapspace of {result.sizes['total']:.3g} mappings"]
    lines += [remainders_text(result)] if result.remainder_searches else []
    lines += [seeds_text(result), ""] if result.seeds else [""]
    if o.objective == "pareto":
        lines += ["Pareto front (energy vs cycles):"]
        for _, ev in result.points:
            lines.append(f"  {ev.energy_pJ / ev.computes:10.3f} {result.arch.energy_unit}/MAC  {ev.cycles:>14,} "
                         f"cycles  EDP {edp_text(ev.edp_J_cycles, result.arch.energy_unit)}")
        lines += ["", "The point of least EDP:"]
    lines.append(report_text(problem, result.arch, *best_point(result.points, o.objective)).rstrip())
    written = ["best.json", "best.mapping.yaml", "best.map.yaml", "best.txt"]
    written += ["pareto.json"] if o.objective == "pareto" else []
    lines += ["", f"wrote {result.folder}/: " + ", ".join(written)]
    return "\n".join(lines)


def resume_hint(args: argparse.Namespace, folder: Path) -> str:
    if args.exhaustive:
        return "an exhaustive search does not resume: run it again"
    return f"the study is kept in {study_location(args.storage, folder)}; run the same command again to resume"
