"""Random fuzzing of the spec loaders through the CLI, for longer than the test suite
can afford: each input is a shipped spec (or the Timeloop case input) after one to
`--rounds` random mutations (tests/spec_mutations.py), evaluated in-process like
`mapper evaluate`. Prints how many inputs were tried, how many loaded, how many were
refused with a clear one-line error, and every input that got anything else (a
traceback, a hang, an unclear message). Exit status 1 if there was any.

    python benchmarks/fuzz_specs.py --seconds 300
    python benchmarks/fuzz_specs.py --count 2000 --seed 7
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from spec_mutations import NESTING, evaluate_mutant, random_mutant, seeds  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0): the same seed, the same inputs")
    parser.add_argument("--count", type=int, default=None, help="stop after this many inputs")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop after this long (default 60)")
    parser.add_argument("--rounds", type=int, default=3, help="at most this many mutations per input (default 3)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="CPU seconds before an input counts as a hang")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    pool = seeds()
    originals = {seed.name: seed.target_file().read_bytes() for seed in pool}
    tried, loaded, refused = 0, Counter(), Counter()
    problems: list[tuple[str, str, str, str]] = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-specs-") as work:
        for name, content in NESTING:  # slow to parse, so once rather than at random
            outcome = evaluate_mutant(pool[0], content, Path(work) / "nesting", args.time_limit)
            tried += 1
            if outcome.problem:
                problems.append((pool[0].name, name, outcome.problem, outcome.error))
            else:
                refused[pool[0].name] += 1
        while (args.count is None or tried < args.count) and time.monotonic() - start < args.seconds:
            seed = rng.choice(pool)
            label, content = random_mutant(originals[seed.name], rng, rng.randint(1, args.rounds))
            outcome = evaluate_mutant(seed, content, Path(work) / seed.name, args.time_limit)
            tried += 1
            if outcome.problem:
                problems.append((seed.name, label, outcome.problem, outcome.error))
            elif outcome.loaded:
                loaded[seed.name] += 1
            else:
                refused[seed.name] += 1
    elapsed = time.monotonic() - start
    print(f"tried {tried} inputs in {elapsed:.0f} s (seed {args.seed}, up to {args.rounds} mutations each): "
          f"{sum(loaded.values())} loaded, {sum(refused.values())} refused with a clear error, "
          f"{len(problems)} problems")
    for seed in pool:
        print(f"  {seed.name:26} {loaded[seed.name]:6} loaded {refused[seed.name]:6} refused")
    for seed_name, label, problem, message in problems:
        print(f"PROBLEM [{seed_name}] {label[:200]}: {problem}" + (f" | {message[:300]}" if message else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
