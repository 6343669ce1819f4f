"""`mapper search` below the printing: search one layer, evaluate the answer in full
(model.vectorized.evaluate_mapping) and write it to the layer's output folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..architecture import Architecture
from ..constraints import Constraints
from ..mapping import Mapping
from ..mapspace import Mapspace, NoValidMapping
from ..model.capacity import violations
from ..model.stats import Evaluation
from ..model.vectorized import evaluate_mapping
from ..problem import Problem
from ..run_folder import fingerprint, keep_results_of
from ..safe_names import mask_password
from ..typed_json import to_json
from .engine import (
    Budget,
    ExhaustiveSearch,
    OptunaSearch,
    Outcome,
    ProgressCallback,
    Search,
)
from .objectives import Objective
from .outputs import write_best, write_pareto
from .storage import JOURNAL_NAME, open_storage
from .tilings import Effort

MANIFEST = "search.json"  # what the folder's search is (claim_layer_folder)
DEFAULT_TRIALS = 300
# The trials find structures and the polish (polish.py) finishes their mappings, so the
# trials need not run on until their own gains stop. Over 270 searches (benchmarks/
# bench_seeds.py: its 12 cases and every ResNet-50 shape on eyeriss-like and tpu-like,
# seeds 0-4), patience 20 ended 257 at the mappings that 40 found, 10 better and 3
# worse (tpu-like res3a_branch1 by 9.1% and conv1 by 4.6%, one seed each), in 18-20%
# less CPU time; ResNet-50 on eyeriss-like, 2 cores: 57 s wall against 71, the same
# summed EDP. The trials alone (no polish) gave up 16% of that EDP at 20 against 40.
DEFAULT_PATIENCE = 20


@dataclass(frozen=True)
class Settings:
    objective: Objective = "edp"
    trials: int | None = None  # with `seconds` also None: DEFAULT_TRIALS
    seconds: float | None = None
    patience: int | None = DEFAULT_PATIENCE  # None: only `trials` and `seconds` stop the search
    seed: int = 0
    exhaustive: bool = False
    storage: str | None = None  # an Optuna storage URL; None: a journal file in the output folder
    effort: Effort = field(default_factory=Effort)

    @property
    def budget(self) -> Budget:
        trials = DEFAULT_TRIALS if self.trials is None and self.seconds is None else self.trials
        return Budget(trials, self.seconds, self.patience)


@dataclass(frozen=True)
class LayerResult:
    """The answer for one layer, evaluated in full: the best mapping
    (single objectives) or the front, fastest first (pareto)."""

    problem: Problem
    arch: Architecture
    folder: Path
    outcome: Outcome
    points: list[tuple[Mapping, Evaluation]]
    sizes: dict[str, int]


def decisive_settings(settings: Settings) -> dict[str, Any]:
    """The settings that decide a run's results: all but the storage URL, which only
    says where the studies are kept."""
    return {k: v for k, v in to_json(settings).items() if k != "storage"}


def recorded_settings(settings: Settings) -> dict[str, Any]:
    """The settings as a folder's record shows them: the storage URL without its password."""
    return {**decisive_settings(settings), "storage": mask_password(settings.storage) if settings.storage else None}


def claim_layer_folder(problem: Problem, arch: Architecture, constraints: Constraints | None, settings: Settings,
                       folder: Path) -> None:
    """Record in `folder` what this search is, or check that the folder holds this
    search's results: a search with another layer, architecture, constraints or
    settings is refused rather than replacing the best mapping found there."""
    decisive = {"arch": to_json(arch), "problem": to_json(problem), "constraints": to_json(constraints),
                "settings": decisive_settings(settings)}
    record = {"layer": problem.name, "architecture": arch.name, "settings": recorded_settings(settings),
              "fingerprint": fingerprint(decisive)}
    keep_results_of(folder / MANIFEST, record, "search", "the same layer, architecture, constraints and settings")


class NotFoundInBudget(NoValidMapping):
    """The mapspace's checks found no reason that nothing fits, but the search met no
    mapping that does: a bigger budget or looser constraints may find one."""

    headline = "no mapping found within the budget"


def make_search(mapspace: Mapspace, settings: Settings, folder: Path) -> Search:
    if settings.exhaustive:
        return ExhaustiveSearch(mapspace, settings.objective)
    return OptunaSearch(mapspace, settings.objective, open_storage(settings.storage, folder), settings.seed,
                        settings.effort)


def search_layer(problem: Problem, arch: Architecture, constraints: Constraints | None, settings: Settings,
                 folder: Path, progress: ProgressCallback | None = None) -> LayerResult:
    """Search one layer and write its results into `folder`. Raises NoValidMapping
    with the reasons when the constraints, capacities and fan-outs leave nothing, and
    NotFoundInBudget when the search met no mapping that fits."""
    mapspace = Mapspace(problem, arch, constraints)
    mapspace.check()
    outcome = make_search(mapspace, settings, folder).run(settings.budget, progress)
    if outcome.found is None or not len(outcome.found):
        if outcome.exhaustive and outcome.details.get("complete"):
            raise NoValidMapping([f"none of the {outcome.scored:,} mappings of the mapspace fits every level's "
                                  "capacity and meets the constraints (an exhaustive search scored every one)"])
        raise NotFoundInBudget([not_found_text(outcome)])
    points = [_rescored(problem, arch, outcome.found.batch.mapping(i, problem)) for i in range(len(outcome.found))]
    sizes = mapspace.sizes()
    info = search_info(settings, outcome, sizes, folder)
    best = min(points, key=lambda p: p[1].edp_J_cycles) if settings.objective == "pareto" else points[0]
    write_best(folder, problem, arch, *best, info)
    if settings.objective == "pareto":
        write_pareto(folder, problem, arch, points, info)
    return LayerResult(problem, arch, folder, outcome, points, sizes)


def not_found_text(outcome: Outcome) -> str:
    """Why a search that found nothing may still find something, and what to change."""
    if outcome.exhaustive:
        return (f"the exhaustive search was stopped by --time after {outcome.scored:,} mappings, none of which "
                "fits; give it more --time")
    return (f"none of the {outcome.scored:,} mappings scored in this run ({outcome.trials} trials in the study) "
            "fits every level's capacity and meets the constraints, though the mapspace's checks found no reason "
            "that none does; give the search more --trials or --time, or loosen the constraints")


def _rescored(problem: Problem, arch: Architecture, mapping: Mapping) -> tuple[Mapping, Evaluation]:
    """The stats a user gets, with the fit confirmed by the scalar check of the
    mapping (violations), apart from the search's batch arrays."""
    problems = violations(problem, arch, mapping)
    if problems:
        raise RuntimeError("the vectorized model accepted a mapping that does not fit: " + "; ".join(problems))
    return mapping, evaluate_mapping(problem, arch, mapping)


def search_info(settings: Settings, outcome: Outcome, sizes: dict[str, int], folder: Path) -> dict[str, Any]:
    """How the answer was found, for best.json and pareto.json."""
    storage = None
    if not settings.exhaustive:
        storage = mask_password(settings.storage) if settings.storage else str(folder / JOURNAL_NAME)
    return {"objective": settings.objective, "mode": "exhaustive" if outcome.exhaustive else "optuna",
            "seed": settings.seed, "trials": outcome.trials, "mappings_scored_this_run": outcome.scored,
            "seconds_this_run": round(outcome.seconds, 3), "storage": storage, "mapspace_sizes": sizes,
            **outcome.details}
