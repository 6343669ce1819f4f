"""Import the layers of an ONNX model as a native workload (`mapper import-onnx`).

Only the operators that are loop nests of multiply-accumulates become layers: Conv
(grouped and depthwise included) and Gemm and MatMul. Every other operator (activations,
pooling, normalization, reshapes, element-wise arithmetic) is counted as skipped, so the
user sees what the workload leaves out. Tensor shapes come from ONNX's shape inference;
a symbolic batch dimension is taken as 1 (`--batch` scales it later). Weights kept in
external data files are never read (models are often shared without them): only small
integer tensors there, which may be shapes that shape inference needs.

A Gemm or MatMul with one constant operand (an initializer or a Constant node's output)
is a `linear` layer whose weights are that operand; one of two activations, such as
attention's, is a `matmul` with both operands batched by B (always written, B = 1
included, so that `mapper stats` counts no weights for it).

The graph's edges are kept as the workload's `inputs` (mapper/workload_graph.py): each
layer reads the imported layers whose outputs reach it, through any skipped operators
between them (a residual Add joins two, a Concat several, a Relu passes one on).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .specs.errors import SpecError

IMPORTED_OPS = ("Conv", "Gemm", "MatMul")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_SHAPE_TENSOR_SIZE = 64  # integer initializers up to this many elements may be shapes: read when external
Layer = dict[str, dict[str, Any]]  # {"conv" | "linear" | "matmul": {fields}}


@dataclass
class OnnxImport:
    name: str
    layers: list[Layer] = field(default_factory=list)
    imported: Counter[str] = field(default_factory=Counter)  # ONNX op type -> layers made of it
    skipped: Counter[str] = field(default_factory=Counter)  # ONNX op type -> nodes left out
    inputs: dict[str, list[str]] = field(default_factory=dict)  # layer -> the layers whose outputs it reads


def import_onnx(path: str | Path) -> OnnxImport:
    """The Conv, Gemm and MatMul nodes of the model's main graph, in graph order."""
    onnx = _onnx_module(path)
    if not Path(path).is_file():
        raise SpecError(path, "", "no such file", "a path to an ONNX model file")
    try:
        # Only shapes are needed: the weights, often in an external file that is not
        # shipped with the model, are never read.
        model = onnx.load(str(path), load_external_data=False)
        missing = _load_shape_data(onnx, model, Path(path).parent)
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as error:  # onnx raises protobuf, OSError and its own errors alike
        raise SpecError(path, "", f"a file onnx cannot read ({type(error).__name__}: {error})",
                        "an ONNX model (.onnx)") from None
    graph = model.graph
    shapes = _shapes(graph)
    fix = "export the model with fixed input shapes" + (
        f", and put {', '.join(missing)} beside it (shape inference needs the shapes it holds)" if missing else "")
    constants = {t.name for t in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    result = OnnxImport(_safe_name(graph.name or Path(path).stem, "model"))
    names: set[str] = set()
    layer_of: dict[int, str] = {}  # node index -> the layer it became
    producer = {value: i for i, node in enumerate(graph.node) for value in node.output}
    for index, node in enumerate(graph.node):
        if node.op_type not in IMPORTED_OPS:
            result.skipped[node.op_type] += 1
            continue
        name = _unique(_safe_name(node.name, f"{node.op_type.lower()}_{index}"), names)
        layer_of[index] = name
        reads = _layers_reaching(graph, index, producer, layer_of, constants)
        if reads:
            result.inputs[name] = reads
        where = f"graph.node[{index}] ({node.op_type} {node.name!r})"
        operands = [_shape(shapes, value, path, where, fix) for value in node.input[:2]]
        if node.op_type == "Conv":
            output = _shape(shapes, node.output[0], path, where, fix)
            layer = _conv(name, node, operands, output, path, where)
        else:
            a_constant, b_constant = (value in constants for value in node.input[:2])
            layer = _gemm(name, node, operands, a_constant, b_constant, path, where)
        result.layers.append(layer)
        result.imported[node.op_type] += 1
    if not result.layers:
        raise SpecError(path, "graph.node", "no Conv, Gemm or MatMul node", "a model with at least one of them")
    return result


def _layers_reaching(graph: Any, index: int, producer: dict[str, int], layer_of: dict[int, str],
                     constants: set[str]) -> list[str]:
    """The imported layers whose outputs reach node `index`'s operands, through skipped
    nodes, in graph order."""
    found, seen = set(), set()
    stack = [value for value in graph.node[index].input if value and value not in constants]
    while stack:
        value = stack.pop()
        if value in seen or value not in producer:  # a graph input, or visited
            continue
        seen.add(value)
        source = producer[value]
        if source in layer_of:
            found.add(source)
        else:
            stack += [v for v in graph.node[source].input if v and v not in constants]
    return [layer_of[i] for i in sorted(found)]


def workload_yaml(result: OnnxImport, source: str | Path) -> str:
    """The native workload file, headed by where it came from and what was left out."""
    counts = ", ".join(f"{op} {n}" for op, n in sorted(result.imported.items()))
    skipped = ", ".join(f"{op} {n}" for op, n in sorted(result.skipped.items())) or "nothing"
    lines = [
        f"# Imported from {Path(source).name} by `mapper import-onnx`: {len(result.layers)} layers ({counts}).",
        f"# Source: the ONNX model {Path(source).name}; shapes by ONNX shape inference.",
        f"# Skipped operators: {skipped}.",
        "workload:",
        f"  name: {json.dumps(result.name)}",  # quoted: a name of digits must stay a string
        "  layers:",
    ]
    lines += ["    - " + yaml.safe_dump(layer, default_flow_style=True, sort_keys=False, width=10_000).strip()
              for layer in result.layers]
    if result.inputs:
        lines.append("  inputs:  # the layers whose outputs each layer reads, through the skipped operators")
        lines += [f"    {json.dumps(name)}: {json.dumps(reads)}" for name, reads in result.inputs.items()]
    return "\n".join(lines) + "\n"


def _onnx_module(path: str | Path) -> Any:
    """onnx is an optional dependency: say how to get it rather than fail on import."""
    try:
        import onnx
        import onnx.shape_inference
    except ImportError:
        raise SpecError(path, "", "no onnx package to read it with", "an installed onnx package",
                        "pip install 'mapper[onnx]' (or pip install onnx)") from None
    return onnx


def _load_shape_data(onnx: Any, model: Any, folder: Path) -> list[str]:
    """Read, from the model's external data files, the values of the small integer
    initializers kept there: the shapes that Reshape and the like take as tensors, which
    shape inference needs. Returns the files it could not read them from (the model's
    weights may be left out of what is shipped); the shapes that depend on them stay
    unknown."""
    from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_tensor, uses_external_data

    integers = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}
    missing = []
    for tensor in model.graph.initializer:
        if uses_external_data(tensor) and tensor.data_type in integers and prod(tensor.dims) <= _SHAPE_TENSOR_SIZE:
            try:
                load_external_data_for_tensor(tensor, str(folder))
            except Exception:  # missing, unreadable or out of bounds: the shapes it gives stay unknown
                missing.append(ExternalDataInfo(tensor).location)
    return sorted(set(missing))


def _shapes(graph: Any) -> dict[str, list[int | str | None]]:
    """Every tensor's shape that the graph declares or shape inference found; a dimension
    is an int, a symbol (str) or None (unknown)."""
    shapes: dict[str, list[int | str | None]] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = info.type.tensor_type
        if tensor_type.HasField("shape"):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                 for d in tensor_type.shape.dim]
    for initializer in graph.initializer:
        shapes[initializer.name] = list(initializer.dims)
    return shapes


def _shape(shapes: dict[str, list[int | str | None]], value: str, path: str | Path, where: str,
           fix: str) -> list[int]:
    """A static shape; a symbolic leading (batch) dimension counts as 1. `fix`: what to
    do when shape inference could not find it."""
    shape = shapes.get(value)
    if shape is None:
        raise SpecError(path, where, f"tensor {value!r} of unknown shape", "tensors whose shapes ONNX shape "
                        "inference can find", fix)
    dims = [1 if i == 0 and not isinstance(d, int) else d for i, d in enumerate(shape)]
    if any(isinstance(d, int) and d <= 0 for d in dims):
        raise SpecError(path, where, f"tensor {value!r} of shape {shape}", "a size of at least 1 along every axis",
                        "an empty tensor computes nothing: leave its layer out of the model")
    if not all(isinstance(d, int) for d in dims):
        raise SpecError(path, where, f"tensor {value!r} of shape {shape}", "static shapes (only a leading "
                        "batch dimension may be symbolic)", "export the model with fixed input sizes")
    return dims  # type: ignore[return-value]


def _attributes(node: Any) -> dict[str, Any]:
    import onnx.helper

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _conv(name: str, node: Any, operands: list[list[int]], output: list[int], path: str | Path,
          where: str) -> Layer:
    """A 1-D or 2-D convolution as the native conv: P and Q from the inferred output, so
    any padding (asymmetric, auto_pad) is already accounted for."""
    (x, w), attrs = operands, _attributes(node)
    spatial = len(x) - 2
    if spatial not in (1, 2) or len(w) != len(x) or len(output) != len(x):
        raise SpecError(path, where, f"a convolution over {spatial} spatial dimensions (input {x}, weights {w})",
                        "1-D or 2-D convolutions")
    strides = list(attrs.get("strides", [1] * spatial))
    dilations = list(attrs.get("dilations", [1] * spatial))
    kernel, out = w[2:], output[2:]
    if spatial == 1:  # a row: height 1
        strides, dilations, kernel, out = [1, *strides], [1, *dilations], [1, *kernel], [1, *out]
    fields: dict[str, Any] = {"name": name, "N": x[0], "C": x[1], "M": w[0], "P": out[0], "Q": out[1],
                              "R": kernel[0], "S": kernel[1]}
    for key, pair in (("stride", strides), ("dilation", dilations)):
        if pair != [1, 1]:
            fields[key] = pair[0] if pair[0] == pair[1] else pair
    groups = int(attrs.get("group", 1))
    if groups != 1:
        fields["groups"] = groups
    return {"conv": fields}


def _gemm(name: str, node: Any, operands: list[list[int]], a_constant: bool, b_constant: bool,
          path: str | Path, where: str) -> Layer:
    """Gemm (2-D, optionally transposed) or MatMul (numpy rules: 1-D operands get a unit
    dimension, leading dimensions broadcast into a batch) as linear or matmul."""
    a, b = (list(shape) for shape in operands)
    if node.op_type == "Gemm":
        attrs = _attributes(node)
        if attrs.get("transA", 0):
            a = a[::-1]
        if attrs.get("transB", 0):
            b = b[::-1]
    a = [1, *a] if len(a) == 1 else a
    b = [*b, 1] if len(b) == 1 else b
    (m, k), (k2, n) = a[-2:], b[-2:]
    if k != k2:
        raise SpecError(path, where, f"operands of shapes {operands[0]} and {operands[1]}",
                        "operands whose inner dimensions agree", "check the model's shapes")
    batch_a, batch_b = prod(a[:-2]), prod(b[:-2])
    try:
        batch = prod(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
    except ValueError:
        raise SpecError(path, where, f"operands of shapes {operands[0]} and {operands[1]}",
                        "leading (batch) dimensions that broadcast") from None
    if b_constant and batch_b == 1:
        return {"linear": _matmul_fields(name, batch, m, k, n)}
    if a_constant and batch_a == 1:  # weights on the left: Y^T = B^T A^T, the same MACs
        return {"linear": _matmul_fields(name, batch, n, k, m)}
    return {"matmul": {"name": name, "B": batch, "M": m, "K": k, "N": n}}


def _matmul_fields(name: str, batch: int, m: int, k: int, n: int) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": name, "M": m, "K": k, "N": n}
    if batch > 1:
        fields["B"] = batch
    return fields


def _safe_name(name: str, fallback: str) -> str:
    """A layer name usable as a directory name: ONNX's "/layer1/conv1/Conv" -> "layer1_conv1_Conv"."""
    cleaned = _UNSAFE_NAME_CHARS.sub("_", name).strip("_.")
    return cleaned or fallback


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate
