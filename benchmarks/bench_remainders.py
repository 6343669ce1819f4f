"""What mappings with a remainder gain: networks searched with the default settings
(padded layers searched where PEs are left idle, search/run.py) and with
`--no-remainders` (perfect factorizations only), per layer and for the network:
EDP, utilization, cycles against the compute bound, and the wall time of each search.

    python benchmarks/bench_remainders.py [--cases eyeriss-like:resnet50,ws-16x16:mobilenetv3-large,...]
                                          [--jobs 2] [--out results/remainders]

Writes OUT/<arch>-<workload>.md (the table) and .json (its figures) per case, and
prints the tables.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mapper.report import edp_unit, edp_value

ROOT = Path(__file__).resolve().parents[1]
CASES = ("eyeriss-like:alexnet,eyeriss-like:resnet50,eyeriss-like:mobilenetv3-large,"
         "ws-16x16:alexnet,ws-16x16:resnet50,ws-16x16:mobilenetv3-large")


def search(arch: str, workload: str, jobs: int, out: Path, remainders: bool) -> tuple[dict, float]:
    """A network search as a user runs it; its summary.json and its wall seconds."""
    command = [sys.executable, "-m", "mapper.cli", "search", str(ROOT / f"specs/arch/{arch}.yaml"),
               str(ROOT / f"specs/workloads/{workload}.yaml"), "-o", str(out), "--jobs", str(jobs)]
    command += [] if remainders else ["--no-remainders"]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text()), time.perf_counter() - start


def table(arch: str, workload: str, perfect: dict, padded: dict, seconds: tuple[float, float]) -> str:
    """The case's markdown table: per distinct shape (its first layer), then the network."""
    unit = perfect["energy_unit"]

    def edp(value: float) -> str:
        return f"{edp_value(value, unit):.4g}"

    rows = ["| layer | EDP perfect | EDP with remainders | change | util. perfect | util. with remainders |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for p, r in zip(perfect["layers"], padded["layers"]):
        if p["same_shape_as"] is None:
            rows.append(f"| {p['layer']} | {edp(p['edp_J_cycles'])} | {edp(r['edp_J_cycles'])} | "
                        f"{r['edp_J_cycles'] / p['edp_J_cycles'] - 1:+.1%} | {p['utilization']:.1%} | "
                        f"{r['utilization']:.1%} |")
    tp, tr = perfect["totals"], padded["totals"]
    rows.append(f"| **network** (EDP summed over its {tp['layers']} layers) | {edp(tp['edp_J_cycles'])} | "
                f"{edp(tr['edp_J_cycles'])} | {tr['edp_J_cycles'] / tp['edp_J_cycles'] - 1:+.1%} | "
                f"{tp['utilization']:.1%} | {tr['utilization']:.1%} |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    return "\n".join([
        f"{workload} on {arch}, default settings but --no-remainders (perfect) or not, seed 0; EDP in "
        f"{edp_unit(unit)}, per distinct shape (its first layer); commit {commit}, {time.strftime('%Y-%m-%d')}",
        "",
        *rows,
        "",
        f"network: energy {tr['energy_pJ'] / tp['energy_pJ'] - 1:+.1%}, cycles {tp['cycles']:,} -> {tr['cycles']:,} "
        f"({tr['cycles'] / tp['cycles'] - 1:+.1%}), EDP of the network as a whole "
        f"{tr['network_edp_J_cycles'] / tp['network_edp_J_cycles'] - 1:+.1%}; wall time {seconds[0]:.0f} s -> "
        f"{seconds[1]:.0f} s",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=CASES, help="ARCH:WORKLOAD pairs, comma-separated (shipped specs)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results/remainders")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for case in args.cases.split(","):
        arch, workload = case.split(":")
        with tempfile.TemporaryDirectory() as tmp:
            perfect, perfect_s = search(arch, workload, args.jobs, Path(tmp) / "perfect", remainders=False)
            padded, padded_s = search(arch, workload, args.jobs, Path(tmp) / "remainders", remainders=True)
        text = table(arch, workload, perfect, padded, (perfect_s, padded_s))
        (args.out / f"{arch}-{workload}.md").write_text(text + "\n")
        (args.out / f"{arch}-{workload}.json").write_text(json.dumps(
            {"perfect": perfect["totals"], "remainders": padded["totals"], "wall_seconds":
             {"perfect": perfect_s, "remainders": padded_s}, "jobs": args.jobs,
             "layers": [{"layer": p["layer"], "perfect": {k: p[k] for k in ("edp_J_cycles", "utilization", "cycles")},
                         "remainders": {k: r[k] for k in ("edp_J_cycles", "utilization", "cycles")}}
                        for p, r in zip(perfect["layers"], padded["layers"]) if p["same_shape_as"] is None]},
            indent=1) + "\n")
        print(text + "\n", flush=True)


if __name__ == "__main__":
    main()
