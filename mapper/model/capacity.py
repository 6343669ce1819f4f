"""Whether a mapping fits the hardware: tiles within each level's capacity and
spatial factors within each fan-out. Reasons are plain sentences for the user."""

from __future__ import annotations

from math import prod

from ..architecture import Architecture
from ..mapping import Mapping
from ..precision import level_widths
from ..problem import Problem


def tile_extents(problem: Problem, mapping: Mapping, level: int) -> dict[str, int]:
    """Iteration-space extent of the tile held at `level`: its loops and all inner ones
    (at most the bound: under a remainder the points past it do not run)."""
    extents = {d: 1 for d in problem.dims}
    for lm in mapping.levels[level:]:
        for loop in lm.temporal + lm.spatial:
            extents[loop.dim] *= loop.factor
    return {d: min(extent, problem.bounds[d]) for d, extent in extents.items()}


def tile_sizes(problem: Problem, mapping: Mapping, level: int) -> dict[str, int]:
    """Words of each kept tensor resident at `level` (one instance)."""
    extents = tile_extents(problem, mapping, level)
    return {t.name: problem.tensor_size(t, extents) for t in problem.tensors if t.name in mapping.levels[level].keep}


def violations(problem: Problem, arch: Architecture, mapping: Mapping) -> list[str]:
    found = []
    index = {t.name: k for k, t in enumerate(problem.tensors)}
    for i, (level, widths) in enumerate(zip(arch.levels, level_widths(problem, arch))):
        lm = mapping.levels[i]
        if widths.usable is not None:
            sizes = {name: words * widths.per_element[index[name]]
                     for name, words in tile_sizes(problem, mapping, i).items()}
            if sum(sizes.values()) > widths.usable:
                parts = " + ".join(f"{n} {s}" for n, s in sizes.items())
                found.append(f"{level.name} holds {widths.usable} {widths.unit}; the tiles need {parts} = "
                             f"{sum(sizes.values())}")
        fan_x, fan_y = arch.fanout(i)
        x = prod(l.factor for l in lm.spatial if l.spatial == "X")
        y = prod(l.factor for l in lm.spatial if l.spatial == "Y")
        for axis, used, width in (("X", x, fan_x), ("Y", y, fan_y)):
            if used > width:
                found.append(f"spatial {axis} factors of the fan-out {arch.fanout_name(i)} multiply to {used}; "
                             f"it has {width} along {axis}")
    return found
