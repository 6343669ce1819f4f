"""An independent brute-force simulator of Timeloop's counting rules.

It does not share code with `mapper.model`: it steps through the loop nest one
iteration at a time (no extrapolation) and keeps, for every storage level, the
resident tile of every tensor as an explicit set of tensor coordinates.

Rules (Timeloop's default model, see ../shared/reference/timeloop/README.md):

- The tile of a tensor at level L, for given indices of the loops above L, is the
  bounding box (per tensor rank, min..max of the rank's affine expression) of the
  iteration points covered by the loops at L and below. It is computed literally,
  by enumerating those iteration points.
- Between consecutive iterations of the loops above L the elements moved in from
  the parent are `new - old` (coordinate sets) if the translation of the box's low
  corner equals the previous translation of that tile, or if that translation is
  unset (first move, or right after a refetch); otherwise the whole new tile is
  refetched and the translation is unset. A tile that stays put has translation 0.
  The very first tile is fetched whole.
- Read-only tensors: fills(L) = moved-in elements of L (0 at the outermost keeping
  level); reads(L) = elements delivered to the next inner level keeping the tensor
  (its fills), or one per MAC when no inner level keeps it.
- Read-write tensor: updates(L) = writes arriving from the next inner keeping level
  (its moved-in elements) or one per MAC; reads(L) = updates(L) - partition_size;
  fills(L) = moved-in elements of L - partition_size (0 at the outermost keeping
  level).
- partition_size = size of the bounding box of every coordinate that ever resides
  at the level (Timeloop's partitions are boxes too: with strides or dilations the
  distinct coordinates can be fewer, which the README documents); for the
  read-write tensor the simulator checks that the two agree, since its reads and
  fills subtract partition_size. utilized_capacity = largest tile.

Scope: temporal loops only (every spatial factor must be 1), bypass supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product


@dataclass
class SimStats:
    partition_size: int
    utilized_capacity: int
    utilized_instances: int
    reads: int
    fills: int
    updates: int


class _TileTracker:
    """One buffer instance's resident tile of one tensor."""

    def __init__(self) -> None:
        self.tile: set | None = None
        self.low: tuple | None = None
        self.translation: tuple | None = None
        self.moved_in = 0
        self.seen: set = set()
        self.max_size = 0

    def step(self, low: tuple, tile: set) -> None:
        if self.tile is None:
            moved = len(tile)
            self.translation = None
        else:
            t = tuple(a - b for a, b in zip(low, self.low))
            if self.translation is None or t == self.translation:
                moved = len(tile - self.tile)
                self.translation = t
            else:
                moved = len(tile)
                self.translation = None
        self.moved_in += moved
        self.tile, self.low = tile, low
        self.seen |= tile
        self.max_size = max(self.max_size, len(tile))


def _tile_of(tensor, dims, points) -> tuple[tuple, set]:
    """Bounding box of the tensor coordinates touched by the iteration points."""
    lows, highs = [], []
    for rank in tensor.ranks:
        values = [sum(c * p[dims.index(d)] for c, d in rank) for p in points]
        lows.append(min(values))
        highs.append(max(values))
    coords = set(product(*(range(lo, hi + 1) for lo, hi in zip(lows, highs))))
    return tuple(lows), coords


def _box_size(coords: set) -> int:
    size = 1
    for axis in zip(*coords):
        size *= max(axis) - min(axis) + 1
    return size


def simulate(problem, arch, mapping) -> list[dict[str, SimStats]]:
    """Counts per level (outermost first), per kept tensor, per instance."""
    n = len(arch.levels)
    dims = list(problem.dims)
    for lm in mapping.levels:
        if any(l.factor > 1 for l in lm.spatial):
            raise NotImplementedError("spatial fan-outs are not simulated")
    # Loops outermost first: (level, dim, factor), factor-1 loops are no-ops.
    loops = [(i, l.dim, l.factor) for i, lm in enumerate(mapping.levels)
             for l in lm.temporal if l.factor > 1]
    # Weight of each loop's index in its dimension's iteration index: the product
    # of the factors of the loops over the same dim nested inside it.
    weight = []
    for k, (_, d, _) in enumerate(loops):
        w = 1
        for _, d2, f2 in loops[k + 1:]:
            if d2 == d:
                w *= f2
        weight.append(w)
    for d in dims:
        total = 1
        for _, d2, f in loops:
            if d2 == d:
                total *= f
        assert total == problem.bounds[d], f"factors of {d} do not multiply to its bound"

    def point(indices) -> tuple:
        p = [0] * len(dims)
        for (_, d, _), w, i in zip(loops, weight, indices):
            p[dims.index(d)] += i * w
        return tuple(p)

    # first loop (position in `loops`) belonging to level L or an inner level
    first_inside = [next((k for k, lp in enumerate(loops) if lp[0] >= L), len(loops)) for L in range(n)]
    trackers = [{t.name: _TileTracker() for t in problem.tensors} for _ in range(n)]
    macs = 0
    previous_outer: list = [None] * n
    for indices in product(*(range(f) for _, _, f in loops)):
        macs += 1
        for L in range(n):
            split = first_inside[L]
            outer = indices[:split]
            if outer == previous_outer[L]:
                continue  # tile of L only changes with the loops above L
            previous_outer[L] = outer
            inner_ranges = [range(f) for _, _, f in loops[split:]]
            points = [point(outer + inner) for inner in product(*inner_ranges)]
            for t in problem.tensors:
                if t.name in mapping.levels[L].keep:
                    low, tile = _tile_of(t, dims, points)
                    trackers[L][t.name].step(low, tile)
    assert macs == problem.macs

    result: list[dict[str, SimStats]] = [dict() for _ in range(n)]
    for t in problem.tensors:
        keepers = [L for L in range(n) if t.name in mapping.levels[L].keep]
        for pos, L in enumerate(keepers):
            tr = trackers[L][t.name]
            inner = keepers[pos + 1] if pos + 1 < len(keepers) else None
            delivered = macs if inner is None else trackers[inner][t.name].moved_in
            outermost = pos == 0
            partition = _box_size(tr.seen)
            if t.read_write:
                assert partition == len(tr.seen), "read-write partition with holes"
            if t.read_write:
                updates = delivered
                reads = updates - partition
                fills = 0 if outermost else tr.moved_in - partition
            else:
                updates = 0
                reads = delivered
                fills = 0 if outermost else tr.moved_in
            result[L][t.name] = SimStats(partition, tr.max_size, 1, reads, fills, updates)
    return result
