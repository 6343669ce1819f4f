"""The figures the README's co-design write-up quotes, read from the results of
`mapper run specs/experiments/codesign-eyeriss.yaml` (default folder
results/codesign-eyeriss): per dataflow, energy and EDP ranges over the designs, what
the 128 KB global buffer saves against the 16 KB one, the energy's share at DRAM and at
the global buffer, weight-stationary against row-stationary per design, and the
Pareto front's size.

    python benchmarks/codesign_figures.py [RESULTS_DIR]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RS, WS = "row-stationary", "weight-stationary"
SMALL, LARGE = 2048, 16384  # global-buffer depths: 16 KB and 128 KB of 64-bit entries

Design = tuple[int, int, int]  # PE columns, PEs per column, global-buffer depth


def design_of(params: dict) -> Design:
    return (params["levels.inter_PE_column_spatial.fanout"][0], params["levels.inter_PE_spatial.fanout"][1],
            params["levels.shared_glb.depth"])


def level_shares(folder: Path) -> dict[tuple[Design, str], dict[str, float]]:
    """Per searched design and dataflow, each level's share of the network's energy."""
    shares = {}
    for path in folder.glob("cells/*/*/*/*/summary.json"):
        cell = json.loads(path.read_text())
        by_level: dict[str, float] = defaultdict(float)
        for layer in cell["layers"]:
            for level, energy in layer["energy_by_level_pJ"].items():
                by_level[level] += energy
        total = sum(by_level.values())
        shares[(design_of(_params(cell["architecture"])), path.parts[-3])] = {
            level: e / total for level, e in by_level.items()}
    return shares


def _params(name: str) -> dict:
    """The swept values in a design's name: `template[key=value, ...]`."""
    inside = name[name.index("[") + 1:name.rindex("]")]
    found: dict = {}
    for part in inside.split(", "):
        key, value = part.split("=")
        found["levels." + key] = [int(v) for v in value.split("x")] if "x" in value else int(value)
    return found


def percent_range(values: list[float]) -> str:
    return f"{100 * min(values):.0f}-{100 * max(values):.0f}%"


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "results/codesign-eyeriss"
    summary = json.loads((folder / "summary.json").read_text())
    searched = [d for d in summary["designs"] if d["status"] == "complete"]
    by = {df: {design_of(d["params"]): d for d in searched if d["dataflow"] == df} for df in (RS, WS)}
    rs, ws = by[RS], by[WS]
    over = {design_of(d["params"]) for d in summary["designs"] if d["status"] != "complete"}
    print(f"designs searched: {len(rs)}; over the area budget: {len(over)}")
    energy = [d["energy_pJ"] / 1e6 for d in rs.values()]
    print(f"row-stationary energy: {min(energy):,.0f} to {max(energy):,.0f} uJ")
    saved = [1 - rs[(c, r, LARGE)]["energy_pJ"] / rs[(c, r, SMALL)]["energy_pJ"] for c, r, g in rs if g == SMALL]
    print(f"128 KB against 16 KB: saves {percent_range(saved)} of row-stationary's energy, "
          f"+{rs[(8, 8, LARGE)]['area_mm2'] - rs[(8, 8, SMALL)]['area_mm2']:.2f} mm2")
    cycles = defaultdict(set)
    for (c, r, _), d in rs.items():
        cycles[c * r].add(d["cycles"])
    print("row-stationary cycles by PEs:", {pes: sorted(c) for pes, c in sorted(cycles.items())})
    ranked = sorted(rs.items(), key=lambda kv: kv[1]["edp_J_cycles"])
    for label, (design, d) in (("worst", ranked[-1]), ("best", ranked[0])):
        print(f"row-stationary EDP {label}: {d['edp_J_cycles']:,.0f} J*cycles, {design[0]} x {design[1]}, "
              f"depth {design[2]}, {d['area_mm2']:.2f} mm2")
    print(f"row-stationary Pareto-optimal: {sum(d['pareto'] for d in rs.values())} of {len(rs)}")
    ratio = {k: ws[k]["energy_pJ"] / rs[k]["energy_pJ"] for k in rs}
    small = [v for k, v in ratio.items() if k[2] == SMALL]
    print(f"weight-stationary / row-stationary energy: {min(ratio.values()):.2f} to {max(ratio.values()):.2f}; "
          f"lower on {sum(v < 1 for v in small)} of {len(small)} with 16 KB ({100 * (min(small) - 1):+.0f}% to "
          f"{100 * (max(small) - 1):+.0f}%), higher on {sum(v > 1 for k, v in ratio.items() if k[2] == LARGE)} of "
          f"{sum(1 for k in ratio if k[2] == LARGE)} with 128 KB")
    edp = [ws[k]["edp_J_cycles"] / rs[k]["edp_J_cycles"] for k in rs]
    print(f"weight-stationary / row-stationary EDP: {min(edp):.2f} to {max(edp):.2f}")
    ws_size = [ws[(c, r, LARGE)]["energy_pJ"] / ws[(c, r, SMALL)]["energy_pJ"] for c, r, g in ws if g == SMALL]
    rs_size = [abs(1 - v) for v in (rs[(c, r, LARGE)]["energy_pJ"] / rs[(c, r, SMALL)]["energy_pJ"]
                                    for c, r, g in rs if g == SMALL)]
    print(f"the buffer's size changes weight-stationary's energy by up to "
          f"{100 * (max(max(ws_size), 1 / min(ws_size)) - 1):.0f}% (8 x 8: {ws[(8, 8, SMALL)]['energy_pJ'] / 1e6:,.0f} "
          f"to {ws[(8, 8, LARGE)]['energy_pJ'] / 1e6:,.0f} uJ), row-stationary's by at most {100 * max(rs_size):.0f}%")
    print(f"weight-stationary with 16 KB: 16 x 12 {ws[(16, 12, SMALL)]['energy_pJ'] / 1e6:,.0f} uJ, "
          f"16 x 16 {ws[(16, 16, SMALL)]['energy_pJ'] / 1e6:,.0f} uJ")
    shares = level_shares(folder)
    for glb in (SMALL, LARGE):
        dram = [s["DRAM"] for (d, df), s in shares.items() if df == RS and d[2] == glb]
        print(f"row-stationary DRAM share with depth {glb}: {percent_range(dram)}")
    print(f"weight-stationary global-buffer share: "
          f"{percent_range([s['shared_glb'] for (d, df), s in shares.items() if df == WS])}")


if __name__ == "__main__":
    main()
