"""Runs side by side (`mapper compare`): each run's totals and each layer's energy,
cycles and EDP, with their ratios to the first run, and where the runs were searched
from several seeds (`--seeds`), how far apart those searches ended: a difference
between two designs within that may be the search's noise rather than the designs'.
Plain data in, plain data and text out; the figure is drawn by mapper/plots.py."""

from __future__ import annotations

from typing import Any

from .report import edp_unit, edp_value, table
from .runs import LayerRun, Run
from .search.run import objective_figure, seed_figure, spread

FIGURES = ("energy_pJ", "cycles", "edp_J_cycles")


def comparison(runs: list[Run]) -> dict[str, Any]:
    """Totals per run and figures per layer (by name, in the first run's order, then
    any layer only later runs have), each with its ratio to the first run's. Energies
    in different units do not compare: a run whose unit is not the first run's gets no
    energy or EDP ratio. Nor does other work: a layer of another shape under the same
    name, or a run of other layers, has its MACs beside the first's and no ratios.
    Each total and each layer's figures say how far apart the seeds' searches ended
    (`seed_spread`, `_seeds`), and each of a later run whether its ratio to the first
    is within that (`within_seed_spread`, `_with_noise`)."""
    base = runs[0]
    alike = [r.energy_unit == base.energy_unit for r in runs]
    names = list(dict.fromkeys(l.name for r in runs for l in r.layers))
    layers = []
    for name in names:
        cells = [next((l for l in r.layers if l.name == name), None) for r in runs]
        first = cells[0]
        layers.append({"layer": name, "runs": _with_noise([
            None if c is None else {**_figures(c, first, same), **_seeds((c,))} for c, same in zip(cells, alike)])})
    return {
        "runs": _with_noise([{"name": r.name, "folder": str(r.folder), "architecture": r.architecture,
                              "energy_unit": r.energy_unit, "layers": len(r.layers), "unfinished": list(r.unfinished),
                              **_figures(r, base, same), **_seeds(r.layers)} for r, same in zip(runs, alike)]),
        "layers": layers,
        "comparable_energy": all(alike),
    }


def _figures(item: Any, first: Any, comparable: bool) -> dict[str, Any]:
    values = {f: getattr(item, f) for f in FIGURES}
    other_work = first is not None and None not in (item.macs, first.macs) and item.macs != first.macs
    ratios = {}
    for f in FIGURES:
        base = getattr(first, f) if first is not None and not other_work else None
        usable = base and (comparable or f == "cycles")
        ratios[f] = values[f] / base if usable else None
    return {**values, "macs": item.macs, "other_work": other_work, "ratio_to_first": ratios}


def _seeds(layers: tuple[LayerRun, ...]) -> dict[str, Any]:
    """What `layers` were searched for (None where that differs) and how far apart their
    independent searches ended (`--seeds`): of each seed's answers, summed over the
    layers as the totals sum them, the worst over the best, less one (`seed_spread`;
    None unless every layer was searched from the same seeds for one objective)."""
    objectives = {l.objective for l in layers}
    objective = objectives.pop() if len(objectives) == 1 else None
    seed_lists = {tuple(r["seed"] for r in l.seeds) for l in layers}
    if objective is None or len(seed_lists) != 1 or () in seed_lists:
        return {"objective": objective, "seed_spread": None}
    totals = [sum(seed_figure(l.seeds[i], objective) for l in layers) for i in range(len(layers[0].seeds))]
    return {"objective": objective, "seed_spread": spread(totals)}


def _with_noise(entries: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
    """`entries` (the first run's first), each later one with whether its ratio to the
    first, in the figure both were searched for, is within the larger of their seed
    spreads: a difference that the search's noise may explain (`within_seed_spread`;
    None where neither was searched from several seeds, or they were searched for
    different objectives)."""
    first = entries[0]
    for entry in entries[1:]:
        if entry is not None:
            entry["within_seed_spread"] = _within_noise(entry, first)
    return entries


def _within_noise(entry: dict[str, Any], first: dict[str, Any] | None) -> bool | None:
    objective = entry["objective"]
    if first is None or objective is None or first["objective"] != objective:
        return None
    spreads = [s for s in (entry["seed_spread"], first["seed_spread"]) if s is not None]
    ratio = entry["ratio_to_first"][objective_figure(objective)]
    if not spreads or not ratio:
        return None
    return max(ratio, 1 / ratio) - 1 <= max(spreads)


def comparison_text(data: dict[str, Any]) -> str:
    """The totals table, then the per-layer table: EDPs in the runs' unit, named in the
    header, or where the runs' units differ, each with its own; where runs were searched
    from several seeds, how far apart those searches ended, and a ratio within that
    marked "~"."""
    comparable = data["comparable_energy"]
    unit = data["runs"][0]["energy_unit"]
    entries = figure_entries(data)
    seeded = any(e["seed_spread"] is not None for e in entries)
    rows: list[tuple] = [("run", "architecture", "layers", "energy", "cycles",
                          f"EDP {edp_unit(unit)}" if comparable else "EDP", "energy x", "cycles x", "EDP x")
                         + (("seeds apart",) if seeded else ())]
    for r in data["runs"]:
        rows.append((r["name"], r["architecture"], r["layers"], f"{r['energy_pJ']:.4g} {r['energy_unit']}",
                     f"{r['cycles']:,}", _edp(r["edp_J_cycles"], r["energy_unit"], comparable), *_ratios(r))
                    + ((_apart(r),) if seeded else ()))
    lines = [table(rows)]
    for r in data["runs"]:
        if r["unfinished"]:
            lines.append(f"{r['name']}: {len(r['unfinished'])} layers unfinished, left out of its totals: "
                         + ", ".join(r["unfinished"]))
    if not comparable:
        lines.append(f"the runs' energies are in different units: no energy or EDP ratios to a run in another "
                     f"unit than the first's ({unit})")
    first = data["runs"][0]
    for r in data["runs"][1:]:
        if r["other_work"]:
            lines.append(f"{r['name']} computes {r['macs']:,} MACs against {first['name']}'s {first['macs']:,}: "
                         "other layers, no ratios of totals")
    for layer in data["layers"]:
        others = [(r["name"], c["macs"]) for c, r in zip(layer["runs"][1:], data["runs"][1:]) if c and c["other_work"]]
        if others:
            said = ", ".join(f"{name} computes {macs:,} MACs" for name, macs in others)
            lines.append(f"layer {layer['layer']}: {said} against {layer['runs'][0]['macs']:,} in {first['name']}: "
                         "another shape, no ratios")
    if len(data["layers"]) > 1:
        runs = range(1, len(data["runs"]) + 1)
        head = ["layer"] + [f"EDP {i}" for i in runs]
        head += [f"{what} {i}/1" for i in runs[1:] for what in ("energy", "cycles", "EDP")]
        head += [f"apart {i}" for i in runs if seeded]
        layer_rows: list[tuple] = [tuple(head)]
        for layer in data["layers"]:
            cells = layer["runs"]
            row = [layer["layer"]] + ["-" if c is None else _edp(c["edp_J_cycles"], r["energy_unit"], comparable)
                                      for c, r in zip(cells, data["runs"])]
            for c in cells[1:]:
                row += ["-"] * 3 if c is None else _ratios(c)
            row += ["-" if c is None else _apart(c) for c in cells if seeded]
            layer_rows.append(tuple(row))
        lines += ["", "runs: " + "; ".join(f"{i + 1} = {r['name']}" for i, r in enumerate(data["runs"])),
                  table(layer_rows)]
    lines += _noise_lines(entries, len(data["runs"]) > 1, seeded)
    return "\n".join(lines) + "\n"


def figure_entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run's totals and every layer's figures of `data` (of `comparison`)."""
    return [*data["runs"], *(c for layer in data["layers"] for c in layer["runs"] if c is not None)]


def _noise_lines(entries: list[dict[str, Any]], several: bool, seeded: bool) -> list[str]:
    """What the text says of the search's noise: what "~" marks, or that it is not known."""
    if any(noise_marked(e) for e in entries):
        return ["", "~: within how far apart either run's searches from other seeds ended (`seeds apart`):",
                "   the search's noise may explain the difference"]
    if several and not seeded:
        return ["", "each run was searched from one seed: searched with --seeds N, they would show which",
                "differences the search's noise may explain"]
    return []


def noise_marked(entry: dict[str, Any]) -> str | None:
    """The figure of `entry` (a run's or a layer's, of `comparison`) whose ratio to the
    first run's the text marks "~" and the figure hatches: the one searched for, where
    the ratio is within the seeds' spread (`_with_noise`) but not 1."""
    if not entry.get("within_seed_spread"):
        return None
    figure = objective_figure(entry["objective"])
    return figure if entry["ratio_to_first"][figure] != 1 else None


def _apart(entry: dict[str, Any]) -> str:
    spread = entry["seed_spread"]
    return "-" if spread is None else f"{100 * spread:.2f}%"


def _edp(edp_J_cycles: float, energy_unit: str, unit_in_header: bool) -> str:
    value = f"{edp_value(edp_J_cycles, energy_unit):.4g}"
    return value if unit_in_header else f"{value} {edp_unit(energy_unit)}"


def _ratios(entry: dict[str, Any]) -> list[str]:
    """The ratios to the first run, one marked "~" where search noise may explain it
    (`noise_marked`)."""
    ratios, noisy = entry["ratio_to_first"], noise_marked(entry)
    return ["-" if ratios[f] is None else f"{ratios[f]:.3f}" + ("~" if f == noisy else "") for f in FIGURES]
