"""The optional backend: hwcomponents' own models (the estimator behind AccelForge),
called for each component instead of the built-in tables, where it is installed.

It needs Python >= 3.12 (`pip install 'mapper[hwcomponents]'`) and a CACTI binary that
runs on the machine: the wheel's needs glibc 2.38, and `mapper build-cacti`
(build_cacti below) rebuilds it from the C++ sources the wheel ships. SRAM is CACTI 7
(hwcomponents-cacti), a register Aladdin's (hwcomponents-library, area and energy per
bit), the MAC Aladdin's integer MAC (a multiplier of the operand width and an adder
twice as wide: at 45 nm, 1.03 pJ for 8 bits, 4x Horowitz's figure the built-in backend
uses), DRAM hwcomponents-cacti's energy per bit.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

NAME = "hwcomponents"


def available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("hwcomponents_cacti", "hwcomponents_library"))


def storage(kind: str, node: float, width: int, depth: int | None) -> tuple[float, float, float, float, str]:
    """(read pJ, write pJ, leakage mW, area mm2, source) of one instance."""
    import hwcomponents_cacti as cacti
    from hwcomponents_library import AladdinRegister
    if kind == "sram":
        model: Any = _cacti(lambda: cacti.SRAM(tech_node=node * 1e-9, width=width, size=width * depth))
        return (model.read().energy * 1e12, model.write().energy * 1e12, model.leak_power * 1e3, model.area * 1e6,
                "hwcomponents: CACTI 7")
    if kind == "register":
        model = AladdinRegister(tech_node=node * 1e-9, width=width)
        return (model.read().energy * 1e12, model.write().energy * 1e12, model.leak_power * 1e3 * depth,
                model.area * 1e6 * depth, "hwcomponents: Aladdin register")
    model = getattr(cacti, kind)(width=width)
    return model.read().energy * 1e12, model.write().energy * 1e12, 0.0, 0.0, f"hwcomponents: {kind}"


def mac(node: float, bits: int) -> tuple[float, float, float, str]:
    """(energy pJ, leakage mW, area mm2, source) of one integer MAC."""
    from hwcomponents_library import AladdinIntMAC
    model = AladdinIntMAC(tech_node=node * 1e-9, adder_width=2 * bits, multiplier_width=bits)
    return model.mac().energy * 1e12, model.leak_power * 1e3, model.area * 1e6, "hwcomponents: Aladdin integer MAC"


class CactiFailed(RuntimeError):
    pass


def _cacti(make: Any) -> Any:
    try:
        return make()
    except Exception as e:  # hwcomponents reports a CACTI binary that cannot run as a bare failure
        raise CactiFailed(f"hwcomponents' CACTI failed ({type(e).__name__}: {e}); its binary may need a "
                          "rebuild for this machine: run mapper build-cacti") from None


def build_cacti() -> Path:
    """Rebuild hwcomponents-cacti's CACTI binary from the sources its wheel ships (the
    wheel's binary and objects are built against glibc 2.38); returns the binary."""
    spec = importlib.util.find_spec("hwcomponents_cacti")
    if spec is None or spec.origin is None:
        raise CactiFailed("hwcomponents-cacti is not installed: pip install 'mapper[hwcomponents]' (Python >= 3.12)")
    folder = Path(spec.origin).parent / "cacti"
    for stale in ("obj_dbg", "obj_opt"):
        shutil.rmtree(folder / stale, ignore_errors=True)
    (folder / "cacti").unlink(missing_ok=True)
    done = subprocess.run(["make", "-j2"], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise CactiFailed(f"make in {folder} failed: " + " ".join(done.stderr.split()[-40:]))
    return folder / "cacti"
