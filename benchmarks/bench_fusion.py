"""What layer fusion gains: networks searched with `mapper search --fusion` (fused
groups of consecutive convolutions, their intermediates kept on chip: mapper/fusion.py),
against the same network with no group fused (the summary's `totals_unfused`, the
same search's layers run alone): energy, DRAM energy and words, cycles and the network's
energy x cycles, and each group run fused against its layers alone.

    python benchmarks/bench_fusion.py [--cases eyeriss-like:inverted-bottleneck,...] [--jobs 2]
                                      [--keep DIR] [--out results/fusion]

Writes OUT/<arch>-<workload>.md (the tables) and .json (the summary's figures) per case,
and prints the tables. `--keep DIR`: the searches' folders go to DIR/<arch>-<workload>
and are kept (run again, a finished one only rewrites its summary).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mapper.report import edp_text

ROOT = Path(__file__).resolve().parents[1]
CASES = ("eyeriss-like:inverted-bottleneck,simba-like:inverted-bottleneck,eyeriss-like:mobilenetv3-large,"
         "simba-like:mobilenetv3-large,eyeriss-like:efficientnet-b4,simba-like:efficientnet-b4,"
         "eyeriss-like:bert-base,simba-like:bert-base")


def search(arch: str, workload: str, jobs: int, out: Path) -> tuple[dict, float | None]:
    """A network search with --fusion as a user runs it; its summary.json and its wall
    seconds (None where it had finished before: then only its summary is written)."""
    finished = (out / "summary.json").is_file()
    command = [sys.executable, "-m", "mapper.cli", "search", str(ROOT / f"specs/arch/{arch}.yaml"),
               str(ROOT / f"specs/workloads/{workload}.yaml"), "-o", str(out), "--jobs", str(jobs), "--fusion"]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text()), None if finished else time.perf_counter() - start


def at_dram(rows: list[dict], key: str, dram: str) -> float:
    """The rows' energy (`energy_by_level_pJ`) or words moved (`accesses_by_level`) at DRAM."""
    return sum(r[key].get(dram, 0.0) for r in rows)


def table(arch: str, workload: str, summary: dict, seconds: float | None) -> str:
    """The case's tables: the network fused and not, then each group run fused."""
    unit, fused, alone = summary["energy_unit"], summary["totals"], summary["totals_unfused"]
    dram = next(iter(summary["layers"][0]["energy_by_level_pJ"]))  # the outermost level comes first
    groups = summary["fusion_groups"]
    energy = at_dram(summary["layers"], "energy_by_level_pJ", dram)
    energy_alone = energy + sum(g["alone"]["dram_energy_pJ"] - g["dram_energy_pJ"] for g in groups)
    words = at_dram(summary["layers"], "accesses_by_level", dram)
    words_alone = words + sum(g["alone"]["dram_accesses"] - g["dram_accesses"] for g in groups)
    lines = [f"{workload} on {arch}: {len(groups)} group{'s' if len(groups) != 1 else ''} run fused of "
             f"{len(summary['fusion_candidates'])} considered; "
             + (f"search {seconds:.0f} s wall" if seconds is not None else "searched before (--keep)")
             + f", commit {commit()}.", "",
             f"| network | energy {unit} | {dram} energy {unit} | {dram} words | cycles | energy x cycles |",
             "| --- | ---: | ---: | ---: | ---: | ---: |",
             f"| no group fused | {alone['energy_pJ']:.4g} | {energy_alone:.4g} | {words_alone:,.0f} | "
             f"{alone['cycles']:,} | {edp_text(alone['network_edp_J_cycles'], unit)} |",
             f"| with --fusion | {fused['energy_pJ']:.4g} | {energy:.4g} | {words:,.0f} | {fused['cycles']:,} | "
             f"{edp_text(fused['network_edp_J_cycles'], unit)} |",
             f"| fused / not | {fused['energy_pJ'] / alone['energy_pJ']:.3f} | {energy / energy_alone:.3f} | "
             f"{words / words_alone:.3f} | {fused['cycles'] / alone['cycles']:.3f} | "
             f"{fused['network_edp_J_cycles'] / alone['network_edp_J_cycles']:.3f} |"]
    if groups:
        lines += ["", f"| group run fused | tiles | energy {unit}: fused / alone | {dram} words: fused / alone | "
                  "cycles: fused / alone | MACs run / MACs |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        macs = {r["layer"]: r["macs"] for r in summary["layers"]}
        for g in groups:
            a = g["alone"]
            lines.append(f"| {g['group']} | {g['tiles']} | {g['energy_pJ']:.4g} / {a['energy_pJ']:.4g} | "
                         f"{g['dram_accesses']:,.0f} / {a['dram_accesses']:,.0f} | {g['cycles']:,} / {a['cycles']:,} | "
                         f"{g['macs_run'] / sum(macs[name] for name in g['layers']):.3f} |")
    return "\n".join(lines) + "\n"


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=CASES, help="comma-separated ARCH:WORKLOAD (shipped specs)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the searches' folders in DIR")
    parser.add_argument("--out", type=Path, default=ROOT / "results/fusion")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.keep or Path(tmp)
        for case in args.cases.split(","):
            arch, workload = case.split(":")
            summary, seconds = search(arch, workload, args.jobs, runs / f"{arch}-{workload}")
            text = table(arch, workload, summary, seconds)
            print(text)
            (args.out / f"{arch}-{workload}.md").write_text(text)
            figures = {key: summary[key] for key in ("totals", "totals_unfused", "fusion_groups",
                                                      "fusion_candidates")}
            (args.out / f"{arch}-{workload}.json").write_text(json.dumps({**figures, "seconds": seconds}, indent=1))


if __name__ == "__main__":
    main()
