"""An Optuna sampler whose randomness depends only on the seed and how many trials have
completed, so a search resumed from its storage proposes exactly what the
uninterrupted search would have.

A seeded TPE sampler draws from one random stream that advances with every trial;
after a restart a fresh sampler starts the stream over and the resumed search drifts
away from the uninterrupted one. Here each trial gets a fresh inner sampler seeded
with (seed, ordinal), where the ordinal is the number of completed trials when the
trial starts. Trials that an interruption left failed or running do not count: the
trial that replaces them gets their ordinal, and the samplers used here look only at
completed trials, so it sees the same history as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState


def completed(study: Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def derived_seed(seed: int, ordinal: int) -> int:
    """A 32-bit seed for trial `ordinal`, decorrelated from its neighbours."""
    return int(np.random.SeedSequence([seed, ordinal]).generate_state(1)[0])


class OrdinalSeededSampler(BaseSampler):
    """Delegates to `make(seed)`, a new sampler per trial (module docstring)."""

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make, self._seed = make, seed
        self._inner: dict[int, BaseSampler] = {}  # trial number -> its sampler

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        inner = self._make(derived_seed(self._seed, len(completed(study))))
        self._inner[trial.number] = inner
        inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._inner[trial.number].infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._inner[trial.number].sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._inner[trial.number].sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        inner = self._inner.pop(trial.number, None)
        if inner is not None:  # None: the trial is failed after its `tell` could not be written (a full disk)
            inner.after_trial(study, trial, state, values)


def tpe(seed: int) -> BaseSampler:
    """TPE as used here: no constant liar (one worker; a trial an interruption left
    running must not weigh on the next), and independent (univariate) TPE. Optuna's
    default multivariate TPE recomputes the intersection of the search spaces of all
    trials whenever the sampler is new, as it is here for every trial: on Eyeriss's
    constraints (two 720-way loop-order choices) that cost ~45 ms per trial after 150
    trials and grows with them, against ~4 ms for the independent TPE."""
    return optuna.samplers.TPESampler(seed=seed, constant_liar=False, multivariate=False)


def random(seed: int) -> BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)
