"""An independent brute-force simulator of Timeloop's counting rules.

It shares no code with `mapper.model`: it steps through the temporal loop nest one
iteration at a time (no extrapolation, neither over iterations nor over spatial
instances) and keeps, for every buffer instance and kept tensor, the resident tile
as an explicit set of tensor coordinates.

The nest (outermost first): per storage level, its temporal loops, then the spatial
loops of the fan-out below it. An instance of level L is one combination of the
spatial loops of the levels above L; its tile changes with the temporal loops of the
levels above L. Rules (Timeloop's default model, ../shared/reference/timeloop/README.md):

- Tile: the bounding box (per tensor rank, min..max of the rank's affine expression)
  of the iteration points covered by the loops of L and of every inner level, at the
  current indices of the loops above L (computed by enumerating those points).
- Moved in, per instance and step: `new - old` (coordinate sets) if the translation
  of the box's low corner equals the tile's previous translation, or if that is unset
  (first move, or right after a refetch); otherwise the whole new tile is refetched
  and the translation is unset. A tile that stays put has translation 0. The first
  tile is fetched whole.
- Multicast: at each step, a parent instance reads a datum once for every child
  instance (of the next inner level keeping the tensor) that moves it in at that
  step: the parent's reads are the size of the union of its children's moved-in sets.
  Timeloop only recognises whole identical deltas as multicast; the simulation notes
  every step where two siblings' moved-in sets overlap without being equal
  (`Simulation.partial_overlaps`), where the two rules differ.
- Spatial reduction: for the read-write tensor the same union is the number of
  updates the parent receives (partial sums of one element meet in the network).
- Innermost keeper: each MAC needs one element of each tensor per temporal step; an
  instance reads (or, for the read-write tensor, is updated with) the distinct
  elements its MACs need in that step.
- Counts per instance (every instance of a level counts the same, the simulation
  checks it): read-only tensors: reads(L) = delivered to children, fills(L) = moved
  in (0 at the outermost level); the read-write tensor: updates(L) = received from
  children, reads(L) = updates(L) - partition_size, fills(L) = moved in -
  partition_size (0 at the outermost level).
- partition_size follows Timeloop's definition (README): the outermost level's tile,
  scaled at each fan-out by child tile / tile of the whole fan-out. For the
  read-write tensor, whose reads and fills subtract it, the simulation checks that it
  equals the distinct coordinates that pass through one instance over the run.
- Remainders (imperfect factorization): where the factors of a dimension multiply to
  more than its bound, the iteration points at or past the bound do not run (a loop
  whose outer loops of the same dimension are all at their last iteration stops
  short: Timeloop's residual end). A temporal step without a point is skipped; a
  tile is the bounding box of the points that run; an instance without a point in a
  step is idle (nothing moves, its tile stays). Instances then differ, and every
  count per instance is their average (a fraction); so is the read-write tensor's
  partition_size, which its counts subtract: the average of the distinct coordinates
  that pass through an instance over the run. A read-only tensor's is Timeloop's
  formula above, over the tiles of the points that run.
- Widths: an element of a tensor takes b bits (its word_bits, else the level's); a
  level's port moves block_size x word_bits bits per access and it holds depth x
  block_size x word_bits bits.
- Energy, per level and kept tensor: (ceil(reads x b / port bits) x read energy +
  ceil(fills x b / port bits) x write energy + ceil(updates x b / port bits) x write
  energy) x utilized instances (where instances share accesses in clusters, x the
  clusters in use: the utilized instances, at most instances / cluster_size), plus MACs
  x compute energy; under remainders, where
  the counts are averages over instances (some idle), not rounded up to whole blocks
  (an idle instance moves nothing). Cycles: the temporal
  iterations I, or at a level with bandwidth limits ceil(I / slowdown) with
  slowdown = min(1, read_bandwidth / (reads / I), write_bandwidth / ((fills +
  updates) / I)), per instance, counts in the level's words (an element is
  b / word_bits of them); the maximum over levels. Valid: the kept tiles' bits fit
  each level's bits divided by multiple_buffering, and the spatial factors fit the
  fan-out along X and Y.

Not modelled: link transfers (peer-to-peer forwarding between mesh neighbours);
compare with the model run with `link_transfers=False`. Network energy is not
priced (neither does the model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product
from math import ceil, prod


@dataclass
class SimStats:
    """Per instance, as Timeloop prints them."""

    partition_size: int | Fraction  # an average over the instances where they differ (remainders)
    utilized_capacity: int
    utilized_instances: int
    reads: Fraction
    fills: Fraction
    updates: Fraction


@dataclass
class Simulation:
    levels: list[dict[str, SimStats]]  # outermost first, kept tensors only
    energy_pJ: float
    cycles: int
    valid: bool
    partial_overlaps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Loop:
    level: int
    dim: str
    factor: int
    spatial: str | None  # None (temporal), "X" or "Y"


class _TileTracker:
    """One buffer instance's resident tile of one tensor."""

    def __init__(self) -> None:
        self.tile: frozenset | None = None
        self.low: tuple | None = None
        self.translation: tuple | None = None
        self.moved_in = 0
        self.seen: set = set()
        self.max_size = 0

    def step(self, low: tuple, tile: frozenset) -> frozenset:
        """Make `tile` resident; return what moved in from the parent."""
        if self.tile is None:
            moved = tile
        else:
            t = tuple(a - b for a, b in zip(low, self.low))
            if self.translation is None or t == self.translation:
                moved = tile - self.tile
                self.translation = t
            else:
                moved = tile
                self.translation = None
        self.moved_in += len(moved)
        self.tile, self.low = tile, low
        self.seen |= tile
        self.max_size = max(self.max_size, len(tile))
        return moved


def _nest(mapping) -> list[_Loop]:
    """Every loop with a factor above 1, outermost first."""
    loops = []
    for i, lm in enumerate(mapping.levels):
        loops += [_Loop(i, l.dim, l.factor, None) for l in lm.temporal if l.factor > 1]
        loops += [_Loop(i, l.dim, l.factor, l.spatial or "X") for l in lm.spatial if l.factor > 1]
    return loops


def _box(tensor, dims: list[str], points: list[tuple]) -> tuple[tuple, frozenset]:
    """Low corner and coordinates of the bounding box the iteration points touch."""
    lows, highs = [], []
    for rank in tensor.ranks:
        values = [sum(c * p[dims.index(d)] for c, d in rank) for p in points]
        lows.append(min(values))
        highs.append(max(values))
    return tuple(lows), frozenset(product(*(range(lo, hi + 1) for lo, hi in zip(lows, highs))))


def _coordinate(tensor, dims: list[str], p: tuple) -> tuple:
    return tuple(sum(c * p[dims.index(d)] for c, d in rank) for rank in tensor.ranks)


class _Nest:
    """Iteration points of the loop nest, addressed by loop indices. Where the factors
    of a dimension multiply to more than its bound, the points at or past the bound
    are not part of the run (`in_bounds`)."""

    def __init__(self, problem, mapping) -> None:
        self.dims = list(problem.dims)
        self.bounds = tuple(problem.bounds[d] for d in self.dims)
        self.loops = _nest(mapping)
        # An index of loop k counts `weight[k]` along its dimension: the product of
        # the factors of the same dimension's loops nested inside it.
        self.weight = [prod(l2.factor for l2 in self.loops[k + 1:] if l2.dim == l.dim)
                       for k, l in enumerate(self.loops)]
        self.perfect = True
        for d in self.dims:
            total = prod(l.factor for l in self.loops if l.dim == d)
            assert total >= problem.bounds[d], f"factors of {d} multiply to {total}, below {problem.bounds[d]}"
            self.perfect &= total == problem.bounds[d]

    def point(self, indices: dict[int, int]) -> tuple:
        p = [0] * len(self.dims)
        for k, i in indices.items():
            p[self.dims.index(self.loops[k].dim)] += i * self.weight[k]
        return tuple(p)

    def in_bounds(self, p: tuple) -> bool:
        return all(c < b for c, b in zip(p, self.bounds))

    def positions(self, keep) -> list[int]:
        """Positions in the nest of the loops for which `keep(loop)` holds."""
        return [k for k, l in enumerate(self.loops) if keep(l)]

    def combinations(self, positions: list[int]) -> list[dict[int, int]]:
        return [dict(zip(positions, idx)) for idx in product(*(range(self.loops[k].factor) for k in positions))]


def simulate(problem, arch, mapping) -> Simulation:
    """Counts per level (outermost first), per kept tensor, per instance; energy,
    cycles and validity."""
    n = len(arch.levels)
    nest = _Nest(problem, mapping)
    dims = nest.dims
    temporal = nest.positions(lambda l: l.spatial is None)
    # Per level L: the temporal loops above it (its tile changes with them), the
    # spatial loops above it (they tell its instances apart), and every loop of L
    # and below (they span its tile).
    above_t = [nest.positions(lambda l, L=L: l.spatial is None and l.level < L) for L in range(n)]
    above_s = [nest.positions(lambda l, L=L: l.spatial is not None and l.level < L) for L in range(n)]
    inside = [nest.positions(lambda l, L=L: l.level >= L) for L in range(n)]
    instances = [nest.combinations(above_s[L]) for L in range(n)]
    keepers = {t.name: [L for L in range(n) if t.name in mapping.levels[L].keep] for t in problem.tensors}
    # Levels that bypass a tensor get a tile too: Timeloop finds multicast at each
    # fan-out from those tiles, so the simulation checks them for partial overlaps.
    trackers = {(L, t.name, i): _TileTracker() for t in problem.tensors for L in range(n)
                for i in range(len(instances[L]))}
    delivered = {(L, t.name): 0 for t in problem.tensors for L in keepers[t.name]}
    partial_overlaps: list[str] = []
    inner_combinations = [nest.combinations(inside[L]) for L in range(n)]
    macs_below = [nest.combinations(nest.positions(lambda l, L=L: l.spatial is not None and l.level >= L))
                  for L in range(n)]
    previous: list[tuple | None] = [None] * n
    iterations = 0
    macs = 0
    every_spatial = nest.combinations(nest.positions(lambda l: l.spatial is not None))
    for step in nest.combinations(temporal):
        if not nest.in_bounds(nest.point(step)):
            continue  # every point of the step is past a bound: the loops stop short of it
        iterations += 1
        moved: dict[tuple, frozenset] = {}
        for L in range(n):
            outer = tuple(step[k] for k in above_t[L])
            if outer == previous[L]:
                continue  # the tiles of L only change with the loops above L
            previous[L] = outer
            for i, inst in enumerate(instances[L]):
                base = {k: step[k] for k in above_t[L]} | inst
                points = [p for p in (nest.point(base | inner) for inner in inner_combinations[L])
                          if nest.in_bounds(p)]
                for t in problem.tensors:
                    if points:
                        low, tile = _box(t, dims, points)
                        moved[(L, t.name, i)] = trackers[(L, t.name, i)].step(low, tile)
                    else:  # idle in this step (all of its points past a bound): its tile stays
                        moved[(L, t.name, i)] = frozenset()
            if L:
                partial_overlaps += _partial_overlaps(problem, arch, moved, instances, L, step)
        # Each keeper delivers to the next inner keeper what moved in there, one read
        # (or one update received) per datum and step, whatever the number of children.
        for t in problem.tensors:
            for parent, child in zip(keepers[t.name], keepers[t.name][1:]):
                if not any(key[:2] == (child, t.name) for key in moved):
                    continue
                for pi, pinst in enumerate(instances[parent]):
                    sets = [moved[(child, t.name, ci)] for ci, cinst in enumerate(instances[child])
                            if all(cinst[k] == v for k, v in pinst.items())]
                    delivered[(parent, t.name)] += len(frozenset().union(*sets))
        # The MACs under each instance of the innermost keeper, in this step.
        for t in problem.tensors:
            K = keepers[t.name][-1]
            for inst in instances[K]:
                points = (nest.point(step | inst | mac) for mac in macs_below[K])
                needed = {_coordinate(t, dims, p) for p in points if nest.in_bounds(p)}
                delivered[(K, t.name)] += len(needed)
        macs += sum(nest.in_bounds(nest.point(step | s)) for s in every_spatial)
    assert macs == problem.macs

    levels: list[dict[str, SimStats]] = [dict() for _ in range(n)]
    for t in problem.tensors:
        partitions = _partitions(t, nest, n)
        for pos, L in enumerate(keepers[t.name]):
            count = len(instances[L])
            per_instance = [trackers[(L, t.name, i)] for i in range(count)]
            if nest.perfect:
                moved_in = _same_for_every_instance([tr.moved_in for tr in per_instance], t.name, L)
                partition = partitions[L]
                if t.read_write:
                    distinct = _same_for_every_instance([len(tr.seen) for tr in per_instance], t.name, L)
                    assert partition == distinct, (f"{t.name} at level {L}: Timeloop's partition {partition}, "
                                                   f"{distinct} distinct elements per instance")
            else:  # instances differ: their average
                moved_in = Fraction(sum(tr.moved_in for tr in per_instance), count)
                partition = Fraction(sum(len(tr.seen) for tr in per_instance), count) if t.read_write \
                    else partitions[L]
            received = Fraction(delivered[(L, t.name)], count)
            outermost = pos == 0
            if t.read_write:
                updates, reads = received, received - partition
                fills = Fraction(0) if outermost else moved_in - partition
            else:
                updates, reads = Fraction(0), received
                fills = Fraction(0) if outermost else Fraction(moved_in)
            capacity = max(tr.max_size for tr in per_instance)
            levels[L][t.name] = SimStats(partition, capacity, count, reads, fills, updates)
    return Simulation(levels, _energy(arch, problem, levels, not nest.perfect),
                      _cycles(arch, problem, levels, iterations), _valid(arch, problem, mapping, levels),
                      partial_overlaps)


def _partial_overlaps(problem, arch, moved: dict, instances: list, L: int, step: dict) -> list[str]:
    """Where sibling instances of level L (children of one instance of L - 1) moved in
    sets that overlap without being equal."""
    found = []
    for t in problem.tensors:
        for pinst in instances[L - 1]:
            sets = [moved[(L, t.name, ci)] for ci, cinst in enumerate(instances[L])
                    if all(cinst[k] == v for k, v in pinst.items())]
            if any(a != b and a & b for a in sets for b in sets):
                found.append(f"{t.name} into {arch.levels[L].name} at step {step}")
    return found


def _same_for_every_instance(values: list[int], tensor: str, level: int) -> int:
    assert len(set(values)) == 1, f"{tensor} at level {level}: instances differ: {values}"
    return values[0]


def _partitions(tensor, nest: _Nest, n: int) -> list[int]:
    """Timeloop's partition_size at every level: the outermost tile, scaled at each
    fan-out by (child tile) / (tile of the whole fan-out)."""
    dims = nest.dims

    def size(positions: list[int]) -> int:
        points = [p for p in (nest.point(c) for c in nest.combinations(positions)) if nest.in_bounds(p)]
        return len(_box(tensor, dims, points)[1])

    partition = size(nest.positions(lambda l: True))
    partitions = [partition]
    for L in range(1, n):
        child = size(nest.positions(lambda l: l.level >= L))
        fanout = size(nest.positions(lambda l: l.level >= L or (l.level == L - 1 and l.spatial is not None)))
        partition = partition * child // fanout
        partitions.append(partition)
    return partitions


def _bits(problem, level, tensor: str) -> int:
    return problem.tensor(tensor).word_bits or level.word_bits


def _energy(arch, problem, levels: list[dict[str, SimStats]], averaged: bool) -> float:
    """`averaged`: the counts are averages over instances that differ (remainders)."""
    energy = problem.macs * arch.compute.energy
    for level, tensors in zip(arch.levels, levels):
        port = level.block_size * level.word_bits
        for name, s in tensors.items():
            bits = _bits(problem, level, name)
            reads, fills, updates = (_blocks(count, bits, port, averaged) for count in (s.reads, s.fills, s.updates))
            paid = s.utilized_instances if level.cluster_size == 1 else min(
                s.utilized_instances, level.instances // level.cluster_size)
            energy += (reads * level.read_energy + (fills + updates) * level.write_energy) * paid
    return energy


def _blocks(count: Fraction, bits: int, port: int, averaged: bool) -> Fraction | int:
    """Accesses through the port: whole blocks, or unrounded for an average."""
    moved = Fraction(count * bits, port)
    return moved if averaged else ceil(moved)


def _cycles(arch, problem, levels: list[dict[str, SimStats]], iterations: int) -> int:
    """Timeloop's throttling, in doubles as Timeloop computes it (an exact quotient
    can come out a hair above an integer and round up: see
    test_known_disagreement_cycles_round_up_in_doubles)."""
    cycles = iterations
    for level, tensors in zip(arch.levels, levels):
        words = {name: Fraction(_bits(problem, level, name), level.word_bits) for name in tensors}
        reads = float(sum(s.reads * words[name] for name, s in tensors.items()))
        writes = float(sum((s.fills + s.updates) * words[name] for name, s in tensors.items()))
        slowdown = 1.0
        if level.read_bandwidth and reads:
            slowdown = min(slowdown, level.read_bandwidth / (reads / iterations))
        if level.write_bandwidth and writes:
            slowdown = min(slowdown, level.write_bandwidth / (writes / iterations))
        cycles = max(cycles, ceil(iterations / slowdown))
    return cycles


def _valid(arch, problem, mapping, levels: list[dict[str, SimStats]]) -> bool:
    for i, level in enumerate(arch.levels):
        if level.depth is not None:
            held = sum(s.utilized_capacity * _bits(problem, level, name) for name, s in levels[i].items())
            if held > Fraction(level.depth * level.block_size * level.word_bits) / Fraction(level.multiple_buffering):
                return False
        child = arch.levels[i + 1] if i + 1 < len(arch.levels) else arch.compute
        for axis, mesh, child_mesh in (("X", level.mesh_x, child.mesh_x), ("Y", level.mesh_y, child.mesh_y)):
            if prod(l.factor for l in mapping.levels[i].spatial if (l.spatial or "X") == axis) > child_mesh // mesh:
                return False
    return True


# -- fused groups (mapper/fusion.py) -------------------------------------------------

@dataclass
class FusedSimulation:
    tiles: list[list[tuple[int, Simulation]]]  # per layer, per tile: (output rows, its simulation)
    energy_pJ: float
    cycles: int
    macs: int


def simulate_fused(layers, paddings: list[int], level: int, rows: int, arch, mappings) -> FusedSimulation:
    """A fused group run tile by tile: the last layer's output rows (a convolution's P,
    a matrix product's M) in tiles of `rows`; for each tile, walking back from the last
    layer, the rows of each producer's output that the consumer's tile reads (found by
    enumerating the input coordinates its window touches, `paddings[i]` being layer i's
    padding along the rows), each layer's tile simulated as a run of its own
    (`simulate`, with the mapping of its tallest tile, a shorter one stopping short).
    Checks what fusion promises: every row a consumer reads (but for its padding) was
    computed in the same tile, and each intermediate is held whole in `level` and
    nowhere above it."""
    dim = [("P" if "P" in p.bounds else "M") for p in layers]
    last = layers[-1].bounds[dim[-1]]
    per_layer: list[list[tuple[int, Simulation]]] = [[] for _ in layers]
    for first in range(0, last, rows):
        wanted = set(range(first, min(first + rows, last)))
        needs = [wanted]
        for k in reversed(range(1, len(layers))):
            producer, consumer = layers[k - 1], layers[k]
            rank = next(r for t in consumer.tensors if not t.read_write for r in t.ranks
                        if any(d == dim[k] for _, d in r))
            kernel = next((d for _, d in rank if d != dim[k]), None)
            read = {sum(c * (p if d == dim[k] else r) for c, d in rank) - paddings[k]
                    for p in needs[0] for r in range(consumer.bounds[kernel] if kernel else 1)}
            needs.insert(0, {h for h in read if 0 <= h < producer.bounds[dim[k - 1]]})
        for i, (problem, need) in enumerate(zip(layers, needs)):
            if not need:
                continue
            assert need == set(range(min(need), max(need) + 1)), f"{problem.name}: rows {sorted(need)} not contiguous"
            tile = type(problem)(problem.name, problem.dims, {**problem.bounds, dim[i]: len(need)}, problem.tensors)
            sim = simulate(tile, arch, mappings[i])
            for name in _intermediates(layers, i):
                assert all(name not in sim.levels[L] for L in range(level)), f"{name} of {problem.name} above"
                held = sim.levels[level][name]
                whole = prod(len(range(min(values), max(values) + 1)) for values in
                             _rank_values(tile, tile.tensor(name)))
                assert held.utilized_capacity == whole and held.fills == 0, (name, held, whole)
            per_layer[i].append((len(need), sim))
    tiles = [sim for layer in per_layer for _, sim in layer]
    macs = sum(prod({**p.bounds, d: n}.values()) for p, d, layer in zip(layers, dim, per_layer) for n, _ in layer)
    return FusedSimulation(per_layer, sum(s.energy_pJ for s in tiles), sum(s.cycles for s in tiles), macs)


def _intermediates(layers, i: int) -> list[str]:
    return (["Inputs"] if i > 0 else []) + (["Outputs"] if i < len(layers) - 1 else [])


def _rank_values(problem, tensor) -> list[set[int]]:
    """Per rank of `tensor`, the coordinates the whole of `problem` touches."""
    dims = list(problem.dims)
    points = list(product(*(range(problem.bounds[d]) for d in dims)))
    return [{sum(c * p[dims.index(d)] for c, d in rank) for p in points} for rank in tensor.ranks]
