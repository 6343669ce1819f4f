"""End-to-end network search: ResNet-50 (all 54 layers, 21 distinct shapes) on the
Eyeriss-like design with the default search settings, as a user runs it:

    mapper search specs/arch/eyeriss-like.yaml specs/workloads/resnet50.yaml -o DIR --jobs 2

Prints the wall time (process start to summary written, on --jobs cores; the target
is 60 s on 2 cores, where ZigZag needs ~4.5 minutes for ResNet-18 on its
Eyeriss-like design), the CPU time of the command and its workers, and the network's
figures (energy, cycles, the EDP summed over the layers).

    python benchmarks/bench_network.py [--jobs 2] [--trials N] [--patience N] [--no-remainders]
                                       [--remainder-searches N] [--workload resnet50] [--arch eyeriss-like]
                                       [--keep DIR]

`--trials`, `--patience` and `--remainder-searches` replace the defaults (to see how the
time scales with them; `--trials 300 --patience 0 --keep DIR` gives the studies that
benchmarks/bench_convergence.py reads).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(arch: str, workload: str, jobs: int, trials: int | None, patience: int | None, remainders: bool,
        remainder_searches: int | None, out: Path) -> tuple[float, float]:
    """Run the search; returns (wall seconds, CPU seconds of it and its workers)."""
    command = [sys.executable, "-m", "mapper.cli", "search", str(ROOT / f"specs/arch/{arch}.yaml"),
               str(ROOT / f"specs/workloads/{workload}.yaml"), "-o", str(out), "--jobs", str(jobs)]
    command += ["--trials", str(trials)] if trials else []
    command += ["--patience", str(patience)] if patience is not None else []
    command += [] if remainders else ["--no-remainders"]
    command += ["--remainder-searches", str(remainder_searches)] if remainder_searches else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--trials", type=int, help="search budget per layer (default: mapper search's default)")
    parser.add_argument("--patience", type=int, help="mapper search's --patience (default: its default; 0: none)")
    parser.add_argument("--no-remainders", action="store_true", help="mapper search's --no-remainders")
    parser.add_argument("--remainder-searches", type=int, metavar="N", help="mapper search's --remainder-searches")
    parser.add_argument("--workload", default="resnet50")
    parser.add_argument("--arch", default="eyeriss-like")
    parser.add_argument("--keep", metavar="DIR", help="write the results here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "out"
        if (out / "network.json").exists():
            sys.exit(f"{out} holds a finished run: it would be resumed, not timed; choose another --keep")
        wall, cpu = run(args.arch, args.workload, args.jobs, args.trials, args.patience, not args.no_remainders,
                        args.remainder_searches, out)
        summary = json.loads((out / "summary.json").read_text())
        manifest = json.loads((out / "network.json").read_text())
        searches = [json.loads((out / "layers" / layer["layer"] / "best.json").read_text())["search"]
                    for layer in summary["layers"] if layer["same_shape_as"] is None and layer["layer"] not in
                    summary["failed"]]
    t = summary["totals"]
    shapes = sum(1 for layer in manifest["layers"] if layer["same_shape_as"] is None)
    parts = [f"--trials {args.trials}"] if args.trials else []
    parts += [f"--patience {args.patience}"] if args.patience is not None else []
    parts += ["--no-remainders"] if args.no_remainders else []
    parts += [f"--remainder-searches {args.remainder_searches}"] if args.remainder_searches else []
    budget = ", ".join(parts) or "default settings"
    searched = [layer for layer in summary["layers"] if layer["same_shape_as"] is None]
    trials = [layer["search"]["trials"] for layer in searched]
    print(f"{args.workload} ({t['layers']} layers, {shapes} shapes) on {args.arch}, {budget}, --jobs {args.jobs}")
    print(f"wall time {wall:.1f} s ({wall / 60:.2f} min); CPU time {cpu:.1f} s; trials per shape "
          f"{min(trials)}-{max(trials)}, {sum(trials)} in all")
    print(f"energy {t['energy_pJ'] * 1e-6:.1f} uJ ({t['pJ_per_MAC']:.3f} pJ/MAC), {t['cycles']:,} cycles, "
          f"utilization {100 * t['utilization']:.1f}%")
    print(f"EDP summed over the layers {t['edp_J_cycles']:.4g} J*cycles; of the network as a whole "
          f"{t['network_edp_J_cycles']:.4g} J*cycles")
    own = sum(search["seconds_this_run"] for search in searches)
    padded = sum(r["seconds_this_run"] for search in searches for r in search["remainder_searches"])
    print(f"the shapes' searches (seconds summed over the workers): {own:.1f} s the layers' own, {padded:.1f} s the "
          "padded layers' (remainders); the rest of the CPU time screens padded layers, scores their answers "
          "exactly and writes")
    if summary["failed"]:
        print(f"layers without a mapping: {', '.join(summary['failed'])}")
    print("per shape (its first layer): trials, pJ/MAC, EDP J*cycles")
    for layer in searched:
        print(f"  {layer['layer']:<16} {layer['search']['trials']:>4} {layer['pJ_per_MAC']:8.3f} "
              f"{layer['edp_J_cycles']:12.5g}")


if __name__ == "__main__":
    main()
