"""Timeloop's accounting on top of the nest analysis: per storage level and tensor,
partition sizes, reads, fills and updates; then energy, cycles and utilization.

The scalar path: slow and literal, the oracle of the vectorized model, which
reports (vectorized.evaluate_mapping) through this module's `assemble`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from fractions import Fraction
from math import ceil, prod

from ..architecture import Architecture
from ..mapping import Mapping
from ..precision import level_widths
from ..problem import Problem, Tensor
from .nest import NestAnalysis
from .stats import Evaluation, LevelStats, TensorStats


@dataclass
class Tile:
    """One storage level's view of one tensor (Timeloop's DataMovementInfo)."""

    size: int
    accesses: dict[int, float]  # multicast factor -> accesses per instance
    link_transfers: float
    replication: int
    fanout: int
    master: bool
    # Sums of floats, or of Fractions under remainders: an int 0 keeps either as it is.
    partition: int = 0
    content: float = 0
    parent_share: float = 0
    peer_accesses: float = 0
    peer_fills: float = 0
    pfd: int = 0
    reads: int = 0
    fills: int = 0
    updates: int = 0

    def weighted_accesses(self) -> float:
        return sum(a * m for m, a in self.accesses.items())


@dataclass
class LoopTile:
    size: int
    accesses: dict[int, float]
    link_transfers: float
    replication: int
    fanout: int
    master: bool
    boundary: bool
    storage_level: int


def condense(na: NestAnalysis, k: int) -> list[LoopTile]:
    """Per loop (innermost first, spatial masters and temporal loops only), the
    average over the simulated instances of what they saw. With remainders the
    instances differ: what they saw summed over all of them (a walked instance
    counting for the others of its class, nest.fill_by_class), divided by all of them
    (idle ones count 0), and the largest tile any of them held."""
    tiles = []
    for lvl, loop in enumerate(na.nest):
        if loop.spatial and not loop.master:
            continue
        states = list(na.live[lvl].values())
        accesses: dict[int, float] = {}
        for st in states:
            for m, a in st.accesses[k].items():
                accesses[m] = accesses.get(m, 0.0) + a
        links = sum(st.link_transfers[k] for st in states)
        if na.imperfect:
            n = na.num_spatial_elems[lvl]
            accesses = {m: Fraction(a) / n for m, a in accesses.items() if a}
            size = max(st.max_size[k] for st in states)
            links = Fraction(links) / n
        else:
            n = len(states)
            accesses = {m: a / n for m, a in accesses.items() if a}
            size = sum(st.max_size[k] for st in states) // n
            links = links / n
        tiles.append(LoopTile(size, accesses, links, na.num_spatial_elems[lvl], na.fanout[lvl],
                              loop.master, loop.boundary, loop.storage_level))
    return tiles


def collapse(loop_tiles: list[LoopTile]) -> list[Tile]:
    """One tile per storage level, innermost first."""
    levels: list[Tile] = []
    group: list[LoopTile] = []
    for lt in loop_tiles:
        group.append(lt)
        if not lt.boundary:
            continue
        inner, outer = group[0], group[-1]
        if levels:
            levels[-1].pfd = inner.size if inner.master else levels[-1].size
        levels.append(Tile(outer.size, dict(inner.accesses), inner.link_transfers,
                           outer.replication, inner.fanout, inner.master))
        group = []
    return levels


def account(tiles: list[Tile], kept: list[bool], read_write: bool,
            partitions: list[Fraction] | None = None, served: dict[int, dict] | None = None) -> None:
    """Timeloop's CollapseTiles passes, innermost first; `kept` is innermost first too.
    Under remainders, `partitions`: a read-write tensor's (`average_partitions`), and
    `served`: what a keeper above bypassing levels delivers (`served_through_bypass`)."""
    n = len(tiles)
    partition = tiles[-1].size
    tiles[-1].partition = partition
    for cur in range(n - 2, -1, -1):
        if tiles[cur].pfd:
            partition = partition * tiles[cur].size // tiles[cur].pfd
        tiles[cur].partition = partition
    for t, partition in zip(tiles, partitions or ()):
        t.partition = partition
    for t in tiles:
        t.content = sum(t.accesses.values())
    for cur in range(n - 1):
        outer = tiles[cur + 1]
        tiles[cur].parent_share = sum(a * m for m, a in outer.accesses.items()) / outer.fanout
    # Bypass: a level that does not keep the tensor hands its children's demand to
    # the next level out that does.
    for cur in range(n):
        t = tiles[cur]
        if t.size == 0 or kept[cur]:
            continue
        outer_index = next((o for o in range(cur + 1, n) if tiles[o].size), None)
        if outer_index is None:
            clear(t)
            break
        outer = tiles[outer_index]
        if served and kept[outer_index]:
            outer.accesses = dict(served[outer_index])
        else:
            factor = t.content * outer.fanout / outer.weighted_accesses()
            outer.accesses = {m: a * factor for m, a in outer.accesses.items()}
        outer.link_transfers = 0.0
        outer.content = sum(outer.accesses.values())
        clear(t)
    for cur in range(n - 1, -1, -1):
        if not kept[cur]:
            clear(tiles[cur])
            tiles[cur].accesses = {}
            tiles[cur].link_transfers = 0.0
        else:
            tiles[cur].parent_share = 0.0
            break
    for cur in range(n - 1, 0, -1):
        if tiles[cur].link_transfers:
            child = tiles[cur - 1]
            share = tiles[cur].link_transfers / child.replication
            child.peer_accesses += share
            child.peer_fills += share
    outermost = max((i for i in range(n) if tiles[i].size), default=-1)
    for cur, t in enumerate(tiles):
        if t.size == 0:
            continue
        if read_write:
            t.updates = settled(t.content)
            t.reads = settled(t.content + t.peer_accesses - t.partition)
            fills = t.parent_share + t.peer_fills
            t.fills = settled(fills if cur == outermost else fills - t.partition)
        else:
            t.reads = settled(t.content + t.peer_accesses)
            t.fills = settled(t.parent_share + t.peer_fills)


def settled(count: float | Fraction) -> int | Fraction:
    """A count as Timeloop reports it: a whole number, the float sums it comes from
    rounded; an average over instances that differ (remainders) is the exact
    fraction it is."""
    return count if isinstance(count, Fraction) else round(count)


def average_partitions(problem: Problem, na: NestAnalysis, tensor: Tensor) -> list[Fraction]:
    """Per level (innermost first), the elements of a read-write tensor that pass
    through one instance over the run, on average over the instances: under
    remainders they differ, and Timeloop's tile ratios no longer give them. Each
    rank indexes one dimension (checked where mappings are loaded). The places of a
    fan-out along a dimension split its coordinates: along a dimension the tensor
    has, an instance holds bound / places of them on average; along one it has not,
    an instance holds all of its elements, if that dimension reaches it at all."""
    used = {d for rank in tensor.ranks for _, d in rank}
    n_levels = len(na.arch.levels)
    partitions = []
    for j in range(n_levels):
        share = Fraction(1)
        for d in problem.dims:
            spread = [(loop.weight, loop.end) for loop in na.nest
                      if loop.spatial and loop.dim == d and loop.storage_level < n_levels - 1 - j]
            places = prod(end for _, end in spread)
            bound = problem.bounds[d]
            share *= Fraction(bound if d in used else places_reached(spread, bound), places)
        partitions.append(share)
    return partitions


def places_reached(spread: list[tuple[int, int]], bound: int) -> int:
    """The places of fan-outs (each spatial loop's (stride, factor) along one
    dimension) whose first coordinate is within the bound: the others stay idle."""
    return sum(sum(s * i for (s, _), i in zip(spread, index)) < bound
               for index in itertools.product(*(range(end) for _, end in spread)))


def served_through_bypass(problem: Problem, arch: Architecture, mapping: Mapping, k: int,
                          kept: list[bool]) -> dict[int, dict] | None:
    """Per level (innermost first) that keeps tensor k above levels that do not, what
    it delivers (accesses by multicast factor, per instance), walked with the loops
    of those levels as its own (build_nest's `kept`); None where no level between
    two keepers bypasses it. Timeloop scales the keeper's deliveries to the level
    below instead, which is exact only where the instances below all ask alike: under
    remainders the last ones run short or sit idle."""
    outermost_first = kept[::-1]
    first = outermost_first.index(True) if True in outermost_first else len(kept)
    if all(outermost_first[first:]):
        return None
    alone = replace(problem, tensors=(problem.tensors[k],))
    na = NestAnalysis(alone, arch, mapping, link_transfers=False, kept=outermost_first)
    na.run()
    loop_tiles = condense(na, 0)
    levels = [lt.storage_level for lt in loop_tiles if lt.boundary]
    return {len(kept) - 1 - level: tile.accesses for level, tile in zip(levels, collapse(loop_tiles))}


def clear(t: Tile) -> None:
    t.size = 0
    t.partition = 0
    t.content = 0
    t.parent_share = 0


def evaluate_reference(problem: Problem, arch: Architecture, mapping: Mapping,
                       link_transfers: bool = True) -> Evaluation:
    """Timeloop's numbers for one mapping; `link_transfers=False` is Timeloop with
    TIMELOOP_DISABLE_LINK_TRANSFERS set.

    A level's `network_energy` (zero in Timeloop inputs) is charged per word that
    crosses the fan-out below it: every delivery to a child instance (a multicast
    word once per destination, a partial sum once per update) and every link
    transfer between neighbours."""
    na = NestAnalysis(problem, arch, mapping, link_transfers)
    na.run()
    n_levels = len(arch.levels)
    per_level: list[dict[str, Tile]] = [dict() for _ in range(n_levels)]
    network_words: list[dict[str, float]] = [dict() for _ in range(n_levels)]
    for k, tensor in enumerate(problem.tensors):
        tiles = collapse(condense(na, k))
        kept = [tensor.name in mapping.levels[n_levels - 1 - j].keep for j in range(n_levels)]
        partitions = served = None
        if na.imperfect:
            partitions = average_partitions(problem, na, tensor) if tensor.read_write else None
            served = served_through_bypass(problem, arch, mapping, k, kept)
        account(tiles, kept, tensor.read_write, partitions, served)
        for j, t in enumerate(tiles):  # after bypass: what a bypassing child level asks crosses too
            network_words[n_levels - 1 - j][tensor.name] = (t.weighted_accesses() + t.link_transfers) * t.replication
        for j, t in enumerate(tiles):
            if t.size:
                per_level[n_levels - 1 - j][tensor.name] = t
    counts = [{name: TensorCounts(t.partition, t.size, t.replication, t.reads, t.fills, t.updates)
               for name, t in level.items()} for level in per_level]
    innermost = [lvl for lvl, l in enumerate(na.nest) if not l.spatial or l.master][0]
    utilized_macs = na.num_spatial_elems[innermost] * na.fanout[innermost]
    return assemble(problem, arch, counts, network_words, na.compute_accesses, utilized_macs)


@dataclass(frozen=True)
class TensorCounts:
    """One level's counts of one tensor it holds, per instance, before energy (under
    remainders the instances' exact averages, as in TensorStats)."""

    partition: int | Fraction
    utilized_capacity: int
    instances: int
    reads: int | Fraction
    fills: int | Fraction
    updates: int | Fraction


def assemble(problem: Problem, arch: Architecture, counts: list[dict[str, TensorCounts]],
             network_words: list[dict[str, float]], compute_cycles: int, utilized_macs: int) -> Evaluation:
    """The Evaluation of per-level counts (outermost level first): energies, each
    level's bandwidth throttling and cycles, the fan-out networks' energy. Shared by
    this module and the vectorized model, so that both report alike."""
    levels = []
    cycles = compute_cycles
    index = {t.name: k for k, t in enumerate(problem.tensors)}
    for i, (level, widths) in enumerate(zip(arch.levels, level_widths(problem, arch))):
        words = dict(zip(index, widths.words_per_element))  # level words per element, by tensor
        tensors = {}
        for name, c in counts[i].items():
            k = index[name]
            energy = (widths.accesses(k, c.reads) * level.read_energy
                      + widths.accesses(k, c.fills) * level.write_energy
                      + widths.accesses(k, c.updates) * level.write_energy) * level.utilized_clusters(c.instances)
            tensors[name] = TensorStats(c.partition, c.utilized_capacity, c.instances, c.reads, c.fills, c.updates,
                                        energy)
        throttling = bandwidth_throttling(level.read_bandwidth, level.write_bandwidth, tensors, words,
                                          compute_cycles)
        # floats are exact below 2**53 only: an unthrottled level takes the compute cycles as they are
        level_cycles = compute_cycles if throttling >= 1 else ceil(compute_cycles / throttling)
        cycles = max(cycles, level_cycles)
        crossing = network_words[i] if level.network_energy and prod(arch.fanout(i)) > 1 else {}
        network = level.network_energy * sum(n * words[name] for name, n in crossing.items())
        levels.append(LevelStats(level.name, level.instances, tensors, level_cycles, network, crossing, throttling))
    computes = problem.macs
    return Evaluation(
        computes=computes,
        cycles=cycles,
        utilization=computes / (cycles * arch.compute.instances),
        compute_energy_pJ=computes * arch.compute.energy,
        levels=tuple(levels),
        mac_instances=arch.compute.instances,
        utilized_macs=utilized_macs,
    )


def bandwidth_throttling(read_bw: float | None, write_bw: float | None, tensors: dict[str, TensorStats],
                         words: dict[str, float], compute_cycles: int) -> float:
    """Timeloop's per-level "Bandwidth throttling": the factor (1 when the level keeps up)
    by which the level's per-instance read or write bandwidth slows the MACs; the
    level's cycles are the compute cycles divided by it, and users see which level
    holds the layer back (`words`: words_moved)."""
    slowdown = 1.0
    reads, writes = words_moved(tensors, words)
    if read_bw and reads:
        slowdown = min(slowdown, read_bw / (reads / compute_cycles))
    if write_bw and writes:
        slowdown = min(slowdown, write_bw / (writes / compute_cycles))
    return slowdown


def words_moved(tensors: dict[str, TensorStats], words: dict[str, float]) -> tuple[float, float]:
    """The words one instance of a level reads out and writes in (fills and updates),
    an element of each tensor counted as `words[tensor]` of the level's words:
    bandwidths are in the level's words, which a narrower or wider tensor fills in
    part or overflows (mapper/precision.py). Counts that are averages over instances
    (remainders) are summed exactly, then rounded once to a float."""
    if any(isinstance(t.reads, Fraction) for t in tensors.values()):
        exact = {name: Fraction(w) for name, w in words.items()}
        return (float(sum(t.reads * exact[name] for name, t in tensors.items())),
                float(sum((t.fills + t.updates) * exact[name] for name, t in tensors.items())))
    reads = sum(t.reads * words[name] for name, t in tensors.items())
    writes = sum((t.fills + t.updates) * words[name] for name, t in tensors.items())
    return reads, writes
