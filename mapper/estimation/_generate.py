"""Write reference.json, the built-in estimator's table, from hwcomponents' models.

    python mapper/estimation/_generate.py     # Python >= 3.12 with hwcomponents,
                                              # hwcomponents-cacti, hwcomponents-library

hwcomponents (the estimator behind AccelForge, successor of Accelergy's plug-ins) needs
Python >= 3.12 and a CACTI binary built on the machine (its wheel's binary needs glibc
2.38): `make` in site-packages/hwcomponents_cacti/cacti after deleting the wheel's
obj_dbg/ rebuilds it. This script is how the table was made; mapper needs neither
hwcomponents nor this script at run time. It samples:
- SRAM (CACTI 7 through hwcomponents-cacti): every node x port width x depth of the grid
  below, one read/write port, one bank;
- a register (hwcomponents-library's AladdinRegister, Aladdin's 40 nm table scaled to
  the node): per bit;
- how energy, area and leakage scale from 45 nm to each node (hwcomponents' IRDS-based
  factors), for the MAC, whose 45 nm figures are Horowitz's (ISSCC 2014) in the estimator;
- DRAM: energy per bit by type (hwcomponents-cacti's table; no area, no leakage);
and, off the grid, SRAM points the tests compare the built-in interpolation with.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from hwcomponents_cacti import SRAM
from hwcomponents_cacti.hwcomponents_cacti import _DRAM
from hwcomponents.scaling.techscaling import tech_node_area, tech_node_energy, tech_node_leak
from hwcomponents_library import AladdinRegister

HERE = Path(__file__).resolve().parent
# hwcomponents gives CACTI's own results up to 65 nm; at 90 nm its SRAMs cost less than
# at 65 nm (leakage as at 22 nm), so the table stops at 65.
NODES_NM = [22, 32, 45, 65]
WIDTHS = [8, 16, 32, 64, 128, 256, 512]  # bits per access
DEPTHS = [2 ** k for k in range(4, 17)]  # entries
SRAM_CHECKS = [(28, 64, 8192), (40, 64, 32768), (45, 64, 8192), (65, 64, 8192), (32, 16, 192), (55, 24, 3000),
               (45, 256, 2048), (22, 48, 100), (60, 128, 40000), (32, 64, 16384)]


def sram(node: float, width: int, depth: int) -> dict[str, float]:
    model = SRAM(tech_node=node * 1e-9, width=width, size=width * depth)
    return {"read_pJ": model.read().energy * 1e12, "write_pJ": model.write().energy * 1e12,
            "leak_mW": model.leak_power * 1e3, "area_um2": model.area * 1e12}


def register(node: float) -> dict[str, float]:
    model = AladdinRegister(tech_node=node * 1e-9, width=1)
    return {"read_pJ": model.read().energy * 1e12, "write_pJ": model.write().energy * 1e12,
            "leak_mW": model.leak_power * 1e3, "area_um2": model.area * 1e12}


def rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: float(f"{v:.5g}") for k, v in values.items()}


def main() -> None:
    table = {
        "source": "hwcomponents 1.0 (CACTI 7 via hwcomponents-cacti; Aladdin via hwcomponents-library), "
                  "made by mapper/estimation/_generate.py",
        "nodes_nm": NODES_NM,
        "sram": {"widths": WIDTHS, "depths": DEPTHS, "points": [
            {"node_nm": n, "width": w, "depth": d, **rounded(sram(n, w, d))}
            for n, w, d in itertools.product(NODES_NM, WIDTHS, DEPTHS)]},
        "register_per_bit": [{"node_nm": n, **rounded(register(n))} for n in NODES_NM],
        "node_scaling_from_45nm": [rounded({"node_nm": n, "energy": tech_node_energy(n * 1e-9, 45e-9),
                                            "area": tech_node_area(n * 1e-9, 45e-9),
                                            "leak": tech_node_leak(n * 1e-9, 45e-9)}) for n in NODES_NM],
        "dram_pJ_per_bit": {kind: float(energy[0])
                            for kind, energy in _DRAM.type2energylatency.items() if isinstance(energy, tuple)},
        "sram_checks": [{"node_nm": n, "width": w, "depth": d, **rounded(sram(n, w, d))} for n, w, d in SRAM_CHECKS],
    }
    (HERE / "reference.json").write_text(table_text(table))


def table_text(table: dict) -> str:
    """JSON, one record of a list per line: read at every start of mapper (JSON parses
    in a millisecond where YAML took a quarter of a second), and still readable."""
    def value(v: object, indent: str) -> str:
        if isinstance(v, dict) and any(isinstance(x, (dict, list)) for x in v.values()):
            inner = indent + " "
            return "{\n" + ",\n".join(f"{inner}{json.dumps(k)}: {value(x, inner)}" for k, x in v.items()) + \
                "\n" + indent + "}"
        if isinstance(v, list) and any(isinstance(x, dict) for x in v):
            inner = indent + " "
            return "[\n" + ",\n".join(inner + json.dumps(x) for x in v) + "\n" + indent + "]"
        return json.dumps(v)
    return value(table, "") + "\n"


if __name__ == "__main__":
    main()
