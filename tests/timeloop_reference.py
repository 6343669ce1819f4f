"""Read the Timeloop reference cases in ../shared/reference/timeloop: their inputs and
the numbers Timeloop printed for them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "timeloop"
TENSOR_FIELDS = {
    "Partition size": "partition_size",
    "Utilized capacity": "utilized_capacity",
    "Utilized instances (max)": "utilized_instances",
    "Scalar reads (per-instance)": "reads",
    "Scalar fills (per-instance)": "fills",
    "Scalar updates (per-instance)": "updates",
    "Energy (total)": "energy_pJ",
}


@dataclass
class Expected:
    computes: int
    cycles: int
    utilization: float
    compute_energy_pJ: float
    levels: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    energy_decimals: int = 2  # how precisely Timeloop printed the energies


def case_ids() -> list[str]:
    if not REFERENCE.exists():
        return []
    ids = [f"cases/{p.name}" for p in sorted((REFERENCE / "cases").iterdir())]
    ids += [f"v303-generated/{p.name}" for p in sorted((REFERENCE / "v303-generated").iterdir()) if p.is_dir()]
    ids += [f"extra-v303/{p.name}" for p in sorted((REFERENCE / "extra-v303").iterdir())]
    return ids


def input_files(case: str) -> list[Path]:
    root = REFERENCE / case
    if case.startswith("cases/"):
        out = root / "ref-output"
        files = [out / "parsed-processed-input.yaml", *sorted(out.glob("*.ERT.yaml"))]
        if (out / "timeloop-mapper.map.yaml").exists():
            files.append(out / "timeloop-mapper.map.yaml")
        return files
    if case.startswith("v303-generated/"):
        return sorted((root / "inputs").glob("*.yaml"))
    return [root / "input.yaml"]


def load_input(case: str) -> dict:
    """Timeloop merges its input files at the top level."""
    doc: dict = {}
    for path in input_files(case):
        doc.update(yaml.safe_load(path.read_text()))
    return doc


def expected(case: str, link_transfers: bool = True) -> Expected:
    root = REFERENCE / case
    if case.startswith("extra-v303/"):
        name = "expected.json" if link_transfers else "expected_no_link_transfers.json"
        data = json.loads((root / name).read_text())
        levels = {lv["name"]: {t: dict(v) for t, v in lv["tensors"].items()} for lv in data["levels"]}
        return Expected(data["computes"], data["cycles"], data["utilization"], data["compute_energy_pJ"],
                        levels, energy_decimals=6)
    stats = next((root / ("ref-output" if case.startswith("cases/") else "output")).glob("*.stats.txt"))
    return parse_stats(stats.read_text())


def parse_stats(text: str) -> Expected:
    """The per-level, per-tensor numbers of a Timeloop stats.txt."""
    levels: dict[str, dict[str, dict[str, float]]] = {}
    compute = {}
    body = text.split("Networks")[0]
    blocks = re.split(r"^=== (\S+) ===$", body, flags=re.M)
    for name, block in zip(blocks[1::2], blocks[2::2]):
        if "Computes (total)" in block:
            compute["computes"] = int(re.search(r"Computes \(total\)\s*: (\d+)", block)[1])
            compute["energy"] = float(re.search(r"Energy \(total\)\s*: ([\d.]+) pJ", block)[1])
            continue
        tensors = {}
        for tname, tblock in re.findall(r"^    (\w+):\n((?:        .*\n)+)", block, flags=re.M):
            values = {}
            for line in tblock.splitlines():
                key, _, value = line.strip().partition(":")
                key = key.strip()
                if key in TENSOR_FIELDS:
                    values[TENSOR_FIELDS[key]] = float(value.split()[0])
            tensors[tname] = values
        levels[name] = tensors
    cycles = int(re.search(r"^Cycles: (\d+)", text, flags=re.M)[1])
    util = re.search(r"^Utilization: ([\d.]+)(%?)", text, flags=re.M)
    utilization = float(util[1]) / (100 if util[2] else 1)
    return Expected(compute["computes"], cycles, utilization, compute["energy"], levels)
