"""DRAM accesses per MAC of the Eyeriss chip with the row-stationary dataflow, against
the chip's measurements.

The chip (Chen, Krishna, Emer, Sze, JSSC 2017) measured 0.0029 DRAM accesses per MAC
over AlexNet's CONV layers at batch 4, and 0.0035 over VGG-16's at batch 3. Here every
CONV layer is searched for the least energy on specs/arch/eyeriss.yaml under
specs/constraints/eyeriss-row-stationary.yaml (the row-stationary preset, refined as
the chip orders its scratchpads), keeping at least half of the 168 PEs busy (or all the
dataflow can use on the layer, if fewer: the rule of the dataflow comparison,
mapper/dataflow_comparison.py). DRAM accesses are the 16-bit words read from and
written to DRAM, all tensors, without the chip's run-length compression of feature
maps.

Writes results/eyeriss-dataflows/eyeriss-chip-dram.json and prints a table. The searches
are kept under results/eyeriss-dataflows/eyeriss-chip/ (as `mapper run` keeps a
comparison's) and a finished layer is not searched again.

Usage: python benchmarks/eyeriss_dram.py [--trials N] [--jobs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mapper.dataflow_comparison import Comparison, Dataflow, run_comparison
from mapper.network import worker_pool
from mapper.run_folder import write_atomically
from mapper.search.run import Settings
from mapper.specs.load import load_specs
from mapper.specs.native import load_workload

ROOT = Path(__file__).resolve().parents[1]
CHIP = [ROOT / "specs/arch/eyeriss.yaml", ROOT / "specs/constraints/eyeriss-row-stationary.yaml"]
MEASURED = {"alexnet": (4, 0.0029), "vgg16": (3, 0.0035)}  # batch, DRAM accesses per MAC (JSSC 2017)


def chip_comparison(workload: str, batch: int, trials: int) -> Comparison:
    """The chip's CONV layers as a comparison of one dataflow, RS, with the floor of
    the dataflow comparison."""
    specs = load_specs(CHIP)
    conv = tuple(p for p in load_workload(workload, batch) if not p.name.startswith("fc"))
    return Comparison(name=f"eyeriss-chip-{workload}", description=None, file=Path(__file__), problems=conv,
                      workload=f"{workload}-b{batch}", batch=batch,
                      dataflows=(Dataflow("RS", specs.architecture, specs.constraints),), baseline="RS",
                      min_utilization=0.5,  # every one of the trials, as the comparison runs them (patience None)
                      settings=Settings(objective="energy", trials=trials, patience=None, seed=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "eyeriss-dataflows")
    args = parser.parse_args()
    report: dict[str, dict] = {}
    with worker_pool(args.jobs) as pool:
        for workload, (batch, measured) in MEASURED.items():
            start = time.perf_counter()
            records = run_comparison(chip_comparison(workload, batch, args.trials),
                                     args.out / "eyeriss-chip" / workload, pool, with_charts=False)
            macs = sum(r["macs"] for r in records)
            dram = sum(r["dram_accesses"] for r in records)
            report[workload] = {
                "batch": batch, "trials": args.trials, "macs": macs, "dram_accesses": dram,
                "dram_accesses_per_mac": dram / macs, "chip_measured_per_mac": measured,
                "layers": {r["layer"]: {"macs": r["macs"], "dram_accesses": r["dram_accesses"],
                                        "dram_accesses_per_mac": r["dram_accesses"] / r["macs"],
                                        "energy_per_mac": r["energy_per_mac"], "utilization": r["utilization"]}
                           for r in records}}
            print(f"{workload} CONV layers, batch {batch}: {dram / macs:.4f} DRAM accesses per MAC "
                  f"(the chip: {measured}); {macs:,} MACs, {dram:,} accesses "
                  f"({time.perf_counter() - start:.0f} s)")
            for r in records:
                print(f"  {r['layer']:8} {r['dram_accesses'] / r['macs']:.4f} per MAC, "
                      f"{r['energy_per_mac']:.3f} per MAC in energy, {r['utilization']:.0%} of the PEs busy")
    write_atomically(args.out / "eyeriss-chip-dram.json", json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
