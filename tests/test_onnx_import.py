"""`mapper import-onnx`: Conv (grouped and depthwise included), Gemm and MatMul nodes of
small graphs built here become native layers of the right shapes, which load back
through the native loader; every other operator is counted as skipped."""

from __future__ import annotations

import sys
from math import prod
from pathlib import Path

import numpy as np
import onnx  # in the test extra: the importer is tested wherever the tests run
import pytest
import yaml
from onnx import TensorProto, helper, numpy_helper

from mapper.cli import main
from mapper.onnx_import import import_onnx, workload_yaml
from mapper.problem import Problem
from mapper.specs.errors import SpecError
from mapper.specs.files import shipped_specs_dir
from mapper.specs.native import load_workload, load_workload_inputs
from mapper.workload_graph import graph_stats, workload_graph


def value(name: str, shape: list[int | str] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def weights(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def save(tmp_path: Path, nodes: list, inputs: list, initializers: list, name: str = "net") -> Path:
    graph = helper.make_graph(nodes, name, inputs, [value(nodes[-1].output[0], None)], initializers)
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return path


def round_trip(tmp_path: Path, model: Path) -> dict[str, Problem]:
    """Import, write the YAML, and read it back with the native loader."""
    workload = tmp_path / "workload.yaml"
    workload.write_text(workload_yaml(import_onnx(model), model))
    return {p.name: p for p in load_workload(workload)}


def sizes(problem: Problem) -> dict[str, int]:
    return {t.name: problem.tensor_size(t) for t in problem.tensors}


@pytest.fixture
def cnn(tmp_path: Path) -> Path:
    """A strided padded conv, ReLU, a depthwise conv, a grouped 1x1 conv, pooling, an FC."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="/stem/Conv", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["b", "w_dw"], ["c"], name="dw", group=16, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c", "w_g"], ["d"], name="grouped", group=4),
        helper.make_node("Relu", ["d"], ["e"]),
        helper.make_node("GlobalAveragePool", ["e"], ["f"]),
        helper.make_node("Flatten", ["f"], ["g"]),
        helper.make_node("Gemm", ["g", "w_fc", "b_fc"], ["y"], name="fc", transB=1),
    ]
    initializers = [weights("w1", 16, 3, 3, 3), weights("w_dw", 16, 1, 3, 3), weights("w_g", 32, 4, 1, 1),
                    weights("w_fc", 10, 32), weights("b_fc", 10)]
    return save(tmp_path, nodes, [value("x", ["batch", 3, 32, 32])], initializers)


def test_convolutions_and_gemm_get_their_shapes(tmp_path: Path, cnn: Path) -> None:
    layers = round_trip(tmp_path, cnn)
    assert list(layers) == ["stem_Conv", "dw", "grouped", "fc"]
    stem, dw, grouped, fc = layers.values()
    assert stem.bounds == {"N": 1, "M": 16, "C": 3, "P": 16, "Q": 16, "R": 3, "S": 3}  # symbolic batch -> 1
    assert stem.tensor("Inputs").ranks[2] == ((2, "P"), (1, "R"))  # stride 2
    assert dw.bounds == {"G": 16, "N": 1, "M": 1, "C": 1, "P": 16, "Q": 16, "R": 3, "S": 3}  # depthwise
    assert grouped.bounds == {"G": 4, "N": 1, "M": 8, "C": 4, "P": 16, "Q": 16, "R": 1, "S": 1}
    assert sizes(grouped) == {"Weights": 32 * 4, "Inputs": 16 * 16 * 16, "Outputs": 32 * 16 * 16}
    assert fc.bounds == {"M": 1, "N": 10, "K": 32}  # transB: the weights are stored [N, K]
    assert sizes(fc)["Weights"] == 32 * 10


def test_other_operators_are_counted_as_skipped(cnn: Path) -> None:
    result = import_onnx(cnn)
    assert result.imported == {"Conv": 3, "Gemm": 1}
    assert result.skipped == {"Relu": 2, "GlobalAveragePool": 1, "Flatten": 1}
    assert "# Skipped operators: Flatten 1, GlobalAveragePool 1, Relu 2." in workload_yaml(result, cnn)


def test_matmul_with_constant_weights_is_linear_and_of_two_activations_is_batched(tmp_path: Path) -> None:
    """An attention head: projections by constant weights, then scores of Q and K^T."""
    nodes = [
        helper.make_node("MatMul", ["x", "w_q"], ["q"], name="q_proj"),
        helper.make_node("MatMul", ["x", "w_k"], ["k"], name="k_proj"),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="scores"),
    ]
    model = save(tmp_path, nodes, [value("x", [2, 16, 8])], [weights("w_q", 8, 4), weights("w_k", 8, 4)])
    layers = round_trip(tmp_path, model)
    projection, scores = layers["q_proj"], layers["scores"]
    assert projection.bounds == {"B": 2, "M": 16, "N": 4, "K": 8}
    assert sizes(projection) == {"Inputs": 2 * 16 * 8, "Weights": 8 * 4, "Outputs": 2 * 16 * 4}  # shared weights
    assert scores.bounds == {"B": 2, "M": 16, "N": 16, "K": 4}
    assert sizes(scores)["Weights"] == 2 * 4 * 16  # K^T: an activation, one per batch
    assert import_onnx(model).skipped == {"Transpose": 1}


def test_unbatched_matmul_of_two_activations_still_says_b(tmp_path: Path) -> None:
    model = save(tmp_path, [helper.make_node("MatMul", ["a", "b"], ["c"], name="mm")],
                 [value("a", [5, 6]), value("b", [6, 7])], [])
    assert import_onnx(model).layers == [{"matmul": {"name": "mm", "B": 1, "M": 5, "K": 6, "N": 7}}]


def test_gemm_with_its_weights_on_the_left(tmp_path: Path) -> None:
    model = save(tmp_path, [helper.make_node("Gemm", ["w", "x"], ["y"], name="left")],
                 [value("x", [6, 3])], [weights("w", 5, 6)])
    (layer,) = round_trip(tmp_path, model).values()
    assert layer.bounds == {"M": 3, "N": 5, "K": 6} and layer.macs == 5 * 6 * 3


def test_conv1d_is_a_row(tmp_path: Path) -> None:
    model = save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"], name="c1d", strides=[2])],
                 [value("x", [1, 4, 21])], [weights("w", 8, 4, 5)])
    (layer,) = round_trip(tmp_path, model).values()
    assert layer.bounds == {"N": 1, "M": 8, "C": 4, "P": 1, "Q": 9, "R": 1, "S": 5}
    assert layer.macs == 8 * 4 * 9 * 5


def test_names_are_made_unique_and_safe_for_directories(tmp_path: Path) -> None:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="/block/mm"),
             helper.make_node("MatMul", ["y", "w"], ["z"], name="/block/mm"),
             helper.make_node("MatMul", ["z", "w"], ["out"])]
    model = save(tmp_path, nodes, [value("x", [2, 3])], [weights("w", 3, 3)])
    assert list(round_trip(tmp_path, model)) == ["block_mm", "block_mm_2", "matmul_2"]


def test_unknown_spatial_shape_is_an_error(tmp_path: Path) -> None:
    model = save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"], name="c")],
                 [value("x", [1, 3, "height", "width"])], [weights("w", 8, 3, 3, 3)])
    with pytest.raises(SpecError, match="static shapes") as error:
        import_onnx(model)
    assert "graph.node[0] (Conv 'c')" in str(error.value) and "fixed input sizes" in str(error.value)


def test_an_empty_axis_is_said_to_be_empty_not_symbolic(tmp_path: Path) -> None:
    model = save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [value("x", [0, 3])],
                 [weights("w", 3, 3)])
    with pytest.raises(SpecError, match="a size of at least 1 along every axis"):
        import_onnx(model)


def test_a_model_without_layers_is_an_error(tmp_path: Path) -> None:
    model = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [value("x", [1, 4])], [])
    with pytest.raises(SpecError, match="no Conv, Gemm or MatMul node"):
        import_onnx(model)


def save_with_external_weights(tmp_path: Path, nodes: list, inputs: list, initializers: list) -> Path:
    """As models are shared: every tensor's data in weights.bin beside the model."""
    graph = helper.make_graph(nodes, "net", inputs, [value(nodes[-1].output[0], None)], initializers)
    path = tmp_path / "net.onnx"
    onnx.save_model(helper.make_model(graph), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    return path


def conv_reshape_matmul() -> tuple[list, list, list]:
    """A conv whose output a Reshape, by a shape given as an initializer, flattens for an FC."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["a", "shape"], ["b"]),
             helper.make_node("MatMul", ["b", "w_fc"], ["y"], name="fc")]
    initializers = [weights("w", 8, 3, 3, 3), numpy_helper.from_array(np.array([1, 8 * 16 * 16], np.int64), "shape"),
                    weights("w_fc", 8 * 16 * 16, 10)]
    return nodes, [value("x", [1, 3, 16, 16])], initializers


def test_a_model_whose_external_weights_are_missing_imports_with_its_shapes(tmp_path: Path) -> None:
    nodes, inputs, initializers = conv_reshape_matmul()
    model = save_with_external_weights(tmp_path, nodes[:1], inputs, initializers[:1])
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(Exception):
        onnx.load(str(model))  # what reading the whole model does
    assert main(["import-onnx", str(model), "-o", str(tmp_path / "w.yaml")]) == 0
    (conv,) = load_workload(tmp_path / "w.yaml")
    assert conv.bounds == {"N": 1, "M": 8, "C": 3, "P": 16, "Q": 16, "R": 3, "S": 3}


def test_shapes_kept_in_the_external_file_are_read_from_it(tmp_path: Path) -> None:
    model = save_with_external_weights(tmp_path, *conv_reshape_matmul())
    assert round_trip(tmp_path, model)["fc"].bounds == {"M": 1, "N": 10, "K": 8 * 16 * 16}


def test_a_shape_lost_with_the_external_file_says_which_file(tmp_path: Path) -> None:
    model = save_with_external_weights(tmp_path, *conv_reshape_matmul())
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(SpecError, match="unknown shape") as error:
        import_onnx(model)
    assert "graph.node[2] (MatMul 'fc')" in str(error.value) and "put weights.bin beside it" in str(error.value)


# --- the command


def test_command_writes_the_workload_and_lists_what_it_skipped(tmp_path: Path, cnn: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "imported" / "cnn.yaml"
    assert main(["import-onnx", str(cnn), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}: 4 layers (Conv 3, Gemm 1)" in printed
    assert "skipped operators: Relu 2, GlobalAveragePool 1, Flatten 1" in printed
    macs = sum(p.macs for p in load_workload(out))
    assert macs == 16 * 3 * 9 * 16 * 16 + 16 * 9 * 16 * 16 + 32 * 4 * 16 * 16 + 32 * 10
    assert main(["stats", str(out)]) == 0


@pytest.mark.parametrize(("content", "found"), [
    (None, "no such file"),
    (b"not a protobuf", "a file onnx cannot read"),
])
def test_command_rejects_an_unreadable_model(tmp_path: Path, capsys: pytest.CaptureFixture,
                                             content: bytes | None, found: str) -> None:
    model = tmp_path / "model.onnx"
    if content is not None:
        model.write_bytes(content)
    assert main(["import-onnx", str(model), "-o", str(tmp_path / "w.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {model}: found {found}") and "Traceback" not in err
    assert not (tmp_path / "w.yaml").exists()


def test_command_without_onnx_says_how_to_install_it(tmp_path: Path, cnn: Path, capsys: pytest.CaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # what an environment without onnx imports
    assert main(["import-onnx", str(cnn), "-o", str(tmp_path / "w.yaml")]) == 2
    assert "pip install 'mapper[onnx]'" in capsys.readouterr().err


def test_macs_agree_with_the_onnx_shapes(tmp_path: Path, cnn: Path) -> None:
    """Each imported conv does one MAC per output element and weight of its group."""
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(cnn))).graph
    shapes = {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim] for v in graph.value_info}
    shapes |= {t.name: list(t.dims) for t in graph.initializer}
    layers = round_trip(tmp_path, cnn)
    for node in graph.node:
        if node.op_type == "Conv":
            layer = layers[node.name.strip("/").replace("/", "_")]
            per_output = prod(shapes[node.input[1]][1:])
            assert layer.macs == prod(shapes[node.output[0]]) * per_output


def test_a_zoo_network_written_as_onnx_imports_as_the_zoo_layers(tmp_path: Path) -> None:
    """EfficientNet-B4's 161 convolutions (strided, padded, depthwise, 1x1, the FC
    layers as 1x1 over a 1x1 map) as ONNX Conv nodes give back the zoo's loop nests."""
    path = shipped_specs_dir() / "workloads" / "efficientnet-b4.yaml"
    layers = [layer["conv"] for layer in yaml.safe_load(path.read_text())["workload"]["layers"]]
    nodes, inputs = [], []
    for i, conv in enumerate(layers):
        stride, padding, groups = conv.get("stride", 1), conv.get("padding", 0), conv.get("groups", 1)
        nodes.append(helper.make_node("Conv", [f"x{i}", f"w{i}"], [f"y{i}"], name=conv["name"], group=groups,
                                      strides=[stride, stride], pads=[padding] * 4))
        inputs += [value(f"x{i}", [1, conv["C"], conv["H"], conv["W"]]),
                   value(f"w{i}", [conv["M"], conv["C"] // groups, conv["R"], conv["S"]])]
    model = save(tmp_path, nodes, inputs, [])
    imported = round_trip(tmp_path, model)
    zoo = {p.name: p for p in load_workload(path)}
    assert list(imported) == list(zoo)
    for name, problem in zoo.items():
        assert imported[name].bounds == problem.bounds, name
        assert imported[name].tensors == problem.tensors, name


def test_a_residual_networks_skip_edges_are_kept(tmp_path: Path) -> None:
    """A residual block: conv a -> relu -> conv b, Add(b, a's output) -> relu -> conv c.
    The workload names c's inputs as both b and a, through the Add and the Relus."""
    nodes = [
        helper.make_node("Conv", ["x", "w_a"], ["a"], name="a", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["a_relu"]),
        helper.make_node("Conv", ["a_relu", "w_b"], ["b"], name="b", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["b", "a_relu"], ["sum"]),
        helper.make_node("Relu", ["sum"], ["sum_relu"]),
        helper.make_node("Conv", ["sum_relu", "w_c"], ["y"], name="c"),
    ]
    initializers = [weights("w_a", 8, 3, 3, 3), weights("w_b", 8, 8, 3, 3), weights("w_c", 4, 8, 1, 1)]
    model = save(tmp_path, nodes, [value("x", [1, 3, 16, 16])], initializers)
    result = import_onnx(model)
    assert result.inputs == {"b": ["a"], "c": ["a", "b"]}
    workload = tmp_path / "workload.yaml"
    workload.write_text(workload_yaml(result, model))
    problems, inputs = load_workload_inputs(workload)
    graph = workload_graph(problems, inputs)
    assert sorted(graph.edges) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert not any(data["inferred"] for _, _, data in graph.edges(data=True))
    stats = graph_stats(graph)
    assert stats.branches == ("a",) and stats.joins == ("c",) and stats.sources == ("a",) and stats.sinks == ("c",)
    assert stats.largest == ("a", 8 * 16 * 16)


def test_layers_named_as_pytorch_exports_them_load_again_with_their_edges(tmp_path: Path) -> None:
    """torch.onnx names nodes by module path ("/layer1/layer1.0/conv1/Conv"): the
    dotted names the import keeps must be names the workload's inputs may give."""
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="/layer1/layer1.0/conv1/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="/layer1/layer1.0/conv2/Conv", pads=[1, 1, 1, 1])]
    model = save(tmp_path, nodes, [value("x", [1, 4, 8, 8])], [weights("w1", 4, 4, 3, 3), weights("w2", 4, 4, 3, 3)])
    workload = tmp_path / "workload.yaml"
    workload.write_text(workload_yaml(import_onnx(model), model))
    problems, inputs = load_workload_inputs(workload)
    assert [p.name for p in problems] == ["layer1_layer1.0_conv1_Conv", "layer1_layer1.0_conv2_Conv"]
    assert inputs == {"layer1_layer1.0_conv2_Conv": ("layer1_layer1.0_conv1_Conv",)}


def test_a_chain_of_layers_reads_through_skipped_operators(cnn: Path) -> None:
    result = import_onnx(cnn)
    assert result.inputs == {"dw": ["stem_Conv"], "grouped": ["dw"], "fc": ["grouped"]}
