"""The architecture of a native spec: storage levels outermost first, fan-outs, the MAC.

Each level's instances are the product of the fan-outs above it; its energies are
numbers, sums of energy-table entries (energy_tables.py), or a component the
built-in estimator prices (mapper/estimation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, PlainValidator, WithJsonSchema

from ... import estimation
from ...architecture import Architecture, ComputeUnit, StorageLevel
from ...problem import Problem
from ..errors import File, SpecError, describe, did_you_mean
from ..fields import (POSITIVE_INT_SCHEMA, Identifier, PositiveInt, PositiveNumber, SpecModel, Text, WordBits,
                      described_invalid, invalid, is_int, is_number, pair, validated)
from ..limits import MAX_INSTANCES, MAX_LEVELS, level_too_large
from .energy_tables import Energy, EnergyTables


def _technology(value: object) -> float:
    try:
        return estimation.technology_nm(value)
    except estimation.EstimateError as e:
        raise described_invalid(e.found, e.allowed) from None


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


def _at_least_one(value: object) -> float:
    if not is_number(value) or value < 1:
        raise invalid(value, "a number >= 1 (1 = single buffering, 2 = double buffering)")
    return float(value)


Fanout = pair(1, lambda n: [n, 1], "instances of the next inner level (or MACs) each instance feeds, as an "
              "[X, Y] mesh; N means [N, 1]")
Technology = Annotated[float, PlainValidator(_technology), WithJsonSchema({"anyOf": [
    {"type": "number", "minimum": estimation.node_range()[0], "maximum": estimation.node_range()[1]},
    {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(nm)?$"}],
    "description": "technology node in nm, for the estimated components: 45 or \"45nm\""})]
Component = Annotated[str, PlainValidator(_component), WithJsonSchema(
    {"enum": list(estimation.kinds()), "description": "estimate the energies of this kind of component "
     "(mapper/estimation) instead of giving them"})]


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
    tables = EnergyTables(Path(file).parent if file is not None else Path.cwd())
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
