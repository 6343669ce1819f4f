"""CPU seconds of default searches of a few ResNet-50 shapes, one after another in one
process: the figure to compare two commits by (run each in turn, a few times, and
compare medians), with each shape's trials and EDP to confirm they found the same.

    python benchmarks/bench_shapes.py [--arch eyeriss-like]
        [--shapes conv1,res2a_branch2b,res3b_branch2a,res4a_branch2a,res5a_branch2b]
        [--patience N]

Searches as `search_layer` runs them (journal storage in a temporary folder, reference
re-scoring), seed 0; the model's kernels are loaded before the clock starts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mapper.mapspace import layer_constraints
from mapper.model.vectorized import load_kernels
from mapper.search.run import DEFAULT_PATIENCE, Settings, search_layer
from mapper.specs.load import load_specs

ROOT = Path(__file__).resolve().parents[1]
SHAPES = "conv1,res2a_branch2b,res3b_branch2a,res4a_branch2a,res5a_branch2b"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="eyeriss-like")
    parser.add_argument("--shapes", default=SHAPES, help="ResNet-50 layer names, comma-separated")
    parser.add_argument("--patience", type=int, help="mapper search's --patience (default: its default; 0: none)")
    args = parser.parse_args()
    load_kernels()
    specs = load_specs([ROOT / f"specs/arch/{args.arch}.yaml", ROOT / "specs/workloads/resnet50.yaml"])
    settings = Settings(patience=DEFAULT_PATIENCE if args.patience is None else args.patience or None)
    total = 0.0
    for name in args.shapes.split(","):
        problem = next(p for p in specs.problems if p.name.split("/")[-1] == name)
        constraints = layer_constraints(specs.constraints, problem, specs.architecture)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.process_time()
            result = search_layer(problem, specs.architecture, constraints, settings, Path(tmp))
            cpu = time.process_time() - start
        total += cpu
        print(f"{name:16s} {cpu:6.2f} CPU-s  {result.outcome.trials:4d} trials  "
              f"EDP {result.points[0][1].edp_J_cycles:.6g} J*cycles", flush=True)
    print(f"total {total:.2f} CPU-s")


if __name__ == "__main__":
    main()
