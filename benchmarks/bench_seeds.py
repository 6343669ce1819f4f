"""How much a layer's best mapping depends on the search's seed, and what a search costs.

Searches each case (an architecture and one layer) with the default settings of
`mapper search` (as `search_layer` runs them: journal storage, reference re-scoring)
once per seed, and prints per case the best EDP over the seeds, their spread
(max / min - 1), the best cycles against the compute bound (MACs / PEs) and the median
CPU seconds of one search. The cases: ResNet-50's res4 3x3, a ResNet-18 layer1 3x3
and AlexNet's conv3 on the shipped eyeriss-like, simba-like and tpu-like designs and on
an Eyeriss-style design no test uses (benchmarks/specs/eyeriss-style-16x16.yaml);
`--shapes WORKLOAD ARCH` adds every distinct shape of a shipped workload on ARCH
(`--shapes resnet50 eyeriss-like`: every ResNet-50 shape).

    python benchmarks/bench_seeds.py [--seeds 0 1 2 3 4] [--jobs 2] [--shapes WORKLOAD ARCH]
                                     [--only SUBSTRING] [--patience N] [--remainder-searches N]
                                     [--search-seeds N] [--json PATH] [--from-json PATH]

Searches run `--jobs` at a time, one per process; CPU seconds are each search's own.
`--search-seeds N` makes each search `mapper search --seeds N` from its seed (the best
of N independent searches, seeds SEED to SEED+N-1): how far apart those end.
With `--shapes` and every shape searched, it also prints the network's EDP summed over
its layers (each shape's best mapping counted once per layer of that shape) per seed,
and how far apart those sums end: what a comparison of two designs on that network
rests on. `--from-json PATH` prints all that again from a run's `--json` file (with the
run's `--shapes`), searching nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHS = {name: ROOT / f"specs/arch/{name}.yaml" for name in ("eyeriss-like", "simba-like", "tpu-like")}
ARCHS["eyeriss-style-16x16"] = ROOT / "benchmarks/specs/eyeriss-style-16x16.yaml"
# ResNet-18's layer1 3x3 (He et al., CVPR 2016, Table 1): not in a shipped workload.
RESNET18_LAYER1 = {"workload": {"name": "resnet18", "layers": [
    {"conv": {"name": "layer1_conv", "C": 64, "M": 64, "H": 56, "W": 56, "R": 3, "S": 3, "padding": 1}}]}}
LAYERS = [("resnet50", "res4a_branch2b"), ("resnet18", "layer1_conv"), ("alexnet", "conv3")]


@dataclass(frozen=True)
class Case:
    arch: str
    workload: str
    layer: str

    @property
    def name(self) -> str:
        return f"{self.arch} {self.workload}/{self.layer}"


@dataclass(frozen=True)
class Run:
    case: Case
    seed: int
    edp: float  # J x cycles
    energy_uJ: float
    cycles: int
    compute_bound: int  # cycles with every PE busy on every cycle
    cpu_seconds: float


def workload_file(name: str, folder: Path) -> Path:
    if name != "resnet18":
        return ROOT / f"specs/workloads/{name}.yaml"
    path = folder / "resnet18.yaml"
    path.write_text(json.dumps(RESNET18_LAYER1))
    return path


def search_once(case: Case, seed: int, patience: int | None, remainder_searches: int | None,
                search_seeds: int) -> Run:
    """One search with the default settings but the seed, `search_seeds` (mapper search's
    --seeds), and `patience` (0: none) and `remainder_searches` if given."""
    from mapper.search.run import DEFAULT_PATIENCE, REMAINDER_SEARCHES, Settings, search_layer
    from mapper.specs.load import load_specs
    with tempfile.TemporaryDirectory() as tmp:
        specs = load_specs([ARCHS[case.arch], workload_file(case.workload, Path(tmp))])
        problem = next(p for p in specs.problems if p.name.split("/")[-1] == case.layer)
        arch = specs.architecture
        settings = Settings(seed=seed, seeds=search_seeds,
                            patience=DEFAULT_PATIENCE if patience is None else patience or None,
                            remainder_searches=REMAINDER_SEARCHES if remainder_searches is None else remainder_searches)
        start = time.process_time()
        result = search_layer(problem, arch, specs.constraints, settings, Path(tmp) / "out")
        cpu = time.process_time() - start
    _, stats = result.points[0]
    bound = -(-problem.macs // arch.compute.instances)
    return Run(case, seed, stats.edp_J_cycles, stats.energy_pJ / 1e6, stats.cycles, bound, cpu)


def cases(shapes: tuple[str, str] | None, only: str | None) -> list[Case]:
    """The cases of LAYERS on every design, and with `shapes` (a workload, a design)
    the first layer of every distinct shape of that workload on that design."""
    found = [Case(arch, workload, layer) for arch in ARCHS for workload, layer in LAYERS]
    if shapes:
        workload, arch = shapes
        found += [Case(arch, workload, layer) for layer in layers_per_shape(workload)]
    found = list(dict.fromkeys(found))  # ResNet-50's res4a_branch2b is one of LAYERS too
    return [c for c in found if only is None or only in c.name]


def layers_per_shape(workload: str) -> dict[str, int]:
    """The first layer of every distinct shape (loop bounds) of a shipped workload, and
    how many of its layers have that shape."""
    from mapper.specs.load import load_specs
    first: dict[tuple, str] = {}
    counts: dict[str, int] = {}
    for p in load_specs([ROOT / f"specs/workloads/{workload}.yaml"]).problems:
        name = first.setdefault(tuple(sorted(p.bounds.items())), p.name.split("/")[-1])
        counts[name] = counts.get(name, 0) + 1
    return counts


def network_sums(runs: list[Run], workload: str, arch: str, seeds: list[int]) -> str | None:
    """Per seed, the workload's EDP summed over its layers on `arch` (every shape's
    search counted once per layer of its shape), and how far apart the sums end; None
    unless every shape was searched from every seed."""
    counts = layers_per_shape(workload)
    edp = {(r.case.layer, r.seed): r.edp for r in runs if (r.case.arch, r.case.workload) == (arch, workload)}
    if any((layer, seed) not in edp for layer in counts for seed in seeds):
        return None
    sums = [sum(n * edp[layer, seed] for layer, n in counts.items()) for seed in seeds]
    each = ", ".join(f"seed {seed} {total:.5g}" for seed, total in zip(seeds, sums))
    layers = sum(counts.values())
    return (f"{workload} on {arch}, EDP summed over its {layers} layer{'s' * (layers > 1)}: {each}; "
            f"spread {100 * (max(sums) / min(sums) - 1):.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--shapes", nargs=2, metavar=("WORKLOAD", "ARCH"),
                        help=f"add every distinct shape of a shipped workload on ARCH (one of {', '.join(ARCHS)})")
    parser.add_argument("--only", metavar="SUBSTRING", help="only the cases whose name contains it")
    parser.add_argument("--patience", type=int, help="mapper search's --patience (default: its default; 0: none)")
    parser.add_argument("--remainder-searches", type=int, metavar="N",
                        help="mapper search's --remainder-searches (default: its default)")
    parser.add_argument("--search-seeds", type=int, default=1, metavar="N",
                        help="mapper search's --seeds: each search the best of N, from its seed on (default 1)")
    parser.add_argument("--json", metavar="PATH", help="write every run's figures as JSON")
    parser.add_argument("--from-json", metavar="PATH", help="print the tables of a --json file; search nothing")
    args = parser.parse_args()
    if args.shapes:
        workload, arch = args.shapes
        shipped = sorted(p.stem for p in (ROOT / "specs/workloads").glob("*.yaml"))
        if workload not in shipped:
            parser.error(f"--shapes: no shipped workload {workload!r}; the workloads: {', '.join(shipped)}")
        if arch not in ARCHS:
            parser.error(f"--shapes: no design {arch!r}; the designs: {', '.join(ARCHS)}")
    if args.from_json:
        if not Path(args.from_json).is_file():
            parser.error(f"--from-json: no file {args.from_json}")
        runs, wall = read_runs(Path(args.from_json)), None
        args.seeds = sorted({r.seed for r in runs})
    else:
        todo = [(case, seed) for case in cases(args.shapes, args.only) for seed in args.seeds]
        start = time.perf_counter()
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(search_once, *zip(*todo), [args.patience] * len(todo),
                                 [args.remainder_searches] * len(todo), [args.search_seeds] * len(todo)))
        wall = time.perf_counter() - start
    print(f"{'case':<48} {'best EDP':>10} {'spread':>7} {'cycles/bound':>12} {'CPU s':>6}")
    worst = 0.0
    for case in dict.fromkeys(r.case for r in runs):
        mine = [r for r in runs if r.case == case]
        edps = [r.edp for r in mine]
        spread = max(edps) / min(edps) - 1
        worst = max(worst, spread)
        best = min(mine, key=lambda r: r.edp)
        print(f"{case.name:<48} {best.edp:>10.4g} {100 * spread:>6.2f}% {best.cycles / best.compute_bound:>12.3f} "
              f"{statistics.median(r.cpu_seconds for r in mine):>6.1f}")
    cpu = sum(r.cpu_seconds for r in runs)
    each = f" (each the best of {args.search_seeds}, from its seed on)" if args.search_seeds > 1 else ""
    timing = "" if wall is None else f", {wall:.0f} s wall on {args.jobs} processes"
    print(f"worst spread {100 * worst:.2f}% over seeds {args.seeds}{each}; {len(runs)} searches, {cpu:.0f} CPU-s"
          f"{timing}")
    network = network_sums(runs, *args.shapes, args.seeds) if args.shapes else None
    if network:
        print(network)
    if args.json:
        Path(args.json).write_text(json.dumps([{**r.__dict__, "case": r.case.name} for r in runs], indent=1))


def read_runs(path: Path) -> list[Run]:
    """The runs of a --json file."""
    runs = []
    for record in json.loads(path.read_text()):
        arch, rest = record.pop("case").split(" ", 1)
        workload, layer = rest.split("/")
        runs.append(Run(Case(arch, workload, layer), **record))
    return runs


if __name__ == "__main__":
    sys.exit(main())
