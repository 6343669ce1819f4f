"""Energy per access, leakage and area of an architecture's components from their
parameters: technology node, capacity, port width, kind. A hardware designer sizing a
buffer or an array needs these numbers for every candidate, not once per design typed
into an energy table.

Two backends; each estimate's `source` says what produced it. hwcomponents_backend
calls hwcomponents itself where it is installed (Python >= 3.12). The built-in one
needs nothing beyond this package. Its numbers come from two tables:
- reference.json, made by _generate.py from hwcomponents (the estimator behind
  AccelForge): SRAM by CACTI 7 on a grid of nodes (22-65 nm), port widths (8-512 bits)
  and depths (16-65,536 entries, every power of 2); a register (flip-flops) per bit, from Aladdin's table
  scaled to each node; DRAM energy per bit by type; and how energy, area and leakage
  scale between nodes. An SRAM between grid points is interpolated linearly in the
  logarithms of node, width and depth (its energies, area and leakage follow power laws
  locally); below 16 entries the last grid segment is extended, as CACTI itself is not
  run on arrays that small. tests/test_estimation.py checks the interpolation against
  CACTI's own results at points off the grid.
- horowitz-45nm.yaml: the integer MAC, a b-bit multiplier and a 2b-bit adder at 45 nm
  (Horowitz, ISSCC 2014), scaled to the node by the same factors.
Reference: for Timeloop's Eyeriss-like design the CACTI global buffer (16,384 x 64 bits,
32 nm) costs 18.2 pJ per read, as Accelergy's table in the Timeloop reference case says
(18.18); Accelergy's register-file model puts the 12 x 16-bit input scratchpad at 0.20
pJ where CACTI's array gives 0.06: small register files are the least certain numbers.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from ..architecture import Architecture, StorageLevel
from . import hwcomponents_backend

HERE = Path(__file__).resolve().parent
T = TypeVar("T")
SRAM, REGISTER, NOTHING = "sram", "register", "none"  # NOTHING: a level that stores nothing (a fan-out stage)
DEFAULT_DRAM = "LPDDR4"
BUILT_IN = "built-in"
BACKENDS = (BUILT_IN, hwcomponents_backend.NAME)
MAC_BITS = (4, 32)  # operand widths the MAC estimate covers


class EstimateError(ValueError):
    """A parameter outside what the estimator covers: `found` and what is `allowed`, for
    the caller to report with the file and key it came from."""

    def __init__(self, found: str, allowed: str) -> None:
        super().__init__(f"found {found}; allowed: {allowed}")
        self.found, self.allowed = found, allowed


@dataclass(frozen=True)
class Hardware:
    """What an architecture's spec says for the estimator: its technology node, the
    components its levels name (level name, kind), the MAC's operand width."""

    node_nm: float | None = None
    components: tuple[tuple[str, str], ...] = ()
    mac_bits: int | None = None


@dataclass(frozen=True)
class ComponentEstimate:
    """One instance of a component: energies per access of one entry of the port's
    width (per MAC for the compute), leakage and area."""

    component: str  # sram, register, none, a DRAM type, intmac
    read_pJ: float
    write_pJ: float
    leak_mW: float
    area_mm2: float
    source: str  # which data produced the numbers


@cache
def reference() -> dict[str, Any]:
    return json.loads((HERE / "reference.json").read_text())


@cache
def horowitz() -> dict[str, Any]:
    return yaml.safe_load((HERE / "horowitz-45nm.yaml").read_text())


def dram_types() -> tuple[str, ...]:
    return tuple(reference()["dram_pJ_per_bit"])


def kinds() -> tuple[str, ...]:
    """The storage components a level can name."""
    return (SRAM, REGISTER, NOTHING, *dram_types())


def node_range() -> tuple[float, float]:
    nodes = reference()["nodes_nm"]
    return float(min(nodes)), float(max(nodes))


def technology_nm(value: object) -> float:
    """A technology node from a spec: 45, 45.0, "45nm" or "45 nm", within the range
    the tables cover."""
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:nm)?", text) if not isinstance(value, bool) else None
    low, high = node_range()
    allowed = f'a node from {low:g} to {high:g} nm, like 45 or "45nm"'
    if match is None:
        raise EstimateError(repr(value), allowed)
    node = float(match.group(1))
    if not low <= node <= high:
        raise EstimateError(f"{node:g} nm, outside the estimator's range", allowed)
    return node


# ------------------------------------------------------------------ components


def estimate_storage(kind: str, node: float, width_bits: int, depth: int | None,
                     backend: str = BUILT_IN) -> ComponentEstimate:
    """One instance of a storage component of `depth` entries (None: unbounded, DRAM
    only) of `width_bits` each, by the built-in tables or by hwcomponents itself."""
    if kind not in kinds():
        raise EstimateError(repr(kind), ", ".join(kinds()))
    if depth is None and kind not in dram_types():
        raise EstimateError(f"an unbounded {kind}", "unbounded for DRAM only (" + ", ".join(dram_types()) + ")")
    if kind == NOTHING:
        return ComponentEstimate(NOTHING, 0.0, 0.0, 0.0, 0.0, "stores nothing")
    if backend != BUILT_IN:
        return ComponentEstimate(kind, *_hwcomponents(lambda: hwcomponents_backend.storage(kind, node, width_bits,
                                                                                           depth)))
    if kind in dram_types():
        energy = reference()["dram_pJ_per_bit"][kind] * width_bits
        return ComponentEstimate(kind, energy, energy, 0.0, 0.0, "hwcomponents-cacti DRAM table (pJ per bit)")
    if kind == REGISTER:
        return _register(node, width_bits, depth)
    return _sram(node, width_bits, depth)


def estimate_mac(node: float, bits: int, backend: str = BUILT_IN) -> ComponentEstimate:
    """An integer MAC of `bits`-bit operands: a multiplier and an adder twice as wide."""
    low, high = MAC_BITS
    if not low <= bits <= high:
        raise EstimateError(f"{bits}-bit operands", f"from {low} to {high} bits for the integer MAC")
    if backend != BUILT_IN:
        energy, leak, area, source = _hwcomponents(lambda: hwcomponents_backend.mac(node, bits))
        return ComponentEstimate("intmac", energy, energy, leak, area, source)
    table = horowitz()
    (multiply_pJ, multiplier_um2), (add_pJ, adder_um2) = _log_log(table["multiplier"], bits), _log_log(
        table["adder"], 2 * bits)
    scale = _node_scaling(node)
    energy = (multiply_pJ + add_pJ) * scale["energy"]
    return ComponentEstimate("intmac", energy, energy, 0.0, (multiplier_um2 + adder_um2) * scale["area"] * 1e-6,
                             "Horowitz 45 nm, node-scaled")


def _hwcomponents(estimate: Callable[[], T]) -> T:
    """What `estimate` (a call into hwcomponents) gives, or an EstimateError saying why
    hwcomponents cannot give it here."""
    if not hwcomponents_backend.available():
        raise EstimateError("the hwcomponents backend, which is not installed", "the built-in backend, or "
                            "hwcomponents on Python >= 3.12: pip install 'mapper[hwcomponents]'")
    try:
        return estimate()
    except hwcomponents_backend.CactiFailed as e:
        raise EstimateError(str(e), "a CACTI that runs here: mapper build-cacti") from None


def _sram(node: float, width: int, depth: int) -> ComponentEstimate:
    """An SRAM wider or deeper than the table's largest is built of arrays of at most
    that size: side by side for the width (an access reads all of them), as banks for
    the depth (an access reads one); their areas and leakage add up, and the wires
    between them are not counted."""
    table = reference()["sram"]
    side_by_side, banks = math.ceil(width / table["widths"][-1]), math.ceil(depth / table["depths"][-1])
    point = (math.log(node), math.log(width / side_by_side), math.log(depth / banks))
    axes = (np.log(reference()["nodes_nm"]), np.log(table["widths"]), np.log(table["depths"]))
    read, write, leak, area = (float(v) for v in np.exp(_multilinear(_sram_grid(), axes, point)))
    arrays = side_by_side * banks
    source = "CACTI 7 table (hwcomponents), interpolated" + (f", as {arrays} arrays" if arrays > 1 else "")
    return ComponentEstimate(SRAM, read * side_by_side, write * side_by_side, leak * arrays, area * arrays * 1e-6,
                             source)


def _register(node: float, width: int, depth: int) -> ComponentEstimate:
    """Flip-flops: `width` bits read or written per access, `depth` x `width` bits of area
    and leakage (no read-out multiplexers: meant for the few entries of a PE's registers)."""
    rows = reference()["register_per_bit"]
    nodes = [r["node_nm"] for r in rows]
    per_bit = {key: _interpolate_log(nodes, [r[key] for r in rows], node)
               for key in ("read_pJ", "write_pJ", "leak_mW", "area_um2")}
    bits = width * depth
    return ComponentEstimate(REGISTER, per_bit["read_pJ"] * width, per_bit["write_pJ"] * width,
                             per_bit["leak_mW"] * bits, per_bit["area_um2"] * bits * 1e-6,
                             "Aladdin register table (hwcomponents-library), per bit")


@cache
def _sram_grid() -> np.ndarray:
    """log(read, write, leak, area) on the grid: (nodes, widths, depths, 4)."""
    table = reference()["sram"]
    nodes, widths, depths = reference()["nodes_nm"], table["widths"], table["depths"]
    grid = np.zeros((len(nodes), len(widths), len(depths), 4))
    for p in table["points"]:
        grid[nodes.index(p["node_nm"]), widths.index(p["width"]), depths.index(p["depth"])] = np.log(
            [p["read_pJ"], p["write_pJ"], max(p["leak_mW"], 1e-12), p["area_um2"]])
    return grid


def _multilinear(grid: np.ndarray, axes: tuple[np.ndarray, ...], point: tuple[float, ...]) -> np.ndarray:
    """Linear interpolation on a rectangular grid, one axis at a time; outside an axis the
    nearest segment is extended."""
    values = grid
    for axis, x in zip(axes, point):
        i = min(max(int(np.searchsorted(axis, x)) - 1, 0), len(axis) - 2)
        t = (x - axis[i]) / (axis[i + 1] - axis[i])
        values = values[i] * (1 - t) + values[i + 1] * t
    return values


def _interpolate_log(xs: list[float], ys: list[float], x: float) -> float:
    """Piecewise linear in log-log, extended beyond the ends."""
    i = min(max(bisect.bisect_left(xs, x) - 1, 0), len(xs) - 2)
    t = (math.log(x) - math.log(xs[i])) / (math.log(xs[i + 1]) - math.log(xs[i]))
    return math.exp(math.log(ys[i]) * (1 - t) + math.log(ys[i + 1]) * t) if ys[i] > 0 and ys[i + 1] > 0 else 0.0


def _log_log(table: dict[int, list[float]], bits: int) -> tuple[float, float]:
    widths = sorted(table)
    return (_interpolate_log(widths, [table[w][0] for w in widths], bits),
            _interpolate_log(widths, [table[w][1] for w in widths], bits))


def _node_scaling(node: float) -> dict[str, float]:
    rows = reference()["node_scaling_from_45nm"]
    nodes = [r["node_nm"] for r in rows]
    return {key: _interpolate_log(nodes, [r[key] for r in rows], node) for key in ("energy", "area", "leak")}


# ---------------------------------------------------------------- architectures


def inferred_kind(level: StorageLevel, outermost: bool) -> str:
    """The component a level is when its spec names none: the outermost, unbounded level
    is DRAM (LPDDR4); a level that keeps nothing and holds one word is a fan-out stage;
    one entry is a register; anything else an SRAM."""
    if outermost and level.depth is None:
        return DEFAULT_DRAM
    if level.keeps is not None and not level.keeps and (level.depth or 0) <= 1:
        return NOTHING
    if level.depth == 1:
        return REGISTER
    return SRAM


@dataclass(frozen=True)
class LevelEstimate:
    name: str
    instances: int  # components: one per cluster of the level's instances
    width_bits: int
    depth: int | None
    estimate: ComponentEstimate
    given_read: float  # the energies the architecture gives, in its unit, to compare
    given_write: float


@dataclass(frozen=True)
class ArchitectureEstimate:
    name: str
    node_nm: float
    energy_unit: str  # of the given energies
    backend: str
    levels: tuple[LevelEstimate, ...]
    compute: ComponentEstimate
    compute_instances: int
    given_mac: float

    @property
    def total_area_mm2(self) -> float:
        return (sum(lv.estimate.area_mm2 * lv.instances for lv in self.levels)
                + self.compute.area_mm2 * self.compute_instances)

    @property
    def total_leak_mW(self) -> float:
        return (sum(lv.estimate.leak_mW * lv.instances for lv in self.levels)
                + self.compute.leak_mW * self.compute_instances)

    def to_json(self) -> dict[str, Any]:
        levels = [{"name": lv.name, "component": lv.estimate.component, "instances": lv.instances,
                   "width_bits": lv.width_bits, "depth": lv.depth, "read_pJ": lv.estimate.read_pJ,
                   "write_pJ": lv.estimate.write_pJ, "leak_mW": lv.estimate.leak_mW,
                   "area_mm2": lv.estimate.area_mm2, "total_area_mm2": lv.estimate.area_mm2 * lv.instances,
                   "source": lv.estimate.source, "given": {"read": lv.given_read, "write": lv.given_write}}
                  for lv in self.levels]
        compute = {"component": self.compute.component, "instances": self.compute_instances,
                   "energy_pJ": self.compute.read_pJ, "area_mm2": self.compute.area_mm2,
                   "total_area_mm2": self.compute.area_mm2 * self.compute_instances,
                   "source": self.compute.source, "given": {"energy": self.given_mac}}
        return {"architecture": self.name, "technology_nm": self.node_nm, "backend": self.backend,
                "given_energy_unit": self.energy_unit, "levels": levels, "compute": compute,
                "total_area_mm2": self.total_area_mm2, "total_leak_mW": self.total_leak_mW}


def estimate_architecture(arch: Architecture, hardware: Hardware, node: float,
                          backend: str = BUILT_IN) -> ArchitectureEstimate:
    """Every level and the MACs of `arch` at `node`: a level's component as `hardware`
    names it, else `inferred_kind`; the MAC's operand width as `hardware` gives it, else
    the narrowest word of the levels that store something (partial sums are often
    wider than operands)."""
    if backend not in BACKENDS:
        raise EstimateError(f"the backend {backend!r}", "one of " + ", ".join(BACKENDS))
    if backend != BUILT_IN:
        _hwcomponents(lambda: None)  # installed, or say so once
    components = dict(hardware.components)
    kinds_of = [components.get(level.name) or inferred_kind(level, i == 0) for i, level in enumerate(arch.levels)]
    levels = []
    for level, kind in zip(arch.levels, kinds_of):
        # A cluster of instances is one component, as wide as its shared access.
        width = level.block_size * level.word_bits * level.cluster_size
        with _naming(level.name):
            found = estimate_storage(kind, node, width, level.depth, backend)
        levels.append(LevelEstimate(level.name, level.instances // level.cluster_size, width, level.depth, found,
                                    level.read_energy, level.write_energy))
    with _naming(arch.compute.name):
        words = [level.word_bits for level, kind in zip(arch.levels, kinds_of) if kind != NOTHING]
        mac = estimate_mac(node, hardware.mac_bits or min(words, default=8), backend)
    return ArchitectureEstimate(arch.name, node, arch.energy_unit, backend, tuple(levels), mac,
                                arch.compute.instances, arch.compute.energy)


@contextmanager
def _naming(component: str) -> Iterator[None]:
    """An EstimateError that says which component it is about."""
    try:
        yield
    except EstimateError as e:
        raise EstimateError(f"{e.found} for {component}", e.allowed) from None
