"""The structural choices of a mapspace as the parameters of an Optuna trial.

Per level with more than one loop order, `order/<level>` picks one of
`Mapspace.permutation_choices` by index; per fan-out with more than one spatial
unrolling, `spatial/<level>` one of `spatial_choices`; per level and tensor whose keep
flag the keep tables leave free, `keep/<level>/<tensor>` a flag. A keep table is a
set of independent flags for the sampler to learn (a PE that keeps Weights is good or
bad whatever the other levels do) rather than one category among thousands. Flags
that make a table the mapspace excludes give no structure, and spatial unrollings
that do not combine (together over a fan-out's budget of a dimension) no tiling: the
trial scores nothing and tells the sampler so. `neighbours` lists the structures one step
away, for the search's local moves; `params_of` gives a mapping's structure as
parameters, for the search's first trial.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from math import prod
from typing import Any

import numpy as np
from optuna.trial import Trial

from ..mapspace import Mapspace, Structure
from ..model.batch import MappingBatch


class StructureSpace:
    def __init__(self, mapspace: Mapspace) -> None:
        self.mapspace = mapspace
        names = [lv.name for lv in mapspace.arch.levels]
        self.orders = [(f"order/{names[l]}", mapspace.permutation_choices(l)) for l in range(mapspace.L)]
        self.spatial = [(f"spatial/{names[l]}", mapspace.spatial_choices(l)) for l in range(mapspace.L)]
        # A keep table is one allowed row per level (Mapspace.keep_choices), so tables
        # are checked row by row, never listed: 30 levels would make 8**30 of them.
        rows = [mapspace.keep_rows(l) for l in range(mapspace.L)]
        self.rows = [set(level_rows) for level_rows in rows]
        first = tuple(level_rows[0] for level_rows in rows) if all(rows) else None
        self.free_flags = [] if first is None else [
            (f"keep/{names[l]}/{mapspace.problem.tensors[t].name}", l, t) for l, t in mapspace.free_keep_flags()]
        self.first = first

    def neighbours(self, params: dict[str, Any], temporal: np.ndarray) -> Iterator[dict[str, Any]]:
        """The structures one step away from `params` (a trial's parameters), in a fixed
        order that takes one move of each kind in turn, so that no kind waits behind
        another's long list: keep moves (a free keep flag flipped; a tensor kept at
        another level instead, or a level keeping another tensor instead); per level,
        one loop moved to another place in the order (where the result is among the
        level's choices); per fan-out, an unrolling that differs in one or two factors.
        `temporal` (levels x dimensions) are the temporal factors of the best mapping
        found with `params`. A loop order matters only for the loops that iterate, so
        the moves that leave their order in that mapping as it is come after all the
        others, and of several moves that make the same order of them only the first
        comes before: on Eyeriss-like designs, where a level has up to 720 orders and
        iterates over two or three dimensions, they are most of the order moves, and
        the best tilings the move starts from would map alike under them."""
        kinds, later = [self._keep_moves(params)], []
        for level, (name, choices) in enumerate(self.orders):
            if len(choices) > 1:
                changed, unchanged = _by_effect(choices, params[name], temporal[level])
                kinds.append(_with(params, name, changed))
                later.append(_with(params, name, unchanged))
        kinds += [_with(params, name, _changed_unrolling(choices, params[name]))
                  for name, choices in self.spatial if len(choices) > 1]
        yield from _in_turn(kinds)
        yield from _in_turn(later)

    def _keep_moves(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for name, _, _ in self.free_flags:
            yield {**params, name: not params[name]}
        for (name, l, t), (other, m, u) in itertools.combinations(self.free_flags, 2):
            if (t == u or l == m) and params[name] != params[other]:
                yield {**params, name: params[other], other: params[name]}

    def params_of(self, mapping: MappingBatch) -> dict[str, Any]:
        """The parameters of the structure of `mapping`'s first row (one of the
        mapspace's choices at every level), to enqueue it as a trial."""
        params: dict[str, Any] = {}
        for l, (name, choices) in enumerate(self.orders):
            if len(choices) > 1:
                params[name] = choices.index(tuple(int(d) for d in mapping.order[0, l]))
        for l, (name, choices) in enumerate(self.spatial):
            if len(choices) > 1:
                params[name] = choices.index((tuple(int(v) for v in mapping.spatial_x[0, l]),
                                              tuple(int(v) for v in mapping.spatial_y[0, l])))
        for name, l, t in self.free_flags:
            params[name] = bool(mapping.keep[0, l, t])
        return params

    def names(self, mapping: MappingBatch) -> bool:
        """Whether `params_of` can name `mapping`'s structure: a loop order or an
        unrolling that the space's pruned choices leave out has no index."""
        try:
            self.params_of(mapping)
        except ValueError:
            return False
        return True

    def suggest(self, trial: Trial) -> Structure | None:
        """The trial's structure, or None when its choices do not combine (module docstring)."""
        orders = [choices[_pick(trial, name, len(choices))] for name, choices in self.orders]
        spatial = [choices[_pick(trial, name, len(choices))] for name, choices in self.spatial]
        if self.first is None:
            return None
        table = [list(row) for row in self.first]
        for name, l, t in self.free_flags:
            table[l][t] = trial.suggest_categorical(name, (False, True))
        keep = tuple(tuple(row) for row in table)
        if not all(row in allowed for row, allowed in zip(keep, self.rows)):
            return None
        return self.mapspace.structure(orders, spatial, keep)


def _pick(trial: Trial, name: str, n: int) -> int:
    """Index of one of n choices; a lone choice is no parameter."""
    return trial.suggest_categorical(name, tuple(range(n))) if n > 1 else 0


def _with(params: dict[str, Any], name: str, values: list[int]) -> Iterator[dict[str, Any]]:
    return ({**params, name: value} for value in values)


def _moved_loop(choices: list[tuple[int, ...]], current: int) -> list[int]:
    """Indices of the orders that move one loop of order `current` elsewhere."""
    index = {order: i for i, order in enumerate(choices)}
    order = list(choices[current])
    found = []
    for source in range(len(order)):
        rest = order[:source] + order[source + 1:]
        for target in range(len(order)):
            if target != source:
                moved = tuple(rest[:target] + [order[source]] + rest[target:])
                if moved in index and index[moved] not in found and index[moved] != current:
                    found.append(index[moved])
    return found


def _in_turn(kinds: list[Iterator[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """One of each kind in turn, until all are used up."""
    for moves in itertools.zip_longest(*kinds):
        yield from (move for move in moves if move is not None)


def _by_effect(choices: list[tuple[int, ...]], current: int, factors: np.ndarray) -> tuple[list[int], list[int]]:
    """The loop moves of order `current` (`_moved_loop`) split in two: those that change
    the order of the loops with a factor above 1 (one move per new order of them), and
    the rest."""
    def iterating(order: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(d for d in order if factors[d] > 1)

    seen, changed, unchanged = {iterating(choices[current])}, [], []
    for index in _moved_loop(choices, current):
        effect = iterating(choices[index])
        (unchanged if effect in seen else changed).append(index)
        seen.add(effect)
    return changed, unchanged


def _changed_unrolling(choices: list[tuple[tuple[int, ...], tuple[int, ...]]], current: int) -> list[int]:
    """Indices of the spatial unrollings that differ from `current` in one or two
    factors, those that keep more of the fan-out busy first."""
    here = choices[current][0] + choices[current][1]
    found = [i for i, (x, y) in enumerate(choices) if 0 < sum(a != b for a, b in zip(here, x + y)) <= 2]
    return sorted(found, key=lambda i: (-prod(choices[i][0]) * prod(choices[i][1]), i))
