"""Mappings evaluated per second on one core: Timeloop's Eyeriss-like design
(../shared/reference/timeloop/cases/ed_eyeriss_like_default) on AlexNet conv3
(C256 M384 P13 Q13 R3 S3), over random valid mappings.

Prints the vectorized model's rate (batches of --batch mappings), on those and on
batches as a search scores them (random tilings of one structure: the first
mapping's loop orders, spatial unrolling and keep table), and the scalar reference
model's, on those and on mappings with a remainder (P and Q padded to 14), median
of 3 runs, CPU time of this process (one core); and what
the vectorized model's first call cost: compiling its kernels (once per machine) or
loading them from numba's on-disk cache.

Usage: python benchmarks/bench_model.py [--mappings N] [--batch B] [--scalar-mappings N] [--remainder-mappings N]
                                        [--seed S]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mapper.mapping import LevelMapping, Loop, Mapping
from mapper.mapspace import Mapspace
from mapper.model.batch import batch_from_mappings
from mapper.model.capacity import violations
from mapper.model.reference import evaluate_reference
from mapper.model.vectorized import Evaluator, evaluate_compiled
from mapper.specs.load import load_specs

CASE = Path(__file__).resolve().parents[2] / "shared/reference/timeloop/cases/ed_eyeriss_like_default/ref-output"
CONV3 = {"C": 256, "M": 384, "P": 13, "Q": 13, "R": 3, "S": 3, "N": 1}


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def random_split(n: int, parts: int, rng: random.Random) -> list[int]:
    factors = []
    for _ in range(parts - 1):
        f = rng.choice(divisors(n))
        factors.append(f)
        n //= f
    return factors + [n]


def random_mapping(problem, arch, rng: random.Random) -> Mapping:
    """Random tiling of every dimension over the levels, random loop orders, with
    the PE array's X fan-out below the column level and Y below the row level."""
    names = [lv.name for lv in arch.levels]
    levels = [{"temporal": [], "spatial": []} for _ in names]
    for dim in problem.dims:
        fx = rng.choice([d for d in divisors(problem.bounds[dim]) if d <= 14]) if dim in "QPM" else 1
        rest = problem.bounds[dim] // fx
        fy = rng.choice([d for d in divisors(rest) if d <= 12]) if dim in "CSMR" else 1
        rest //= fy
        temporal_levels = [0, 1, 5, 6] if dim != "N" else [0]
        for lvl, f in zip(temporal_levels, random_split(rest, len(temporal_levels), rng)):
            levels[lvl]["temporal"].append(Loop(dim, f))
        levels[names.index("inter_PE_column_spatial")]["spatial"].append(Loop(dim, fx, "X"))
        levels[names.index("inter_PE_spatial")]["spatial"].append(Loop(dim, fy, "Y"))
    keep = {"DRAM": {"Weights", "Inputs", "Outputs"}, "shared_glb": {"Inputs", "Outputs"},
            "ifmap_spad": {"Inputs"}, "weights_spad": {"Weights"}, "psum_spad": {"Outputs"}}
    out = []
    for name, lv in zip(names, levels):
        rng.shuffle(lv["temporal"])
        out.append(LevelMapping(tuple(lv["temporal"]), tuple(l for l in lv["spatial"] if l.factor > 1),
                                frozenset(keep.get(name, set()))))
    return Mapping(tuple(out))


def median_rate(count: int, run) -> float:
    rates = []
    for _ in range(3):
        start = time.process_time()
        run()
        rates.append(count / (time.process_time() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mappings", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--scalar-mappings", type=int, default=100)
    parser.add_argument("--remainder-mappings", type=int, default=30, help="of the scalar model's, with a remainder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    specs = load_specs([CASE / "parsed-processed-input.yaml", CASE / "timeloop-mapper.ERT.yaml"])
    problem = replace(specs.problems[0], bounds=dict(CONV3))
    arch = specs.architecture
    rng = random.Random(args.seed)
    mappings = []
    while len(mappings) < args.mappings:
        m = random_mapping(problem, arch, rng)
        if not violations(problem, arch, m):
            mappings.append(m)
    batches = [batch_from_mappings(problem, arch, mappings[i:i + args.batch])
               for i in range(0, len(mappings), args.batch)]
    evaluator = Evaluator(problem, arch)
    start = time.process_time()
    evaluator.evaluate(batches[0].take(slice(0, 1)))
    how = "loaded from the on-disk cache" if evaluate_compiled.stats.cache_hits else "compiled"
    print(f"vectorized model's first call: {time.process_time() - start:.1f} s CPU ({how})")
    fast = median_rate(len(mappings), lambda: [evaluator.evaluate(b) for b in batches])
    print(f"vectorized model: {fast:,.0f} mappings/s per core "
          f"(median of 3 runs over {len(mappings):,} random valid mappings in batches of {args.batch}, CPU time)")
    first = batches[0]
    mapspace = Mapspace(problem, arch)
    structure = mapspace.structure(first.order[0], list(zip(first.spatial_x[0], first.spatial_y[0])), first.keep[0])
    tilings = mapspace.sample_tilings(structure, args.batch, np.random.default_rng(args.seed))
    repeats = max(1, len(mappings) // len(tilings))
    searched = median_rate(repeats * len(tilings), lambda: [evaluator.evaluate(tilings) for _ in range(repeats)])
    print(f"vectorized model: {searched:,.0f} mappings/s per core on random tilings of one structure, "
          f"as a search scores them (median of 3 runs over {repeats} x {len(tilings):,} mappings)")
    few = mappings[:args.scalar_mappings]
    slow = median_rate(len(few), lambda: [evaluate_reference(problem, arch, m) for m in few])
    print(f"scalar reference model: {slow:,.1f} mappings/s per core (median of 3 runs over {len(few)} mappings)")
    # Mappings with a remainder, which the search's padded layers give and the reference
    # model alone counts: random valid mappings of P and Q padded to 14, of the real layer.
    padded = replace(problem, bounds={**CONV3, "P": 14, "Q": 14})
    remainders: list[Mapping] = []
    while len(remainders) < args.remainder_mappings:
        m = random_mapping(padded, arch, rng)
        if not violations(padded, arch, m):
            remainders.append(m)
    walked = median_rate(len(remainders), lambda: [evaluate_reference(problem, arch, m) for m in remainders])
    print(f"scalar reference model, mappings with a remainder: {walked:,.1f} mappings/s per core (median of 3 runs "
          f"over {len(remainders)} mappings with P and Q padded to 14)")


if __name__ == "__main__":
    main()
