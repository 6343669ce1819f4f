"""Text and JSON renderings of a mapping and its evaluation (nothing here prints)."""

from __future__ import annotations

from fractions import Fraction

from .architecture import Architecture
from .estimation import ArchitectureEstimate
from .mapping import Mapping
from .model.capacity import tile_sizes
from .model.stats import Evaluation
from .problem import Problem


def loop_nest(problem: Problem, arch: Architecture, mapping: Mapping) -> str:
    """The loop nest per level with the tiles it holds, like Timeloop's map.txt."""
    lines, depth = [], 0
    ends = mapping.residual_ends(problem.bounds)
    for i, level in enumerate(arch.levels):
        lm = mapping.levels[i]
        tiles = " ".join(f"{n}:{s}" for n, s in tile_sizes(problem, mapping, i).items())
        header = f"{level.name} [ {tiles} ]" if tiles else f"{level.name} [ ]"
        temporal, spatial = ends[i]
        loops = [(l, e, "") for l, e in zip(lm.temporal, temporal) if l.factor > 1]
        loops += [(l, e, f" (Spatial-{l.spatial})") for l, e in zip(lm.spatial, spatial) if l.factor > 1]
        if not loops and not tiles:
            continue
        lines.append(header)
        if loops:
            lines.append("-" * len(header))
        for loop, end, tag in loops:
            residual = f",{end}" if end != loop.factor else ""  # a remainder: Timeloop's residual end
            lines.append("|" + "  " * depth + f" for {loop.dim} in [0:{loop.factor}{residual}){tag}")
            depth += 1
        lines.append("")
    lines.append("|" + "  " * depth + " << Compute >>")
    return "\n".join(lines)


def counts_table(ev: Evaluation, energy_unit: str) -> str:
    """Per level and tensor: what Timeloop calls partition, capacity, reads, fills, updates."""
    head = ("level", "tensor", "partition", "capacity", "instances", "reads", "fills", "updates",
            f"energy {energy_unit}")
    rows = [head]
    for lv in ev.levels:
        for name, t in lv.tensors.items():
            rows.append((lv.name, name, count_text(t.partition_size), t.utilized_capacity, t.utilized_instances,
                         count_text(t.reads), count_text(t.fills), count_text(t.updates), f"{t.energy_pJ:.2f}"))
        if lv.network_energy_pJ:  # the words crossing its fan-out (its network_energy per word)
            rows.append((lv.name, "network", "", "", "", "", "", "", f"{lv.network_energy_pJ:.2f}"))
    rows.append(("MAC", "-", "", "", ev.utilized_macs, ev.computes, "", "", f"{ev.compute_energy_pJ:.2f}"))
    return table(rows)


def count_text(count: int | Fraction) -> str:
    """A count per instance; an average over instances that differ (remainders) with
    two decimals."""
    return str(count) if count == int(count) else f"{float(count):.2f}"


def table(rows: list[tuple]) -> str:
    """Rows as aligned text, the first one a header: the first two columns (names) to
    the left, the others (figures) to the right."""
    cells = [[str(v) for v in row] for row in rows]
    widths = [max(len(r[c]) for r in cells) for c in range(len(cells[0]))]
    out = []
    for k, row in enumerate(cells):
        out.append("  ".join(v.ljust(w) if c < 2 else v.rjust(w) for c, (v, w) in enumerate(zip(row, widths))))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def totals(ev: Evaluation, energy_unit: str) -> str:
    """The totals line, energies in the architecture's unit (pJ, or e.g. MAC: multiples of a MAC's energy);
    then, if some level's bandwidth slows the MACs, which and by how much."""
    line = (f"energy {ev.energy_pJ:.2f} {energy_unit}  ({ev.energy_pJ / ev.computes:.3f} {energy_unit}/MAC)  "
            f"cycles {ev.cycles}  utilization {100 * ev.utilization:.2f}%  "
            f"EDP {edp_text(ev.edp_J_cycles, energy_unit)}")
    throttling = [f"{lv.name} {lv.bandwidth_throttling:.2f} ({lv.cycles} cycles)" for lv in ev.levels
                  if lv.bandwidth_throttling < 1]
    return line + ("\nbandwidth throttling: " + ", ".join(throttling) if throttling else "")


def edp_value(edp_J_cycles: float, energy_unit: str) -> float:
    """EDP as the outputs show it, in `edp_unit`. The model's `edp_J_cycles` is energy x
    1e-12 x cycles: J*cycles when energies are pJ. In any other unit a J figure would be
    false, so it is energy x cycles in <unit>*cycles."""
    return edp_J_cycles if energy_unit == "pJ" else edp_J_cycles * 1e12


def edp_unit(energy_unit: str) -> str:
    return "J*cycles" if energy_unit == "pJ" else f"{energy_unit}*cycles"


def edp_text(edp_J_cycles: float, energy_unit: str) -> str:
    return f"{edp_value(edp_J_cycles, energy_unit):.4g} {edp_unit(energy_unit)}"


def estimate_table(est: ArchitectureEstimate) -> str:
    """Per level and for the MACs: the component, the estimated energies per access (of
    one port-wide entry; per MAC), leakage and area, beside the energies the
    architecture gives; then the total area and leakage and where the numbers came
    from."""
    unit = est.energy_unit
    rows: list[tuple] = [("level", "component", "instances", "width b", "depth", "read pJ", "write pJ",
                          f"given read {unit}", f"given write {unit}", "leak uW", "area mm2", "total mm2")]
    for lv in est.levels:
        e = lv.estimate
        rows.append((lv.name, e.component, lv.instances, lv.width_bits, "unbounded" if lv.depth is None else lv.depth,
                     f"{e.read_pJ:.4g}", f"{e.write_pJ:.4g}", f"{lv.given_read:.4g}", f"{lv.given_write:.4g}",
                     f"{e.leak_mW * 1e3:.3g}", f"{e.area_mm2:.4g}", f"{e.area_mm2 * lv.instances:.4g}"))
    c = est.compute
    rows.append(("MAC", c.component, est.compute_instances, "", "", f"{c.read_pJ:.4g}", "", f"{est.given_mac:.4g}",
                 "", f"{c.leak_mW * 1e3:.3g}", f"{c.area_mm2:.4g}", f"{c.area_mm2 * est.compute_instances:.4g}"))
    sources = sorted({lv.estimate.source for lv in est.levels if lv.estimate.component != "none"} | {c.source})
    return "\n".join([f"{est.name} at {est.node_nm:g} nm ({est.backend} estimator)", "", table(rows), "",
                      f"total area {est.total_area_mm2:.4g} mm2 (storage and MACs; wires and control not "
                      f"included), leakage {est.total_leak_mW:.4g} mW", "sources: " + "; ".join(sources)])
