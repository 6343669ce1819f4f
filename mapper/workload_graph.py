"""A workload's layers as a directed graph of tensors (networkx): an edge from a layer
to each layer that reads its output, weighted by the words of that output.

The edges are the workload's `inputs` where it names them (residual and concat edges,
an ONNX model's graph: mapper/onnx_import.py writes them); a layer it does not name
reads the nearest earlier layer whose output channels are its input channels (a conv's
M x G and C x G, a matmul's or linear's N and K), which is a sequential network's chain
through the pooling and activations a workload leaves out. Such edges are marked
`inferred`. A layer named with no inputs (`[]`), or with neither, is a source of the
graph: it reads the network's input (or something the workload does not say).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from .problem import Problem


def workload_graph(problems: tuple[Problem, ...], inputs: Mapping[str, tuple[str, ...]]) -> nx.DiGraph:
    """Nodes: the layers' names, in order (attribute `problem`); edges producer ->
    consumer with `words` (the producer's output) and `inferred`."""
    graph = nx.DiGraph()
    for index, problem in enumerate(problems):
        graph.add_node(problem.name, problem=problem)
        if problem.name in inputs:
            producers, inferred = list(inputs[problem.name]), False
        else:
            producer = _reads(problem, problems[:index])
            producers, inferred = ([] if producer is None else [producer.name]), True
        for name in producers:
            output = graph.nodes[name]["problem"]
            graph.add_edge(name, problem.name, words=output.tensor_size(output.output), inferred=inferred)
    return graph


def _reads(consumer: Problem, earlier: tuple[Problem, ...]) -> Problem | None:
    wanted = channels(consumer, "in")
    if wanted is None:
        return None
    return next((p for p in reversed(earlier) if channels(p, "out") == wanted), None)


def channels(problem: Problem, side: str) -> int | None:
    """A conv's input (C x G) or output (M x G) channels, a matmul's or linear's K or N;
    None for other layers."""
    bounds = problem.bounds
    if {"C", "M", "P", "Q"} <= bounds.keys():
        return bounds["C" if side == "in" else "M"] * bounds.get("G", 1)
    if {"M", "N", "K"} <= bounds.keys():
        return bounds["K" if side == "in" else "N"]
    return None


@dataclass(frozen=True)
class GraphStats:
    """What `mapper stats` reports of the graph."""

    edges: tuple[tuple[str, str, int, bool], ...]  # producer, consumer, words, inferred
    sources: tuple[str, ...]  # layers that read no layer of the workload
    sinks: tuple[str, ...]  # layers no layer reads
    branches: tuple[str, ...]  # layers read by more than one layer
    joins: tuple[str, ...]  # layers that read more than one layer
    largest: tuple[str, int] | None  # the layer whose output between layers is largest, in words

    def to_json(self) -> dict:
        return {"edges": [{"from": a, "to": b, "words": w, "inferred": i} for a, b, w, i in self.edges],
                "sources": list(self.sources), "sinks": list(self.sinks), "branches": list(self.branches),
                "joins": list(self.joins),
                "largest_intermediate": None if self.largest is None else
                {"layer": self.largest[0], "words": self.largest[1]}}


def graph_stats(graph: nx.DiGraph) -> GraphStats:
    edges = tuple((a, b, data["words"], data["inferred"]) for a, b, data in graph.edges(data=True))
    produced = {a: w for a, _, w, _ in edges}
    largest = max(produced.items(), key=lambda item: item[1]) if produced else None
    return GraphStats(edges, tuple(n for n in graph if graph.in_degree(n) == 0),
                      tuple(n for n in graph if graph.out_degree(n) == 0),
                      tuple(n for n in graph if graph.out_degree(n) > 1),
                      tuple(n for n in graph if graph.in_degree(n) > 1), largest)
