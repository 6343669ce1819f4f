"""Finished runs read back from their folders, for `mapper explain` and `mapper
compare`: a layer's search (search.json and best.json), a network's (network.json and
layers/<layer>/best.json), or an experiment's (summary.json with its cells, each a
network folder). Nothing here writes or prints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .explain import Explanation
from .network import BEST, read_json, tile_name
from .network import MANIFEST as NETWORK_MANIFEST
from .search.run import MANIFEST as LAYER_MANIFEST
from .specs.errors import SpecError

SUMMARY = "summary.json"  # an experiment's (mapper/experiment.py)
SEED_FIGURES = ("seed", "energy_pJ", "cycles", "edp_J_cycles")  # of each of best.json's search.seeds
KINDS = ("a folder of `mapper search` on a layer (best.json), on a workload (network.json), "
         "or of `mapper run` (summary.json with cells)")


@dataclass(frozen=True)
class LayerRun:
    name: str
    energy_pJ: float  # in the run's energy unit
    cycles: int
    edp_J_cycles: float
    path: Path  # its best.json: for a layer run fused, that of one tile of its group
    best: dict[str, Any]  # what that holds
    fused_in: str | None = None  # the fused group it runs in, if any

    @property
    def macs(self) -> int | None:
        """The layer's MACs (None for a layer run fused: `best` is one tile's)."""
        return None if self.fused_in else self.best.get("computes")

    @property
    def objective(self) -> str | None:
        """What the layer was searched for (best.json's search.objective)."""
        return self.best.get("search", {}).get("objective")

    @property
    def seeds(self) -> tuple[dict[str, Any], ...]:
        """What each independent search found, where the layer was searched from several
        seeds (`--seeds`: best.json's search.seeds); none for one seed, nor for a layer
        run fused (`best` is one tile's)."""
        return () if self.fused_in else tuple(self.best.get("search", {}).get("seeds", ()))


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

    @property
    def macs(self) -> int | None:
        """The MACs of its finished layers (None where a layer's are not known)."""
        counts = [l.macs for l in self.layers]
        return None if None in counts else sum(counts)


def read_runs(folder: Path) -> list[Run]:
    """The runs in `folder`: one for a layer's or a network's search, one per cell of
    an experiment. Raises SpecError when the folder holds none of them."""
    if not folder.is_dir():
        raise SpecError(folder, "", "no such folder" if not folder.exists() else "a file", KINDS)
    try:
        return _runs(folder)
    except KeyError as e:
        raise SpecError(folder, "", f"a record without the entry {e}", "the records a search writes") from None
    except TypeError as e:  # an entry of another kind than a search writes there (a number for a list, say)
        raise SpecError(folder, "", f"a record with an entry of the wrong kind ({e})",
                        "the records a search writes") from None


def _runs(folder: Path) -> list[Run]:
    if (folder / NETWORK_MANIFEST).is_file():
        return [_network_run(folder, folder.name)]
    if (folder / LAYER_MANIFEST).is_file():
        return [_layer_run(folder)]
    summary = read_json(folder / SUMMARY) if (folder / SUMMARY).is_file() else {}
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
    manifest = read_json(folder / LAYER_MANIFEST)
    best = folder / BEST
    layers = (_layer(manifest["layer"], best),) if best.is_file() else ()
    unit = read_json(best).get("energy_unit", "pJ") if best.is_file() else "pJ"
    return Run(manifest["layer"], folder, manifest["architecture"], unit, layers,
               () if layers else (manifest["layer"],))


def _network_run(folder: Path, name: str) -> Run:
    """The network's layers as its summary.json has them (fused groups run fused, each
    layer's figures over every tile), or, before the summary is written, each as
    searched alone; never the tiles of fused groups as layers of their own."""
    manifest = read_json(folder / NETWORK_MANIFEST)
    folders = {entry["name"]: folder / entry["folder"] for entry in manifest["layers"]}
    summary = read_json(folder / SUMMARY) if (folder / SUMMARY).is_file() else {}
    rows = {row["layer"]: row for row in summary.get("layers", [])}
    if summary:  # its layers: a row each, or a reason for having none
        names = [name for name in folders if name in rows or name in summary.get("failed", {})]
    else:  # not summarized yet: the layers searched alone, the fused groups' tiles aside
        names = [entry["name"] for entry in manifest["layers"] if "fusion_group" not in entry]
    layers, unfinished = [], []
    for layer in names:
        row = rows.get(layer, {})
        group = row.get("fusion_group")
        best = (folders[tile_name(group, layer)] if group else folders[layer]) / BEST
        if best.is_file():
            layers.append(_layer(layer, best, row, group))
        else:
            unfinished.append(layer)
    unit = summary.get("energy_unit") or (layers[0].best.get("energy_unit", "pJ") if layers else "pJ")
    return Run(name, folder, manifest["architecture"], unit, tuple(layers), tuple(unfinished))


def _layer(name: str, path: Path, row: dict[str, Any] | None = None, fused_in: str | None = None) -> LayerRun:
    """A layer's figures: its summary row's where the network has one (`row`), else its
    best.json's (`path`)."""
    best = read_json(path)
    figures = row or best
    _check_seeds(best)
    return LayerRun(name, figures["energy_pJ"], figures["cycles"], figures["edp_J_cycles"], path, best, fused_in)


def _check_seeds(best: dict[str, Any]) -> None:
    """Raises KeyError (which read_runs names) where a record of best.json's
    search.seeds lacks what a comparison reads of it, so that a damaged file is found
    when it is read, not midway through a comparison."""
    for record in best.get("search", {}).get("seeds", ()):
        missing = [key for key in SEED_FIGURES if key not in record]
        if missing:
            raise KeyError(f"search.seeds[].{missing[0]}")


