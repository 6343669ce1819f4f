"""How close the built-in estimator (mapper/estimation) is to what it stands for.

Prints the largest relative deviation of the built-in SRAM interpolation from CACTI's
own results at the table's check points (reference.json, sram_checks, made by
hwcomponents; five of the ten lie between grid points), and, per Timeloop reference
case in ../shared/reference/timeloop/cases, each SRAM-class buffer of 16 KB or more and
each DRAM against the Accelergy energies of the case's ERT.

    python benchmarks/bench_estimation.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from mapper.estimation import estimate_architecture, estimate_storage, reference
from mapper.specs.load import load_specs
from mapper.specs.timeloop import component_classes

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT.parent / "shared" / "reference" / "timeloop" / "cases"


def check_points() -> None:
    worst = {"read_pJ": 0.0, "write_pJ": 0.0, "area_um2": 0.0, "leak_mW": 0.0}
    for point in reference()["sram_checks"]:
        found = estimate_storage("sram", point["node_nm"], point["width"], point["depth"])
        values = {"read_pJ": found.read_pJ, "write_pJ": found.write_pJ, "area_um2": found.area_mm2 * 1e6,
                  "leak_mW": found.leak_mW}
        for key, value in values.items():
            worst[key] = max(worst[key], abs(value / point[key] - 1))
    print("built-in vs CACTI at the check points, largest deviation: "
          + ", ".join(f"{key} {100 * value:.1f}%" for key, value in worst.items()))


def reference_cases() -> None:
    if not CASES.exists():
        print(f"no {CASES}: the reference comparison is skipped")
        return
    print("case                            node  level          read vs ERT  write vs ERT")
    for case in sorted(CASES.iterdir()):
        erts = list((case / "ref-output").glob("*ERT.yaml"))
        parsed = case / "ref-output" / "parsed-processed-input.yaml"
        if not erts or not parsed.exists():
            continue
        specs = load_specs([parsed, erts[0]])
        kinds = component_classes(yaml.safe_load(parsed.read_text()))
        found = estimate_architecture(specs.architecture, specs.hardware, specs.hardware.node_nm)
        for level in found.levels:
            kind = kinds.get(level.name, "")
            big_sram = "SRAM" in kind and level.depth is not None and level.width_bits * level.depth >= 16 * 8192
            if kind == "DRAM" or big_sram:
                print(f"{case.name[:30]:30}  {found.node_nm:4g}  {level.name[:13]:13}  "
                      f"{100 * (level.estimate.read_pJ / level.given_read - 1):+10.1f}%  "
                      f"{100 * (level.estimate.write_pJ / level.given_write - 1):+11.1f}%")


def main() -> int:
    check_points()
    reference_cases()
    return 0


if __name__ == "__main__":
    sys.exit(main())
