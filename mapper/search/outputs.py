"""What a search leaves in its output folder: the best mapping in the native and the
Timeloop format, its stats (as `mapper evaluate --json` writes them) with the
distance to the lower bounds, the loop nest as text, and for a Pareto search every
point of the front. Every file is written atomically (run_folder.write_atomically), so
an interrupted run never leaves a half-written result."""

from __future__ import annotations

from math import ceil, prod
from pathlib import Path
from typing import Any

import yaml

from ..architecture import Architecture
from ..explain import explain, explanation_text
from ..json_output import json_text
from ..mapping import Loop, Mapping, merged_end
from ..model.stats import Evaluation
from ..problem import Problem
from ..report import counts_table, loop_nest, totals
from ..run_folder import write_atomically


def _loops_text(loops: tuple[Loop, ...]) -> str:
    """The native spelling of loops, outermost first: "P8 Q2" or "Q14X C3Y"."""
    return " ".join(f"{l.dim}{l.factor}{l.spatial or ''}" for l in loops if l.factor > 1)


def native_mapping(problem: Problem, arch: Architecture, mapping: Mapping) -> list[dict[str, Any]]:
    """The `mapping:` list of the native YAML format (mapper/specs/native), one entry
    per level with its keep set spelled out, so the file means the same whatever the
    architecture's defaults."""
    names = [t.name for t in problem.tensors]
    entries = []
    for level, lm in zip(arch.levels, mapping.levels, strict=True):
        entry: dict[str, Any] = {"level": level.name}
        if temporal := _loops_text(lm.temporal):
            entry["temporal"] = temporal
        if spatial := _loops_text(lm.spatial):
            entry["spatial"] = spatial
        entry["keep"] = [n for n in names if n in lm.keep]
        entries.append(entry)
    return entries


def _permutation(dims: list[str]) -> str:
    """Timeloop spells a permutation of one-letter dimensions as one word ("MCRSNPQ")."""
    return "".join(dims) if all(len(d) == 1 for d in dims) else " ".join(dims)


def _factors(problem: Problem, loops: tuple[Loop, ...], ends: tuple[int, ...]) -> str:
    """Every dimension's factor at a level, with its residual end where a remainder
    leaves the last iterations short ("P4,3", as Timeloop writes imperfect factors)."""
    merged = {d: merged_end([(l.factor, end) for l, end in zip(loops, ends) if l.dim == d]) for d in problem.dims}
    return " ".join(f"{d}{factor}" + (f",{end}" if end != factor else "") for d, (factor, end) in merged.items())


def timeloop_mapping(problem: Problem, arch: Architecture, mapping: Mapping) -> list[dict[str, Any]]:
    """Timeloop's `mapping:` directives, as `timeloop-mapper` writes them in map.yaml:
    per level a datatype directive (keep / bypass), a temporal directive (factors of
    every dimension, permutation innermost first) and, where the level has a fan-out,
    a spatial one whose first `split` permutation entries run along X."""
    names = [t.name for t in problem.tensors]
    keeps = [{"target": level.name, "type": "datatype", "keep": [n for n in names if n in lm.keep],
              "bypass": [n for n in names if n not in lm.keep]}
             for level, lm in zip(arch.levels, mapping.levels, strict=True)]
    loops: list[dict[str, Any]] = []
    ends = mapping.residual_ends(problem.bounds)
    for i, (level, lm) in enumerate(zip(arch.levels, mapping.levels, strict=True)):
        temporal = [l.dim for l in reversed(lm.temporal) if l.factor > 1]
        loops.append({"target": level.name, "type": "temporal", "factors": _factors(problem, lm.temporal, ends[i][0]),
                      "permutation": _permutation(temporal + [d for d in problem.dims if d not in temporal])})
        if prod(arch.fanout(i)) > 1:
            x = [l.dim for l in reversed(lm.spatial) if l.factor > 1 and l.spatial == "X"]
            y = [l.dim for l in reversed(lm.spatial) if l.factor > 1 and l.spatial == "Y"]
            rest = [d for d in problem.dims if d not in x + y]
            loops.append({"target": level.name, "type": "spatial", "factors": _factors(problem, lm.spatial, ends[i][1]),
                          "permutation": _permutation(x + y + rest), "split": len(x)})
    # Timeloop lists the innermost level first in the files it writes.
    return keeps[::-1] + loops[::-1]


def lower_bounds(problem: Problem, arch: Architecture, ev: Evaluation) -> dict[str, Any]:
    """How far the mapping is from what no mapping can beat: the compute bound (every
    MAC unit busy every cycle) and the compulsory DRAM traffic (each tensor crosses the
    outermost level's port once: inputs and weights read once, outputs written once)."""
    compute_bound = ceil(ev.computes / arch.compute.instances)
    outer = ev.levels[0]
    traffic = {name: t.accesses for name, t in outer.tensors.items()}
    compulsory = {t.name: problem.tensor_size(t) for t in problem.tensors}
    return {
        "compute_bound_cycles": compute_bound,
        "cycles_over_compute_bound": ev.cycles / compute_bound,
        "outer_level": outer.name,
        "outer_traffic_words": traffic,
        "compulsory_traffic_words": compulsory,
        "outer_traffic_over_compulsory": sum(traffic.values()) / sum(compulsory.values()),
    }


def bounds_text(bounds: dict[str, Any]) -> str:
    return (f"cycles {bounds['cycles_over_compute_bound']:.3f}x the compute bound "
            f"({bounds['compute_bound_cycles']} cycles); {bounds['outer_level']} traffic "
            f"{bounds['outer_traffic_over_compulsory']:.3f}x the compulsory "
            f"({sum(bounds['compulsory_traffic_words'].values())} words)")


def result_json(problem: Problem, arch: Architecture, mapping: Mapping, ev: Evaluation) -> dict[str, Any]:
    """The stats of `mapper evaluate --json`, plus the mapping, the lower bounds and the
    explanation (mapper/explain.py)."""
    return {**evaluation_json(arch, ev), "mapping": native_mapping(problem, arch, mapping),
            "lower_bounds": lower_bounds(problem, arch, ev),
            "explanation": explain(problem, arch, mapping, ev).to_json()}


def evaluation_json(arch: Architecture, ev: Evaluation) -> dict[str, Any]:
    """`mapper evaluate --json`: the stats, and the unit their `_pJ` keys are really in
    (the key names stay, for the readers that know them)."""
    return {**ev.to_json(), "energy_unit": arch.energy_unit}


def report_text(problem: Problem, arch: Architecture, mapping: Mapping, ev: Evaluation) -> str:
    """What `mapper evaluate` prints, how far from the lower bounds it is, and why
    (mapper/explain.py)."""
    return "\n\n".join((loop_nest(problem, arch, mapping), counts_table(ev, arch.energy_unit),
                        totals(ev, arch.energy_unit), bounds_text(lower_bounds(problem, arch, ev)),
                        explanation_text(explain(problem, arch, mapping, ev), arch.energy_unit))) + "\n"


def _yaml(doc: dict[str, Any], header: str) -> str:
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)


def write_best(folder: Path, problem: Problem, arch: Architecture, mapping: Mapping, ev: Evaluation,
               search: dict[str, Any]) -> None:
    """best.json, best.mapping.yaml (native), best.map.yaml (Timeloop) and best.txt."""
    layer = f"layer {problem.name} on {arch.name}"
    write_atomically(folder / "best.json", json_text({**result_json(problem, arch, mapping, ev),
                                                       "search": search}))
    write_atomically(folder / "best.mapping.yaml", _yaml(
        {"mapping": native_mapping(problem, arch, mapping)},
        f"# Best mapping of {layer} ({search['objective']}), native format:\n"
        "# load it with the same architecture and layer specs, e.g. `mapper evaluate ARCH LAYER THIS`.\n"))
    write_atomically(folder / "best.map.yaml", _yaml(
        {"mapping": timeloop_mapping(problem, arch, mapping)},
        f"# Best mapping of {layer} ({search['objective']}), Timeloop format (as timeloop-mapper's map.yaml):\n"
        "# use it with the Timeloop-format architecture and problem.\n"))
    write_atomically(folder / "best.txt", report_text(problem, arch, mapping, ev))


def write_pareto(folder: Path, problem: Problem, arch: Architecture,
                 points: list[tuple[Mapping, Evaluation]], search: dict[str, Any]) -> None:
    """pareto.json: every point of the energy-delay front (fastest first), its mapping and stats."""
    write_atomically(folder / "pareto.json", json_text({
        "search": search,
        "points": [result_json(problem, arch, mapping, ev) for mapping, ev in points],
    }))
