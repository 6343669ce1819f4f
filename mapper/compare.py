"""Runs side by side (`mapper compare`): each run's totals and each layer's energy,
cycles and EDP, with their ratios to the first run. Plain data in, plain data and
text out; the figure is drawn by mapper/plots.py."""

from __future__ import annotations

from typing import Any

from .report import edp_unit, edp_value, table
from .runs import Run

FIGURES = ("energy_pJ", "cycles", "edp_J_cycles")


def comparison(runs: list[Run]) -> dict[str, Any]:
    """Totals per run and figures per layer (by name, in the first run's order, then
    any layer only later runs have), each with its ratio to the first run's. Energies
    in different units do not compare: a run whose unit is not the first run's gets no
    energy or EDP ratio. Nor does other work: a layer of another shape under the same
    name, or a run of other layers, has its MACs beside the first's and no ratios."""
    base = runs[0]
    alike = [r.energy_unit == base.energy_unit for r in runs]
    names = list(dict.fromkeys(l.name for r in runs for l in r.layers))
    layers = []
    for name in names:
        cells = [next((l for l in r.layers if l.name == name), None) for r in runs]
        first = cells[0]
        layers.append({"layer": name, "runs": [
            None if c is None else _figures(c, first, same) for c, same in zip(cells, alike)]})
    return {
        "runs": [{"name": r.name, "folder": str(r.folder), "architecture": r.architecture,
                  "energy_unit": r.energy_unit, "layers": len(r.layers), "unfinished": list(r.unfinished),
                  **_figures(r, base, same)} for r, same in zip(runs, alike)],
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


def comparison_text(data: dict[str, Any]) -> str:
    """The totals table, then the per-layer table: EDPs in the runs' unit, named in the
    header, or where the runs' units differ, each with its own."""
    comparable = data["comparable_energy"]
    unit = data["runs"][0]["energy_unit"]
    rows: list[tuple] = [("run", "architecture", "layers", "energy", "cycles",
                          f"EDP {edp_unit(unit)}" if comparable else "EDP", "energy x", "cycles x", "EDP x")]
    for r in data["runs"]:
        rows.append((r["name"], r["architecture"], r["layers"], f"{r['energy_pJ']:.4g} {r['energy_unit']}",
                     f"{r['cycles']:,}", _edp(r["edp_J_cycles"], r["energy_unit"], comparable),
                     *_ratios(r["ratio_to_first"])))
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
        head = ["layer"] + [f"EDP {i + 1}" for i in range(len(data["runs"]))]
        head += [f"{what} {i + 1}/1" for i in range(1, len(data["runs"])) for what in ("energy", "cycles", "EDP")]
        layer_rows: list[tuple] = [tuple(head)]
        for layer in data["layers"]:
            cells = layer["runs"]
            row = [layer["layer"]] + ["-" if c is None else _edp(c["edp_J_cycles"], r["energy_unit"], comparable)
                                      for c, r in zip(cells, data["runs"])]
            for c in cells[1:]:
                row += ["-"] * 3 if c is None else _ratios(c["ratio_to_first"])
            layer_rows.append(tuple(row))
        lines += ["", "runs: " + "; ".join(f"{i + 1} = {r['name']}" for i, r in enumerate(data["runs"])),
                  table(layer_rows)]
    return "\n".join(lines) + "\n"


def _edp(edp_J_cycles: float, energy_unit: str, unit_in_header: bool) -> str:
    value = f"{edp_value(edp_J_cycles, energy_unit):.4g}"
    return value if unit_in_header else f"{value} {edp_unit(energy_unit)}"


def _ratios(ratios: dict[str, float | None]) -> list[str]:
    return ["-" if ratios[f] is None else f"{ratios[f]:.3f}" for f in FIGURES]
