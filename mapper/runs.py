"""Finished runs read back from their folders, for `mapper explain` and `mapper
compare`: a layer's search (search.json and best.json), a network's (network.json and
layers/<layer>/best.json), or an experiment's (summary.json with its cells, each a
network folder). Nothing here writes or prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .explain import Explanation
from .network import BEST
from .network import MANIFEST as NETWORK_MANIFEST
from .search.run import MANIFEST as LAYER_MANIFEST
from .specs.errors import SpecError

SUMMARY = "summary.json"  # an experiment's (mapper/experiment.py)
KINDS = ("a folder of `mapper search` on a layer (best.json), on a workload (network.json), "
         "or of `mapper run` (summary.json with cells)")


@dataclass(frozen=True)
class LayerRun:
    name: str
    macs: int
    energy_pJ: float  # in the run's energy unit
    cycles: int
    edp_J_cycles: float
    path: Path  # its best.json
    best: dict[str, Any]  # what that holds


@dataclass(frozen=True)
class Run:
    """One layer's or one network's search (an experiment has one per cell)."""

    name: str
    folder: Path
    architecture: str
    energy_unit: str
    layers: tuple[LayerRun, ...]  # the finished layers, in the workload's order
    unfinished: tuple[str, ...] = ()

    @property
    def energy_pJ(self) -> float:
        return sum(l.energy_pJ for l in self.layers)

    @property
    def cycles(self) -> int:
        return sum(l.cycles for l in self.layers)

    @property
    def edp_J_cycles(self) -> float:
        """Summed over the layers, as network summaries sum it."""
        return sum(l.edp_J_cycles for l in self.layers)


def read_runs(folder: Path) -> list[Run]:
    """The runs in `folder`: one for a layer's or a network's search, one per cell of
    an experiment. Raises SpecError when the folder holds none of them."""
    if not folder.is_dir():
        raise SpecError(folder, "", "no such folder" if not folder.exists() else "a file", KINDS)
    try:
        return _runs(folder)
    except (KeyError, TypeError) as e:
        raise SpecError(folder, "", f"a record without the entry {e}", "the records a search writes") from None


def _runs(folder: Path) -> list[Run]:
    if (folder / NETWORK_MANIFEST).is_file():
        return [_network_run(folder, folder.name)]
    if (folder / LAYER_MANIFEST).is_file():
        return [_layer_run(folder)]
    summary = _read(folder / SUMMARY) if (folder / SUMMARY).is_file() else {}
    if isinstance(summary.get("cells"), list):
        return [_network_run(folder / cell["folder"],
                             " / ".join(cell[k] for k in ("architecture", "workload", "dataflow", "objective")))
                for cell in summary["cells"] if (folder / cell["folder"] / NETWORK_MANIFEST).is_file()]
    raise SpecError(folder, "", "no search.json, network.json or summary.json with cells", KINDS)


def explanation_of(layer: LayerRun) -> Explanation:
    """The layer's explanation, from its best.json."""
    if "explanation" not in layer.best:
        raise SpecError(layer.path, "explanation", "a best.json written before mappings were explained",
                        "a best.json with an explanation",
                        "run the search's command again: it finds the search finished and rewrites its results")
    return Explanation.from_json(layer.best["explanation"])


def _layer_run(folder: Path) -> Run:
    manifest = _read(folder / LAYER_MANIFEST)
    best = folder / BEST
    layers = (_layer(manifest["layer"], best),) if best.is_file() else ()
    unit = _read(best).get("energy_unit", "pJ") if best.is_file() else "pJ"
    return Run(manifest["layer"], folder, manifest["architecture"], unit, layers,
               () if layers else (manifest["layer"],))


def _network_run(folder: Path, name: str) -> Run:
    manifest = _read(folder / NETWORK_MANIFEST)
    layers, unfinished = [], []
    for entry in manifest["layers"]:
        best = folder / entry["folder"] / BEST
        if best.is_file():
            layers.append(_layer(entry["name"], best))
        else:
            unfinished.append(entry["name"])
    unit = layers[0].best.get("energy_unit", "pJ") if layers else "pJ"
    return Run(name, folder, manifest["architecture"], unit, tuple(layers), tuple(unfinished))


def _layer(name: str, path: Path) -> LayerRun:
    best = _read(path)
    return LayerRun(name, best["computes"], best["energy_pJ"], best["cycles"], best["edp_J_cycles"], path, best)


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise SpecError(path, "", f"a file that is not JSON ({e.msg} at line {e.lineno})",
                        "the JSON a search writes") from None
    if not isinstance(data, dict):
        raise SpecError(path, "", f"a JSON {type(data).__name__}", "a JSON object, as a search writes it")
    return data
