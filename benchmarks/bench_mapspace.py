"""Mapspace generator speed on one core: the time to build a mapspace and report its
sizes, tilings sampled per second (and the share that fits every buffer), `valid`
checks per second, and exhaustive enumeration on a small space.

Cases: Timeloop's Eyeriss mapper case (../shared/reference/timeloop/cases/
t06_mapper_eyeriss_vgg02_l5, VGG conv layer 5 under its own constraints), the shipped
Eyeriss and 16x16 weight-stationary arrays on AlexNet conv3 with the row-stationary
and weight-stationary presets; exhaustively, Timeloop's unconstrained conv1d case
(t05_mapper_conv1d_oc_null), or without the reference the shipped toy example.

Usage: python benchmarks/bench_mapspace.py [--tilings N] [--repeat R] [--seed S]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from mapper.constraints import Constraints
from mapper.mapspace import Mapspace, Structure
from mapper.specs.load import load_specs

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
T06 = ROOT.parent / "shared/reference/timeloop/cases/t06_mapper_eyeriss_vgg02_l5/ref-output"
T05 = ROOT.parent / "shared/reference/timeloop/cases/t05_mapper_conv1d_oc_null/ref-output"


def cases() -> list[tuple[str, list[Path], Constraints | None]]:
    found = [
        ("eyeriss + alexnet conv3, row-stationary",
         [SPECS / "arch/eyeriss.yaml", SPECS / "workloads/alexnet-conv3.yaml"], Constraints(preset="row-stationary")),
        ("ws-16x16 + alexnet conv3, weight-stationary",
         [SPECS / "arch/ws-16x16.yaml", SPECS / "workloads/alexnet-conv3.yaml"],
         Constraints(preset="weight-stationary")),
    ]
    if T06.exists():
        found.insert(0, ("t06 eyeriss vgg02 l5, its constraints", [T06 / "parsed-processed-input.yaml"], None))
    return found


def random_structures(space: Mapspace, rng: np.random.Generator, count: int) -> list[Structure]:
    """Structures with a random spatial unrolling, loop orders and keep table."""
    combos, keeps = [], space.keep_choices()
    for combo in space.spatial_combinations():
        combos.append(combo)
        if len(combos) == 2000:
            break
    structures = []
    for _ in range(count):
        sx, sy = combos[rng.integers(len(combos))]
        orders = [space.permutation_choices(l)[rng.integers(len(space.permutation_choices(l)))]
                  for l in range(space.L)]
        structures.append(space.structure(orders, list(zip(sx, sy)), keeps[rng.integers(len(keeps))]))
    return structures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tilings", type=int, default=100_000, help="tilings per sample_tilings call")
    parser.add_argument("--repeat", type=int, default=5, help="structures sampled per case")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for name, files, constraints in cases():
        specs = load_specs(files)
        problem, arch = specs.problems[0], specs.architecture
        start = time.perf_counter()
        space = Mapspace(problem, arch, constraints if constraints is not None else specs.constraints)
        space.check()
        sizes = space.sizes()
        setup = time.perf_counter() - start
        rates, fitting, checks = [], [], []
        for structure in random_structures(space, rng, args.repeat):
            start = time.perf_counter()
            batch = space.sample_tilings(structure, args.tilings, rng)
            rates.append(len(batch) / (time.perf_counter() - start))
            start = time.perf_counter()
            valid = space.valid(batch)
            checks.append(len(batch) / (time.perf_counter() - start))
            fitting.append(valid.mean())
        print(f"{name}:")
        print(f"  mapspace and sizes in {setup * 1e3:.0f} ms: " + ", ".join(f"{k} {v:.3g}" for k, v in sizes.items()))
        print(f"  sample_tilings: {statistics.median(rates):,.0f} tilings/s (median of {len(rates)} structures x "
              f"{args.tilings:,}), {statistics.mean(fitting):.1%} fit every buffer")
        print(f"  valid: {statistics.median(checks):,.0f} mappings/s")
    small = [SPECS / "arch/toy-3level.yaml", SPECS / "workloads/tiny-conv.yaml",
             SPECS / "constraints/toy-3level-custom.yaml"]
    if T05.exists():
        small = [T05 / "parsed-processed-input.yaml"]
    specs = load_specs(small)
    space = Mapspace(specs.problems[0], specs.architecture, specs.constraints)
    start = time.perf_counter()
    count = sum(len(batch) for batch in space.enumerate())
    elapsed = time.perf_counter() - start
    print(f"{small[0].parent.parent.name if T05.exists() else 'toy-3level + tiny conv, custom'}: enumerate() visits "
          f"{count:,} distinct valid mappings of a space of {space.sizes()['total']:,} in {elapsed:.2f} s")

if __name__ == "__main__":
    main()
