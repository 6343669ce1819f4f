"""What a network costs before any mapping: per layer its shape, MACs and weights, and
the no-reuse worst case of DRAM traffic that every mapping improves on.

The worst case is Sze et al.'s (Proc. IEEE 2017, Sec. V): without any on-chip reuse,
each MAC reads its input, its weight and its partial sum from DRAM and writes the
partial sum back, 4 DRAM accesses per MAC (one more per operand for a layer of more
operands: `no_reuse_accesses_per_mac`). `mapper explain` measures a mapping's traffic
against the same case.
"""

from __future__ import annotations

from dataclasses import dataclass

from .problem import Problem
from .report import table
from .workload_graph import GraphStats

@dataclass(frozen=True)
class LayerStats:
    name: str
    shape: str  # the loop bounds, e.g. "N1 M96 C3 P55 Q55 R11 S11"
    macs: int
    weights: int
    no_reuse_dram_accesses: int  # macs x no_reuse_accesses_per_mac


@dataclass(frozen=True)
class WorkloadStats:
    layers: tuple[LayerStats, ...]
    graph: GraphStats | None = None  # how the layers connect (mapper/workload_graph.py)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def total_weights(self) -> int:
        return sum(layer.weights for layer in self.layers)

    @property
    def worst_case_dram_accesses(self) -> int:
        return sum(layer.no_reuse_dram_accesses for layer in self.layers)

    def to_json(self) -> dict:
        return {
            "layers": [{"name": layer.name, "macs": layer.macs, "weights": layer.weights} for layer in self.layers],
            "total_macs": self.total_macs,
            "total_weights": self.total_weights,
            "worst_case_dram_accesses": self.worst_case_dram_accesses,
            **({"graph": self.graph.to_json()} if self.graph else {}),
        }


def parameters(problem: Problem) -> int:
    """The layer's trained weights: its Weights tensor, unless that tensor varies with
    the batch B (the `matmul` shorthand's), in which case it is data computed from the
    input (attention's K^T and V), not parameters. Biases are not counted."""
    weights = next((t for t in problem.tensors if t.name == "Weights"), None)
    if weights is None or "B" in weights.dims:
        return 0
    return problem.tensor_size(weights)


def no_reuse_accesses_per_mac(problem: Problem) -> int:
    """Outermost-level accesses per MAC with no reuse at all: each operand read, the
    partial sum read and written back (4 for a convolution or a matmul)."""
    return len(problem.tensors) + 1


def workload_stats(problems: tuple[Problem, ...], graph: GraphStats | None = None) -> WorkloadStats:
    return WorkloadStats(tuple(
        LayerStats(p.name, " ".join(f"{d}{p.bounds[d]}" for d in p.dims), p.macs, parameters(p),
                   p.macs * no_reuse_accesses_per_mac(p)) for p in problems
    ), graph)


def si(count: float) -> str:
    """A count the way papers quote it: 724.4M, 15.47G, 60.6k."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= factor:
            return f"{count / factor:.4g}{suffix}"
    return str(count)


def stats_table(stats: WorkloadStats) -> str:
    """Per layer shape, MACs and weights, then the totals and the worst case."""
    rows = [("layer", "shape", "MACs", "weights")]
    rows += [(layer.name, layer.shape, f"{layer.macs:,}", f"{layer.weights:,}") for layer in stats.layers]
    lines = [table(rows)]
    per_mac = stats.worst_case_dram_accesses / stats.total_macs if stats.total_macs else 0
    lines += [
        "",
        f"layers: {len(stats.layers)}",
        f"total MACs: {stats.total_macs:,} ({si(stats.total_macs)})",
        f"total weights: {stats.total_weights:,} ({si(stats.total_weights)})",
        f"worst-case DRAM accesses (no reuse, {per_mac:g} per MAC): "
        f"{stats.worst_case_dram_accesses:,} ({si(stats.worst_case_dram_accesses)})",
    ]
    if stats.graph is not None:
        lines += graph_lines(stats.graph)
    return "\n".join(lines)


def graph_lines(graph: GraphStats) -> list[str]:
    """How the layers connect: edges (how many inferred), sources and sinks, branches
    and joins, the largest tensor passed between layers."""
    inferred = sum(1 for edge in graph.edges if edge[3])
    named = ", ".join(graph.branches) or "none"
    joined = ", ".join(graph.joins) or "none"
    lines = [f"graph: {len(graph.edges)} edges ({inferred} inferred where channels connect, "
             f"{len(graph.edges) - inferred} named by the workload's inputs); sources: {', '.join(graph.sources)}; "
             f"sinks: {', '.join(graph.sinks)}",
             f"branches (outputs read by several layers): {named}; joins (layers reading several): {joined}"]
    if graph.largest:
        lines.append(f"largest tensor between layers: {graph.largest[0]}'s output, {graph.largest[1]:,} words "
                     f"({si(graph.largest[1])})")
    return lines
