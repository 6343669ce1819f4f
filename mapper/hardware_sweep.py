"""Design points of `mapper run`: architectures whose parameters an experiment sweeps,
each with its estimated area (mapper/estimation), and which of them are Pareto-optimal
in area, energy and cycles once their networks are mapped.

An experiment's `hardware` section (mapper/experiment.py):

    hardware:
      sweep:                                         # every combination of the values
        levels.shared_glb.depth: [4096, 16384]       # a key of a level, by the level's name
        levels.inter_PE_column_spatial.fanout: [[8, 1], [14, 1]]
        technology: [32nm, 45nm]                     # a key of the architecture itself
        compute.bits: [8, 16]                        # a key of the compute unit
      area_budget_mm2: 1.5                           # designs over it are not searched

Each architecture of the experiment is a template: every combination makes a copy of
its file's `architecture` with those keys set, checked as any architecture is, named
`<name>[<key>=<value>, ...]` with the last two parts of each key. Levels that name a
`component` get their energies from the estimator at the design's own sizes, so a
bigger buffer costs more per access; levels that give energies keep them whatever
their size. The area of a design is the estimator's (storage and MACs, at the
architecture's technology), which is why a sweep needs `technology`.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from .architecture import Architecture
from .estimation import EstimateError, estimate_architecture
from .specs.errors import SpecError, describe, did_you_mean
from .specs.fields import PositiveNumber, SpecModel
from .specs.native.architecture import parse_architecture_and_hardware


MAX_DESIGNS = 4096  # design points of one sweep, each a network search

SweptValue = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "array"},
                                                     {"type": "boolean"}],
                                           "description": "a value of the key, as the architecture takes it"})]


class HardwareSpec(SpecModel):
    sweep: Annotated[dict[str, Annotated[list[SweptValue], Field(min_length=1)]], Field(
        min_length=1, description="key (technology, compute.KEY, levels.NAME.KEY) -> its values")]
    area_budget_mm2: PositiveNumber | None = None


@dataclass(frozen=True)
class Design:
    """One design point: its architecture, the values the sweep set, its area."""

    arch: Architecture
    params: tuple[tuple[str, Any], ...]
    area_mm2: float

    def to_json(self) -> dict[str, Any]:
        return {"architecture": self.arch.name, "params": dict(self.params), "area_mm2": self.area_mm2}


def sweep_designs(raw: object, file: Path, spec: HardwareSpec, experiment: Path) -> list[Design]:
    """Every combination of the swept values applied to the architecture `raw` (the
    `architecture` of `file`), checked and estimated."""
    keys = list(spec.sweep)
    count = math.prod(len(values) for values in spec.sweep.values())
    if count > MAX_DESIGNS:
        raise SpecError(experiment, "hardware.sweep", f"{count:,} design points", f"at most {MAX_DESIGNS:,} (each is "
                        "searched): fewer values, or several experiments")
    if not isinstance(raw, dict):
        raise SpecError(file, "architecture", describe(raw), "a mapping: the architecture to sweep")
    designs = []
    for values in itertools.product(*spec.sweep.values()):
        params = tuple(zip(keys, values))
        variant = copy.deepcopy(raw)
        for key, value in params:
            _set(variant, key, value, experiment, f"hardware.sweep.{key}")
        variant["name"] = design_name(raw.get("name", file.stem), params)
        designs.append(_design(variant, file, params, experiment))
    return designs


def design_name(name: str, params: tuple[tuple[str, Any], ...]) -> str:
    return f"{name}[" + ", ".join(f"{'.'.join(key.split('.')[-2:])}={_value_text(v)}" for key, v in params) + "]"


def _value_text(value: Any) -> str:
    return "x".join(map(str, value)) if isinstance(value, list) else str(value)


def _design(raw: dict[str, Any], file: Path, params: tuple[tuple[str, Any], ...], experiment: Path) -> Design:
    try:
        arch, hardware = parse_architecture_and_hardware(raw, file)
    except SpecError as e:
        raise SpecError(experiment, "hardware.sweep", f"{raw['name']}, whose {e.key_path} is {e.found}",
                        e.allowed, e.suggestion) from None
    if hardware.node_nm is None:
        raise SpecError(experiment, "hardware", f"a sweep of {raw['name'].split('[')[0]}, which has no technology",
                        "a template architecture with technology (its area is estimated there)",
                        f"add technology: 45nm (or the design's node) to {file}")
    try:
        area = estimate_architecture(arch, hardware, hardware.node_nm).total_area_mm2
    except EstimateError as e:
        raise SpecError(experiment, "hardware.sweep", f"{raw['name']}: {e.found}", e.allowed) from None
    return Design(arch, params, area)


def _set(raw: dict[str, Any], key: str, value: Any, experiment: Path, where: str) -> None:
    """Set `key` in the architecture `raw`: KEY of the architecture, compute.KEY of its
    compute unit, levels.NAME.KEY of the level named NAME. Whether KEY and its value
    are allowed is the architecture's check, after."""
    parts = key.split(".")
    allowed = "KEY (of the architecture), compute.KEY or levels.NAME.KEY, e.g. levels.shared_glb.depth"
    node: Any = raw
    if parts[0] == "levels" and len(parts) == 3:
        levels = [lv for lv in raw.get("levels") or [] if isinstance(lv, dict)]
        names = [str(lv.get("name")) for lv in levels]
        if parts[1] not in names:
            raise SpecError(experiment, where, f"level {parts[1]!r}", "a level of the architecture: "
                            + ", ".join(names), did_you_mean(parts[1], names))
        node, parts = levels[names.index(parts[1])], parts[2:]
    elif parts[0] == "compute" and len(parts) == 2 and isinstance(raw.get("compute"), dict):
        node, parts = raw["compute"], parts[1:]
    if len(parts) != 1 or parts[0] in ("levels", "compute"):
        raise SpecError(experiment, where, repr(key), allowed)
    node[parts[0]] = value


def pareto_flags(points: list[tuple[float, ...]]) -> list[bool]:
    """Whether each point is on the Pareto front (minimizing every coordinate): no
    other point is at most as large in all and smaller in one."""
    return [not any(all(o <= p for o, p in zip(other, point)) and other != point for other in points)
            for point in points]
