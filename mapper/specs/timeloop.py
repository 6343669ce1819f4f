"""Timeloop's input: the fully expanded `parsed-processed-input.yaml`, the v0.2 and v0.4
dialects (`word-bits` or `word_bits`), mappings and energy reference tables (ERT).

Several files given together are merged at the top level, as Timeloop does. Every
value is checked where it is read: a mistake is a SpecError with its key path, never
a KeyError or TypeError from deep inside the reader.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from math import isfinite
from pathlib import Path
from typing import Any

from ..architecture import Architecture, ComputeUnit, StorageLevel
from ..estimation import DEFAULT_DRAM, NOTHING, EstimateError, Hardware, dram_types, technology_nm
from ..mapping import LevelMapping, Loop, Mapping, merged_end
from ..problem import Problem, Tensor
from .coverage import check_covers
from .errors import SpecError, describe, did_you_mean
from .limits import LAYER_LIMIT, MAX_ENERGY, MAX_INSTANCES, MAX_LEVELS, level_too_large, problem_too_large

_RANGE = re.compile(r"^(?P<base>.*?)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")
_COMPUTE_CLASSES = ("mac", "compute", "alu")
# `dataspace` is the v0.4 front end's word for `datatype` (its tutorial's t03 mappings use it).
_DIRECTIVE_TYPES = ("temporal", "spatial", "datatype", "dataspace", "bypass")


@dataclass(frozen=True)
class TimeloopSpec:
    """What a set of Timeloop files describes; any part may be missing."""

    problem: Problem | None
    architecture: Architecture | None
    mapping: Mapping | None
    hardware: Hardware = Hardware()  # what the architecture says for the estimator
    metrics: tuple[str, ...] = ()  # the mapper's optimization-metrics, most important first


# Top-level keys of Timeloop's files that native specs do not have (its mapper's
# settings, Accelergy's tables and variables).
TIMELOOP_ONLY_KEYS = ("mapper", "mapspace", "mapspace_constraints", "architecture_constraints",
                      "compound_components", "variables", "ERT", "ART", "globals")


def is_timeloop(doc: object) -> bool:
    """Whether a document is in Timeloop's format: an architecture tree (`subtree`, or
    v0.4's `nodes`), a problem shape, a mapping with targets, or one of Timeloop's own
    top-level keys (a `mapper.yaml` alone)."""
    if not isinstance(doc, dict):
        return False
    arch, problem, mapping = doc.get("architecture"), doc.get("problem"), doc.get("mapping")
    return bool(
        set(TIMELOOP_ONLY_KEYS) & set(doc)
        or (isinstance(arch, dict) and {"subtree", "nodes", "version"} & set(arch))
        or (isinstance(problem, dict) and {"shape", "instance", "version"} & set(problem))
        or (isinstance(mapping, list) and any(isinstance(m, dict) and "target" in m for m in mapping))
    )


def get(attrs: dict, key: str, default: Any = None) -> Any:
    """Look a key up in either dialect: `word_bits` or `word-bits`."""
    for k in (key, key.replace("_", "-")):
        if k in attrs and attrs[k] is not None:
            return attrs[k]
    return default


def _key(attrs: dict, key: str) -> str:
    """The spelling of `key` that `attrs` uses, for error messages."""
    dashed = key.replace("_", "-")
    return dashed if dashed in attrs and key not in attrs else key


def split_range(name: str, source: str = "<timeloop>", path: str = "name") -> tuple[str, int]:
    """`PE[0..15]` -> ("PE", 16); a plain name is one instance."""
    m = _RANGE.match(name)
    if not m:
        return name, 1
    count = int(m["hi"]) - int(m["lo"]) + 1
    if count < 1:
        raise SpecError(source, path, repr(name), "a range [lo..hi] with lo <= hi")
    return m["base"], count


# -------------------------------------------------------------- checked values


def _dict(value: Any, source: str, path: str) -> dict:
    """A mapping; an absent (null) one is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(source, path, describe(value), "a mapping")
    return value


def _list(value: Any, source: str, path: str) -> list:
    """A list; an absent (null) one is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise SpecError(source, path, describe(value), "a list")
    return value


def _text(value: Any, source: str | Path | None, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(source, path, describe(value), "a non-empty string")
    return value


def _positive_int(value: Any, source: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(source, path, describe(value), "a positive integer")
    return value


def _number(value: Any, source: str, path: str, minimum: float = 0.0, strict: bool = False) -> float:
    """A finite number >= minimum (> minimum when strict)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not isfinite(value)
            or value < minimum or (strict and value == minimum)):
        raise SpecError(source, path, describe(value), f"a number {'>' if strict else '>='} {minimum:g}")
    return float(value)


def _optional_number(value: Any, source: str, path: str) -> float | None:
    return None if value is None else _number(value, source, path, strict=True)


def _names(value: Any, source: str, path: str) -> list[str]:
    return [_text(v, source, f"{path}[{i}]") for i, v in enumerate(_list(value, source, path))]


# --------------------------------------------------------------------- problem


def parse_problem(doc: dict, source: str = "<timeloop>") -> Problem:
    prob = _dict(doc["problem"], source, "problem")
    shape = _dict(prob.get("shape"), source, "problem.shape")
    instance = _dict(prob.get("instance"), source, "problem.instance")
    dims = tuple(_names(shape.get("dimensions"), source, "problem.shape.dimensions"))
    for i, d in enumerate(dims):
        if d in dims[:i]:
            raise SpecError(source, f"problem.shape.dimensions[{i}]", f"{d!r} a second time", "each dimension once")
    coefficients = _coefficients(shape, instance, source)
    spaces_key = f"problem.shape.{_key(shape, 'data_spaces')}"
    tensors: list[Tensor] = []
    for i, raw in enumerate(_list(get(shape, "data_spaces", []), source, spaces_key)):
        path = f"{spaces_key}[{i}]"
        ds = _dict(raw, source, path)
        name = _text(ds.get("name"), source, f"{path}.name")
        if name in (t.name for t in tensors):
            raise SpecError(source, f"{path}.name", f"{name!r} a second time", "a unique name per data space")
        ranks = [_rank(rank, dims, coefficients, source, f"{path}.projection[{r}]")
                 for r, rank in enumerate(_list(ds.get("projection"), source, f"{path}.projection"))]
        read_write = get(ds, "read_write", False)
        if not isinstance(read_write, bool):
            raise SpecError(source, f"{path}.{_key(ds, 'read_write')}", describe(read_write), "true or false")
        tensors.append(Tensor(name, tuple(ranks), read_write))
    outputs = [t.name for t in tensors if t.read_write]
    if len(outputs) != 1:
        raise SpecError(source, spaces_key, f"{len(outputs)} read_write data spaces ({', '.join(outputs) or 'none'})",
                        "exactly one read_write data space (the output)")
    bounds = {}
    for d in dims:
        if d not in instance:
            raise SpecError(source, f"problem.instance.{d}", "nothing", "a positive integer bound")
        bounds[d] = _positive_int(instance[d], source, f"problem.instance.{d}")
    name = shape.get("name", "problem")
    problem = Problem(_text(name, source, "problem.shape.name"), dims, bounds, tuple(tensors))
    too_large = problem_too_large(problem)
    if too_large:
        raise SpecError(source, "problem.instance", too_large, LAYER_LIMIT)
    return problem


def _coefficients(shape: dict, instance: dict, source: str) -> dict[str, int]:
    """Named coefficients (strides, dilations): their defaults, overridden by the instance."""
    coefficients: dict[str, int] = {}
    for j, raw in enumerate(_list(shape.get("coefficients"), source, "problem.shape.coefficients")):
        path = f"problem.shape.coefficients[{j}]"
        c = _dict(raw, source, path)
        name = _text(c.get("name"), source, f"{path}.name")
        coefficients[name] = _positive_int(c.get("default", 1), source, f"{path}.default")
    for name in coefficients:
        if name in instance:
            coefficients[name] = _positive_int(instance[name], source, f"problem.instance.{name}")
    return coefficients


def _rank(raw: Any, dims: tuple[str, ...], coefficients: dict[str, int], source: str,
          path: str) -> tuple[tuple[int, str], ...]:
    """One projection rank: terms [dim] or [dim, coefficient name]."""
    terms = []
    for t, raw_term in enumerate(_list(raw, source, path)):
        term = [raw_term] if isinstance(raw_term, str) else raw_term
        if not isinstance(term, list) or len(term) not in (1, 2) or not all(isinstance(x, str) for x in term):
            raise SpecError(source, f"{path}[{t}]", describe(raw_term), "a term [dimension] or "
                            "[dimension, coefficient]")
        dim, *coef = term
        if dim not in dims:
            raise SpecError(source, f"{path}[{t}]", repr(dim), f"a dimension of {list(dims)}", did_you_mean(dim, dims))
        if coef and coef[0] not in coefficients:
            raise SpecError(source, f"{path}[{t}]", repr(coef[0]), f"a coefficient of {list(coefficients)}",
                            did_you_mean(coef[0], coefficients))
        terms.append((coefficients[coef[0]] if coef else 1, dim))
    if not terms:
        raise SpecError(source, path, "an empty rank", "a list of one or more terms")
    return tuple(terms)


# ---------------------------------------------------------------- architecture


def _leaves(node: dict, source: str, path: str, multiplier: int = 1) -> Iterable[tuple[dict, int, str]]:
    """Every `local` component in order, outermost first, with its instance count and
    key path."""
    name = node.get("name", "")
    _, n = split_range(name, source, f"{path}.name") if isinstance(name, str) else (name, 1)
    multiplier *= n
    for i, raw in enumerate(_list(node.get("local"), source, f"{path}.local")):
        leaf_path = f"{path}.local[{i}]"
        leaf = _dict(raw, source, leaf_path)
        _, count = split_range(_text(leaf.get("name"), source, f"{leaf_path}.name"), source, f"{leaf_path}.name")
        if count * multiplier > MAX_INSTANCES:
            raise SpecError(source, f"{leaf_path}.name", f"{count * multiplier} instances of {leaf['name']!r}",
                            f"at most {MAX_INSTANCES} instances of a component (2**16)")
        yield leaf, count * multiplier, leaf_path
    for i, sub in enumerate(_list(node.get("subtree"), source, f"{path}.subtree")):
        yield from _leaves(_dict(sub, source, f"{path}.subtree[{i}]"), source, f"{path}.subtree[{i}]", multiplier)


def _mesh(attrs: dict, instances: int, source: str, path: str) -> tuple[int, int]:
    mesh_x, mesh_y = get(attrs, "meshX"), get(attrs, "meshY")
    if mesh_x is not None:
        mesh_x = _positive_int(mesh_x, source, f"{path}.meshX")
    if mesh_y is not None:
        mesh_y = _positive_int(mesh_y, source, f"{path}.meshY")
    for axis, value in (("meshX", mesh_x), ("meshY", mesh_y)):
        if value is not None and value > instances:
            raise SpecError(source, f"{path}.{axis}", str(value), f"at most the {instances} instances")
    if mesh_x is None and mesh_y is None:
        return instances, 1
    # As Timeloop's BufferLevel::ValidateTopology: the mesh holds every instance, once.
    for axis, value in (("meshX", mesh_x), ("meshY", mesh_y)):
        if value is not None and instances % value:
            raise SpecError(source, f"{path}.{axis}", f"{value}, which does not divide the {instances} instances",
                            f"a divisor of {instances}")
    if mesh_x is None:
        return instances // mesh_y, mesh_y
    if mesh_y is None:
        return mesh_x, instances // mesh_x
    if mesh_x * mesh_y != instances:
        raise SpecError(source, f"{path}.meshY", f"meshX {mesh_x} x meshY {mesh_y} = {mesh_x * mesh_y} places for "
                        f"{instances} instances", "meshX x meshY equal to the instances")
    return mesh_x, mesh_y


def parse_ert(doc: dict, source: str = "<timeloop>") -> dict[str, dict[str, float]]:
    """Energy per action of each component (the largest variant of each action)."""
    ert: dict[str, dict[str, float]] = {}
    for i, raw in enumerate(_list(_dict(doc.get("ERT"), source, "ERT").get("tables"), source, "ERT.tables")):
        path = f"ERT.tables[{i}]"
        table = _dict(raw, source, path)
        name = split_range(_text(table.get("name"), source, f"{path}.name"), source, f"{path}.name")[0]
        actions = ert.setdefault(name.split(".")[-1], {})
        for j, raw_action in enumerate(_list(table.get("actions"), source, f"{path}.actions")):
            action = _dict(raw_action, source, f"{path}.actions[{j}]")
            action_name = _text(action.get("name"), source, f"{path}.actions[{j}].name")
            energy = _number(action.get("energy", 0.0), source, f"{path}.actions[{j}].energy")
            if energy > MAX_ENERGY:
                raise SpecError(source, f"{path}.actions[{j}].energy", f"{energy:g}",
                                f"an energy of at most {MAX_ENERGY:g} pJ per action (mapper/specs/limits.py)")
            actions[action_name] = max(actions.get(action_name, energy), energy)
    return ert


def parse_architecture(doc: dict, source: str = "<timeloop>", need_energies: bool = True,
                       ert_source: str | None = None) -> Architecture:
    """`need_energies=False`: no ERT needed, energies 0 where it has none (for the
    estimator, which makes them). `ert_source`: the ERT's file, where it has one of its
    own."""
    ert_source = ert_source or source
    ert = parse_ert(doc, ert_source) if "ERT" in doc or need_energies else {}
    arch = _dict(doc["architecture"], source, "architecture")
    leaves = list(_leaves({"subtree": arch.get("subtree")}, source, "architecture"))
    if not leaves:
        raise SpecError(source, "architecture.subtree", "no components", "storage levels and a compute unit")
    *storage, (mac, mac_count, mac_path) = leaves
    if len(storage) > MAX_LEVELS:
        raise SpecError(source, "architecture.subtree", f"{len(storage)} storage components", f"at most {MAX_LEVELS} "
                        "(mapper/specs/limits.py): the mapspace and the search grow with every level")
    if not any(c in str(mac.get("class", "")).lower() for c in _COMPUTE_CLASSES):
        raise SpecError(source, f"{mac_path}.class", describe(mac.get("class")),
                        "the innermost component to be a compute unit (intmac, fpmac, ...)")
    if need_energies:
        _require_energies(doc, ert, [leaf for leaf, _, _ in storage if leaf.get("class") != "dummy_storage"] + [mac],
                          source, ert_source)
    levels = [_storage_level(leaf, count, ert, source, path) for leaf, count, path in storage]
    for i, level in enumerate(levels):
        if level.name in (lv.name for lv in levels[:i]):
            raise SpecError(source, f"{storage[i][2]}.name", f"{level.name!r} a second time",
                            "a unique name per component")
    mac_name, _ = split_range(mac["name"], source, f"{mac_path}.name")
    mac_attrs = _dict(mac.get("attributes"), source, f"{mac_path}.attributes")
    mx, my = _mesh(mac_attrs, mac_count, source, f"{mac_path}.attributes")
    compute = ComputeUnit(mac_name, mac_count, mx, my, compute_energy(ert.get(mac_name, {})))
    _check_fanouts([*levels, compute], [path for _, _, path in storage] + [mac_path], source)
    name = arch.get("name", "timeloop")
    return Architecture(name if isinstance(name, str) else describe(name), tuple(levels), compute)


def _check_fanouts(components: list[StorageLevel | ComputeUnit], paths: list[str], source: str) -> None:
    """Each component's mesh a whole multiple of the one above it, in X and in Y, as
    Timeloop's topology requires: the fan-out between them is the ratio (a ratio below
    one or with a remainder would leave instances without a parent, or count some
    MACs twice)."""
    for (outer, inner), path in zip(itertools.pairwise(components), paths[1:]):
        if inner.mesh_x % outer.mesh_x or inner.mesh_y % outer.mesh_y:
            raise SpecError(source, f"{path}.name", f"{inner.instances} instances of {inner.name} (mesh "
                            f"{inner.mesh_x} x {inner.mesh_y}) under {outer.instances} of {outer.name} (mesh "
                            f"{outer.mesh_x} x {outer.mesh_y})", f"a whole multiple of {outer.name}'s mesh in X and "
                            "in Y (each instance of it fans out to the same number below)")


def parse_hardware(doc: dict, source: str = "<timeloop>") -> Hardware:
    """What a Timeloop architecture says for the estimator (`mapper estimate`): the first
    `technology` among its attributes that the estimator covers (Accelergy's "45nm"),
    DRAM types and dummy levels by their class (the rest by their size,
    estimation.inferred_kind), the MAC's operand width from its `datawidth`."""
    arch = _dict(doc["architecture"], source, "architecture")
    leaves = list(_leaves({"subtree": arch.get("subtree")}, source, "architecture"))
    components = []
    for leaf, _, path in leaves[:-1]:
        name, _ = split_range(leaf["name"], source, f"{path}.name")
        kind = str(leaf.get("class", ""))
        dram = str(get(_dict(leaf.get("attributes"), source, path), "type", DEFAULT_DRAM))
        if kind.upper() == "DRAM":
            components.append((name, dram if dram in dram_types() else DEFAULT_DRAM))
        elif kind == "dummy_storage":
            components.append((name, NOTHING))
    bits = get(_dict(leaves[-1][0].get("attributes"), source, leaves[-1][2]), "datawidth") if leaves else None
    return Hardware(_technology(arch), tuple(components), bits if isinstance(bits, int) and bits > 0 else None)


def component_classes(doc: dict, source: str = "<timeloop>") -> dict[str, str]:
    """Each component of the architecture by name: its class (smartbuffer_SRAM, DRAM, ...)."""
    arch = _dict(doc["architecture"], source, "architecture")
    return {split_range(leaf["name"], source, f"{path}.name")[0]: str(leaf.get("class", ""))
            for leaf, _, path in _leaves({"subtree": arch.get("subtree")}, source, "architecture")}


def _technology(node: Any) -> float | None:
    """The first technology node in `node` (attributes at any depth) the estimator covers."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "technology":
                try:
                    return technology_nm(value)
                except EstimateError:
                    continue
            found = _technology(value)
            if found is not None:
                return found
    if isinstance(node, list):
        return next((n for n in map(_technology, node) if n is not None), None)
    return None


def _require_energies(doc: dict, ert: dict[str, dict[str, float]], components: list[dict], source: str,
                      ert_source: str) -> None:
    """Timeloop's parsed input carries no energies: they come in the energy reference
    table (ERT) that Accelergy computed for it, written beside it. Without it every
    energy would silently be 0 pJ, so a missing ERT, a component the ERT does not
    price (dummy levels of a spatial fan-out aside), or a table without the actions the
    model prices (a storage's read and write, the compute unit's compute or mac_*:
    where one is missing, Timeloop falls back to its own energy model, which mapper
    does not have) is an error."""
    how = ("add the ERT.yaml Timeloop wrote beside the input (timeloop-model.ERT.yaml or timeloop-mapper.ERT.yaml) "
           "as another file, or an `ERT: {tables: ...}` key")
    if "ERT" not in doc:
        raise SpecError(source, "ERT", "an architecture without its energy reference table (every energy would be "
                        "0 pJ)", "Timeloop's ERT for the architecture", how)
    for component in components:
        name = split_range(str(component.get("name")), source, "name")[0]
        if name not in ert:
            raise SpecError(ert_source, "ERT.tables", f"no table for component {name!r}", "an ERT table for every "
                            "storage component and the compute unit",
                            "use the ERT Timeloop wrote for this architecture")
        actions = ert[name]
        if component is components[-1]:  # the compute unit
            missing = [] if "compute" in actions or any(a.startswith("mac") for a in actions) else ["compute"]
            allowed = "compute (or mac_random) for the compute unit"
        else:
            missing = [a for a in ("read", "write") if a not in actions]
            allowed = "read and write for a storage component"
        if missing:
            raise SpecError(ert_source, "ERT.tables", f"the table of {name!r} without {' or '.join(missing)} (actions: "
                            f"{', '.join(actions) or 'none'}; its energy would be 0 pJ)", allowed,
                            "use the ERT Timeloop wrote for this architecture")


def _storage_level(leaf: dict, count: int, ert: dict, source: str, path: str) -> StorageLevel:
    attrs_path = f"{path}.attributes"
    attrs = _dict(leaf.get("attributes"), source, attrs_path)

    def where(key: str) -> str:
        return f"{attrs_path}.{_key(attrs, key)}"

    name, _ = split_range(leaf["name"], source, f"{path}.name")
    word_key = _named(attrs, WORD_BITS)
    word_bits = 16 if word_key is None else _positive_int(get(attrs, word_key), source, where(word_key))
    block, cluster = _block_and_cluster(attrs, word_bits, source, where)
    depth = _depth(attrs, block, word_bits, source, where)
    is_dram = str(leaf.get("class", "")).upper() == "DRAM"
    mesh_x, mesh_y = _mesh(attrs, count, source, attrs_path)
    if cluster > 1 and (is_dram or cluster > count):
        key = where("cluster_size" if get(attrs, "cluster_size") is not None else _named(attrs, WIDTH))
        allowed = ("clusters of 1: Timeloop asserts that a DRAM's are" if is_dram else
                   f"clusters of at most its {count} instances (with no whole cluster, Timeloop would charge none "
                   "of its accesses)")
        raise SpecError(source, key, f"clusters of {cluster} instances of {name}", allowed,
                        "give block_size as its width in words")
    energy = ert.get(name, {})
    level = StorageLevel(
        name=name, instances=count, mesh_x=mesh_x, mesh_y=mesh_y,
        depth=None if (is_dram or depth is None) else depth,
        block_size=block, word_bits=word_bits, cluster_size=cluster,
        read_bandwidth=_optional_number(get(attrs, "read_bandwidth"), source, where("read_bandwidth")),
        write_bandwidth=_optional_number(get(attrs, "write_bandwidth"), source, where("write_bandwidth")),
        multiple_buffering=_number(get(attrs, "multiple_buffering", 1.0), source, where("multiple_buffering"), 1.0),
        read_energy=energy.get("read", 0.0), write_energy=energy.get("write", 0.0),
    )
    too_large = level_too_large(level)
    if too_large:
        key, found, allowed = too_large
        key = _named(attrs, {"word_bits": WORD_BITS, "depth": SIZES, "block_size": (*BLOCK_SIZE, *WIDTH)}[key])
        raise SpecError(source, where(key), found, allowed)
    return level


# A buffer attribute under each name Timeloop's buffer.cpp reads it by, in its order.
WORD_BITS = ("word_bits", "word_width", "datawidth")
BLOCK_SIZE = ("block_size", "n_words")
WIDTH = ("width", "memory_width", "data_storage_width")
DEPTHS = ("depth", "memory_depth", "data_storage_depth")  # in blocks
SIZES = ("entries", *DEPTHS, "sizeKB", "size")


def _named(attrs: dict, names: Sequence[str]) -> str | None:
    """The first of `names` that `attrs` gives a value (in either dialect's spelling)."""
    return next((name for name in names if get(attrs, name) is not None), None)


def _block_and_cluster(attrs: dict, word_bits: int, source: str, where: Callable[[str], str]) -> tuple[int, int]:
    """A buffer's words per access and instances per access (block_size, cluster_size),
    as Timeloop's buffer.cpp reads them: a `width` splits into the two that are not
    given; without either, the access is all one instance's (a cluster of one)."""
    width_key = _named(attrs, WIDTH)
    block, cluster, width = (None if key is None else _positive_int(get(attrs, key), source, where(key))
                             for key in (_named(attrs, BLOCK_SIZE), _named(attrs, ("cluster_size",)), width_key))
    if width is None:
        return block or 1, cluster or 1
    if block is not None and cluster is not None:
        if block * word_bits * cluster != width:
            raise SpecError(source, where(width_key), f"{width} bits beside block_size {block}, cluster_size "
                            f"{cluster} and {word_bits}-bit words", f"block_size x word_bits x cluster_size = "
                            f"{block * word_bits * cluster} bits", "give two of the three")
        return block, cluster
    unit = word_bits * (block or cluster or 1)
    if width % unit:
        # Timeloop's buffer.cpp asserts it: the port is a whole number of blocks wide.
        parts = (f"blocks of {block} words" if block else f"clusters of {cluster} words" if cluster
                 else "words") + f" of {word_bits} bits"
        raise SpecError(source, where(width_key), f"{width} bits, not a whole number of {parts}",
                        f"a multiple of {unit} bits")
    if block is not None:
        return block, width // unit
    return width // unit, 1 if cluster is None else cluster


def _depth(attrs: dict, block: int, word_bits: int, source: str, where: Callable[[str], str]) -> int | None:
    """A buffer's depth in blocks (None: unbounded), from the first of its sizes that
    Timeloop reads: `entries` in words, `depth` (`memory_depth`, `data_storage_depth`)
    in blocks, `sizeKB` in kilobytes of its words (then `size`, in words, as Accelergy
    v0.2 wrote it)."""
    sized = _named(attrs, SIZES)
    if sized is None:
        return None
    if sized != "sizeKB" and get(attrs, "sizeKB") is not None:  # as Timeloop's buffer.cpp asserts
        raise SpecError(source, where("sizeKB"), f"sizeKB besides {_key(attrs, sized)}",
                        "one size of the buffer: entries, depth (memory_depth, data_storage_depth) or sizeKB")
    value = _positive_int(get(attrs, sized), source, where(sized))
    if sized in DEPTHS:
        return value
    if sized == "size":
        return max(1, value // block)
    words = value if sized == "entries" else value * 1024 * 8 // word_bits
    if words % block:
        raise SpecError(source, where(sized), f"{words} words, not a whole number of blocks of {block}",
                        "a size that holds whole blocks (block_size words each)", "give its depth in blocks")
    return words // block


def compute_energy(actions: dict[str, float]) -> float:
    """`compute`, or in the v0.2 tables the largest `mac_*` variant (`mac_random`)."""
    if "compute" in actions:
        return actions["compute"]
    return max((e for a, e in actions.items() if a.startswith("mac")), default=0.0)


# --------------------------------------------------------------------- mapping


def parse_factors(text: Any, source: str = "<timeloop>", path: str = "factors") -> dict[str, int]:
    """A mapping directive's factors, "R=3 P=16" (or "R3 P16", or a mapping of them)."""
    if isinstance(text, dict):
        return {str(k): _positive_int(v, source, f"{path}.{k}") for k, v in text.items()}
    if not isinstance(text, (str, int)) or isinstance(text, bool):
        raise SpecError(source, path, describe(text), 'factors like "R=3 P=16" (or a mapping of them)')
    return {dim: factor for dim, factor, _ in _factor_terms(str(text), source, path)}


def parse_residuals(text: Any, source: str = "<timeloop>", path: str = "factors") -> dict[str, int]:
    """The residual ends of Timeloop's imperfect factors, "P=4,3": 4 iterations, 3 where
    the loops of P outside are all at their last."""
    if not isinstance(text, str):
        return {}
    return {dim: end for dim, _, end in _factor_terms(text, source, path) if end is not None}


# A factor of a mapping directive: "P=4" or "P4", with its residual end "P=4,3"; the
# factors apart by spaces or commas (Timeloop's "C=1,K=1").
_FACTOR_TERM = re.compile(r"([A-Za-z_][A-Za-z_0-9]*?)\s*=?\s*(\d+)(?:,(\d+))?(?=[\s,]|$)")
_FACTOR_SEPARATORS = re.compile(r"[\s,]*")


def _factor_terms(text: str, source: str, path: str) -> list[tuple[str, int, int | None]]:
    """(dimension, factor, residual end or None) of each factor of `text`; what does
    not read as one is a SpecError, not left out."""
    terms: list[tuple[str, int, int | None]] = []
    position = 0
    while (position := _FACTOR_SEPARATORS.match(text, position).end()) < len(text):
        match = _FACTOR_TERM.match(text, position)
        if match is None:
            raise SpecError(source, path, f"{text[position:].split()[0]!r} in {text!r}",
                            'factors like "R=3 P=16" or "R3 P16", a residual end after a comma: "P=4,3"')
        dim, factor, end = match[1], int(match[2]), None if match[3] is None else int(match[3])
        if any(dim == seen for seen, _, _ in terms):
            raise SpecError(source, path, f"{dim} a second time in {text!r}", "each dimension once")
        terms.append((dim, factor, end))
        position = match.end()
    return terms


def parse_permutation(text: Any, dims: tuple[str, ...], source: str = "<timeloop>",
                      path: str = "permutation") -> list[str]:
    """Inner-to-outer dimension order: those `text` lists (`listed_permutation`), then
    the dimensions it leaves out."""
    order = listed_permutation(text, dims, source, path)
    return order + [d for d in dims if d not in order]


def listed_permutation(text: Any, dims: Sequence[str], source: str | Path | None,
                       path: str) -> list[str]:
    """The dimensions a Timeloop permutation lists, innermost first: single letters
    unless spaces or commas separate them, or a list; each once, and one of `dims`
    (any name where `dims` is empty: no problem known yet)."""
    if isinstance(text, list):
        order = [_text(d, source, f"{path}[{i}]") for i, d in enumerate(text)]
    elif not isinstance(text, str):
        raise SpecError(source, path, describe(text), "dimensions innermost first: a string such as NCPQRSM, "
                        "names separated by spaces or commas, or a list")
    elif re.search(r"[\s,]", text.strip()):
        order = [d for d in re.split(r"[\s,]+", text.strip()) if d]
    else:
        order = list(text)
    for i, d in enumerate(order):
        if dims and d not in dims:
            raise SpecError(source, path, f"dimension {d!r}", "a dimension of the problem: " + ", ".join(dims),
                            did_you_mean(d, dims))
        if d in order[:i]:
            raise SpecError(source, path, f"{d!r} a second time", "each dimension once")
    return order


def parse_mapping(directives: list[dict], problem: Problem, arch: Architecture,
                  source: str = "<timeloop>") -> Mapping:
    names = [lv.name for lv in arch.levels]
    tensors = [t.name for t in problem.tensors]
    temporal: dict[int, list[Loop]] = {}
    spatial: dict[int, list[Loop]] = {}
    residuals: list[tuple[int, str, str, int, int]] = []  # (level, kind, dim, residual end, directive)
    keep = {i: set(tensors) for i in range(len(names))}
    directed: dict[tuple[int, str], int] = {}  # (level, temporal or spatial) -> its directive
    for k, raw in enumerate(directives):
        d = _dict(raw, source, f"mapping[{k}]")
        target = d.get("target")
        if target not in names:
            raise SpecError(source, f"mapping[{k}].target", describe(target), f"a storage level of {names}",
                            did_you_mean(target, names))
        i = names.index(target)
        kind = d.get("type", "temporal")
        if kind not in _DIRECTIVE_TYPES:
            raise SpecError(source, f"mapping[{k}].type", describe(kind), ", ".join(_DIRECTIVE_TYPES),
                            did_you_mean(kind, _DIRECTIVE_TYPES))
        if kind in ("datatype", "dataspace", "bypass"):
            listed = {key: _names(d.get(key), source, f"mapping[{k}].{key}") for key in ("keep", "bypass")}
            for key, names_listed in listed.items():
                for j, tensor in enumerate(names_listed):
                    if tensor not in tensors:
                        raise SpecError(source, f"mapping[{k}].{key}[{j}]", repr(tensor),
                                        f"a data space of {tensors}", did_you_mean(tensor, tensors))
            keep[i] = (keep[i] | set(listed["keep"])) - set(listed["bypass"])
            continue
        if (i, kind) in directed:
            raise SpecError(source, f"mapping[{k}]", f"a second {kind} directive for {target} (the first is "
                            f"mapping[{directed[i, kind]}])", f"one {kind} directive per level")
        directed[i, kind] = k
        factors = parse_factors(d.get("factors", ""), source, f"mapping[{k}].factors")
        for dim in factors:
            if dim not in problem.dims:
                raise SpecError(source, f"mapping[{k}].factors", repr(dim), f"a dimension of {list(problem.dims)}",
                                did_you_mean(dim, problem.dims))
        # As Timeloop reads a mapping: a factor of 0 is the dimension's whole bound.
        factors = {dim: factor or problem.bounds[dim] for dim, factor in factors.items()}
        residuals += [(i, kind, dim, r, k)
                      for dim, r in parse_residuals(d.get("factors"), source, f"mapping[{k}].factors").items()]
        order = parse_permutation(d.get("permutation", ""), problem.dims, source, f"mapping[{k}].permutation")
        if kind == "spatial":
            split = d.get("split", len(order))
            if isinstance(split, bool) or not isinstance(split, int) or split < 0:
                raise SpecError(source, f"mapping[{k}].split", describe(split), "an integer >= 0")
            loops = [Loop(dim, factors.get(dim, 1), "X" if pos < split else "Y")
                     for pos, dim in enumerate(order)]
            spatial[i] = [l for l in reversed(loops) if l.factor > 1]
        else:
            temporal[i] = [Loop(dim, factors.get(dim, 1)) for dim in reversed(order) if factors.get(dim, 1) > 1]
    levels = tuple(LevelMapping(tuple(temporal.get(i, [])), tuple(spatial.get(i, [])), frozenset(keep[i]))
                   for i in range(len(names)))
    mapping = Mapping(levels)
    check_covers(mapping, problem, arch, source, "mapping.factors")
    ends = mapping.residual_ends(problem.bounds)
    for i, kind, dim, residual, k in residuals:
        spatial = kind == "spatial"
        loops = mapping.levels[i].spatial if spatial else mapping.levels[i].temporal
        factor, end = merged_end([(l.factor, e) for l, e in zip(loops, ends[i][spatial]) if l.dim == dim])
        if residual != end:
            raise SpecError(source, f"mapping[{k}].factors", f"{dim}={factor},{residual}",
                            f"{dim}={factor},{end}: the iterations left for the last, as the factors of {dim} "
                            f"and its bound {problem.bounds[dim]} have it")
    return mapping


# ------------------------------------------------------------------------ load


def load(doc: dict, source: str = "<timeloop>", need_energies: bool = True,
         origins: dict[str, str] | None = None) -> TimeloopSpec:
    """What the (merged) document describes. `origins`: the file each top-level key came
    from, for errors that name the file to fix (default: `source`)."""
    def origin(key: str) -> str:
        return (origins or {}).get(key, source)

    problem = parse_problem(doc, origin("problem")) if isinstance(doc.get("problem"), dict) else None
    arch = (parse_architecture(doc, origin("architecture"), need_energies, origin("ERT"))
            if isinstance(doc.get("architecture"), dict) else None)
    mapping_doc = doc.get("mapping")
    if isinstance(mapping_doc, dict) and "mapping" in mapping_doc:
        mapping_doc = mapping_doc["mapping"]
    mapping = None
    if mapping_doc and problem and arch:
        mapping = parse_mapping(_list(mapping_doc, origin("mapping"), "mapping"), problem, arch, origin("mapping"))
    # Constraints (constraints, architecture_constraints) are read apart: specs/constraints.py.
    hardware = parse_hardware(doc, origin("architecture")) if arch is not None else Hardware()
    return TimeloopSpec(problem, arch, mapping, hardware, optimization_metrics(doc, origin("mapper")))


def optimization_metrics(doc: dict, source: str = "<timeloop>") -> tuple[str, ...]:
    """The `mapper:` section's optimization-metrics (Timeloop's mapper ranks mappings by
    the first, ties by the next; Accelergy writes `optimization_metric` too, often
    empty beside the other), none where there is no mapper section."""
    mapper = doc.get("mapper")
    if not isinstance(mapper, dict):
        return ()
    for key in ("optimization_metrics", "optimization_metric"):
        path, metrics = f"mapper.{_key(mapper, key)}", get(mapper, key)
        found = (_text(metrics, source, path),) if isinstance(metrics, str) else tuple(_names(metrics, source, path))
        if found:
            return found
    return ()
