"""Layer fusion: consecutive layers mapped together, so that the tensors between them
stay in an on-chip buffer instead of going out to DRAM and back.

A fused group (Alwani et al., "Fused-layer CNN accelerators", MICRO 2016; LoopTree,
Stream and AccelForge search such schedules) is a chain of convolutions, or of matrix
products, each reading the output of the one before. It runs tile by tile: the last
layer's output rows (a convolution's P, a matrix product's M: its tokens) are split
into tiles of `rows` rows, and for each tile every layer in turn computes the rows of
its output that the next layer's tile reads. A sliding window reads rows on
both sides of its outputs (its halo), so a layer's tile is taller than the next one's;
the halo is recomputed in every tile that needs it, not kept from the tile before
(recomputation, in Alwani's terms), and the tiles at the top and bottom edges are
shorter where the next layer's window reaches into its padding.

The tensors between the layers (the intermediates) live only in the group's buffer
level: a layer whose output the next one reads leaves its tile there, whole, and the
next layer reads it from there. Each layer runs its own mapping of its tile (a Mapping
of `tile_problem`), in which the buffer level is the outermost one to keep an
intermediate, and keeps it whole (`violations`): nothing of it moves above that level.
The model then counts an intermediate's traffic at that level only, with no fills from
DRAM and no write-back to it (mapper/model/fused.py). Between tiles, and between the
layers of a tile, the buffers serve another layer: every tile of a layer starts with
nothing resident, and fetches its weights and the first layer's inputs from DRAM again.

The rows of a consumer's input are the producer's output rows shifted by the
consumer's padding, which the layer shapes imply (PyTorch's formula for the output
size; where a stride above 2 leaves a choice, the least padding that gives it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from functools import cached_property

import networkx as nx

from .architecture import Architecture
from .constraints import ONE, Constraints, LevelConstraints
from .mapping import Mapping
from .precision import level_widths
from .problem import Problem, Tensor
from .workload_graph import channels

MAX_LAYERS = 3  # in a candidate group: an inverted bottleneck (expand, depthwise, project)
# Tile heights searched per candidate group: the tallest whose intermediates fit, and
# the next. Of the 115 groups run fused in results/fusion/, 113 are at the tallest; but
# the next one is sometimes far better (simba-like MobileNetV3-Large's
# bneck1_depthwise..bneck1_project: 96.5 uJ at 28 rows, 39.7 at 14, 63.2 alone).
HEIGHTS = 2


class NotFusable(ValueError):
    """Layers that cannot form a fused group, and why (one line)."""


@dataclass(frozen=True)
class Window:
    """How a consumer's output rows read its input rows: output row p reads input rows
    p * stride + r * dilation - padding for r < kernel (rows outside the producer's
    output are padding)."""

    stride: int
    dilation: int
    kernel: int
    padding: int

    def reads(self, first: int, stop: int, height: int) -> tuple[int, int]:
        """The input rows [first', stop') that output rows [first, stop) read, within
        the `height` rows the producer has."""
        low = first * self.stride - self.padding
        high = (stop - 1) * self.stride + (self.kernel - 1) * self.dilation + 1 - self.padding
        return max(low, 0), min(high, height)


@dataclass(frozen=True)
class FusedGroup:
    """`layers` (each reading the one before) run tile by tile (module docstring): the
    last layer's output rows in tiles of `rows`, the intermediates held whole in
    architecture level `level`."""

    layers: tuple[Problem, ...]
    level: int
    rows: int

    def __post_init__(self) -> None:
        if len(self.layers) < 2:
            raise NotFusable("a fused group needs two layers or more")
        for producer, consumer in zip(self.layers, self.layers[1:]):
            window(producer, consumer)  # raises NotFusable
        last = self.layers[-1].bounds[rows_of(self.layers[-1])]
        if not 1 <= self.rows <= last:
            raise NotFusable(f"rows per tile must be 1 to {last} (the output rows of {self.layers[-1].name}), "
                             f"not {self.rows}")

    @property
    def name(self) -> str:
        """E.g. `expand..project, 7 rows`."""
        return f"{self.layers[0].name}..{self.layers[-1].name}, {self.rows} row{'s' if self.rows > 1 else ''}"

    @property
    def tiles(self) -> int:
        return -(-self.layers[-1].bounds[rows_of(self.layers[-1])] // self.rows)

    @cached_property
    def row_ranges(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Per layer, per tile, the output rows [first, stop) it computes."""
        last = self.layers[-1].bounds[rows_of(self.layers[-1])]
        ranges = [tuple((t * self.rows, min((t + 1) * self.rows, last)) for t in range(self.tiles))]
        for producer, consumer in reversed(list(zip(self.layers, self.layers[1:]))):
            slide = window(producer, consumer)
            height = producer.bounds[rows_of(producer)]
            ranges.insert(0, tuple(slide.reads(first, stop, height) for first, stop in ranges[0]))
        return tuple(ranges)

    def tile_shapes(self, layer: int) -> list[tuple[int, int]]:
        """Layer `layer`'s tiles as (output rows, how many tiles have as many), tallest
        first; a tile that needs none of its rows is left out."""
        counts = Counter(stop - first for first, stop in self.row_ranges[layer] if stop > first)
        return sorted(counts.items(), reverse=True)

    def tile_problem(self, layer: int, rows: int | None = None) -> Problem:
        """Layer `layer` restricted to a tile of `rows` output rows (default: its tallest
        tile, the one its mapping is written for; a shorter tile runs that mapping with
        a remainder)."""
        problem = self.layers[layer]
        rows = self.tile_shapes(layer)[0][0] if rows is None else rows
        return replace(problem, bounds={**problem.bounds, rows_of(problem): rows})

    def intermediates(self, layer: int) -> tuple[str, ...]:
        """The tensors of layer `layer` that stay in the group's level: its inputs but
        for the first layer's, its outputs but for the last layer's."""
        problem = self.layers[layer]
        names = [input_tensor(problem).name] if layer > 0 else []
        return tuple(names + ([problem.output.name] if layer < len(self.layers) - 1 else []))

    @property
    def macs(self) -> int:
        """MACs the group runs, halo rows recomputed included."""
        return sum(self.tile_problem(i, rows).macs * count
                   for i in range(len(self.layers)) for rows, count in self.tile_shapes(i))


def rows_of(problem: Problem) -> str:
    """The dimension of a layer's output rows, which a fused group tiles: a
    convolution's P, a matrix product's M (NotFusable for other layers)."""
    if {"P", "Q", "C", "M"} <= problem.bounds.keys():
        return "P"
    if {"M", "N", "K"} <= problem.bounds.keys():
        return "M"
    raise NotFusable(f"layer {problem.name} is neither a convolution nor a matrix product: only those fuse")


def input_tensor(problem: Problem) -> Tensor:
    """A layer's input activations: the read-only tensor that indexes its rows."""
    rows = rows_of(problem)
    return next(t for t in problem.tensors if not t.read_write and rows in t.dims)


def window(producer: Problem, consumer: Problem) -> Window:
    """How `consumer` reads `producer`'s output rows (a matrix product reads row for
    row); NotFusable where it cannot be the next layer of a fused group."""
    rows = rows_of(consumer)
    if rows_of(producer) != rows:
        raise NotFusable(f"{consumer.name} and {producer.name} are not both convolutions or both matrix products")
    produced, read = channels(producer, "out"), channels(consumer, "in")
    if produced != read:
        raise NotFusable(f"{consumer.name} reads {read} channels, {producer.name} writes {produced}")
    batch = "N" if rows == "P" else "B"
    if producer.bounds.get(batch, 1) != consumer.bounds.get(batch, 1):
        raise NotFusable(f"{consumer.name} reads a batch of {consumer.bounds.get(batch, 1)}, "
                         f"{producer.name} writes {producer.bounds.get(batch, 1)}")
    rank = next(rank for rank in input_tensor(consumer).ranks if rows in (d for _, d in rank))
    coefficients = {d: c for c, d in rank}
    kernel_dim = next((d for d in coefficients if d != rows), None)
    stride = coefficients[rows]
    dilation, kernel = (coefficients[kernel_dim], consumer.bounds[kernel_dim]) if kernel_dim else (1, 1)
    height, out = producer.bounds[rows], consumer.bounds[rows]
    reach = (kernel - 1) * dilation + 1
    for padding in range(reach):
        if (height + 2 * padding - reach) // stride + 1 == out:
            return Window(stride, dilation, kernel, padding)
    raise NotFusable(f"{consumer.name}'s {out} output rows do not follow from {producer.name}'s {height} with a "
                     f"window of {kernel} (stride {stride}, dilation {dilation}) and any padding: a layer the "
                     "workload leaves out (pooling, say) may sit between them")


def violations(group: FusedGroup, arch: Architecture, layer: int, mapping: Mapping) -> list[str]:
    """Why `mapping` cannot run layer `layer`'s tiles in `group` (empty: it can): the
    group's level must be the outermost to keep each intermediate, keep it whole (no
    loop above it over the tensor's dimensions) and be one instance, which the layers
    before and after share."""
    level = arch.levels[group.level]
    found = []
    if level.instances != 1:
        found.append(f"level {level.name} has {level.instances} instances: the intermediates of a fused group need "
                     "one buffer every layer of it reaches")
    problem = group.layers[layer]
    for name in group.intermediates(layer):
        dims = problem.tensor(name).dims
        above = [arch.levels[i].name for i in range(group.level) if name in mapping.levels[i].keep]
        if above:
            found.append(f"{name} of {problem.name} stays in {level.name}, but {', '.join(above)} keeps it")
        if name not in mapping.levels[group.level].keep:
            found.append(f"{name} of {problem.name} stays in {level.name}, which does not keep it")
        moving = sorted(mapping.dims_above(group.level) & dims)
        if moving:
            found.append(f"{name} of {problem.name} must stay whole in {level.name}, but loops above it run over "
                         f"{', '.join(moving)}")
    return found


def constraints(group: FusedGroup, arch: Architecture, layer: int, base: Constraints | None = None) -> Constraints:
    """`base` (the user's) with what `violations` asks of layer `layer`'s mappings on top:
    its intermediates bypassed above the group's level, kept there, and a factor of 1
    for each of their dimensions above it, so that a search of `tile_problem(layer)`
    visits only mappings that can run in the group."""
    problem = group.layers[layer]
    names = frozenset(group.intermediates(layer))
    dims = {d for name in names for d in problem.tensor(name).dims}
    ones = {d: ONE for d in sorted(dims)}
    fused = {level.name: LevelConstraints(temporal=ones, spatial=ones, bypass=names)
             for level in arch.levels[:group.level]}
    fused[arch.levels[group.level].name] = LevelConstraints(keep=names)
    return (base or Constraints()).refined_by(Constraints(fused))


def candidate_groups(graph: nx.DiGraph, arch: Architecture, max_layers: int = MAX_LAYERS,
                     heights: int = HEIGHTS) -> list[FusedGroup]:
    """The fused groups worth searching in a workload's graph (mapper/workload_graph.py):
    every run of 2 to `max_layers` layers along a chain, each reading only the one
    before, which only it reads (an output that another layer reads too must go out to
    DRAM anyway); held in the outermost level that can (`group_level`); each at the
    `heights` tallest tile heights (halving the last layer's rows) whose intermediates
    fit that level alone. Taller tiles recompute less of the halo and fetch the
    weights fewer times. None where no level can hold the intermediates."""
    level = group_level(arch)
    if level is None:
        return []
    groups = []
    for chain in _chains(graph):
        for size in range(2, max_layers + 1):
            for first in range(len(chain) - size + 1):
                layers = tuple(graph.nodes[name]["problem"] for name in chain[first:first + size])
                groups += _tallest_fitting(layers, arch, level, heights)
    return groups


def group_level(arch: Architecture) -> int | None:
    """The level that holds a fused group's intermediates: the outermost below the
    first (DRAM) of one instance that may keep a layer's inputs and outputs."""
    return next((l for l, level in enumerate(arch.levels) if l > 0 and level.instances == 1 and
                 (level.keeps is None or {"Inputs", "Outputs"} <= level.keeps)), None)


def no_candidates_reason(arch: Architecture) -> str:
    """Why `candidate_groups` found no group to consider on `arch`."""
    level = group_level(arch)
    if level is None:
        return (f"{arch.name} has no level below {arch.levels[0].name} of one instance that may keep a layer's "
                "inputs and outputs, to hold a group's intermediates")
    return (f"no run of two layers or more, each reading only the one before, has intermediates that fit "
            f"{arch.levels[level].name} whole, even at one output row a tile")


def _chains(graph: nx.DiGraph) -> list[list[str]]:
    """The longest runs of layers, in the workload's order, each reading only the one
    before, which only it reads, along edges a fused group can take (`window`)."""
    def linked(producer: str, consumer: str) -> bool:
        if graph.out_degree(producer) != 1 or graph.in_degree(consumer) != 1:
            return False
        try:
            window(graph.nodes[producer]["problem"], graph.nodes[consumer]["problem"])
        except NotFusable:
            return False
        return True

    chains: list[list[str]] = []
    for name in graph.nodes:
        before = next(iter(graph.predecessors(name)), None)
        if chains and before == chains[-1][-1] and linked(before, name):
            chains[-1].append(name)
        else:
            chains.append([name])
    return [chain for chain in chains if len(chain) > 1]


def _tallest_fitting(layers: tuple[Problem, ...], arch: Architecture, level: int, count: int) -> list[FusedGroup]:
    """`layers` as groups at the `count` tallest tile heights, halving, whose
    intermediates fit `level` (their whole tiles)."""
    last, found, seen = layers[-1].bounds[rows_of(layers[-1])], [], set()
    height = last
    while len(found) < count and height not in seen:
        seen.add(height)
        group = FusedGroup(layers, level, height)
        if all(_intermediates_fit(group, arch, i) for i in range(len(layers))):
            found.append(group)
        height = -(-height // 2)
    return found


def _intermediates_fit(group: FusedGroup, arch: Architecture, layer: int) -> bool:
    """Whether layer `layer`'s intermediates fit the group's level as its capacity
    counts them (precision.level_widths: what one of its multiple buffers holds, in
    bits where the tensors' words are not the level's)."""
    problem = group.tile_problem(layer)
    widths = level_widths(problem, arch)[group.level]
    held = group.intermediates(layer)
    size = sum(problem.tensor_size(t) * per_element
               for t, per_element in zip(problem.tensors, widths.per_element) if t.name in held)
    return widths.usable is None or size <= widths.usable
