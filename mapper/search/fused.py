"""Which fused groups (mapper/fusion.py) a network runs fused, once each group's tiles
are searched (as layers of their own, mapper/network.py) and counted (model/fused.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .objectives import Objective


@dataclass(frozen=True)
class Option:
    """A fused group the network may take: its layers are the network's [first, stop)."""

    first: int
    stop: int
    energy_pJ: float
    cycles: int


def choose_groups(unfused: Sequence[tuple[float, int]], options: Sequence[Option], objective: Objective) -> list[int]:
    """Which of `options` (indices, none overlapping) the network runs fused, each other
    layer alone at its (energy pJ, cycles) in `unfused`, for the least network energy,
    cycles, or energy x cycles (the layers run one after another: energies and cycles
    add up). Energy x cycles is not a sum over the layers, so the choices are carried
    along the layers as the front of those no other beats in both energy and cycles
    (dynamic programming over the prefixes), and the best of the last front taken: the
    answer is exact for every objective."""
    if objective == "pareto":
        raise ValueError("fused groups are chosen for one objective: edp, energy or delay")
    # fronts[j]: (energy, cycles, chosen) of the first j layers, none beaten in both
    fronts: list[list[tuple[float, int, tuple[int, ...]]]] = [[(0.0, 0, ())]]
    for stop in range(1, len(unfused) + 1):
        energy, cycles = unfused[stop - 1]
        reached = [(e + energy, c + cycles, chosen) for e, c, chosen in fronts[stop - 1]]
        for k, o in enumerate(options):
            if o.stop == stop:
                reached += [(e + o.energy_pJ, c + o.cycles, chosen + (k,)) for e, c, chosen in fronts[o.first]]
        fronts.append(_front(reached))
    score = {"energy": lambda e, c: (e, c), "delay": lambda e, c: (c, e), "edp": lambda e, c: (e * c,)}[objective]
    return list(min(fronts[-1], key=lambda point: score(point[0], point[1]))[2])


def _front(points: list[tuple[float, int, tuple[int, ...]]]) -> list[tuple[float, int, tuple[int, ...]]]:
    """The points no other beats in both energy and cycles (of equals, the first)."""
    front: list[tuple[float, int, tuple[int, ...]]] = []
    for point in sorted(points, key=lambda p: (p[0], p[1])):
        if not front or point[1] < front[-1][1]:
            front.append(point)
    return front
