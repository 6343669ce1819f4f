"""`mapper search` below the printing: search one layer, evaluate the answer in full
(model.vectorized.evaluate_mapping) and write it to the layer's output folder.

Mappings with a remainder (a dimension's factors multiplying to more than its bound)
are searched where the perfect ones leave PEs idle: after the search of the layer,
the padded layers (mapspace/padding.py) whose busiest unrolling would take at least
MIN_REMAINDER_GAIN fewer cycles than the best mapping found are searched, at most
REMAINDER_SEARCHES of them (`padded_searches`): they are screened (`screened`), and
the screen's best and those that would run fewest cycles are searched in turn, each
begun from the best mapping its screen found: the screen's best is that mapping's
structure tiled in one trial, then polished (PADDED_BUDGET), where another is searched
after it; the others, and the screen's best alone, are searched on from there with the
layer's budget. Where the layer has no mapping to screen with, those that would run
fewest cycles are searched as the layer is. Each is its own study in the same storage,
so a resumed run resumes it. Their best mappings are scored again as mappings of the
real layer, exactly (the reference model counts remainders), and the best of all is the
answer. For the objectives with cycles in them (edp, delay): a padded layer does more
work, which only fewer cycles can repay.

Where the answer must not hang on one seed (`Settings.seeds` above 1, `--seeds N`), all
of that runs once per seed, seed, seed + 1, ..., each exactly as a search with that seed
alone would (its own studies, resumed alike), and the best of all their answers is the
answer: Timeloop's mapper keeps the best of its threads' independent searches the same
way. best.json lists what each seed's search found, so that a user sees how far apart
they end; the rest of it is what the best seed's search alone would have written.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..architecture import Architecture
from ..constraints import Constraints
from ..mapping import Mapping
from ..mapspace import Mapspace, NoValidMapping
from ..mapspace.padding import MAX_PADDING, Padding, paddings
from ..model.batch import MappingBatch
from ..model.capacity import violations
from ..model.stats import Evaluation
from ..model.vectorized import evaluate_mapping
from ..problem import Problem
from ..run_folder import LAYER_RECORD, fingerprint, keep_results_of
from ..safe_names import mask_password
from ..specs.errors import SpecError, did_you_mean
from ..specs.limits import MAX_SEED, MAX_SEEDS
from ..specs.fields import is_int
from ..typed_json import to_json
from .engine import (
    Budget,
    ExhaustiveSearch,
    OptunaSearch,
    Outcome,
    ProgressCallback,
    Search,
    select,
)
from .objectives import OBJECTIVES, Objective, Scores, mapping_keys
from .outputs import write_best, write_pareto
from .polish import PolishEffort
from .storage import JOURNAL_NAME, open_storage
from .tilings import Effort, Scored, best_tilings

MANIFEST = LAYER_RECORD  # what the folder's search is (claim_layer_folder)
DEFAULT_TRIALS = 300
# The trials find structures and the polish (polish.py) finishes their mappings, so the
# trials need not run on until their own gains stop. Over 270 searches (benchmarks/
# bench_seeds.py: its 12 cases and every ResNet-50 shape on eyeriss-like and tpu-like,
# seeds 0-4), patience 20 ended 257 at the mappings that 40 found, 10 better and 3
# worse (tpu-like res3a_branch1 by 9.1% and conv1 by 4.6%, one seed each), in 18-20%
# less CPU time; ResNet-50 on eyeriss-like, 2 cores: 57 s wall against 71, the same
# summed EDP. The trials alone (no polish) gave up 16% of that EDP at 20 against 40.
DEFAULT_PATIENCE = 20
# Padded layers searched at most per layer, and the cycles their busiest unrolling must
# save, at least, against the best mapping found (module docstring). Two, the screen's
# best and the fewest cycles': ResNet-50 on eyeriss-like then ends every shape within
# 1.2% of where searching every padded layer worth it does, in under a third of the
# time (docs/search-measurements.md, "What remainders gain, and cost").
REMAINDER_SEARCHES = 2
MIN_REMAINDER_GAIN = 0.05
SCREENED_UNROLLINGS = 8  # of each padded layer's busiest, in the screen
# The search of the screen's best padded layer: one trial, the structure of the mapping
# the screen found there tiled, and the polish; more trials found nothing the polish did
# not (every ResNet-50 shape on eyeriss-like over seeds 0-4, benchmarks/bench_seeds.py).
# The others searched begin from a mapping the screen ranked lower, and their trials pay:
# with one trial, MobileNetV3-Large's bneck1_project ended 4-5% higher from three seeds
# of five (P as 114 begun at 2.1 J*cycles, the trials took it to 0.61, the polish to
# 0.57) and bneck2_expand 8% higher from two. So do those of the screen's best where it
# is the only padded layer searched: on ws-16x16, MobileNetV3-Large's bneck9_depthwise
# (G as 192) ended at 6.935e10 MAC*cycles in one trial, 6.646e10 in 40.
PADDED_BUDGET = Budget(trials=1)
# The polish of the layer's own search: at least four local searches from the trials'
# keep tables before two that agree end them. Two that agree are often a common local
# optimum: on ResNet-50's shapes on simba-like, seeds 0-4, res2a_branch2b ended 4.34%
# apart and res3a_branch1 7.48% (the fourth local search of seed 2 finds the others'
# answer); with the floor every shape within 1.19%. Of the 710 searches of
# benchmarks/bench_seeds.py's sets, 33 ended better and three worse, at 42% more CPU on
# its default set and 6% more on ResNet-50 on eyeriss-like end to end. The padded
# layers' searches begin from their screen's best and keep two: with the floor there
# as well, ResNet-50 on eyeriss-like ended at the same 105 mappings for 46% more CPU
# (docs/search-measurements.md).
# Last, it runs local searches under the unrollings that share a tensor its answer does
# not (polish.shared_polish; OptunaSearch.share, after the padded layers' searches): on
# bench_seeds.py's default set the Eyeriss-style 16 x 16 design's layer1 3x3 from 4.63%
# apart to 0.39%, at about 4% more CPU (benchmarks/bench_shapes.py).
LAYER_POLISH = PolishEffort(least_starts=4, shared_starts=True)
REMAINDER_OBJECTIVES = ("edp", "delay")  # a padded layer does more work: fewer cycles must repay it
NO_PADDED_LAYER = (f"no padded layer has a mapping either (the search takes remainders by padding one dimension to a "
                   f"multiple of a fan-out's width or height, or of a divisor of one, by at most {MAX_PADDING:.1%}; "
                   "mapper evaluate takes any remainder)")


@dataclass(frozen=True)
class Settings:
    objective: Objective = "edp"
    trials: int | None = None  # with `seconds` also None: DEFAULT_TRIALS
    seconds: float | None = None
    patience: int | None = DEFAULT_PATIENCE  # None: only `trials` and `seconds` stop the search
    seed: int = 0
    seeds: int = 1  # independent searches of each layer, from seed on; the best of them is the answer
    exhaustive: bool = False
    storage: str | None = None  # an Optuna storage URL; None: a journal file in the output folder
    effort: Effort = field(default_factory=Effort)
    remainders: bool = True  # search padded layers too, where PEs are left idle (module docstring)
    remainder_searches: int = REMAINDER_SEARCHES  # at most this many padded layers per layer

    def __post_init__(self) -> None:
        """The CLI and experiments say what they refuse first, in their own terms; this
        is what a caller of the Python API (api.search) meets."""
        if self.objective not in OBJECTIVES:
            raise SpecError(None, "objective", repr(self.objective), ", ".join(OBJECTIVES),
                            did_you_mean(str(self.objective).lower(), OBJECTIVES))
        if self.trials is not None and not (is_int(self.trials) and self.trials >= 1):
            raise SpecError(None, "trials", repr(self.trials), "a whole number, at least 1, or None")
        if self.seconds is not None and not (isinstance(self.seconds, (int, float)) and 0 < self.seconds < math.inf):
            raise SpecError(None, "seconds", repr(self.seconds), "a time above 0, or None")
        if self.patience is not None and not (is_int(self.patience) and self.patience >= 1):
            raise SpecError(None, "patience", repr(self.patience), "a whole number, at least 1, or None")
        if not (is_int(self.seeds) and 1 <= self.seeds <= MAX_SEEDS):
            raise SpecError(None, "seeds", repr(self.seeds), f"1 to {MAX_SEEDS} independent searches")
        if not (is_int(self.seed) and 0 <= self.seed and self.seed + self.seeds - 1 <= MAX_SEED):
            raise SpecError(None, "seed", repr(self.seed), f"0 to {MAX_SEED - self.seeds + 1} (seeds from it up to "
                            f"{MAX_SEED}, 2**32 - 1)")

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
    remainder_searches: list[dict[str, Any]] = field(default_factory=list)  # the padded layers searched
    seeds: list[dict[str, Any]] = field(default_factory=list)  # each seed's search (SeedRun.record); [] for one


def decisive_settings(settings: Settings) -> dict[str, Any]:
    """The settings that decide a run's results: all but the storage URL, which only
    says where the studies are kept. One seed is left unsaid, as before there was
    `--seeds`, so that a folder written then still resumes."""
    return {k: v for k, v in to_json(settings).items() if k != "storage" and not (k == "seeds" and v == 1)}


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


def make_search(mapspace: Mapspace, settings: Settings, folder: Path, begin: MappingBatch | None = None) -> Search:
    """`begin`: a mapping an Optuna search goes on from (OptunaSearch); a search
    begun from nothing, the layer's own, polishes with LAYER_POLISH."""
    if settings.exhaustive:
        return ExhaustiveSearch(mapspace, settings.objective)
    return OptunaSearch(mapspace, settings.objective, open_storage(settings.storage, folder), settings.seed,
                        settings.effort, polishing=LAYER_POLISH if begin is None else PolishEffort(), begin=begin)


def search_layer(problem: Problem, arch: Architecture, constraints: Constraints | None, settings: Settings,
                 folder: Path, progress: ProgressCallback | None = None) -> LayerResult:
    """Search one layer, and the padded layers worth it, once per seed (module
    docstring), and write the best of all into `folder`. Raises NoValidMapping with the
    reasons when the constraints, capacities and fan-outs leave nothing, and
    NotFoundInBudget when no seed's search met a mapping that fits."""
    runs: list[SeedRun] = []
    missed: list[NotFoundInBudget] = []
    for seed in seeds_of(settings):
        alone = replace(settings, seed=seed, seeds=1)
        labelled = progress if settings.seeds == 1 or progress is None else _with_seed(progress, seed)
        try:
            runs.append(SeedRun(seed, _searched(problem, arch, constraints, alone, folder, labelled)))
        except NotFoundInBudget as e:  # another seed's search may meet one
            missed.append(e)
    if not runs:
        raise missed[0]
    objective = settings.objective
    best_run = _best_run(runs, objective)
    # A front is every seed's front merged; a single objective's answer, the best seed's.
    found = (select(Scored.concatenate([run.found(objective) for run in runs]), objective)
             if objective == "pareto" else best_run.found(objective))
    evaluated = {m: e for run in runs for s in run.searches for m, e in s.evaluated.items()}
    points = [_rescored(problem, arch, found.batch.mapping(i, problem), evaluated) for i in range(len(found))]
    searches = best_run.searches
    remainders = [s.record() for s in searches if s.padding is not None]
    outcome, sizes = searches[0].outcome, searches[0].mapspace.sizes()  # the layer's, else a padded layer's
    info = {**search_info(replace(settings, seed=best_run.seed), outcome, sizes, folder),
            "remainder_searches": remainders}
    seeds = [run.record(objective) for run in runs] if settings.seeds > 1 else []
    if seeds:
        info["seeds"] = seeds
    write_best(folder, problem, arch, *best_point(points, objective), info)
    if objective == "pareto":
        write_pareto(folder, problem, arch, points, info)
    return LayerResult(problem, arch, folder, outcome, points, sizes, remainders, seeds)


def best_point(points: list[tuple[Mapping, Evaluation]], objective: Objective) -> tuple[Mapping, Evaluation]:
    """The answer among a layer's evaluated points: the best mapping (single
    objectives), or the front's point of least EDP (pareto)."""
    return min(points, key=lambda p: p[1].edp_J_cycles) if objective == "pareto" else points[0]


def _ranking(objective: Objective) -> Objective:
    """What a seed's answers are ranked by: the objective, EDP for a front."""
    return "edp" if objective == "pareto" else objective


def _best_run(runs: list[SeedRun], objective: Objective) -> SeedRun:
    """The seed whose answer is best, as `select` ranks mappings (pareto: by EDP); of
    seeds that found the same mapping, the first."""
    heads = Scored.concatenate([run.best(objective) for run in runs])
    return runs[int(heads.scores.best(_ranking(objective), 1)[0])]


def seeds_of(settings: Settings) -> range:
    """The seeds of a layer's independent searches."""
    return range(settings.seed, settings.seed + settings.seeds)


def objective_figure(objective: Objective) -> str:
    """The figure of a result (best.json, SeedRun.record) that `objective` ranks answers
    by: EDP for pareto (of each answer's point of least EDP)."""
    return {"energy": "energy_pJ", "delay": "cycles"}.get(objective, "edp_J_cycles")


def seed_figure(record: dict[str, Any], objective: Objective) -> float:
    """What the seeds' answers are compared by (SeedRun.record): the objective's figure."""
    return record[objective_figure(objective)]


def seed_spread(records: list[dict[str, Any]], objective: Objective) -> float:
    """How far apart the seeds' answers are (`spread` of their figures)."""
    return spread([seed_figure(r, objective) for r in records])


def spread(figures: list[float]) -> float:
    """How far apart the answers of independent searches are: the worst over the best,
    less one."""
    return max(figures) / min(figures) - 1


def _searched(problem: Problem, arch: Architecture, constraints: Constraints | None, settings: Settings,
              folder: Path, progress: ProgressCallback | None) -> list[Searched]:
    """The searches of one seed: of the layer, then of the padded layers worth it."""
    mapspace = Mapspace(problem, arch, constraints)
    padding = settings.remainders and settings.objective in REMAINDER_OBJECTIVES and not settings.exhaustive
    searches: list[Searched] = []
    search: Search | None = None  # the layer's own
    reasons: list[str] = []  # why the layer has no mapping (mapspace.check)
    missed = None  # why the layer's search found nothing, though the mapspace's checks found no reason
    try:
        mapspace.check()
    except NoValidMapping as perfect_none:
        if not padding:
            raise NoValidMapping(perfect_none.reasons + _with_padding_hint(problem, arch, constraints, settings))
        reasons = perfect_none.reasons
    else:
        search = make_search(mapspace, settings, folder)
        outcome = search.run(settings.budget, progress)
        if outcome.found is not None and len(outcome.found):
            searches.append(Searched(None, mapspace, outcome, outcome.found, {}))
        elif outcome.exhaustive and outcome.details.get("complete"):
            raise NoValidMapping([f"none of the {outcome.scored:,} mappings of the mapspace fits every level's "
                                  "capacity and meets the constraints (an exhaustive search scored every one)"])
        else:
            missed = NotFoundInBudget([not_found_text(outcome)])
    if padding:  # where the layer's search found nothing too: a padded layer may map
        answer = searches[0].found if searches else None
        searches += padded_searches(problem, arch, constraints, settings, folder, answer, progress)
    if searches and searches[0].padding is None and isinstance(search, OptunaSearch):
        shared = search.share(searches[0].outcome)  # after the screen, which ranks by the answer before it
        searches[0] = replace(searches[0], outcome=shared, found=shared.found)
    if searches:
        return searches
    if missed is not None:
        raise missed
    raise NoValidMapping(reasons + [NO_PADDED_LAYER])


@dataclass(frozen=True)
class Searched:
    """One search of `search_layer`: of the layer (`padding` None) or of a padded layer;
    what it found scored as mappings of the layer, and the evaluations of those the
    reference model scored (seconds each on a large array: not done twice)."""

    padding: Padding | None
    mapspace: Mapspace
    outcome: Outcome
    found: Scored
    evaluated: dict[Mapping, Evaluation]

    def record(self) -> dict[str, Any]:
        """What best.json says of a padded layer's search."""
        assert self.padding is not None
        return {"dimension": self.padding.dim, "padded_bound": self.padding.bound, "trials": self.outcome.trials,
                "mappings_scored_this_run": self.outcome.scored, "seconds_this_run": round(self.outcome.seconds, 3),
                "energy_pJ": float(self.found.scores.energy_pJ[0]), "cycles": int(self.found.scores.cycles[0]),
                "mapspace_sizes": self.mapspace.sizes()}


@dataclass(frozen=True)
class SeedRun:
    """The searches of one seed (`_searched`): of the layer and of its padded layers."""

    seed: int
    searches: list[Searched]

    def found(self, objective: Objective) -> Scored:
        """Its answer: the best mapping of all its searches (pareto: their front)."""
        return select(Scored.concatenate([s.found for s in self.searches]), objective)

    def best(self, objective: Objective) -> Scored:
        """Its best mapping (pareto: the point of least EDP on its front)."""
        found = self.found(objective)
        return found.take(found.scores.best(_ranking(objective), 1))

    def record(self, objective: Objective) -> dict[str, Any]:
        """What best.json says of it: how its first search went (the layer's, else its
        first padded layer's), and its best mapping's figures (`best`) with the padded
        layer it came from."""
        best = self.best(objective)
        energy, cycles, key = float(best.scores.energy_pJ[0]), int(best.scores.cycles[0]), best.scores.keys[0]
        source = next(s for s in self.searches if (s.found.scores.keys == key).all(axis=1).any())
        outcome = self.searches[0].outcome
        return {"seed": self.seed, "trials": outcome.trials, "stopped_by": outcome.details.get("stopped_by"),
                "mappings_scored_this_run": sum(s.outcome.scored for s in self.searches),
                "seconds_this_run": round(sum(s.outcome.seconds for s in self.searches), 3),
                "energy_pJ": energy, "cycles": cycles, "edp_J_cycles": energy * 1e-12 * cycles,
                "padded": None if source.padding is None else {"dimension": source.padding.dim,
                                                                "padded_bound": source.padding.bound}}


def padded_searches(problem: Problem, arch: Architecture, constraints: Constraints | None, settings: Settings,
                    folder: Path, answer: Scored | None, progress: ProgressCallback | None) -> list[Searched]:
    """The searches of the padded layers whose busiest unrolling takes at least
    MIN_REMAINDER_GAIN fewer cycles than the layer's `answer`, at most
    `settings.remainder_searches`: the best as `screened` ranks them and those that
    would run fewest cycles, in turn, each search begun from the best mapping its
    screen found (the screen's best with PADDED_BUDGET where another is searched after
    it, the others with the layer's);
    where the layer's search found no mapping, and so nothing to screen with, those that
    would run fewest cycles, each searched as the layer is. Their answers are scored
    exactly as mappings of `problem`."""
    to_beat = int(answer.scores.cycles[0]) if answer is not None else math.inf
    worth = [p for p in paddings(problem, arch, constraints) if p.cycles_at_best < to_beat * (1 - MIN_REMAINDER_GAIN)]
    begins: dict[Padding, MappingBatch | None] = dict.fromkeys(worth)
    screens_best = None
    if answer is not None and worth:
        begins = screened(worth, answer.batch.take(np.arange(1)), settings.objective, settings.effort)
        screens_best = next(iter(begins))
        # Screened also where no more are worth it than are searched: where a search
        # begins decides where it ends (MobileNetV3-Large's bneck4_depthwise from one
        # seed in five: Q as 30 from nothing at 0.3863 J*cycles, from its screen at
        # 0.2327, the other seeds' value).
        # In turn the screen's best and the fewest cycles', each once: the screen tries
        # one mapping, the layer's answer, which depends on the seed (ResNet-50's
        # res2a_branch2a on eyeriss-like: from one seed in five it ranked C as 72 and
        # as 70 first, 15% above P as 57, the fewest cycles' and the others' answer).
        worth = list(dict.fromkeys(itertools.chain.from_iterable(zip(begins, worth))))
    searched = worth[:settings.remainder_searches]
    searches = []
    for padding in searched:
        mapspace = padding.mapspace
        labelled = None if progress is None else _labelled(progress, f"{padding.dim} padded to {padding.bound}")
        begin = begins[padding]
        one_trial = padding is screens_best and begin is not None and len(searched) > 1
        budget = PADDED_BUDGET if one_trial else settings.budget
        outcome = make_search(mapspace, settings, folder, begin).run(budget, labelled)
        if outcome.found is None or not len(outcome.found):
            continue
        batch = outcome.found.batch
        mappings = [batch.mapping(i, problem) for i in range(len(batch))]
        evaluations = [evaluate_mapping(problem, arch, m) for m in mappings]
        exact = Scored(batch, Scores(np.array([e.energy_pJ for e in evaluations], dtype=float),
                                     np.array([e.cycles for e in evaluations], dtype=np.int64), mapping_keys(batch)))
        searches.append(Searched(padding, mapspace, outcome, exact, dict(zip(mappings, evaluations))))
    return searches


def screened(worth: list[Padding], answer: MappingBatch, objective: Objective,
             effort: Effort) -> dict[Padding, MappingBatch | None]:
    """`worth` ranked by how well each padded layer maps the layer's `answer` (one
    mapping): its keep table and loop orders under each of the padded layer's
    SCREENED_UNROLLINGS busiest unrollings, tiled anew with a local move's effort; ties
    (and padded layers where nothing fits) in `worth`'s order, fewest cycles first.
    Each maps to the best mapping the screen found there (None: nothing fits), for its
    search to begin from: a padded layer's search alone ended 54% above what the
    screen led to from one seed in five (ResNet-50's res4a_branch1, C as 516).
    Cycles alone rank the best padded layer poorly: on ResNet-50 on eyeriss-like,
    searching every padded layer worth it betters 11 of the 16 shapes that have them by
    7-24% each, and the best comes fourth or fifth by cycles on 9 of them
    (res3a_branch1: P as 30, 655,360 cycles at best against M as 513's 612,864, 122.4
    J*cycles against 160.8); the padded layer's energy, which the screen tries, decides
    (docs/search-measurements.md, "What remainders gain, and cost")."""
    quick = replace(effort, samples=effort.moved_samples, children=effort.moved_children)
    found = [_screen(padding.mapspace, answer, objective, quick) for padding in worth]
    values = [float(f.scores.value(objective)[0]) if len(f) else math.inf for f in found]
    ranked = sorted(range(len(worth)), key=values.__getitem__)  # stable
    return {worth[i]: found[i].batch if len(found[i]) else None for i in ranked}


def _screen(mapspace: Mapspace, answer: MappingBatch, objective: Objective, effort: Effort) -> Scored:
    """The best mapping (none: nothing fits) of `answer`'s keep table and loop orders
    under the busiest unrollings of `mapspace`, each tiled from a random stream of its
    own (deterministic: a resumed search screens alike)."""
    parts = []
    for k, unrolling in enumerate(zip(*mapspace.busiest_unrollings(SCREENED_UNROLLINGS))):
        structure = mapspace.structure(answer.order[0], list(zip(*unrolling)), answer.keep[0])
        parts.append(best_tilings(mapspace, structure, objective, effort, np.random.default_rng(k))[0])
    return select(Scored.concatenate(parts), objective) if parts else Scored.empty(mapspace)


def _with_padding_hint(problem: Problem, arch: Architecture, constraints: Constraints | None,
                       settings: Settings) -> list[str]:
    """Where the search took no remainders but a padded layer has a mapping: say how to
    let it."""
    if settings.remainders or settings.exhaustive or not paddings(problem, arch, constraints):
        return []
    choices = " or ".join(REMAINDER_OBJECTIVES)
    objective = "" if settings.objective in REMAINDER_OBJECTIVES else f" with --objective {choices}"
    return [f"a mapping with a remainder may fit: search without --no-remainders{objective} (in an experiment, "
            "search.remainders: true)"]


def _labelled(progress: ProgressCallback, remainder: str) -> ProgressCallback:
    return lambda p: progress(replace(p, remainder=remainder))


def _with_seed(progress: ProgressCallback, seed: int) -> ProgressCallback:
    return lambda p: progress(replace(p, seed=seed))


def not_found_text(outcome: Outcome) -> str:
    """Why a search that found nothing may still find something, and what to change."""
    if outcome.exhaustive:
        return (f"the exhaustive search was stopped by --time after {outcome.scored:,} mappings, none of which "
                "fits; give it more --time")
    return (f"none of the {outcome.scored:,} mappings scored in this run ({outcome.trials} trials in the study) "
            "fits every level's capacity and meets the constraints, though the mapspace's checks found no reason "
            "that none does; give the search more --trials or --time, or loosen the constraints")


def _rescored(problem: Problem, arch: Architecture, mapping: Mapping,
              evaluated: dict[Mapping, Evaluation]) -> tuple[Mapping, Evaluation]:
    """The stats a user gets, with the fit confirmed by the scalar check of the
    mapping (violations), apart from the search's batch arrays; `evaluated`: those
    already evaluated."""
    problems = violations(problem, arch, mapping)
    if problems:
        raise RuntimeError("the vectorized model accepted a mapping that does not fit: " + "; ".join(problems))
    return mapping, evaluated.get(mapping) or evaluate_mapping(problem, arch, mapping)


def search_info(settings: Settings, outcome: Outcome, sizes: dict[str, int], folder: Path) -> dict[str, Any]:
    """How the answer was found, for best.json and pareto.json."""
    storage = None if settings.exhaustive else study_location(settings.storage, folder)
    return {"objective": settings.objective, "mode": "exhaustive" if outcome.exhaustive else "optuna",
            "seed": settings.seed, "trials": outcome.trials, "mappings_scored_this_run": outcome.scored,
            "seconds_this_run": round(outcome.seconds, 3), "storage": storage, "mapspace_sizes": sizes,
            **outcome.details}


def study_location(storage: str | None, folder: Path) -> str:
    """Where a search's studies are kept, as messages and best.json show it: the
    storage URL without its password, else the journal in the output folder."""
    return mask_password(storage) if storage else str(folder / JOURNAL_NAME)
