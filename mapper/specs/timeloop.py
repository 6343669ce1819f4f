"""Timeloop's input: the fully expanded `parsed-processed-input.yaml`, the v0.2 and v0.4
dialects (`word-bits` or `word_bits`), mappings and energy reference tables (ERT).

Several files given together are merged at the top level, as Timeloop does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from math import prod
from typing import Any

from ..architecture import Architecture, ComputeUnit, StorageLevel
from ..mapping import LevelMapping, Loop, Mapping
from ..problem import Problem, Tensor
from .errors import SpecError

_RANGE = re.compile(r"^(?P<base>.*?)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")
_COMPUTE_CLASSES = ("mac", "compute", "alu")


@dataclass(frozen=True)
class TimeloopSpec:
    """What a set of Timeloop files describes; any part may be missing."""

    problem: Problem | None
    architecture: Architecture | None
    mapping: Mapping | None
    constraints: list[dict] | None
    raw: dict


def is_timeloop(doc: dict) -> bool:
    arch = doc.get("architecture")
    return (
        (isinstance(arch, dict) and "subtree" in arch)
        or (isinstance(doc.get("problem"), dict) and "shape" in doc["problem"])
        or (isinstance(doc.get("mapping"), list) and any(isinstance(d, dict) and "target" in d for d in doc["mapping"]))
        or "ERT" in doc
    )


def get(attrs: dict, key: str, default: Any = None) -> Any:
    """Look a key up in either dialect: `word_bits` or `word-bits`."""
    for k in (key, key.replace("_", "-")):
        if k in attrs and attrs[k] is not None:
            return attrs[k]
    return default


def split_range(name: str) -> tuple[str, int]:
    m = _RANGE.match(name)
    if not m:
        return name, 1
    return m["base"], int(m["hi"]) - int(m["lo"]) + 1


# --------------------------------------------------------------------- problem


def parse_problem(doc: dict, source: str = "<timeloop>") -> Problem:
    prob = doc["problem"]
    shape, instance = prob.get("shape", {}), prob.get("instance", {})
    dims = tuple(shape.get("dimensions", []))
    coefficients = {c["name"]: c.get("default", 1) for c in shape.get("coefficients", []) or []}
    coefficients.update({k: v for k, v in instance.items() if k in coefficients})
    tensors = []
    for i, ds in enumerate(get(shape, "data_spaces", [])):
        ranks = []
        for r, rank in enumerate(ds["projection"]):
            terms = []
            for term in rank:
                dim, *coef = term
                if dim not in dims:
                    raise SpecError(source, f"problem.shape.data_spaces[{i}].projection[{r}]", dim,
                                    f"a dimension of {list(dims)}")
                value = coefficients.get(coef[0], None) if coef else 1
                if value is None:
                    raise SpecError(source, f"problem.shape.data_spaces[{i}].projection[{r}]", coef[0],
                                    f"a coefficient of {list(coefficients)}")
                terms.append((int(value), dim))
            ranks.append(tuple(terms))
        tensors.append(Tensor(ds["name"], tuple(ranks), bool(get(ds, "read_write", False))))
    for d in dims:
        if d not in instance:
            raise SpecError(source, f"problem.instance.{d}", "nothing", "a positive integer bound")
    bounds = {d: int(instance[d]) for d in dims}
    return Problem(shape.get("name", "problem"), dims, bounds, tuple(tensors))


# ---------------------------------------------------------------- architecture


def _leaves(node: dict, multiplier: int = 1) -> Iterable[tuple[dict, int]]:
    """Every `local` component in order, outermost first, with its instance count."""
    _, n = split_range(node.get("name", ""))
    multiplier *= n
    for leaf in node.get("local", []) or []:
        _, count = split_range(leaf["name"])
        yield leaf, count * multiplier
    for sub in node.get("subtree", []) or []:
        yield from _leaves(sub, multiplier)


def _mesh(attrs: dict, instances: int) -> tuple[int, int]:
    mesh_x, mesh_y = get(attrs, "meshX"), get(attrs, "meshY")
    if mesh_x is None and mesh_y is None:
        return instances, 1
    if mesh_x is None:
        return instances // int(mesh_y), int(mesh_y)
    if mesh_y is None:
        return int(mesh_x), instances // int(mesh_x)
    return int(mesh_x), int(mesh_y)


def parse_ert(doc: dict) -> dict[str, dict[str, float]]:
    """Energy per action of each component (the largest variant of each action)."""
    ert: dict[str, dict[str, float]] = {}
    for table in (doc.get("ERT") or {}).get("tables", []) or []:
        name = split_range(table["name"])[0].split(".")[-1]
        actions = ert.setdefault(name, {})
        for action in table.get("actions", []):
            energy = float(action.get("energy", 0.0))
            actions[action["name"]] = max(actions.get(action["name"], energy), energy)
    return ert


def parse_architecture(doc: dict, source: str = "<timeloop>") -> Architecture:
    ert = parse_ert(doc)
    leaves = list(_leaves({"subtree": doc["architecture"].get("subtree", [])}))
    if not leaves:
        raise SpecError(source, "architecture.subtree", "no components", "storage levels and a compute unit")
    *storage, (mac, mac_count) = leaves
    if not any(c in str(mac.get("class", "")).lower() for c in _COMPUTE_CLASSES):
        raise SpecError(source, f"architecture...{mac['name']}.class", mac.get("class"),
                        "the innermost component to be a compute unit (intmac, fpmac, ...)")
    levels = []
    for leaf, count in storage:
        attrs = leaf.get("attributes", {}) or {}
        name, _ = split_range(leaf["name"])
        word_bits = int(get(attrs, "word_bits", get(attrs, "datawidth", 16)))
        width = get(attrs, "width")
        block = int(get(attrs, "block_size", (int(width) // word_bits) if width else 1) or 1)
        depth = get(attrs, "depth", get(attrs, "entries"))
        if depth is None and get(attrs, "size") is not None:
            depth = int(attrs["size"]) // block
        is_dram = str(leaf.get("class", "")).upper() == "DRAM"
        mesh_x, mesh_y = _mesh(attrs, count)
        energy = ert.get(name, {})
        levels.append(StorageLevel(
            name=name, instances=count, mesh_x=mesh_x, mesh_y=mesh_y,
            depth=None if (is_dram or depth is None) else int(depth),
            block_size=block, word_bits=word_bits,
            read_bandwidth=_float_or_none(get(attrs, "read_bandwidth")),
            write_bandwidth=_float_or_none(get(attrs, "write_bandwidth")),
            multiple_buffering=float(get(attrs, "multiple_buffering", 1.0)),
            read_energy=energy.get("read", 0.0), write_energy=energy.get("write", 0.0),
        ))
    mac_name, _ = split_range(mac["name"])
    mx, my = _mesh(mac.get("attributes", {}) or {}, mac_count)
    compute = ComputeUnit(mac_name, mac_count, mx, my, compute_energy(ert.get(mac_name, {})))
    return Architecture(doc["architecture"].get("name", "timeloop"), tuple(levels), compute)


def compute_energy(actions: dict[str, float]) -> float:
    """`compute`, or in the v0.2 tables the largest `mac_*` variant (`mac_random`)."""
    if "compute" in actions:
        return actions["compute"]
    return max((e for a, e in actions.items() if a.startswith("mac")), default=0.0)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def with_ert(arch: Architecture, doc: dict) -> Architecture:
    """Re-price an architecture with the ERT found in `doc`."""
    ert = parse_ert(doc)
    levels = tuple(replace(lv, read_energy=ert.get(lv.name, {}).get("read", lv.read_energy),
                           write_energy=ert.get(lv.name, {}).get("write", lv.write_energy))
                   for lv in arch.levels)
    compute = replace(arch.compute, energy=compute_energy(ert.get(arch.compute.name, {})) or arch.compute.energy)
    return replace(arch, levels=levels, compute=compute)


# --------------------------------------------------------------------- mapping


def parse_factors(text: str | dict) -> dict[str, int]:
    if isinstance(text, dict):
        return {k: int(v) for k, v in text.items()}
    pairs = re.findall(r"([A-Za-z_][A-Za-z_0-9]*?)\s*=?\s*(\d+)(?=[\s,]|$)", str(text))
    return {dim: int(n) for dim, n in pairs}


def parse_permutation(text: str | list, dims: tuple[str, ...]) -> list[str]:
    """Inner-to-outer dimension order; single letters unless spaces or commas separate them."""
    if isinstance(text, list):
        order = [str(d) for d in text]
    elif re.search(r"[\s,]", str(text).strip()):
        order = [d for d in re.split(r"[\s,]+", str(text).strip()) if d]
    else:
        order = list(str(text))
    return order + [d for d in dims if d not in order]


def parse_mapping(directives: list[dict], problem: Problem, arch: Architecture,
                  source: str = "<timeloop>") -> Mapping:
    names = [lv.name for lv in arch.levels]
    temporal: dict[int, list[Loop]] = {}
    spatial: dict[int, list[Loop]] = {}
    keep = {i: set(t.name for t in problem.tensors) for i in range(len(names))}
    for k, d in enumerate(directives):
        target = d.get("target")
        if target not in names:
            raise SpecError(source, f"mapping[{k}].target", target, f"a storage level of {names}")
        i = names.index(target)
        kind = d.get("type", "temporal")
        if kind in ("datatype", "bypass"):
            keep[i] = (keep[i] | set(d.get("keep") or [])) - set(d.get("bypass") or [])
            continue
        factors = parse_factors(d.get("factors", ""))
        for dim in factors:
            if dim not in problem.dims:
                raise SpecError(source, f"mapping[{k}].factors", dim, f"a dimension of {list(problem.dims)}")
        order = parse_permutation(d.get("permutation", ""), problem.dims)
        if kind == "spatial":
            split = int(d.get("split", len(order)))
            loops = [Loop(dim, factors.get(dim, 1), "X" if pos < split else "Y")
                     for pos, dim in enumerate(order)]
            spatial[i] = [l for l in reversed(loops) if l.factor > 1]
        else:
            temporal[i] = [Loop(dim, factors.get(dim, 1)) for dim in reversed(order) if factors.get(dim, 1) > 1]
    levels = tuple(LevelMapping(tuple(temporal.get(i, [])), tuple(spatial.get(i, [])), frozenset(keep[i]))
                   for i in range(len(names)))
    mapping = Mapping(levels)
    for dim in problem.dims:
        if mapping.factor(dim) != problem.bounds[dim]:
            raise SpecError(source, "mapping.factors", f"{dim} factors multiplying to {mapping.factor(dim)}",
                            f"factors of {dim} that multiply to its bound {problem.bounds[dim]}")
    return mapping


# ------------------------------------------------------------------------ load


def load(doc: dict, source: str = "<timeloop>") -> TimeloopSpec:
    problem = parse_problem(doc, source) if isinstance(doc.get("problem"), dict) else None
    arch = parse_architecture(doc, source) if isinstance(doc.get("architecture"), dict) else None
    mapping_doc = doc.get("mapping")
    if isinstance(mapping_doc, dict) and "mapping" in mapping_doc:
        mapping_doc = mapping_doc["mapping"]
    mapping = None
    if mapping_doc and problem and arch:
        mapping = parse_mapping(mapping_doc, problem, arch, source)
    constraints = (doc.get("constraints") or {}).get("targets") if isinstance(doc.get("constraints"), dict) else None
    arch_constraints = (doc.get("architecture_constraints") or {}).get("targets") or []
    if arch_constraints:
        constraints = list(arch_constraints) + list(constraints or [])
    return TimeloopSpec(problem, arch, mapping, constraints, doc)
