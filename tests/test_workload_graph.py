"""A workload's layers as a graph (mapper/workload_graph.py): the chain a sequential
zoo network's channels make, the edges a workload's `inputs` name, mistakes in them,
and what `mapper stats` reports."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mapper.cli import main
from mapper.specs.errors import SpecError
from mapper.specs.native import load_workload_inputs
from mapper.workload_graph import graph_stats, workload_graph

RESIDUAL = textwrap.dedent("""\
    workload:
      name: block
      layers:
        - conv: {name: stem, C: 3, M: 16, P: 8, Q: 8, R: 3, S: 3}
        - conv: {name: branch2a, C: 16, M: 8, P: 8, Q: 8, R: 1, S: 1}
        - conv: {name: branch2b, C: 8, M: 16, P: 8, Q: 8, R: 3, S: 3}
        - conv: {name: after, C: 16, M: 32, P: 8, Q: 8, R: 1, S: 1}
        - linear: {name: fc, M: 1, K: 32, N: 10}
      inputs:
        after: [stem, branch2b]     # the residual sum of the block's input and its last conv
    """)


def residual(tmp_path: Path, text: str = RESIDUAL) -> Path:
    path = tmp_path / "block.yaml"
    path.write_text(text)
    return path


def test_a_sequential_network_is_the_chain_its_channels_make() -> None:
    problems, inputs = load_workload_inputs("alexnet")
    graph = workload_graph(problems, inputs)
    names = [p.name for p in problems]
    assert list(graph.edges) == list(zip(names, names[1:]))  # conv5 (M256) -> fc6 (C256) -> fc7 -> fc8
    assert all(data["inferred"] for _, _, data in graph.edges(data=True))
    stats = graph_stats(graph)
    assert stats.sources == ("conv1",) and stats.sinks == ("fc8",) and not stats.branches and not stats.joins
    assert stats.largest == ("conv1", 96 * 55 * 55)


def test_named_inputs_make_the_edges_and_the_rest_are_inferred(tmp_path: Path) -> None:
    problems, inputs = load_workload_inputs(residual(tmp_path))
    assert inputs == {"after": ("stem", "branch2b")}
    graph = workload_graph(problems, inputs)
    edges = {(a, b): data["inferred"] for a, b, data in graph.edges(data=True)}
    assert edges == {("stem", "branch2a"): True, ("branch2a", "branch2b"): True, ("stem", "after"): False,
                     ("branch2b", "after"): False, ("after", "fc"): True}  # a linear's K reads a conv's M
    stats = graph_stats(graph)
    assert stats.branches == ("stem",) and stats.joins == ("after",)
    assert graph.edges["stem", "after"]["words"] == 16 * 8 * 8


@pytest.mark.parametrize("change, key_path, found", [
    ("after: [stem, branch2c]", "workload.inputs.after[1]", "'branch2c'"),
    ("after: [stem, fc]", "workload.inputs.after[1]", "'fc'"),
    ("aftr: [stem, branch2b]", "workload.inputs", "'aftr'"),
])
def test_a_mistake_in_the_inputs_says_where(tmp_path: Path, change: str, key_path: str, found: str) -> None:
    with pytest.raises(SpecError) as info:
        load_workload_inputs(residual(tmp_path, RESIDUAL.replace("after: [stem, branch2b]", change)))
    assert info.value.key_path == key_path and found in str(info.value)


def test_an_empty_list_says_a_layer_reads_only_the_networks_input(tmp_path: Path) -> None:
    text = RESIDUAL.replace("after: [stem, branch2b]", "after: [stem, branch2b]\n    branch2a: []")
    problems, inputs = load_workload_inputs(residual(tmp_path, text))
    graph = workload_graph(problems, inputs)
    assert graph.in_degree("branch2a") == 0 and ("stem", "branch2a") not in graph.edges


def test_the_zoos_residual_and_concat_edges() -> None:
    """ResNet-50: a block reads every layer whose output its input sums (the stage's
    projection and each earlier block's last conv); GoogLeNet: a module's four branches
    read the previous module's four outputs, concatenated; BERT: attention reads Q and K."""
    problems, inputs = load_workload_inputs("resnet50")
    graph = workload_graph(problems, inputs)
    assert sorted(graph.predecessors("res2c_branch2a")) == ["res2a_branch1", "res2a_branch2c", "res2b_branch2c"]
    assert list(graph.predecessors("res3a_branch1")) == list(graph.predecessors("res3a_branch2a"))
    assert not any(data["inferred"] for _, _, data in graph.edges(data=True))
    stats = graph_stats(graph)
    assert stats.sources == ("conv1",) and stats.sinks == ("fc1000",)
    problems, inputs = load_workload_inputs("googlenet")
    graph = workload_graph(problems, inputs)
    assert sorted(graph.predecessors("inception_3b_1x1")) == [
        "inception_3a_1x1", "inception_3a_3x3", "inception_3a_5x5", "inception_3a_pool_proj"]
    problems, inputs = load_workload_inputs("bert-base")
    graph = workload_graph(problems, inputs)
    assert sorted(graph.predecessors("attention_scores")) == ["k_projection", "q_projection"]
    assert graph_stats(graph).sources == ("q_projection", "k_projection", "v_projection")


def test_mapper_stats_reports_the_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stats.json"
    assert main(["stats", str(residual(tmp_path)), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "graph: 5 edges (3 inferred where channels connect, 2 named by the workload's inputs)" in printed
    assert "joins (layers reading several): after" in printed
    graph = json.loads(out.read_text())["graph"]
    assert {"from": "stem", "to": "after", "words": 1024, "inferred": False} in graph["edges"]
    assert graph["largest_intermediate"] == {"layer": "after", "words": 32 * 8 * 8}
