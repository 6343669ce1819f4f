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
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from math import isfinite, prod
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict, TypeVar

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PlainValidator, TypeAdapter, ValidationError, WithJsonSchema,
                      model_validator)
from pydantic_core import PydanticCustomError

from mapper import estimation
from mapper.architecture import Architecture, ComputeUnit, StorageLevel
from mapper.mapping import LevelMapping, Loop, Mapping
from mapper.problem import Problem, Tensor, Term
from mapper.specs.errors import SpecError, describe, did_you_mean
from mapper.specs.limits import (LAYER_LIMIT, MAX_ENERGY, MAX_EXPANDED_NODES, MAX_FILE_BYTES, MAX_INSTANCES,
                                 MAX_LEVELS, MAX_WORD_BITS, level_too_large, problem_too_large)
from mapper.specs.coverage import check_covers
from mapper.specs.load import Specs
from mapper.specs.timeloop import TIMELOOP_ONLY_KEYS, is_timeloop

T = TypeVar("T")
File = str | Path | None

TOP_LEVEL_KEYS = ("problem", "workload", "architecture", "mapping")
SHIPPED_SPECS = Path(__file__).resolve().parents[2] / "specs"
_SPEC_SUBDIRS = ("arch", "workloads", "mappings", "energy")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_UNIT_SYMBOL = re.compile(r"[^\W\d_]\w{0,11}")  # short: it heads table columns and ends "<unit>*cycles"
_NUMBER = r"\d+(?:\.\d*)?"
_TERM = re.compile(
    rf"(?P<c1>{_NUMBER})\s*\*\s*(?P<n1>[A-Za-z_]\w*)"
    rf"|(?P<n2>[A-Za-z_]\w*)\s*\*\s*(?P<c2>{_NUMBER})"
    r"|(?P<n3>[A-Za-z_]\w*)"
)
_TEMPORAL_WORD = re.compile(r"([A-Za-z_]\w*?)=?(\d+)")
_SPATIAL_WORD = re.compile(r"([A-Za-z_]\w*?)=?(\d+)([XY])")


# ---------------------------------------------------------------------------
# Reading YAML


@dataclass(frozen=True)
class DocumentKind:
    """What a YAML file is expected to be (`what`: "a spec"), told by its top-level keys.

    A spec can name another file (an energy table, an architecture), and a path to the
    wrong file must not make an error message print that file's content (a credentials
    file, /etc/passwd). So nothing of a file's content appears in an error until the
    file is a mapping with at least one key of its kind (or one so close to a key of
    its kind that it is surely a misspelling); before that, errors say only what the
    file is not."""

    what: str
    keys: tuple[str, ...]


# A spec file: native or Timeloop parts and constraints (specs/constraints.py's TIMELOOP_KEYS).
SPEC_DOCUMENT = DocumentKind("a spec", (*TOP_LEVEL_KEYS, "constraints", *TIMELOOP_ONLY_KEYS))


def load_yaml(path: str | Path, kind: DocumentKind) -> dict[str, Any]:
    """Parse one file into a mapping, turning every way it can be unusable into a
    SpecError: missing, unreadable, too large or not a regular file, YAML syntax,
    duplicate keys (which `safe_load` would silently resolve to the last one), a
    non-mapping document, or a mapping with none of the keys of its `kind`."""
    path = Path(path)
    text = _read_text(path)
    # What yaml.safe_load does, in its steps: the node tree is checked before it is
    # built into values, and the text is parsed once (a 16 MiB file in half the time).
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        _reject_alias_bombs(root, path)
        duplicate = _duplicate_key(root, path)  # before building, which merges `<<` keys into the tree
        doc = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as error:
        raise _yaml_error(error, path) from None
    except RecursionError:
        raise SpecError(path, "", "YAML nested too deeply to read", "a spec nested at most a few hundred "
                        "levels deep") from None
    if not isinstance(doc, dict):
        found = "an empty document" if doc is None else f"{_kind_of(doc)}, not a YAML mapping"
        raise SpecError(path, "", found, f"{kind.what}: a mapping with top-level keys such as "
                        + ", ".join(kind.keys[:6]))
    if not any(key in kind.keys or did_you_mean(key, kind.keys) for key in map(str, doc)):
        raise SpecError(path, "", f"a YAML mapping without any top-level key of {kind.what}",
                        f"{kind.what}: a mapping with top-level keys such as " + ", ".join(kind.keys[:6]))
    if duplicate is not None:
        raise duplicate
    return doc


def _read_text(path: Path) -> str:
    """The whole file, refused before reading when it is not a regular file (a FIFO
    or /dev/zero would block or never end) or larger than MAX_FILE_BYTES."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise SpecError(path, "", f"{_file_type(path)}, not a regular file", "a regular YAML file")
        # O_NONBLOCK: should the path become a FIFO after the check, open returns at once.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SpecError(path, "", "a special file, not a regular file", "a regular YAML file")
            if info.st_size > MAX_FILE_BYTES:
                raise SpecError(path, "", f"a file of {info.st_size:,} bytes", f"a spec of at most "
                                f"{MAX_FILE_BYTES:,} bytes (16 MiB)")
            data = f.read(MAX_FILE_BYTES + 1)  # a file growing while read stays bounded
    except FileNotFoundError:
        siblings = [p.name for p in path.parent.glob("*")] if path.parent.is_dir() else []
        raise SpecError(path, "", "no such file", "a path to an existing YAML file",
                        did_you_mean(path.name, siblings)) from None
    except OSError as error:
        raise SpecError(path, "", f"a file that cannot be read ({error.strerror or error})",
                        "a readable UTF-8 YAML file") from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(path, "", "a file that grew past the size limit while read",
                        f"a spec of at most {MAX_FILE_BYTES:,} bytes (16 MiB)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(path, "", f"not a UTF-8 text file (byte {error.start} is not UTF-8)",
                        "a readable UTF-8 YAML file") from None


def _file_type(path: Path) -> str:
    """What a non-regular file is, in words."""
    mode = path.stat().st_mode
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def _kind_of(value: object) -> str:
    """A YAML value's type in words, never its content (module note at DocumentKind)."""
    names = {str: "a string", list: "a list", int: "an integer", float: "a number", bool: "a boolean"}
    return next((name for kind, name in names.items() if type(value) is kind), "a scalar")


def _yaml_error(error: yaml.YAMLError, path: Path) -> SpecError:
    """Say where the YAML syntax breaks, in the editor-friendly file:line:column form.
    PyYAML's messages quote the file (a snippet of the line, an alias or tag name):
    the file may not be a spec at all, so only the problem's wording is kept, with its
    quoted names dropped, and the position."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or type(error).__name__
    hint = None
    if isinstance(error, yaml.constructor.ConstructorError) and "tag" in problem:
        hint = ("YAML tags (!Component, ...) belong to Timeloop v0.4 input files, which its front end turns into "
                "one plain YAML file: pass the parsed-processed-input.yaml Timeloop wrote (with its ERT.yaml)")
    if isinstance(error, yaml.reader.ReaderError):
        code = error.character if isinstance(error.character, int) else ord(error.character)
        problem = f"unacceptable character #x{code:04x}: {error.reason}, at offset {error.position}"
    return SpecError(
        path, "", f"invalid YAML ({_QUOTED_CONTENT.sub('', problem).strip()})", "YAML syntax", hint,
        line=None if mark is None else mark.line + 1,
        column=None if mark is None else mark.column + 1,
    )


# PyYAML quotes content of the file in 'single' or "double" quotes; its own token
# names ('<block end>') and the one offending character ('%') say nothing of it.
_QUOTED_CONTENT = re.compile(r"""\s*(?:'(?!<)[^']{2,}'|"(?!<)[^"]{2,}")""")


def _reject_alias_bombs(root: yaml.Node | None, path: Path) -> None:
    """Aliases let a few lines describe a tree of billions of nodes, or one that
    contains itself; everything after loading walks the tree as if expanded, so such
    a document would hang the loader. Count the expanded size without expanding."""
    size: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [] if root is None else [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _child_nodes(node)
        if children_done:
            ancestors.discard(id(node))
            size[id(node)] = 1 + sum(size[id(child)] for child in children)
            if size[id(node)] > MAX_EXPANDED_NODES:
                raise SpecError(path, "", f"aliases that expand to more than {MAX_EXPANDED_NODES} nodes",
                                "aliases of a reasonable size", line=node.start_mark.line + 1,
                                column=node.start_mark.column + 1)
            continue
        if id(node) in size:
            continue
        ancestors.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in ancestors:
                raise SpecError(path, "", "an alias inside the node it names (a cyclic structure)",
                                "aliases of nodes defined before and outside them",
                                line=child.start_mark.line + 1, column=child.start_mark.column + 1)
            if id(child) not in size:
                stack.append((child, False))


def _child_nodes(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _duplicate_key(root: yaml.Node | None, path: Path) -> SpecError | None:
    """A key written twice in one mapping is a mistake (a dimension declared twice,
    a level configured twice), so the error that reports it, instead of keeping the
    last value (None: each key once)."""
    stack: list[tuple[yaml.Node, str]] = [] if root is None else [(root, "")]
    visited: set[int] = set()
    while stack:
        node, key_path = stack.pop()
        if id(node) in visited:  # an alias of an anchor already checked
            continue
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, f"{key_path}[{i}]") for i, child in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in first_line and key_node.tag != "tag:yaml.org,2002:merge":
                    return SpecError(path, _join(key_path, [key]), f"the key {key!r} a second time "
                                     f"(first on line {first_line[key]})", "each key once per mapping",
                                     line=line, column=key_node.start_mark.column + 1)
                first_line.setdefault(key, line)
                stack.append((value_node, _join(key_path, [key])))
    return None


def detect_format(doc: object) -> Literal["native", "timeloop"]:
    """Tell a Timeloop document (timeloop.is_timeloop) from a native one."""
    return "timeloop" if is_timeloop(doc) else "native"


# ---------------------------------------------------------------------------
# Values: each validator owns its "allowed" wording, so errors read the same everywhere


def invalid(found: object, allowed: str, suggestion: str | None = None, subpath: str = "") -> PydanticCustomError:
    """A validation error for a bad value, which `_spec_error` turns into a SpecError."""
    return _custom_error(describe(found), allowed, suggestion, subpath)


def _custom_error(found: str, allowed: str, suggestion: str | None, subpath: str) -> PydanticCustomError:
    return PydanticCustomError("spec", "found {found}; allowed: {allowed}", {
        "found": found, "allowed": allowed, "suggestion": suggestion, "subpath": subpath,
    })


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A finite int or float: YAML's .inf and .nan are never meaningful in a spec."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and isfinite(value)


def _positive_int(value: object) -> int:
    if not is_int(value) or value <= 0:
        raise invalid(value, "a positive integer")
    return value


def _word_bits(value: object) -> int:
    if not is_int(value) or not 0 < value <= MAX_WORD_BITS:
        raise invalid(value, f"a number of bits from 1 to {MAX_WORD_BITS} (mapper/specs/limits.py)")
    return value


def _table_energy(value: object) -> float:
    if not is_number(value) or not 0 <= value <= MAX_ENERGY:
        raise invalid(value, f"an energy from 0 to {MAX_ENERGY:g} (mapper/specs/limits.py)")
    return float(value)


def _positive_number(value: object) -> float:
    if not is_number(value) or value <= 0:
        raise invalid(value, "a number > 0")
    return float(value)


def _at_least_one(value: object) -> float:
    if not is_number(value) or value < 1:
        raise invalid(value, "a number >= 1 (1 = single buffering, 2 = double buffering)")
    return float(value)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise invalid(value, "a non-empty string")
    return value


def _unit_symbol(value: object) -> str:
    if not isinstance(value, str) or not _UNIT_SYMBOL.fullmatch(value):
        raise invalid(value, "a unit symbol: a letter, then at most 11 letters, digits or _ (pJ, nJ, MAC)")
    return value


def _identifier(value: object) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise invalid(value, "a name of letters, digits and _ that does not start with a digit")
    return value


def _pair(minimum: int, lone: Callable[[int], list[int]]) -> Callable[[object], tuple[int, int]]:
    """A two-element list, one value per axis, or an int that `lone` spreads over both."""
    kind = "a positive integer" if minimum > 0 else "an integer >= 0"
    allowed = f"{kind}, or a list of two such, one per axis"

    def validate(value: object) -> tuple[int, int]:
        pair = lone(value) if is_int(value) else value
        if not isinstance(pair, list) or len(pair) != 2 or not all(is_int(v) and v >= minimum for v in pair):
            raise invalid(value, allowed)
        return pair[0], pair[1]

    return validate


def _technology(value: object) -> float:
    try:
        return estimation.technology_nm(value)
    except estimation.EstimateError as e:
        raise _custom_error(e.found, e.allowed, None, "") from None


def _component(value: object) -> str:
    if value not in estimation.kinds():
        raise invalid(value, "one of " + ", ".join(estimation.kinds()),
                       did_you_mean(value, estimation.kinds()) if isinstance(value, str) else None)
    return value


def _size(value: object) -> int | None:
    if value is None or value == "unbounded":
        return None
    if not is_int(value) or value <= 0:
        raise invalid(value, "a positive whole number of words, or unbounded (outermost level only)")
    return value


def _parse_sum(text: str) -> list[tuple[str | None, str]] | None:
    """Split "2*P + R" into [("2", "P"), (None, "R")]; None if it is not such a sum."""
    terms = []
    for part in text.split("+"):
        match = _TERM.fullmatch(part.strip())
        if match is None:
            return None
        groups = match.groupdict()
        terms.append((groups["c1"] or groups["c2"], groups["n1"] or groups["n2"] or groups["n3"]))
    return terms


EnergyValue = float | tuple[tuple[float, str], ...]


def _energy_value(value: object) -> EnergyValue:
    """A number of pJ, or a sum of table entries with optional factors, kept symbolic
    until the table is known."""
    allowed = (f"a number from 0 to {MAX_ENERGY:g} (in the energy table's unit, pJ without a table), or "
               'energy-table entries like "rf" or "4*global_buffer + rf"')
    if is_number(value) and 0 <= value <= MAX_ENERGY:
        return float(value)
    terms = _parse_sum(value) if isinstance(value, str) else None
    if terms is None:
        raise invalid(value, allowed)
    return tuple((1.0 if c is None else float(c), name) for c, name in terms)


def _rank(value: object) -> tuple[Term, ...]:
    """One tensor rank: "2*P + R" or [[2, P], [1, R]]."""
    allowed = 'a sum of dimensions with positive integer coefficients: "2*P + R" or [[2, P], [1, R]]'
    if isinstance(value, str):
        parsed = _parse_sum(value)
        if parsed is None or any(c is not None and not c.isdigit() for c, _ in parsed):
            raise invalid(value, allowed)
        terms = [(1 if c is None else int(c), d) for c, d in parsed]
    elif isinstance(value, list) and value:
        terms = [tuple(t) if isinstance(t, list) else t for t in value]
        if not all(isinstance(t, tuple) and len(t) == 2 and is_int(t[0]) and isinstance(t[1], str)
                   and _IDENTIFIER.fullmatch(t[1]) for t in terms):
            raise invalid(value, allowed)
    else:
        raise invalid(value, allowed)
    dims = [d for _, d in terms]
    if any(c <= 0 for c, _ in terms) or len(set(dims)) != len(dims):
        raise invalid(value, allowed + ", each dimension once")
    return tuple(terms)


def _loops(spatial: bool) -> Callable[[object], tuple[tuple[Any, ...], ...]]:
    """Temporal ("P8 Q2" or [[P, 8], ...]) or spatial ("Q14X" or [[Q, 14, X], ...]) loops."""
    word = _SPATIAL_WORD if spatial else _TEMPORAL_WORD
    example = "[[Q, 14, X], [C, 3, Y]] or \"Q14X C3Y\"" if spatial else "[[P, 8], [Q, 2]] or \"P8 Q2\""
    allowed = f"loops like {example}, with positive factors"

    def validate(value: object) -> tuple[tuple[Any, ...], ...]:
        if isinstance(value, str):
            written: list[Any] = value.split()
            items = [_loop_word(w, word) for w in written]
        elif isinstance(value, list):
            written = value
            items = [tuple(i) if isinstance(i, list) else i for i in value]
        else:
            raise invalid(value, allowed)
        for index, item in enumerate(items):
            if not _is_loop(item, spatial):
                raise invalid(written[index], allowed, subpath=f"[{index}]")
        return tuple(items)

    return validate


def _loop_word(text: str, word: re.Pattern[str]) -> tuple[Any, ...] | str:
    """"P8" -> ("P", 8), "Q14X" -> ("Q", 14, "X"); a word that does not parse stays a
    string, which `_is_loop` rejects."""
    match = word.fullmatch(text)
    if match is None:
        return text
    dim, factor, *axis = match.groups()
    return (dim, int(factor), *axis)


def _is_loop(item: object, spatial: bool) -> bool:
    return (
        isinstance(item, tuple)
        and len(item) == (3 if spatial else 2)
        and isinstance(item[0], str) and _IDENTIFIER.fullmatch(item[0]) is not None
        and is_int(item[1]) and item[1] > 0
        and (not spatial or item[2] in ("X", "Y"))
    )


# What each validator above accepts, as JSON Schema draft-07 (`mapper schema`): a
# PlainValidator hides its type from pydantic, so each one states it. The patterns are
# the regular expressions the validators parse with.
POSITIVE_INT_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 1}
TEXT_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"\S"}
IDENTIFIER_SCHEMA: dict[str, Any] = {"type": "string", "pattern": f"^{_IDENTIFIER.pattern}$"}
_POSITIVE_DIGITS = r"\d*[1-9]\d*"


def _sum_pattern(coefficient: str) -> str:
    """A whole string of `_parse_sum` terms whose coefficients match `coefficient`."""
    name = _IDENTIFIER.pattern
    term = rf"(?:{coefficient}\s*\*\s*{name}|{name}\s*\*\s*{coefficient}|{name})"
    return rf"^\s*{term}\s*(?:\+\s*{term}\s*)*$"


def _pair_schema(minimum: int, description: str) -> WithJsonSchema:
    number = {"type": "integer", "minimum": minimum}
    return WithJsonSchema({"anyOf": [number, {"type": "array", "items": number, "minItems": 2, "maxItems": 2}],
                           "description": description})


def _loops_schema(spatial: bool) -> WithJsonSchema:
    axis = "[XY]" if spatial else ""
    word = rf"[A-Za-z_]\w*?=?{_POSITIVE_DIGITS}{axis}"
    loop = [IDENTIFIER_SCHEMA, POSITIVE_INT_SCHEMA] + ([{"enum": ["X", "Y"]}] if spatial else [])
    return WithJsonSchema({"anyOf": [
        {"type": "string", "pattern": rf"^\s*(?:{word}(?:\s+{word})*)?\s*$"},
        {"type": "array", "items": {"type": "array", "items": loop, "minItems": len(loop), "maxItems": len(loop)}},
    ], "description": ('spatial loops of the fan-out below the level: "Q14X C3Y" or [[Q, 14, X], [C, 3, Y]]'
                       if spatial else 'loops, outermost first: "P8 Q2 M4" (or "P=8 ...") or [[P, 8], [Q, 2]]')})


ENERGY_SCHEMA = WithJsonSchema({"anyOf": [
    {"type": "number", "minimum": 0, "maximum": MAX_ENERGY},
    {"type": "string", "pattern": _sum_pattern(_NUMBER)},
], "description": 'pJ (or the energy table\'s unit), or entries of the energy table: "rf", "4*global_buffer + rf"'})

Pair = Annotated[tuple[int, int], PlainValidator(_pair(1, lambda n: [n, n])),
                 _pair_schema(1, "[height, width], or one number for both")]
Padding = Annotated[tuple[int, int], PlainValidator(_pair(0, lambda n: [n, n])),
                    _pair_schema(0, "[height, width], or one number for both")]
Fanout = Annotated[tuple[int, int], PlainValidator(_pair(1, lambda n: [n, 1])),
                   _pair_schema(1, "instances of the next inner level (or MACs) each instance feeds, as an "
                                "[X, Y] mesh; N means [N, 1]")]
PositiveInt = Annotated[int, PlainValidator(_positive_int), WithJsonSchema(POSITIVE_INT_SCHEMA)]
WordBits = Annotated[int, PlainValidator(_word_bits), WithJsonSchema(
    {"type": "integer", "minimum": 1, "maximum": MAX_WORD_BITS})]
# Precisions of the named tensors of a shorthand layer (conv, matmul, linear).
ShorthandPrecision = dict[Literal["Weights", "Inputs", "Outputs"], WordBits]
TableEnergy = Annotated[float, PlainValidator(_table_energy),
                       WithJsonSchema({"type": "number", "minimum": 0, "maximum": MAX_ENERGY})]
PositiveNumber = Annotated[float, PlainValidator(_positive_number),
                           WithJsonSchema({"type": "number", "exclusiveMinimum": 0})]
Text = Annotated[str, PlainValidator(_text), WithJsonSchema(TEXT_SCHEMA)]
Technology = Annotated[float, PlainValidator(_technology), WithJsonSchema({"anyOf": [
    {"type": "number", "minimum": estimation.node_range()[0], "maximum": estimation.node_range()[1]},
    {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(nm)?$"}],
    "description": "technology node in nm, for the estimated components: 45 or \"45nm\""})]
Component = Annotated[str, PlainValidator(_component), WithJsonSchema(
    {"enum": list(estimation.kinds()), "description": "estimate the energies of this kind of component "
     "(mapper/estimation) instead of giving them"})]
Identifier = Annotated[str, PlainValidator(_identifier), WithJsonSchema(IDENTIFIER_SCHEMA)]
UnitSymbol = Annotated[str, PlainValidator(_unit_symbol), WithJsonSchema(
    {"type": "string", "pattern": f"^{_UNIT_SYMBOL.pattern}$",
     "description": "the unit's short name in outputs: pJ, or e.g. MAC for entries normalized to one MAC"})]
Energy = Annotated[EnergyValue, PlainValidator(_energy_value), ENERGY_SCHEMA]


# ---------------------------------------------------------------------------
# Models of the YAML


class SpecModel(BaseModel):
    """Strict: no type coercion, and an unknown key is an error with a suggestion."""

    # `_known_keys` turns away unknown keys first, with its suggestion; "forbid" says so
    # in the JSON schema (additionalProperties: false).
    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: object) -> object:
        keys = list(cls.model_fields)
        if not isinstance(data, dict):
            raise invalid(data, "a mapping with keys " + ", ".join(keys))
        for key in data:
            if key not in cls.model_fields:
                raise _custom_error("an unknown key", "the keys " + ", ".join(keys),
                                    did_you_mean(key, keys), subpath=f".{key}")
        return data


# JSON Schema: keys other than names (which pydantic gives as patternProperties) are refused.
_NAMED_ONLY: dict[str, Any] = {"additionalProperties": False}
_RANK_SCHEMA = WithJsonSchema({"anyOf": [
    {"type": "string", "pattern": _sum_pattern(_POSITIVE_DIGITS)},
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
    dimensions: Annotated[dict[Identifier, PositiveInt], Field(min_length=1, json_schema_extra=_NAMED_ONLY)]
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


class EnergySpec(SpecModel):
    read: Energy
    write: Energy


class LevelSpec(SpecModel):
    """A storage level (outermost first); its capacity is `size` in words or `depth` in blocks."""

    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"oneOf": [{"required": ["size"]}, {"required": ["depth"]}]},
        {"oneOf": [{"required": ["energy"]}, {"required": ["component"]}]}]})

    name: Text
    size: Annotated[int | None, PlainValidator(_size), WithJsonSchema(
        {"anyOf": [POSITIVE_INT_SCHEMA, {"enum": ["unbounded", None]}],
         "description": "capacity in words, or unbounded (outermost level only); or give depth"})] = None
    depth: PositiveInt | None = Field(None, description="capacity in blocks of block_size words; or give size")
    word_bits: WordBits = Field(16, description="bits per word: the words size counts, and the width of every "
                                "tensor without a precision of its own")
    block_size: PositiveInt = Field(1, description="words per access (the port is block_size x word_bits bits)")
    cluster_size: PositiveInt = Field(1, description="instances that share one access, each keeping its own "
                                      "block of it (Timeloop's cluster_size): its energy is paid once per cluster")
    read_bandwidth: PositiveNumber | None = Field(None, description="words/cycle per instance; absent: unlimited")
    write_bandwidth: PositiveNumber | None = Field(None, description="words/cycle per instance; absent: unlimited")
    multiple_buffering: Annotated[float, PlainValidator(_at_least_one), WithJsonSchema(
        {"type": "number", "minimum": 1, "description": "1: single buffering, 2: double buffering"})] = 1.0
    energy: EnergySpec | None = Field(None, description="per block access; or give component")
    component: Component | None = None
    energy_table: Text | None = Field(None, description="a table file next to the spec, in ../energy/ or in "
                                      "specs/energy/; default: the architecture's")
    keeps: list[Identifier] | None = Field(None, description="tensors the level may hold; absent: any")
    fanout: Fanout = (1, 1)
    network_energy: Energy = Field(0.0, description="per word delivered across the fan-out below the level")


class ComputeSpec(SpecModel):
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["energy"]},
                                                           {"required": ["component", "bits"]}]})

    name: Text = "MAC"
    energy: Energy | None = Field(None, description="per MAC; or give component")
    component: Literal["intmac"] | None = Field(None, description="estimate the energy of an integer MAC")
    bits: PositiveInt | None = Field(None, description="operand width of the estimated MAC")
    energy_table: Text | None = None


class ArchitectureSpec(SpecModel):
    name: Text
    technology: Technology | None = None
    energy_table: Text | None = None
    levels: Annotated[list[LevelSpec], Field(min_length=1)]
    compute: ComputeSpec


class LevelMappingSpec(SpecModel):
    """The loops and kept tensors of one architecture level."""

    level: Text
    temporal: Annotated[tuple[tuple[str, int], ...], PlainValidator(_loops(spatial=False)),
                        _loops_schema(spatial=False)] = ()
    spatial: Annotated[tuple[tuple[str, int, str], ...], PlainValidator(_loops(spatial=True)),
                       _loops_schema(spatial=True)] = ()
    keep: list[Identifier] | None = Field(None, description="only these tensors")
    bypass: list[Identifier] | None = Field(None, description="all the level may keep but these")


class EnergyTableSpec(SpecModel):
    name: Text
    unit: Text
    symbol: UnitSymbol = "pJ"
    source: Text
    entries: Annotated[dict[Identifier, TableEnergy], Field(min_length=1, json_schema_extra=_NAMED_ONLY)]


ENERGY_TABLE_DOCUMENT = DocumentKind("an energy table", tuple(EnergyTableSpec.model_fields))


_MAPPING_LIST = TypeAdapter(Annotated[list[LevelMappingSpec], Field(min_length=1)])

# The built-in checks still in play: every scalar has its own validator above.
_BUILTIN_ALLOWED = {"bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping",
                    "string_type": "a string"}


def validated(validate: Callable[[object], T], raw: object, file: File, path: str) -> T:
    """Run a pydantic validator, reporting its first error as a SpecError."""
    try:
        return validate(raw)
    except ValidationError as error:
        raise _spec_error(error, file, path) from None


def _spec_error(error: ValidationError, file: File, path: str) -> SpecError:
    first = error.errors()[0]
    key_path = _join(path, first["loc"])
    ctx = first.get("ctx") or {}
    if first["type"] == "spec":
        found, allowed, suggestion = ctx["found"], ctx["allowed"], ctx["suggestion"]
        key_path += ctx["subpath"]
    elif first["type"] == "missing":
        found, allowed, suggestion = "nothing: the key is missing", "a value (the key is required)", None
    elif first["type"] == "too_short":
        kind = "mapping" if isinstance(first["input"], dict) else "list"
        least, count = ctx.get("min_length", 1), len(first["input"])
        found = f"an empty {kind}" if not count else f"a {kind} of {count} item{'s' * (count > 1)}"
        allowed = f"a non-empty {kind}" if least <= 1 else f"a {kind} of at least {least} items"
        suggestion = None
    else:
        found = describe(first["input"])
        allowed, suggestion = _BUILTIN_ALLOWED.get(first["type"], first["msg"]), None
    more = error.error_count() - 1
    if more:
        suggestion = "; ".join(filter(None, [suggestion, f"({more} more error{'s' * (more > 1)} here after this one)"]))
    return SpecError(file, key_path, found, allowed, suggestion)


def _join(path: str, loc: Sequence[str | int]) -> str:
    """Render a pydantic location as a key path: ("levels", 2, "depth") -> levels[2].depth."""
    for part in loc:
        if part == "[key]":
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


# ---------------------------------------------------------------------------
# Problems


def parse_problem(raw: object, file: File = None, path: str = "problem", batch: int = 1) -> Problem:
    """One layer: a conv/matmul/linear shorthand or a general einsum, with its batch
    dimension multiplied by `batch` (see the module docstring)."""
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
            raise SpecError(file, _join(path, [str(key)]), "an unknown key", forms,
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


# ---------------------------------------------------------------------------
# Energy tables


def shipped_specs_dir() -> Path:
    """The repository's specs/ when running from a checkout (editable install), else
    ./specs: the shipped specs are files of the repository, not package data."""
    return SHIPPED_SPECS if SHIPPED_SPECS.is_dir() else Path.cwd() / "specs"


def find_energy_table(name: str, spec_dir: Path) -> Path | None:
    """A table named in a spec: next to the spec first, then in the `energy/` folder
    beside the spec's folder (the layout of the shipped specs/, so that a copy of it, or
    a shipped spec named by its path from anywhere, finds its tables), then among the
    shipped ones."""
    for directory in (spec_dir, spec_dir.parent / "energy", shipped_specs_dir() / "energy"):
        for candidate in (directory / name, directory / f"{name}.yaml"):
            if _is_file_or_special(candidate):
                return candidate
    return None


def _is_file_or_special(path: Path) -> bool:
    """A path meant as a file: a device or a FIFO too, which `load_yaml` then refuses
    by name rather than as missing."""
    return path.exists() and not path.is_dir()


def load_energy_table(path: str | Path) -> dict[str, float]:
    """The entries of one energy table file, in the table's unit."""
    return dict(_read_energy_table(path).entries)


def _read_energy_table(path: str | Path) -> EnergyTableSpec:
    return validated(EnergyTableSpec.model_validate, load_yaml(path, ENERGY_TABLE_DOCUMENT), path, "")


@dataclass
class _EnergyTables:
    """The tables an architecture names, each loaded once."""

    spec_dir: Path
    loaded: dict[str, EnergyTableSpec] = field(default_factory=dict)

    def entries(self, name: str, file: File, path: str) -> dict[str, float]:
        return self.table(name, file, path).entries

    def table(self, name: str, file: File, path: str) -> EnergyTableSpec:
        if name not in self.loaded:
            found = find_energy_table(name, self.spec_dir)
            if found is None:
                shipped = sorted(p.stem for p in (shipped_specs_dir() / "energy").glob("*.yaml"))
                if not shipped:  # an installed mapper run outside the repository: the tables are its files
                    raise SpecError(file, path, f"energy table {name!r}, which is neither next to the spec nor "
                                    "in ../energy/ beside it, and no specs/energy/ here",
                                    "a table file next to the spec or in ../energy/",
                                    "run from the repository's folder, or copy the table next to the spec")
                raise SpecError(file, path, f"energy table {name!r}, which is neither next to the spec, "
                                "nor in ../energy/ beside it, nor in specs/energy/",
                                "a table file name; shipped: " + ", ".join(shipped), did_you_mean(name, shipped))
            self.loaded[name] = _read_energy_table(found)
        return self.loaded[name]

    def unit(self, named: list[tuple[str, str]], file: File) -> str:
        """The one unit symbol of the named tables (pJ if none): a sum of energies in
        two units, say pJ and multiples of a MAC, would mean nothing."""
        units: dict[str, str] = {}  # symbol -> the first table in it
        for name, path in named:
            symbol = self.table(name, file, path).symbol
            if units and symbol not in units:
                first_symbol, first_table = next(iter(units.items()))
                raise SpecError(file, path, f"energy table {name!r}, in {symbol}",
                                f"tables in one unit: {first_table!r} is in {first_symbol}",
                                "use tables of one unit, or write this level's energies as numbers")
            units.setdefault(symbol, name)
        return next(iter(units), "pJ")

    def energy(self, value: EnergyValue, table: tuple[str, str] | None, file: File, path: str) -> float:
        """A number as written (in the architecture's unit), or the weighted sum of table
        entries for an expression."""
        if isinstance(value, float):
            return value
        if table is None:
            raise SpecError(file, path, f"table entries ({' + '.join(n for _, n in value)}) but no energy_table",
                            "a number of pJ, or entries of the energy_table set on the level or architecture")
        name, table_path = table
        entries = self.entries(name, file, table_path)
        for _, entry in value:
            if entry not in entries:
                raise SpecError(file, path, f"entry {entry!r}", f"an entry of {name}: " + ", ".join(entries),
                                did_you_mean(entry, entries))
        total = sum(coefficient * entries[entry] for coefficient, entry in value)
        if not total <= MAX_ENERGY:  # a coefficient of hundreds of digits makes inf
            raise SpecError(file, path, f"{' + '.join(f'{c:g}*{n}' for c, n in value)} = {total:g}",
                            f"an energy of at most {MAX_ENERGY:g} per access (mapper/specs/limits.py)")
        return total


# ---------------------------------------------------------------------------
# Architectures


def parse_architecture(raw: object, file: File = None, path: str = "architecture") -> Architecture:
    """Levels outermost first; each level's instances are the product of the fan-outs
    above it, and energies are resolved against the named tables."""
    return parse_architecture_and_hardware(raw, file, path)[0]


def parse_architecture_and_hardware(raw: object, file: File = None,
                                    path: str = "architecture") -> tuple[Architecture, estimation.Hardware]:
    """`parse_architecture`, and what the architecture says for the estimator (`mapper
    estimate`): its technology, the components its levels name, the MAC's width."""
    spec = validated(ArchitectureSpec.model_validate, raw, file, path)
    hardware = estimation.Hardware(spec.technology, tuple((lv.name, lv.component) for lv in spec.levels
                                                          if lv.component), spec.compute.bits)
    return _architecture(spec, file, path), hardware


def _architecture(spec: ArchitectureSpec, file: File, path: str) -> Architecture:
    if len(spec.levels) > MAX_LEVELS:
        raise SpecError(file, f"{path}.levels", f"{len(spec.levels)} levels", f"at most {MAX_LEVELS} storage levels "
                        "(mapper/specs/limits.py): the mapspace and the search grow with every level")
    tables = _EnergyTables(Path(file).parent if file is not None else Path.cwd())
    named = [(spec.energy_table, f"{path}.energy_table"), (spec.compute.energy_table, f"{path}.compute.energy_table")]
    named += [(lv.energy_table, f"{path}.levels[{i}].energy_table") for i, lv in enumerate(spec.levels)]
    named = [(name, table_path) for name, table_path in named if name is not None]
    energy_unit = tables.unit(named, file)  # also: a misspelt table name is an error even where no energy uses it
    estimated = _Estimated(spec, energy_unit, file, path)
    default_table = None if spec.energy_table is None else (spec.energy_table, f"{path}.energy_table")
    levels: list[StorageLevel] = []
    mesh_x = mesh_y = 1
    for i, level in enumerate(spec.levels):
        level_path = f"{path}.levels[{i}]"
        if level.name in (lv.name for lv in levels):
            raise SpecError(file, f"{level_path}.name", f"{level.name!r} a second time", "a unique name per level")
        table = default_table if level.energy_table is None else (level.energy_table, f"{level_path}.energy_table")
        depth = _depth(level, i, file, level_path)
        levels.append(StorageLevel(
            name=level.name,
            instances=mesh_x * mesh_y,
            mesh_x=mesh_x,
            mesh_y=mesh_y,
            depth=depth,
            block_size=level.block_size,
            word_bits=level.word_bits,
            cluster_size=_cluster_size(level, mesh_x * mesh_y, file, level_path),
            read_bandwidth=level.read_bandwidth,
            write_bandwidth=level.write_bandwidth,
            multiple_buffering=level.multiple_buffering,
            **(estimated.level(i, depth) if level.component else {
                "read_energy": tables.energy(level.energy.read, table, file, f"{level_path}.energy.read"),
                "write_energy": tables.energy(level.energy.write, table, file, f"{level_path}.energy.write")}),
            network_energy=tables.energy(level.network_energy, table, file, f"{level_path}.network_energy"),
            keeps=_keeps(level, file, level_path),
        ))
        too_large = level_too_large(levels[-1])
        if too_large:
            key, found, allowed = too_large
            key = "size" if key == "depth" and level.size is not None else key
            raise SpecError(file, f"{level_path}.{key}", found, allowed)
        mesh_x, mesh_y = mesh_x * level.fanout[0], mesh_y * level.fanout[1]
        if mesh_x * mesh_y > MAX_INSTANCES:
            raise SpecError(file, f"{level_path}.fanout", f"{describe(list(level.fanout))}, which makes "
                            f"{mesh_x * mesh_y} instances below {level.name}",
                            f"at most {MAX_INSTANCES} instances of a level or of the MACs (2**16)")
    compute_table = default_table if spec.compute.energy_table is None else (
        spec.compute.energy_table, f"{path}.compute.energy_table")
    mac = (estimated.mac() if spec.compute.component else
           tables.energy(spec.compute.energy, compute_table, file, f"{path}.compute.energy"))
    compute = ComputeUnit(spec.compute.name, mesh_x * mesh_y, mesh_x, mesh_y, mac)
    return Architecture(spec.name, tuple(levels), compute, energy_unit)


class _Estimated:
    """The energies of the levels and the MAC that name a component instead: the
    built-in estimator's, at the architecture's technology, in pJ."""

    def __init__(self, spec: ArchitectureSpec, energy_unit: str, file: File, path: str) -> None:
        self.spec, self.file, self.path = spec, file, path
        parts = [(lv.energy, lv.component, f"{path}.levels[{i}]", "energy: {read, write}")
                 for i, lv in enumerate(spec.levels)]
        parts.append((spec.compute.energy, spec.compute.component, f"{path}.compute", "energy"))
        for energy, component, where, given in parts:
            if (energy is None) == (component is None):
                found = "both energy and component" if component else "neither energy nor component"
                raise SpecError(file, where, found, f"{given}, or component: a kind the estimator knows")
        if any(component for _, component, _, _ in parts):
            if spec.technology is None:
                where = next(w for _, component, w, _ in parts if component)
                raise SpecError(file, f"{where}.component", "a component to estimate but no technology",
                                "architecture.technology: the node, e.g. 45nm", "add technology: 45nm (or the "
                                "node of the design) to the architecture")
            if energy_unit != "pJ":
                raise SpecError(file, f"{path}.energy_table", f"energy tables in {energy_unit} beside estimated "
                                "components, which are in pJ", "one unit for all energies: tables in pJ, or "
                                "energies instead of components")

    def level(self, index: int, depth: int | None) -> dict[str, float]:
        level = self.spec.levels[index]
        try:
            found = estimation.estimate_storage(level.component, self.spec.technology,  # one access of the cluster
                                                level.block_size * level.word_bits * level.cluster_size, depth)
        except estimation.EstimateError as e:
            raise SpecError(self.file, f"{self.path}.levels[{index}].component", e.found, e.allowed) from None
        return {"read_energy": found.read_pJ, "write_energy": found.write_pJ}

    def mac(self) -> float:
        compute = self.spec.compute
        if compute.bits is None:
            raise SpecError(self.file, f"{self.path}.compute", "component: intmac without bits",
                            "bits: the operand width, e.g. 8")
        try:
            return estimation.estimate_mac(self.spec.technology, compute.bits).read_pJ
        except estimation.EstimateError as e:
            raise SpecError(self.file, f"{self.path}.compute.bits", e.found, e.allowed) from None


def _depth(level: LevelSpec, index: int, file: File, path: str) -> int | None:
    """Capacity in blocks, from `size` in words or `depth` in blocks (exactly one)."""
    has_size, has_depth = "size" in level.model_fields_set, "depth" in level.model_fields_set
    if has_size == has_depth:
        found = "both size and depth" if has_size else "neither size nor depth"
        raise SpecError(file, path, found, "size: N words (or unbounded, outermost level only), or depth: N blocks")
    if has_depth:
        return level.depth
    if level.size is None:
        if index:
            raise SpecError(file, f"{path}.size", "unbounded", "a positive number of words: only the outermost "
                            "level may be unbounded")
        return None
    if level.size % level.block_size:
        raise SpecError(file, f"{path}.size", f"{level.size} words", f"a multiple of block_size ({level.block_size})")
    return level.size // level.block_size


def _cluster_size(level: LevelSpec, instances: int, file: File, path: str) -> int:
    """Clusters of whole instances: a cluster that leaves part of one out of the level's
    instances, or takes more than there are, prices accesses no design makes."""
    if instances % level.cluster_size:
        raise SpecError(file, f"{path}.cluster_size", f"{level.cluster_size}, which does not divide the level's "
                        f"{instances} instances", f"a divisor of {instances}")
    return level.cluster_size


def _keeps(level: LevelSpec, file: File, path: str) -> frozenset[str] | None:
    if level.keeps is None:
        return None
    for i, name in enumerate(level.keeps):
        if name in level.keeps[:i]:
            raise SpecError(file, f"{path}.keeps[{i}]", f"{name!r} a second time", "each tensor once")
    return frozenset(level.keeps)


def check_keeps(architecture: Architecture, problem: Problem, file: File, path: str) -> None:
    """A level that may keep a tensor the problem lacks is wired for another workload."""
    tensors = [t.name for t in problem.tensors]
    for i, level in enumerate(architecture.levels):
        for name in sorted(level.keeps or ()):
            if name not in tensors:
                raise SpecError(file, f"{path}.levels[{i}].keeps", repr(name), f"tensors of problem "
                                f"{problem.name!r}: " + ", ".join(tensors), did_you_mean(name, tensors))


# ---------------------------------------------------------------------------
# Mappings


def parse_mapping(raw: object, problem: Problem, architecture: Architecture,
                  file: File = None, path: str = "mapping") -> Mapping:
    """A complete mapping of `problem` onto `architecture`, with one LevelMapping per
    architecture level (levels the spec leaves out get no loops and default keeps)."""
    entries = validated(_MAPPING_LIST.validate_python, raw, file, path)
    names = [level.name for level in architecture.levels]
    given: dict[int, LevelMapping] = {}
    for j, entry in enumerate(entries):
        entry_path = f"{path}[{j}]"
        if entry.level not in names:
            raise SpecError(file, f"{entry_path}.level", repr(entry.level), "a level of architecture "
                            f"{architecture.name!r}: " + ", ".join(names), did_you_mean(entry.level, names))
        index = names.index(entry.level)
        if given and index <= max(given):
            raise SpecError(file, f"{entry_path}.level", f"{entry.level!r} after {names[max(given)]!r}",
                            "levels outermost first, each once: " + ", ".join(names))
        given[index] = _level_mapping(entry, index, problem, architecture, file, entry_path)
    levels = tuple(given.get(i) or LevelMapping(keep=_allowed_tensors(level, problem))
                   for i, level in enumerate(architecture.levels))
    mapping = Mapping(levels)
    _check_outermost_keeps(mapping, problem, architecture, file, f"{path}[0]" if 0 in given else path)
    check_covers(mapping, problem, architecture, file, path)
    return mapping


def _check_outermost_keeps(mapping: Mapping, problem: Problem, architecture: Architecture, file: File,
                           path: str) -> None:
    """The outermost level keeps every tensor, but one that a level below holds whole
    (no loop above that level over the tensor's dimensions: a fused group's
    intermediate, mapper/fusion.py), which is then never filled from outside."""
    for tensor in problem.tensors:
        if tensor.name in mapping.levels[0].keep:
            continue
        keeper = next((i for i, lm in enumerate(mapping.levels) if tensor.name in lm.keep), None)
        moving = sorted(mapping.dims_above(keeper) & tensor.dims) if keeper is not None else []
        if keeper is None or moving:
            held = ("no level keeps it" if keeper is None else
                    f"{architecture.levels[keeper].name} keeps it, but loops above it run over {', '.join(moving)}")
            raise SpecError(file, path, f"the outermost level bypassing {tensor.name} ({held})",
                            "the outermost level keeps every tensor: it is where they all come from, but for one "
                            "that a level below holds whole (no loop above that level over its dimensions)")


def _allowed_tensors(level: StorageLevel, problem: Problem) -> frozenset[str]:
    names = frozenset(t.name for t in problem.tensors)
    return names if level.keeps is None else names & level.keeps


def _level_mapping(entry: LevelMappingSpec, index: int, problem: Problem, architecture: Architecture,
                   file: File, path: str) -> LevelMapping:
    """Check one entry's loops against the problem and the fan-out, and settle its keeps."""
    level = architecture.levels[index]
    for kind, loops in (("temporal", entry.temporal), ("spatial", entry.spatial)):
        for i, (dim, *_) in enumerate(loops):
            if dim not in problem.bounds:
                raise SpecError(file, f"{path}.{kind}[{i}]", f"dimension {dim!r}", f"a dimension of problem "
                                f"{problem.name!r}: " + ", ".join(problem.dims), did_you_mean(dim, problem.dims))
            # A dimension may be unrolled along X and along Y of one fan-out, once on each.
            if (dim, *loops[i][2:]) in ((loop[0], *loop[2:]) for loop in loops[:i]):
                raise SpecError(file, f"{path}.{kind}[{i}]", f"dimension {dim} a second time",
                                f"each dimension once in a level's {kind} loops (once per axis for spatial ones)",
                                "multiply the factors into one loop")
    for axis, limit in zip("XY", architecture.fanout(index), strict=True):
        used = prod(factor for _, factor, a in entry.spatial if a == axis)
        if used > limit:
            raise SpecError(file, f"{path}.spatial", f"spatial {axis} factors at {level.name} that multiply to "
                            f"{used}", f"at most {limit}, the fan-out {architecture.fanout_name(index)} along {axis}")
    return LevelMapping(
        temporal=tuple(Loop(dim, factor) for dim, factor in entry.temporal),
        spatial=tuple(Loop(dim, factor, axis) for dim, factor, axis in entry.spatial),
        keep=_keep(entry, level, problem, file, path),
    )


def _keep(entry: LevelMappingSpec, level: StorageLevel, problem: Problem, file: File, path: str) -> frozenset[str]:
    """keep: exactly these; bypass: all allowed but these; both: all allowed but the bypassed."""
    names = [t.name for t in problem.tensors]
    allowed = _allowed_tensors(level, problem)
    for kind, listed in (("keep", entry.keep or []), ("bypass", entry.bypass or [])):
        for i, name in enumerate(listed):
            if name not in names:
                raise SpecError(file, f"{path}.{kind}[{i}]", f"tensor {name!r}", f"a tensor of problem "
                                f"{problem.name!r}: " + ", ".join(names), did_you_mean(name, names))
            if kind == "keep" and name not in allowed:
                raise SpecError(file, f"{path}.keep[{i}]", repr(name), f"tensors the architecture lets "
                                f"{level.name} keep: " + (", ".join(sorted(allowed)) or "none"))
            if kind == "bypass" and name in (entry.keep or []):
                raise SpecError(file, f"{path}.bypass[{i}]", f"{name!r}, also listed in keep",
                                "a tensor in keep or in bypass, not both")
    keep = (frozenset(entry.keep) if entry.bypass is None and entry.keep is not None
            else allowed - frozenset(entry.bypass or ()))
    return keep


# ---------------------------------------------------------------------------
# Whole specs


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


def find_spec_file(name: str | Path) -> Path:
    """A spec named on the command line: a path as given, else a shipped spec such as
    `eyeriss` or `arch/eyeriss` (the .yaml suffix may be left out)."""
    path = Path(name)
    if _is_file_or_special(path):
        return path
    root = shipped_specs_dir()
    for directory in (root, *(root / sub for sub in _SPEC_SUBDIRS)):
        for candidate in (directory / path, directory / f"{path}.yaml"):
            if candidate.is_file():
                return candidate
    shipped = sorted(str(p.relative_to(root).with_suffix("")) for p in root.glob("*/*.yaml"))
    raise SpecError(path, "", "a directory" if path.is_dir() else "no such file, nor a shipped spec of that name",
                    "a path to a YAML file, or a shipped spec: " + ", ".join(shipped),
                    did_you_mean(path.with_suffix("").name, [Path(s).name for s in shipped] + shipped))
