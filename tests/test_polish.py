"""The polish, the search's last step: its moves make mappings of the same layer, it
never ends worse than it starts, and from a poor start it reaches the optimum of the
small spaces that an exhaustive search can score."""

from __future__ import annotations

import numpy as np
import pytest
from test_search import exhaustive_optimum, mapspace

from mapper.model.capacity import violations
from mapper.search.polish import Moves, PolishEffort, polish
from mapper.search.tilings import Scored, score


def start_of(space: str) -> Scored:
    found, _ = score(mapspace(space), mapspace(space).fitting_start())
    return found


@pytest.mark.parametrize("space", ["conv1d", "conv1d-on-a-row", "matmul"])
def test_every_child_splits_each_dimension_exactly_and_only_free_keep_flags_change(space: str) -> None:
    ms = mapspace(space)
    parents = start_of(space).batch
    children = Moves(ms).children(parents, 4096, np.random.default_rng(0))

    assert np.all(np.prod(children.temporal * children.spatial_x * children.spatial_y, axis=1) == ms.bounds)
    assert np.all(np.sort(children.order, axis=2) == np.arange(ms.D))
    allowed = [set(ms.keep_rows(level)) for level in range(ms.L)]
    for keep in children.keep:
        assert all(tuple(bool(v) for v in row) in rows for row, rows in zip(keep, allowed))
    moved = ~np.all(children.temporal == parents.temporal[0], axis=(1, 2))
    assert moved.mean() > 0.5  # most children differ from their parent


@pytest.mark.parametrize("space, objective", [("conv1d", "energy"), ("conv1d-on-a-row", "edp"),
                                              ("conv1d-on-a-row", "delay"), ("matmul", "energy")])
def test_from_the_fitting_start_alone_the_polish_reaches_the_exhaustive_optimum(space: str, objective: str) -> None:
    ms = mapspace(space)
    start = start_of(space)
    found, scored = polish(ms, start, objective, PolishEffort(), np.random.default_rng(1))

    assert scored > 0
    assert found.scores.value(objective)[0] <= start.scores.value(objective)[0]
    assert found.scores.value(objective)[0] == pytest.approx(exhaustive_optimum(space, objective), rel=1e-9)
    for i in range(len(found)):
        assert not violations(ms.problem, ms.arch, found.batch.mapping(i, ms.problem))


def test_the_polish_depends_only_on_its_start_and_random_stream() -> None:
    ms = mapspace("conv1d-on-a-row")
    runs = [polish(ms, start_of("conv1d-on-a-row"), "edp", PolishEffort(), np.random.default_rng(7))
            for _ in range(2)]
    assert runs[0][0].scores.keys.tolist() == runs[1][0].scores.keys.tolist()



def test_the_busiest_unrollings_come_first_and_each_is_one_the_mapspace_offers() -> None:
    ms = mapspace("conv1d-on-a-row")
    sx, sy = ms.busiest_unrollings(100)
    busy = np.prod(sx * sy, axis=(1, 2))
    offered = {(np.array(x).tobytes(), np.array(y).tobytes()) for x, y in ms.spatial_combinations()}

    assert len(sx) == len(offered) and np.all(np.diff(busy) <= 0)
    assert all((x.tobytes(), y.tobytes()) in offered for x, y in zip(sx, sy))
