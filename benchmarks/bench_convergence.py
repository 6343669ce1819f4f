"""Per-shape convergence of a network search, and what a stopping rule would give up:
to choose `mapper search --patience` from measurements rather than guesses.

Reads the Optuna journals of a network run kept by bench_network.py, searched with a
large budget and no patience:

    python benchmarks/bench_network.py --trials 300 --patience 0 --keep DIR
    python benchmarks/bench_convergence.py DIR [--patience 20 30 40 60]

Prints per searched shape the trial at which the best value comes within 1% and 0.1%
of the study's final best, and when it reaches it; then per patience the trials per
shape and the EDP summed over the shapes (each shape once) against the full studies.
Patience only truncates a study (its trials do not depend on the budget), so these
figures are exactly what `--patience N` would have found with the same trials cap.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mapper.search.engine import MIN_IMPROVEMENT, trials_without_progress


def study_values(journal: Path) -> list[float]:
    """The completed trials' values, in order (pareto: energy x cycles of the knee)."""
    storage = JournalStorage(JournalFileBackend(str(journal)))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return [math.prod(t.values) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def first_within(values: list[float], tolerance: float) -> int:
    """The number of trials after which the best is within `tolerance` of the final best."""
    final, best = min(values), math.inf
    for n, value in enumerate(values, start=1):
        best = min(best, value)
        if best <= final * (1 + tolerance):
            return n
    return len(values)


def stopped_at(values: list[float], patience: int) -> int:
    """How many trials a search with this patience would have run."""
    return next((n for n in range(1, len(values) + 1)
                 if trials_without_progress(values[:n], MIN_IMPROVEMENT) >= patience), len(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", metavar="DIR", help="a network run's folder (bench_network.py --keep DIR)")
    parser.add_argument("--patience", type=int, nargs="+", default=[10, 20, 30, 40, 60, 80])
    args = parser.parse_args()
    journals = sorted(Path(args.run).glob("layers/*/study.journal"))
    studies = {journal.parent.name: study_values(journal) for journal in journals}
    print(f"{'shape':<18}{'trials':>7}{'1%':>6}{'0.1%':>6}{'final':>7}")
    for name, values in studies.items():
        print(f"{name:<18}{len(values):>7}{first_within(values, 1e-2):>6}{first_within(values, 1e-3):>6}"
              f"{first_within(values, 0.0):>7}")
    full = sum(min(values) for values in studies.values())
    total = sum(len(values) for values in studies.values())
    print(f"\nall trials: {total}; summed best value {full:.5g}")
    for patience in args.patience:
        stops = {name: stopped_at(values, patience) for name, values in studies.items()}
        found = {name: min(values[:stops[name]]) for name, values in studies.items()}
        worst = max(studies, key=lambda name: found[name] / min(studies[name]))
        print(f"--patience {patience:>3}: {sum(stops.values()):>5} trials ({sum(stops.values()) / total:.0%}), "
              f"per shape {min(stops.values())}-{max(stops.values())}; summed best "
              f"{sum(found.values()) / full - 1:+.2%}; worst shape {worst} "
              f"{found[worst] / min(studies[worst]) - 1:+.2%}")


if __name__ == "__main__":
    main()
