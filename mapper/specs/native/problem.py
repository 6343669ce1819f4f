"""The layers of a native spec: `problem` (one layer) and `workload` (several).

The forms a layer takes (conv, matmul, linear, a general einsum) and what each means
are in the package's docstring (mapper/specs/native/__init__.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema

from ...problem import Problem, Tensor, Term
from ..errors import File, SpecError, describe, did_you_mean, join_key_path
from ..fields import (IDENTIFIER, IDENTIFIER_SCHEMA, NAMED_ONLY, POSITIVE_DIGITS, POSITIVE_INT_SCHEMA, Identifier,
                      PositiveInt, SpecModel, Text, WordBits, invalid, is_int, pair, parse_sum, sum_pattern, validated)
from ..limits import LAYER_LIMIT, problem_too_large


def _rank(value: object) -> tuple[Term, ...]:
    """One tensor rank: "2*P + R" or [[2, P], [1, R]]."""
    allowed = 'a sum of dimensions with positive integer coefficients: "2*P + R" or [[2, P], [1, R]]'
    if isinstance(value, str):
        parsed = parse_sum(value)
        if parsed is None or any(c is not None and not c.isdigit() for c, _ in parsed):
            raise invalid(value, allowed)
        terms = [(1 if c is None else int(c), d) for c, d in parsed]
    elif isinstance(value, list) and value:
        terms = [tuple(t) if isinstance(t, list) else t for t in value]
        if not all(isinstance(t, tuple) and len(t) == 2 and is_int(t[0]) and isinstance(t[1], str)
                   and IDENTIFIER.fullmatch(t[1]) for t in terms):
            raise invalid(value, allowed)
    else:
        raise invalid(value, allowed)
    dims = [d for _, d in terms]
    if any(c <= 0 for c, _ in terms) or len(set(dims)) != len(dims):
        raise invalid(value, allowed + ", each dimension once")
    return tuple(terms)


Pair = pair(1, lambda n: [n, n], "[height, width], or one number for both")
Padding = pair(0, lambda n: [n, n], "[height, width], or one number for both")
# Precisions of the named tensors of a shorthand layer (conv, matmul, linear).
ShorthandPrecision = dict[Literal["Weights", "Inputs", "Outputs"], WordBits]


_RANK_SCHEMA = WithJsonSchema({"anyOf": [
    {"type": "string", "pattern": sum_pattern(POSITIVE_DIGITS)},
    {"type": "array", "minItems": 1, "items": {"type": "array", "items": [POSITIVE_INT_SCHEMA, IDENTIFIER_SCHEMA],
                                                "minItems": 2, "maxItems": 2}},
], "description": 'a sum of dimensions, each once, with positive integer coefficients: "2*P + R" or [[2, P], [1, R]]'})


class TensorSpec(SpecModel):
    """A tensor of an einsum, indexed by one sum of dimensions per rank."""

    name: Identifier
    ranks: Annotated[list[Annotated[tuple[Term, ...], PlainValidator(_rank), _RANK_SCHEMA]], Field(min_length=1)]
    read_write: bool = Field(False, description="the output (exactly one tensor of a problem)")
    word_bits: WordBits | None = Field(None, description="bits per element at every level; absent: each level's "
                                       "word_bits")


class EinsumSpec(SpecModel):
    """A general layer: its dimensions with their bounds, and the tensors they index."""

    name: Text
    dimensions: Annotated[dict[Identifier, PositiveInt], Field(min_length=1, json_schema_extra=NAMED_ONLY)]
    tensors: Annotated[list[TensorSpec], Field(min_length=1, json_schema_extra={  # one output at least
        "contains": {"properties": {"read_write": {"const": True}}, "required": ["read_write"]}})]


_PRECISION = ("bits per element of Weights, Inputs and Outputs at every level, e.g. {Weights: 8, Inputs: 8, "
              "Outputs: 24}; a tensor left out takes each level's word_bits")


def _given(first: str, second: str) -> dict[str, Any]:
    """JSON Schema: `first` or `second` is given, and not null."""
    return {"anyOf": [{"required": [key], "properties": {key: {"type": "integer"}}} for key in (first, second)]}


class ConvSpec(SpecModel):
    """Timeloop's conv2D: Weights[M, C, R, S], Inputs[N, C, H, W], Outputs[N, M, P, Q]."""

    model_config = ConfigDict(json_schema_extra={"allOf": [_given("P", "H"), _given("Q", "W")]})

    name: Text
    N: PositiveInt = 1
    C: PositiveInt
    M: PositiveInt
    P: PositiveInt | None = None
    Q: PositiveInt | None = None
    H: PositiveInt | None = None
    W: PositiveInt | None = None
    R: PositiveInt
    S: PositiveInt
    stride: Pair = (1, 1)
    dilation: Pair = (1, 1)
    padding: Padding = (0, 0)
    groups: PositiveInt = 1
    precision: ShorthandPrecision | None = Field(None, description=_PRECISION)


class MatmulSpec(SpecModel):
    """Inputs[B, M, K] x Weights[(B,) K, N] -> Outputs[B, M, N]; B optional."""

    name: Text
    M: PositiveInt
    N: PositiveInt
    K: PositiveInt
    B: PositiveInt | None = None
    precision: ShorthandPrecision | None = Field(None, description=_PRECISION)


class WorkloadSpec(SpecModel):
    name: Text | None = None
    layers: Annotated[list[Any], Field(min_length=1)]
    precision: dict[Identifier, WordBits] | None = Field(
        None, description="tensor -> bits per element, for every layer with that tensor (a layer's own precision "
        "or an einsum tensor's word_bits wins)")
    inputs: dict[str, list[Text]] | None = Field(
        None, description="layer -> the earlier layers whose outputs it reads ([]: none, only the network's input; "
        "a layer not named: inferred where the channels of consecutive layers connect)")


def parse_problem(raw: object, file: File = None, path: str = "problem", batch: int = 1) -> Problem:
    """One layer: a conv/matmul/linear shorthand or a general einsum, with its batch
    dimension multiplied by `batch` (the package's docstring)."""
    shorthands: dict[str, tuple[type[SpecModel], Callable[[Any, File, str], Problem]]] = {
        "conv": (ConvSpec, _conv_problem),
        "matmul": (MatmulSpec, lambda s, f, p: _matmul_problem(s, batched_weights=True)),
        "linear": (MatmulSpec, lambda s, f, p: _matmul_problem(s, batched_weights=False)),
    }
    forms = f"one of the shorthands {', '.join(shorthands)}, or the keys name, dimensions, tensors (an einsum)"
    if not isinstance(raw, dict):
        raise SpecError(file, path, describe(raw), f"a mapping: {forms}")
    kinds = [key for key in raw if key in shorthands]
    if kinds:
        if len(raw) != 1:
            raise SpecError(file, path, describe(raw), f"the {kinds[0]} key alone, with the layer inside it")
        kind = kinds[0]
        model, build = shorthands[kind]
        spec = validated(model.model_validate, raw[kind], file, f"{path}.{kind}")
        return _within_limits(build(_batched(spec, batch), file, f"{path}.{kind}"), file, f"{path}.{kind}")
    for key in raw:
        if key not in EinsumSpec.model_fields:
            raise SpecError(file, join_key_path(path, [str(key)]), "an unknown key", forms,
                            did_you_mean(key, [*shorthands, *EinsumSpec.model_fields]))
    if batch != 1:
        raise SpecError(file, path, f"a batch of {batch} for an einsum layer, whose batch dimension is unknown",
                        "a batch only for conv, linear and matmul layers (their N and B)",
                        "write the batch into the einsum's dimensions")
    return _within_limits(_einsum_problem(validated(EinsumSpec.model_validate, raw, file, path), file, path),
                          file, path)


def _within_limits(problem: Problem, file: File, path: str) -> Problem:
    too_large = problem_too_large(problem)
    if too_large:
        raise SpecError(file, path, too_large, LAYER_LIMIT)
    return problem


def _batched(spec: ConvSpec | MatmulSpec, batch: int) -> ConvSpec | MatmulSpec:
    """The layer run on `batch` times as many samples: conv's N, or matmul's B, scaled."""
    if batch == 1:
        return spec
    if isinstance(spec, ConvSpec):
        return spec.model_copy(update={"N": spec.N * batch})
    return spec.model_copy(update={"B": (spec.B or 1) * batch})


def parse_workload(raw: object, file: File = None, path: str = "workload", batch: int = 1) -> tuple[Problem, ...]:
    """Several layers, each in any problem form; layer names must be unique."""
    spec = validated(WorkloadSpec.model_validate, raw, file, path)
    problems = tuple(parse_problem(layer, file, f"{path}.layers[{i}]", batch) for i, layer in enumerate(spec.layers))
    if spec.precision:
        problems = _with_precision(problems, spec.precision, file, f"{path}.precision")
    seen: dict[str, int] = {}
    for i, problem in enumerate(problems):
        if problem.name in seen:
            raise SpecError(file, f"{path}.layers[{i}]", f"the layer name {problem.name!r} again "
                            f"(also layers[{seen[problem.name]}])", "a unique name per layer")
        seen[problem.name] = i
    return problems


def _with_precision(problems: tuple[Problem, ...], precision: dict[str, int], file: File,
                    path: str) -> tuple[Problem, ...]:
    """The layers with the workload's precisions on the tensors that have none of their own."""
    names = sorted({t.name for p in problems for t in p.tensors})
    for name in precision:
        if name not in names:
            raise SpecError(file, path, repr(name),
                            "the name of a tensor of the workload's layers: " + ", ".join(names),
                            did_you_mean(name, names))
    return tuple(_within_limits(replace(p, tensors=tuple(
        t if t.word_bits else replace(t, word_bits=precision.get(t.name)) for t in p.tensors)), file, path)
        for p in problems)


def parse_layer_inputs(raw: object, names: Sequence[str], file: File = None,
                       path: str = "workload") -> dict[str, tuple[str, ...]]:
    """The workload's `inputs`, checked against the names of its parsed layers (`names`,
    in order): each layer it names reads the outputs of earlier layers, so that the
    layers form a graph in their order (mapper/workload_graph.py)."""
    spec = validated(WorkloadSpec.model_validate, raw, file, path)
    found: dict[str, tuple[str, ...]] = {}
    for consumer, producers in (spec.inputs or {}).items():
        where = f"{path}.inputs.{consumer}"
        if consumer not in names:
            raise SpecError(file, f"{path}.inputs", repr(consumer), "names of the workload's layers",
                            did_you_mean(consumer, names))
        earlier = names[:names.index(consumer)]
        for j, producer in enumerate(producers):
            if producer not in earlier:
                raise SpecError(file, f"{where}[{j}]", repr(producer), "the name of a layer listed before "
                                f"{consumer} (producers come before their consumers)", did_you_mean(producer, earlier))
        found[consumer] = tuple(producers)
    return found


def _einsum_problem(spec: EinsumSpec, file: File, path: str) -> Problem:
    dims = list(spec.dimensions)
    names: set[str] = set()
    for i, tensor in enumerate(spec.tensors):
        if tensor.name in names:
            raise SpecError(file, f"{path}.tensors[{i}].name", repr(tensor.name) + " a second time",
                            "a unique name per tensor")
        names.add(tensor.name)
        for j, rank in enumerate(tensor.ranks):
            for _, dim in rank:
                if dim not in spec.dimensions:
                    raise SpecError(file, f"{path}.tensors[{i}].ranks[{j}]", f"dimension {dim!r}",
                                    "a declared dimension: " + ", ".join(dims), did_you_mean(dim, dims))
    outputs = [t.name for t in spec.tensors if t.read_write]
    if len(outputs) != 1:
        found = "no read_write tensor" if not outputs else "read_write tensors " + ", ".join(outputs)
        raise SpecError(file, f"{path}.tensors", found, "exactly one tensor with read_write: true (the output)")
    tensors = tuple(Tensor(t.name, tuple(t.ranks), t.read_write, t.word_bits) for t in spec.tensors)
    return Problem(spec.name, tuple(dims), dict(spec.dimensions), tensors)


def _axis(dim: str) -> tuple[Term, ...]:
    return ((1, dim),)


def _conv_problem(spec: ConvSpec, file: File, path: str) -> Problem:
    """Timeloop's conv2D, with an optional group dimension G indexing every tensor."""
    p = _output_extent(spec, 0, ("P", "H", "R"), file, path)
    q = _output_extent(spec, 1, ("Q", "W", "S"), file, path)
    for dim in ("C", "M"):
        if getattr(spec, dim) % spec.groups:
            raise SpecError(file, f"{path}.{dim}", str(getattr(spec, dim)),
                            f"a multiple of groups ({spec.groups}): {dim} counts all channels of the layer")
    group = ("G",) if spec.groups > 1 else ()
    bounds = {"G": spec.groups} if group else {}
    bounds |= {"N": spec.N, "M": spec.M // spec.groups, "C": spec.C // spec.groups,
               "P": p, "Q": q, "R": spec.R, "S": spec.S}
    (stride_h, stride_w), (dilation_h, dilation_w) = spec.stride, spec.dilation
    g = tuple(_axis(d) for d in group)
    bits = spec.precision or {}
    tensors = (
        Tensor("Weights", (*g, _axis("M"), _axis("C"), _axis("R"), _axis("S")), word_bits=bits.get("Weights")),
        Tensor("Inputs", (_axis("N"), *g, _axis("C"), ((stride_h, "P"), (dilation_h, "R")),
                          ((stride_w, "Q"), (dilation_w, "S"))), word_bits=bits.get("Inputs")),
        Tensor("Outputs", (_axis("N"), *g, _axis("M"), _axis("P"), _axis("Q")), read_write=True,
               word_bits=bits.get("Outputs")),
    )
    return Problem(spec.name, tuple(bounds), bounds, tensors)


def _output_extent(spec: ConvSpec, axis: int, names: tuple[str, str, str], file: File, path: str) -> int:
    """P (or Q) as given, or computed from H (or W) with PyTorch's formula; both must agree."""
    out_name, in_name, kernel_name = names
    out, inp, kernel = getattr(spec, out_name), getattr(spec, in_name), getattr(spec, kernel_name)
    stride, dilation, padding = spec.stride[axis], spec.dilation[axis], spec.padding[axis]
    if inp is None:
        if out is None:
            raise SpecError(file, f"{path}.{out_name}", "nothing: the key is missing",
                            f"{out_name} (output size), or {in_name} (input size) to compute it from")
        if padding:
            raise SpecError(file, f"{path}.padding", describe(list(spec.padding)),
                            f"0 along this axis when {out_name} is given: padding only serves to compute "
                            f"{out_name} from {in_name}", f"give {in_name} instead of {out_name}, or drop padding")
        return out
    computed = (inp + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    formula = f"({in_name} + 2*padding - dilation*({kernel_name}-1) - 1) // stride + 1"
    if computed < 1:
        raise SpecError(file, f"{path}.{in_name}", f"{inp}, too small for {kernel_name}={kernel}",
                        f"an input size with {formula} >= 1")
    if out is not None and out != computed:
        raise SpecError(file, f"{path}.{out_name}", str(out), f"{computed}, from {formula} with "
                        f"{in_name}={inp}, {kernel_name}={kernel}, stride {stride}, dilation {dilation}, "
                        f"padding {padding}", f"give only one of {out_name} and {in_name}")
    return computed


def _matmul_problem(spec: MatmulSpec, batched_weights: bool) -> Problem:
    """Inputs[M, K] x Weights[K, N] -> Outputs[M, N], with an optional batch dimension B."""
    batch = ("B",) if spec.B is not None else ()
    bounds = ({"B": spec.B} if batch else {}) | {"M": spec.M, "N": spec.N, "K": spec.K}
    b = tuple(_axis(d) for d in batch)
    bits = spec.precision or {}
    tensors = (
        Tensor("Inputs", (*b, _axis("M"), _axis("K")), word_bits=bits.get("Inputs")),
        Tensor("Weights", (*(b if batched_weights else ()), _axis("K"), _axis("N")), word_bits=bits.get("Weights")),
        Tensor("Outputs", (*b, _axis("M"), _axis("N")), read_write=True, word_bits=bits.get("Outputs")),
    )
    return Problem(spec.name, tuple(bounds), bounds, tensors)
