"""A fused group's counts (mapper/fusion.py): each layer's mapping scored on each shape
of its tiles, times the tiles of that shape.

The tiles of a layer are separate runs of its loop nest (the buffers serve the other
layers between them), so the group's counts are sums of single-layer evaluations, each
of Timeloop's default model: the tallest tile's with the layer's mapping as it is, a
shorter edge tile's with the same mapping stopping short (a remainder, counted exactly
by the reference model). An intermediate's outermost keeper is the group's level,
which therefore neither fills it from DRAM nor writes it back (reference.account): its
traffic there is the producer's updates and the consumer's reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..architecture import Architecture
from ..fusion import FusedGroup, violations
from ..mapping import Mapping
from .capacity import violations as capacity_violations
from .reference import evaluate_reference
from .stats import Evaluation, LevelStats
from .vectorized import evaluate_mapping


@dataclass(frozen=True)
class TileEvaluation:
    rows: int  # the layer's output rows in a tile of this shape
    tiles: int  # tiles of this shape
    evaluation: Evaluation  # of one of them


@dataclass(frozen=True)
class FusedEvaluation:
    """Per layer of the group, its tiles' evaluations, tallest first."""

    group: FusedGroup
    layers: tuple[tuple[TileEvaluation, ...], ...]

    @property
    def energy_pJ(self) -> float:
        return sum(self.layer_energy_pJ(i) for i in range(len(self.layers)))

    @property
    def cycles(self) -> int:
        """The layers of a tile run one after another, and the tiles too."""
        return sum(self.layer_cycles(i) for i in range(len(self.layers)))

    @property
    def computes(self) -> int:
        return sum(self.layer_computes(i) for i in range(len(self.layers)))

    def layer_energy_pJ(self, layer: int) -> float:
        return sum(t.evaluation.energy_pJ * t.tiles for t in self.layers[layer])

    def layer_cycles(self, layer: int) -> int:
        return sum(t.evaluation.cycles * t.tiles for t in self.layers[layer])

    def layer_computes(self, layer: int) -> int:
        """The layer's MACs over every tile, its halo rows recomputed included."""
        return sum(t.evaluation.computes * t.tiles for t in self.layers[layer])

    def energy_by_level_pJ(self, layer: int) -> dict[str, float]:
        """Layer `layer`'s energy over all of its tiles: its storage energy per
        architecture level, then `MAC` (compute) and `network` (where some is spent),
        as a network summary breaks a layer's energy down."""
        return self._broken_down(layer, lambda lv: {lv.name: sum(s.energy_pJ for s in lv.tensors.values())})

    def energy_by_tensor_pJ(self, layer: int) -> dict[str, float]:
        """The same energy per tensor, then `MAC` and `network`."""
        return self._broken_down(layer, lambda lv: {name: s.energy_pJ for name, s in lv.tensors.items()})

    def accesses_by_level(self, layer: int) -> dict[str, float]:
        """Layer `layer`'s words read, filled and updated at each architecture level,
        over all of its instances and tiles."""
        return self._broken_down(layer, lambda lv: {lv.name: float(sum(s.accesses for s in lv.tensors.values()))},
                                 energies=False)

    def _broken_down(self, layer: int, parts: Callable[[LevelStats], dict[str, float]],
                     energies: bool = True) -> dict[str, float]:
        """`parts` of each level summed over the layer's tiles; with `energies`, its
        compute and network energy too."""
        total: dict[str, float] = {}
        for t in self.layers[layer]:
            for lv in t.evaluation.levels:
                for key, value in parts(lv).items():
                    total[key] = total.get(key, 0.0) + value * t.tiles
        if not energies:
            return total
        compute = sum(t.evaluation.compute_energy_pJ * t.tiles for t in self.layers[layer])
        network = sum(lv.network_energy_pJ * t.tiles for t in self.layers[layer] for lv in t.evaluation.levels)
        return total | {"MAC": compute} | ({"network": network} if network else {})


def evaluate_fused(group: FusedGroup, arch: Architecture, mappings: Sequence[Mapping],
                   link_transfers: bool = True) -> FusedEvaluation:
    """The counts of `group` with `mappings[i]` running layer i's tiles (each a mapping
    of `group.tile_problem(i)`); ValueError where a mapping breaks the group's rules
    (fusion.violations) or does not fit (capacity, fan-outs). `link_transfers=False`:
    Timeloop without peer-to-peer forwarding (as tests/brute_force.py counts)."""
    if len(mappings) != len(group.layers):
        raise ValueError(f"{len(mappings)} mappings for a group of {len(group.layers)} layers")
    layers = []
    for i, mapping in enumerate(mappings):
        problems = violations(group, arch, i, mapping) + capacity_violations(group.tile_problem(i), arch, mapping)
        if problems:
            raise ValueError(f"layer {group.layers[i].name}: " + "; ".join(problems))
        tiles = []
        for rows, count in group.tile_shapes(i):
            problem = group.tile_problem(i, rows)
            evaluation = (evaluate_mapping(problem, arch, mapping) if link_transfers
                          else evaluate_reference(problem, arch, mapping, link_transfers=False))
            tiles.append(TileEvaluation(rows, count, evaluation))
        layers.append(tuple(tiles))
    return FusedEvaluation(group, tuple(layers))
