"""Why a mapping costs what it costs: the designer's reading of an evaluation.

From the counts of the model (per level and tensor: reads, fills, updates, per
instance, as Timeloop reports them) and the mapping, in the vocabulary of Chen, Emer
and Sze (ISCA 2016) and Timeloop:

- accesses per MAC: (reads + fills + updates) x utilized instances / MACs, the
  figure that decides the energy once multiplied by a level's cost per access;
- reuse at a level, temporal and spatial apart. Temporal: the accesses a level serves
  per word brought into it (read-only tensors: reads per word filled; the read-write
  tensor: updates per word held, the partial sums accumulated in place). Spatial:
  what one access of the level does across the fan-out below it (read-only: the
  deliveries to the next level keeping the tensor, or to the MACs, per read, i.e.
  the multicast, peer forwarding included; read-write: the partial sums arriving
  from below per update, i.e. the spatial reduction);
- stationarity: the tensor whose tile a level changes least often (tile changes =
  words brought in per instance / the tile's size), the one that stays put;
- the reuse a layer offers and what of it stays on chip: each word of a tensor is
  used (MACs / its size) times, across the dimensions that do not index it, named
  by the layer's own (`_reuse_kinds`: a convolution's weights across the batch and,
  convolutional reuse, the output positions; its inputs across the filters and within
  the overlapping windows; its outputs accumulated across input channels and filter
  positions; a layer whose dimension has bound 1 offers no reuse along it); the outermost level
  serves each word (accesses / size) times, and the loops that make it do so are
  named: a loop above the tensor's first on-chip level that does not index it, outside
  one that does, brings its tile back again (refetch);
- the outermost level's accesses per MAC against the case with no reuse at all
  (every MAC reads each operand and reads and writes its partial sum there);
- cycles: the compute bound (every MAC busy), the temporal loops (idle MACs where the
  spatial unrolling does not fill the array) and the bandwidth stalls, with the level
  that limits, its read and write demand against its bandwidth; compute-bound or
  bandwidth-bound said plainly;
- energy per MAC by level, and each level's cost per access relative to a MAC.

Nothing here prints; `explanation_text` renders, `Explanation.to_json` is the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Any

from .architecture import Architecture
from .constraints import pe_local_levels
from .mapping import Mapping
from .model.reference import words_moved
from .model.stats import Evaluation, TensorStats, plain
from .precision import level_widths
from .problem import Problem
from .report import table
from .typed_json import from_json, to_json
from .workload_stats import no_reuse_accesses_per_mac


@dataclass(frozen=True)
class TensorAtLevel:
    tensor: str
    accesses: float  # (reads + fills + updates) x utilized instances (under a remainder: of averages)
    accesses_per_mac: float
    temporal_reuse: float | None  # accesses served per word brought in (None: nothing brought in)
    spatial_reuse: float | None  # multicast (read-only) or spatial reduction (read-write) below the level
    tile_changes: float  # per instance: words brought in / the tile's size
    residency_cycles: float  # compute cycles a tile stays, on average


@dataclass(frozen=True)
class LevelExplanation:
    name: str
    tensors: tuple[TensorAtLevel, ...]
    stationary: str | None  # the tensor that stays longest; None when the level keeps nothing
    energy_per_mac: float  # storage and network energy of the level / MACs
    read_cost_in_macs: float | None  # energy of one word read / one MAC's (None: MACs cost nothing)
    cycles: int
    bandwidth_throttling: float
    read_words_per_cycle: float  # per instance, at the compute cycles
    write_words_per_cycle: float
    read_bandwidth: float | None
    write_bandwidth: float | None


@dataclass(frozen=True)
class TensorReuse:
    tensor: str
    kinds: str  # the reuse the tensor offers, in the field's words
    uses_per_word: float  # MACs / the tensor's size
    outer_accesses_per_word: float  # the outermost level's accesses / the tensor's size
    on_chip_uses_per_word: float  # uses per outer access: the reuse kept on chip
    refetch_loops: tuple[str, ...]  # "Q4 at DRAM": the loops that bring the tile back


@dataclass(frozen=True)
class Cycles:
    compute_bound: int  # MACs / MAC units
    temporal: int  # the product of the temporal loops: the cycles without bandwidth stalls
    total: int
    utilized_macs: int
    mac_units: int
    bound: str  # "compute" or "bandwidth"
    bottleneck: str | None  # the level whose bandwidth sets the cycles
    limit: str | None  # "read" or "write": which of its bandwidths


@dataclass(frozen=True)
class Explanation:
    macs: int
    outer_level: str
    levels: tuple[LevelExplanation, ...]  # outermost first
    pe_keeps: tuple[str, ...]  # the tensors some level inside the PEs keeps
    pe_stationary: str | None  # of them the one that stays longest (None: none, or a tie)
    reuse: tuple[TensorReuse, ...]
    outer_accesses_per_mac: float
    no_reuse_accesses_per_mac: int  # each operand read and the partial sum read and written per MAC
    fewer_than_no_reuse: float  # no_reuse_accesses_per_mac / outer_accesses_per_mac
    cycles: Cycles
    mac_energy_per_mac: float

    def to_json(self) -> dict[str, Any]:
        return to_json(self)

    @staticmethod
    def from_json(data: Any) -> Explanation:
        """Raises ValueError where `data` is not an explanation's JSON."""
        return from_json(Explanation, data)


def explain(problem: Problem, arch: Architecture, mapping: Mapping, ev: Evaluation) -> Explanation:
    """The explanation of `ev`, the evaluation of `mapping` (module docstring)."""
    compute_cycles = mapping.temporal_steps(problem.bounds)
    levels = tuple(_level(problem, arch, ev, i, compute_cycles) for i in range(len(arch.levels)))
    outer = ev.levels[0]
    outer_accesses = sum(t.accesses for t in outer.tensors.values())
    no_reuse = no_reuse_accesses_per_mac(problem)
    per_mac = outer_accesses / ev.computes
    return Explanation(
        macs=ev.computes, outer_level=outer.name, levels=levels,
        pe_keeps=tuple(t.name for t in problem.tensors
                       if any(t.name in mapping.levels[i].keep for i in pe_local_levels(arch))),
        pe_stationary=_pe_stationary(arch, levels),
        reuse=tuple(_tensor_reuse(problem, arch, mapping, ev, t.name) for t in problem.tensors),
        outer_accesses_per_mac=per_mac, no_reuse_accesses_per_mac=no_reuse,
        fewer_than_no_reuse=no_reuse / per_mac if per_mac else 0.0,
        cycles=_cycles(arch, ev, levels, compute_cycles),
        mac_energy_per_mac=ev.compute_energy_pJ / ev.computes)


def _brought_in(t: TensorStats, outermost: bool, read_write: bool) -> int:
    """Words that enter one instance over the run: fills, and for the read-write tensor
    the first arrival of each element too (not counted as a fill); the outermost level
    holds its tensors from the start."""
    if outermost:
        return plain(t.partition_size)
    return plain(t.fills + (t.partition_size if read_write else 0))


def _below(ev: Evaluation, i: int, tensor: str) -> TensorStats | None:
    """The next level inside level i that keeps the tensor (None: the MACs)."""
    return next((lv.tensors[tensor] for lv in ev.levels[i + 1:] if tensor in lv.tensors), None)


def _level(problem: Problem, arch: Architecture, ev: Evaluation, i: int, compute_cycles: int) -> LevelExplanation:
    lv, level = ev.levels[i], arch.levels[i]
    rows = []
    for name, t in lv.tensors.items():
        read_write = problem.tensor(name).read_write
        brought = _brought_in(t, i == 0, read_write)
        served = plain(t.updates if read_write else t.reads)
        child = _below(ev, i, name)
        if child is None:
            below = ev.computes
        else:
            below = _brought_in(child, False, read_write) * child.utilized_instances
        here = served * t.utilized_instances
        changes = brought / t.utilized_capacity if t.utilized_capacity else 0.0
        rows.append(TensorAtLevel(
            tensor=name, accesses=t.accesses, accesses_per_mac=t.accesses / ev.computes,
            temporal_reuse=served / brought if brought else None,
            spatial_reuse=below / here if here else None,
            tile_changes=changes, residency_cycles=compute_cycles / changes if changes else float(compute_cycles)))
    storage = sum(t.energy_pJ for t in lv.tensors.values())
    mac = arch.compute.energy
    reads, writes = words_moved(lv.tensors, dict(zip((t.name for t in problem.tensors),
                                                     level_widths(problem, arch)[i].words_per_element)))
    return LevelExplanation(
        name=lv.name, tensors=tuple(rows), stationary=_stationary(rows) if i else None,
        energy_per_mac=(storage + lv.network_energy_pJ) / ev.computes,
        # one read of a whole cluster's blocks: a word's share of it
        read_cost_in_macs=level.read_energy / (level.block_size * level.cluster_size) / mac if mac else None,
        cycles=lv.cycles, bandwidth_throttling=lv.bandwidth_throttling,
        read_words_per_cycle=reads / compute_cycles, write_words_per_cycle=writes / compute_cycles,
        read_bandwidth=level.read_bandwidth, write_bandwidth=level.write_bandwidth)


def _stationary(rows: list[TensorAtLevel]) -> str | None:
    """The tensor whose tile changes least often, if one does (the outermost level
    holds everything all along: nothing is stationary there)."""
    if len(rows) < 2:
        return None
    ranked = sorted(rows, key=lambda r: r.tile_changes)
    return ranked[0].tensor if ranked[0].tile_changes < ranked[1].tile_changes else None


def _pe_stationary(arch: Architecture, levels: tuple[LevelExplanation, ...]) -> str | None:
    """The tensor that stays longest inside the PEs (at the innermost PE-local level
    that keeps it), the one a dataflow is named after; None when the PEs keep nothing."""
    residency: dict[str, float] = {}
    for i in pe_local_levels(arch):
        for t in levels[i].tensors:
            residency[t.tensor] = t.residency_cycles  # inner levels overwrite outer ones
    if not residency:
        return None
    ranked = sorted(residency.items(), key=lambda item: -item[1])
    return ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else None


def _reuse_kinds(problem: Problem, tensor: str) -> str:
    """The reuse the layer offers a tensor, read from its dimensions (those of bound 1
    offer none), in Chen, Emer and Sze's terms: a read-only word is used again across
    each dimension the tensor does not index, convolutional reuse where that dimension
    slides a window over one the tensor does index (a convolution's weights across the
    output positions), and within overlapping windows where one of the tensor's ranks
    sums several dimensions (its inputs); an output is accumulated across the
    dimensions it does not index (partial sums)."""
    t = problem.tensor(tensor)
    iterating = {d for d in problem.dims if problem.bounds[d] > 1}
    unused = [d for d in problem.dims if d in iterating and d not in t.dims]
    if t.read_write:
        return f"partial-sum accumulation across {', '.join(unused)}" if unused else \
            "none: each word is computed by one MAC"
    own = t.dims & iterating
    sliding = [d for d in unused if any(d in _rank_dims(rank) and _rank_dims(rank) & own
                                        for other in problem.tensors for rank in other.ranks)]
    windows = ["+".join(d for c, d in rank if c and d in iterating) for rank in t.ranks
               if len(_rank_dims(rank) & iterating) > 1]
    plain = [d for d in unused if d not in sliding]
    parts = [f"reuse across {', '.join(plain)}"] if plain else []
    parts += [f"convolutional reuse across {', '.join(sliding)}"] if sliding else []
    parts += [f"convolutional reuse within overlapping windows ({', '.join(windows)})"] if windows else []
    return " and ".join(parts) or "none: each word is used by one MAC"


def _rank_dims(rank: tuple[tuple[int, str], ...]) -> set[str]:
    return {d for c, d in rank if c}


def _tensor_reuse(problem: Problem, arch: Architecture, mapping: Mapping, ev: Evaluation,
                  tensor: str) -> TensorReuse:
    size = problem.tensor_size(problem.tensor(tensor))
    outer = ev.levels[0].tensors.get(tensor)
    outer_accesses = outer.accesses if outer else 0
    per_word = outer_accesses / size
    uses = ev.computes / size
    return TensorReuse(tensor=tensor, kinds=_reuse_kinds(problem, tensor), uses_per_word=uses,
                       outer_accesses_per_word=per_word, on_chip_uses_per_word=uses / per_word if per_word else 0.0,
                       refetch_loops=_refetch_loops(problem, arch, mapping, tensor))


def _refetch_loops(problem: Problem, arch: Architecture, mapping: Mapping, tensor: str) -> tuple[str, ...]:
    """The temporal loops above the first level below the outermost that keeps the
    tensor which do not index it and sit outside a loop that does: each of their
    iterations brings the tensor's tile back from the outer levels."""
    dims = problem.tensor(tensor).dims
    first = next((i for i in range(1, len(arch.levels)) if tensor in mapping.levels[i].keep), len(arch.levels))
    loops = [(arch.levels[i].name, l) for i in range(first) for l in mapping.levels[i].temporal if l.factor > 1]
    found = []
    for k, (level, loop) in enumerate(loops):
        if loop.dim not in dims and any(inner.dim in dims for _, inner in loops[k + 1:]):
            found.append(f"{loop.dim}{loop.factor} at {level}")
    return tuple(found)


def _cycles(arch: Architecture, ev: Evaluation, levels: tuple[LevelExplanation, ...],
            compute_cycles: int) -> Cycles:
    slowest = min(levels, key=lambda lv: lv.bandwidth_throttling)
    throttled = slowest.bandwidth_throttling < 1
    limit = None
    if throttled:
        read = slowest.read_bandwidth / slowest.read_words_per_cycle if slowest.read_bandwidth and \
            slowest.read_words_per_cycle else float("inf")
        write = slowest.write_bandwidth / slowest.write_words_per_cycle if slowest.write_bandwidth and \
            slowest.write_words_per_cycle else float("inf")
        limit = "read" if read <= write else "write"
    return Cycles(compute_bound=ceil(ev.computes / arch.compute.instances), temporal=compute_cycles,
                  total=ev.cycles, utilized_macs=ev.utilized_macs, mac_units=arch.compute.instances,
                  bound="bandwidth" if throttled else "compute", bottleneck=slowest.name if throttled else None,
                  limit=limit)


# ------------------------------------------------------------------ rendering


def _reuse_text(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def explanation_text(ex: Explanation, energy_unit: str) -> str:
    """The explanation as text: a table per level and tensor, then reuse, cycles and
    energy in sentences."""
    head = ("level", "tensor", "accesses/MAC", "temporal reuse", "spatial reuse", "tile changes", "stationary")
    rows: list[tuple[str, ...]] = [head]
    for lv in ex.levels:
        for t in lv.tensors:
            rows.append((lv.name, t.tensor, f"{t.accesses_per_mac:.4g}", _reuse_text(t.temporal_reuse),
                         _reuse_text(t.spatial_reuse), f"{t.tile_changes:,.1f}",
                         "yes" if t.tensor == lv.stationary else ""))
    lines = [table(rows), "",
             "temporal reuse: accesses served per word brought into the level (reads per fill; for "
             "partial sums, updates per word held); spatial reuse: deliveries below per read "
             "(multicast) or partial sums from below per update (spatial reduction)", ""]
    for lv in ex.levels:
        if lv.stationary:
            lines.append(f"{lv.name} keeps {lv.stationary} stationary (its tile changes least often: "
                         f"{next(t.tile_changes for t in lv.tensors if t.tensor == lv.stationary):,.1f} times)")
    lines += [_pe_text(ex), ""]
    for r in ex.reuse:
        refetch = ("; refetched by " + ", ".join(r.refetch_loops)) if r.refetch_loops else ""
        lines.append(f"{r.tensor}: {r.kinds}: each word used {r.uses_per_word:,.1f} times, "
                     f"{r.on_chip_uses_per_word:,.1f} of them per {ex.outer_level} access "
                     f"({r.outer_accesses_per_word:,.2f} {ex.outer_level} accesses per word{refetch})")
    lines.append(f"{ex.outer_level} accesses per MAC {ex.outer_accesses_per_mac:.4g}: "
                 f"x{ex.fewer_than_no_reuse:,.1f} fewer than with no reuse ({ex.no_reuse_accesses_per_mac} per MAC)")
    lines += ["", cycles_text(ex.cycles, ex.levels), "", "energy per MAC by level (" + energy_unit + "):"]
    for lv in ex.levels:
        if not lv.tensors and not lv.energy_per_mac:
            continue  # a level that keeps nothing and moves nothing (a fan-out's placeholder)
        cost = f"  (a word read: {lv.read_cost_in_macs:.3g}x a MAC)" if lv.read_cost_in_macs else ""
        lines.append(f"  {lv.name}: {lv.energy_per_mac:.4g}{cost}")
    lines.append(f"  MAC: {ex.mac_energy_per_mac:.4g}")
    return "\n".join(lines)


def cycles_text(c: Cycles, levels: tuple[LevelExplanation, ...]) -> str:
    idle = c.temporal - c.compute_bound
    stalls = c.total - c.temporal
    head = (f"cycles {c.total:,} = compute bound {c.compute_bound:,} (all {c.mac_units:,} MACs busy)"
            f" + {idle:,} with idle MACs ({c.utilized_macs:,} of {c.mac_units:,} unrolled)"
            f" + {stalls:,} bandwidth stalls")
    if c.bound == "compute":
        return head + "\ncompute-bound: no level's bandwidth slows the MACs"
    lv = next(lv for lv in levels if lv.name == c.bottleneck)
    need = lv.read_words_per_cycle if c.limit == "read" else lv.write_words_per_cycle
    have = lv.read_bandwidth if c.limit == "read" else lv.write_bandwidth
    return (head + f"\nbandwidth-bound: {lv.name} {c.limit}s {need:.3g} words per cycle per instance where its "
            f"bandwidth is {have:g} (throttling {lv.bandwidth_throttling:.3f})")


def _pe_text(ex: Explanation) -> str:
    if ex.pe_stationary:
        return f"in the PEs, {ex.pe_stationary} stay longest: {dataflow_name(ex.pe_stationary)}"
    if ex.pe_keeps:
        return f"the PEs keep {', '.join(ex.pe_keeps)}, none of them longer than the others"
    return "the PEs keep nothing: no local reuse"


def dataflow_name(tensor: str) -> str:
    """"Weights" -> "weight-stationary", as the taxonomy names dataflows."""
    word = tensor.lower()
    return f"{word[:-1] if word.endswith('s') else word}-stationary"


def why_line(ex: Explanation) -> str:
    """One line: what stays in the PEs, the outer traffic against no reuse, and what
    bounds the cycles."""
    pe = dataflow_name(ex.pe_stationary) if ex.pe_stationary else "no PE-stationary tensor"
    bound = ("compute-bound" if ex.cycles.bound == "compute"
             else f"{ex.cycles.bottleneck} {ex.cycles.limit}-bandwidth-bound")
    return (f"{pe}; {ex.outer_level} x{ex.fewer_than_no_reuse:,.0f} below no reuse; "
            f"{ex.cycles.utilized_macs}/{ex.cycles.mac_units} MACs unrolled, {bound}")
