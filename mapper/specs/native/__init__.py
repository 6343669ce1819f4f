"""The native YAML spec format: workloads, architectures, mappings and energy tables.

Every part is checked by strict pydantic models (unknown keys and wrong types are
errors, never silently ignored), then converted into the plain dataclasses of
`mapper.problem`, `mapper.architecture` and `mapper.mapping`. Every mistake becomes
a `SpecError` naming the file and the key path, e.g.
`specs/arch/eyeriss.yaml: architecture.levels[2].size: found -4; allowed: ...`.

A spec is one or more YAML files whose top-level keys are merged; a key may appear
in only one of them. The keys:

problem: one layer, in one of four forms.
    conv: {name, C, M, R, S, P and Q (or H and W), N=1, stride=1, dilation=1,
           padding=0, groups=1}
        stride, dilation and padding are an int or [height, width]. Dimensions
        N, M, C, P, Q, R, S; tensors Weights[M, C, R, S], Inputs[N, C, H, W] with
        the ranks H = stride*P + dilation*R and W = stride*Q + dilation*S
        (Timeloop's affine projection: extent stride*(P-1) + dilation*(R-1) + 1,
        the padded input) and Outputs[N, M, P, Q] (read-write). With H/W instead of
        P/Q, P = (H + 2*padding - dilation*(R-1) - 1) // stride + 1; padding is only
        used for that. With groups > 1, C and M are the layer's total channels (as
        in PyTorch's Conv2d); the problem gets a dimension G = groups that indexes
        all three tensors, and C and M become the channels per group
        (depthwise: groups = C = M, so C = M = 1 per group).
    matmul: {name, M, N, K, B (optional batch)}
        Inputs[B, M, K] x Weights[B, K, N] -> Outputs[B, M, N] (batched GEMM,
        e.g. attention scores).
    linear: {name, M, N, K, B (optional)}
        the same, but the weights are shared by the batch: Weights[K, N].
    a general einsum: {name, dimensions: {P: 16, R: 3, ...}, tensors: [
        {name, ranks: ["P+R", ...] or [[[1, P], [1, R]], ...], read_write: false,
         word_bits (optional)}, ...]}
        A rank is a sum of coefficient*dimension terms ("2*P + R"), written as a
        string or as a list of [coefficient, dimension] pairs. Exactly one tensor
        is read_write (the output).
    Precision: conv, matmul and linear take `precision: {Weights: 8, Inputs: 8,
        Outputs: 24}` (bits per element at every level), an einsum tensor `word_bits`;
        a tensor without one takes each level's word_bits (mapper/precision.py).
workload: {name (optional), layers: [<a problem, as above>, ...], precision (optional),
    inputs (optional)} for several layers; precision: {tensor: bits} for every layer's
    tensors of that name that have none of their own; inputs: {layer: [earlier layers
    whose outputs it reads], ...} makes the edges of the workload's graph explicit
    (mapper/workload_graph.py infers the rest).

A batch size is not part of a spec: `mapper stats WORKLOAD --batch N` (the `batch`
argument of `load_workload` and the loaders) runs N samples through every layer, multiplying
the batch dimension of each shorthand, conv's N and matmul's/linear's B (added when
absent). An einsum has no known batch dimension: write it into its dimensions.

architecture: {name, technology (optional: the node, e.g. 45nm), energy_table (optional
               default for all levels), levels: [...],
               compute: {name=MAC, energy or component: intmac (with bits), energy_table}}
    levels, outermost (DRAM) first; each:
        name; size: words, or `unbounded` (outermost level only) — or depth: blocks;
        word_bits=16; block_size=1 (words per access: the port is block_size x
        word_bits bits); read_bandwidth and
        write_bandwidth (words/cycle per instance; absent = unlimited);
        multiple_buffering=1; energy: {read, write} per block access, or instead
        component: sram, register, none or a DRAM type (LPDDR4, DDR3, HBM2, ...),
        whose energies the built-in estimator gives at the architecture's technology
        for the level's depth and block width (mapper/estimation; `mapper estimate`);
        keeps: [tensors it may hold] (absent = any);
        fanout: [X, Y] (or an int, meaning [N, 1]): how many instances of the next
            inner level (or MACs, below the innermost level) each instance of this
            level feeds, laid out as an X-by-Y mesh. Fan-outs live on the parent
            because that is where a mapping puts its spatial loops. At most 2**16
            instances of any level or of the MACs (mapper/specs/limits.py);
        network_energy: per word delivered across that fan-out.
    The instance count of every level (and of the MACs) is the product of the
    fan-outs above it. An energy is a number (pJ, or the unit of the energy tables
    the architecture names), or an expression over the
    entries of the level's energy table: "rf", "4*global_buffer",
    "mult_int8 + add_int16". A table name is looked up as a file next to the spec,
    then in the energy/ folder beside the spec's folder, then among the shipped tables
    in specs/energy/.

mapping: [{level, temporal, spatial, keep, bypass}, ...], one entry per level that
    has loops or a non-default keep set, outermost first; levels left out have no
    loops and keep what the architecture lets them keep.
    temporal: "P8 Q2 M4" (or "P=8 ...") or [[P, 8], [Q, 2], [M, 4]], outermost loop
        first; spatial: "Q14X C3Y" or [[Q, 14, X], [C, 3, Y]], the loops of the
        fan-out below the level.
    keep: only these tensors; bypass: all but these; both: all but the bypassed
        ("all" = what the architecture lets the level keep). The outermost level
        keeps every tensor.
    The factors of each dimension must multiply to its bound, and the spatial
    factors along X (Y) at a level to at most its fan-out along X (Y). Whether the
    tiles fit in each level is checked by the cost model.

An energy table file: {name, unit, symbol=pJ, source, entries: {name: energy, ...}}.
    unit describes the entries in words; symbol is the short name of their unit that
    outputs show ("pJ", or "MAC" for a table normalized to one MAC). Every table an
    architecture names must have the same symbol; the architecture's numbers and all
    the energies evaluated on it are in that unit (`Architecture.energy_unit`).

Here, the files are read and merged; each key's part is parsed by a module of its own:
problem.py (problem, workload), architecture.py (architecture), energy_tables.py (the
tables its energies name) and mapping.py (mapping), on the checked fields of
mapper/specs/fields.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypedDict

from ... import estimation
from ...architecture import Architecture
from ...mapping import Mapping
from ...problem import Problem
from ..errors import SpecError, did_you_mean
from ..files import DocumentKind, find_spec_file, load_yaml
from ..load import Specs
from ..timeloop import TIMELOOP_ONLY_KEYS, is_timeloop
from .architecture import check_keeps, parse_architecture_and_hardware
from .mapping import parse_mapping
from .problem import parse_layer_inputs, parse_problem, parse_workload


TOP_LEVEL_KEYS = ("problem", "workload", "architecture", "mapping")


# A spec file: native or Timeloop parts and constraints (specs/constraints.py's TIMELOOP_KEYS).
SPEC_DOCUMENT = DocumentKind("a spec", (*TOP_LEVEL_KEYS, "constraints", *TIMELOOP_ONLY_KEYS))


def detect_format(doc: object) -> Literal["native", "timeloop"]:
    """Tell a Timeloop document (timeloop.is_timeloop) from a native one."""
    return "timeloop" if is_timeloop(doc) else "native"


class NativeSpecs(TypedDict):
    problems: tuple[Problem, ...]  # empty when no file has problem or workload
    architecture: Architecture | None
    mapping: Mapping | None
    hardware: estimation.Hardware  # what the architecture says for the estimator
    inputs: dict[str, tuple[str, ...]]  # the workload's named edges (parse_layer_inputs)


def load_native(paths: Sequence[str | Path], batch: int = 1) -> NativeSpecs:
    """Load and merge native spec files: each top-level key may come from one file only;
    a mapping needs the architecture and exactly one layer in the same set of files."""
    return merge_native([(Path(path), load_yaml(path, SPEC_DOCUMENT)) for path in paths], batch)


def load_workload(name: str | Path, batch: int = 1) -> tuple[Problem, ...]:
    """The layers of one native workload file (a path, or a shipped name such as
    `alexnet`), each run on `batch` samples."""
    return load_workload_inputs(name, batch)[0]


def load_workload_inputs(name: str | Path, batch: int = 1) -> tuple[tuple[Problem, ...], dict[str, tuple[str, ...]]]:
    """`load_workload`, and the inputs its layers name (`parse_layer_inputs`)."""
    path = find_spec_file(name)
    specs = load_native([path], batch)
    if not specs["problems"]:
        raise SpecError(path, "", "no problem or workload key", "a workload file: a `workload` with layers, "
                        "or one `problem`", "pass a file from specs/workloads/")
    return specs["problems"], specs["inputs"]


def load_specs(docs: Sequence[tuple[Path, dict[str, Any]]], batch: int = 1) -> Specs:
    """`merge_native` in the shape `mapper.specs.load.load_specs` returns for both formats."""
    specs = merge_native(docs, batch)
    return Specs(specs["problems"], specs["architecture"], specs["mapping"], hardware=specs["hardware"])


def merge_native(docs: Sequence[tuple[Path, dict[str, Any]]], batch: int = 1) -> NativeSpecs:
    """Merge already-read native documents (see `load_native`)."""
    merged: dict[str, tuple[object, Path]] = {}
    for path, doc in docs:
        if detect_format(doc) == "timeloop":
            raise SpecError(path, "", "a Timeloop-format document among native specs", "files of one format",
                            "load Timeloop files together, without native ones")
        for key, value in doc.items():
            if key not in TOP_LEVEL_KEYS:
                raise SpecError(path, str(key), "an unknown top-level key", ", ".join(TOP_LEVEL_KEYS),
                                did_you_mean(key, TOP_LEVEL_KEYS))
            if key in merged:
                raise SpecError(path, key, f"{key} again (already in {merged[key][1]})",
                                "each top-level key in one file only")
            merged[key] = (value, path)
    if "problem" in merged and "workload" in merged:
        raise SpecError(merged["workload"][1], "workload", "both problem and workload",
                        "problem (one layer) or workload (several), not both")
    problems: tuple[Problem, ...] = ()
    inputs: dict[str, tuple[str, ...]] = {}
    if "problem" in merged:
        problems = (parse_problem(merged["problem"][0], merged["problem"][1], batch=batch),)
    elif "workload" in merged:
        raw, file = merged["workload"]
        problems = parse_workload(raw, file, batch=batch)
        inputs = parse_layer_inputs(raw, [p.name for p in problems], file)
    architecture, hardware = None, estimation.Hardware()
    if "architecture" in merged:
        raw, file = merged["architecture"]
        architecture, hardware = parse_architecture_and_hardware(raw, file)
        for problem in problems:
            check_keeps(architecture, problem, file, "architecture")
    mapping = None
    if "mapping" in merged:
        raw, file = merged["mapping"]
        if architecture is None or len(problems) != 1:
            found = ("a mapping without an architecture" if architecture is None
                     else f"a mapping with {len(problems)} layers")
            raise SpecError(file, "mapping", found, "a mapping loaded together with an architecture and "
                            "exactly one layer", "pass the architecture and workload files with the mapping")
        mapping = parse_mapping(raw, problems[0], architecture, file)
    return NativeSpecs(problems=problems, architecture=architecture, mapping=mapping, hardware=hardware,
                       inputs=inputs)
