"""Padded bounds: the mapspaces of mappings with a remainder, one dimension at a time.

Where no perfect factorization of a layer keeps the PE array busy (AlexNet's conv3 on
a 12 x 14 array: C256, M384 and P = Q = 13 fill 12 x 13 PEs at best; a 1x1 layer
with C64 and P56 on the same array, 8 x 14), rounding one dimension's bound up makes
room: C as 266 = 19 x 14 fills the 14 columns, and under the bound of 256 the last
of the 19 column steps leaves 10 columns idle. A mapping whose factors multiply to
the padded bound is a mapping of the real layer with a remainder (mapping.py).

So the search reaches remainders through the padded layers' mapspaces, each perfect
for its padded bound: the sampler, the vectorized model and the polish work on them
unchanged, scoring the padded layer (its padded points counted as work: an
overestimate of the remainder mapping, by about the padding), and what they find is
scored again, exactly, as a mapping of the real layer (search/run.py). A padded
bound is a multiple of a fan-out's width or height, or of a divisor of one (where
several dimensions share the axis), at most MAX_PADDING above the real bound; of
those, `paddings` ranks first the layers whose busiest unrolling leaves the fewest
cycles to run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..architecture import Architecture
from ..constraints import Constraints
from ..problem import Problem
from .space import Mapspace, NoValidMapping

# A dimension is padded by at most an eighth: C64 as 72 (6 steps of 12 over 12 rows) is
# 12.5% more work, which an array left a third idle repays; a bigger padding rarely does.
MAX_PADDING = 1 / 8


@dataclass(frozen=True)
class Padding:
    """The layer with dimension `dim` padded to `bound` (its mapspace), and the cycles
    its busiest spatial unrolling takes at best (the padded layer's MACs over its busy
    PEs)."""

    dim: str
    bound: int
    mapspace: Mapspace
    cycles_at_best: float


def paddings(problem: Problem, arch: Architecture, constraints: Constraints | None) -> list[Padding]:
    """The padded layers of `problem`, fewest cycles at best first (ties in the order
    of the dimensions, then the bounds): every padding of one dimension to a multiple
    of a fan-out axis or of one of its divisors, within MAX_PADDING, whose mapspace has
    a mapping that the constraints allow."""
    axes = {size for fanout in arch.fanouts() for size in fanout if size > 1}
    steps = sorted({k for size in axes for k in range(2, size + 1) if size % k == 0})
    found = []
    for dim in problem.dims:
        bound = problem.bounds[dim]
        padded = sorted({-(-bound // k) * k for k in steps} - {bound})  # exact for any bound
        for new in (n for n in padded if n <= bound * (1 + MAX_PADDING)):
            layer = replace(problem, name=f"{problem.name} [{dim} padded to {new}]",
                            bounds={**problem.bounds, dim: new})
            mapspace = Mapspace(layer, arch, constraints)
            busy = busiest(mapspace)
            if busy:
                found.append(Padding(dim, new, mapspace, layer.macs / busy))
    return sorted(found, key=lambda p: p.cycles_at_best)  # stable: dimension order, then bound


def busiest(mapspace: Mapspace) -> int:
    """The most MACs a spatial unrolling of the mapspace keeps busy (0: it has no
    mapping)."""
    try:
        mapspace.check()
    except NoValidMapping:
        return 0
    sx, sy = mapspace.busiest_unrollings(1)
    return int(np.prod(sx * sy)) if len(sx) else 0
