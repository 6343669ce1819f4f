"""Plain results of evaluating one mapping: what `mapper evaluate` prints and writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction


@dataclass(frozen=True)
class TensorStats:
    """Counts per instance, as Timeloop prints them; energy summed over instances.
    Under remainders the instances differ, and partition_size, reads, fills and
    updates are their exact averages (Fractions)."""

    partition_size: int | Fraction
    utilized_capacity: int
    utilized_instances: int
    reads: int | Fraction
    fills: int | Fraction
    updates: int | Fraction
    energy_pJ: float

    @property
    def accesses(self) -> int | float:
        """The words read, filled and updated over all the level's instances: its
        traffic in this tensor."""
        return plain((self.reads + self.fills + self.updates) * self.utilized_instances)


@dataclass(frozen=True)
class LevelStats:
    name: str
    instances: int
    tensors: dict[str, TensorStats]  # only the tensors kept at this level
    cycles: int
    network_energy_pJ: float = 0.0
    network_words: dict[str, float] = field(default_factory=dict)  # per tensor, behind network_energy_pJ
    # Timeloop's "Bandwidth throttling": the factor (1 when not limiting) by which this
    # level's bandwidth slows the MACs; `cycles` is the compute cycles divided by it
    bandwidth_throttling: float = 1.0


@dataclass(frozen=True)
class Evaluation:
    computes: int
    cycles: int
    utilization: float
    compute_energy_pJ: float
    levels: tuple[LevelStats, ...]  # outermost first
    mac_instances: int = 1
    utilized_macs: int = 1

    @property
    def energy_pJ(self) -> float:
        """Total dynamic energy: storage, network and compute."""
        return self.compute_energy_pJ + sum(
            t.energy_pJ for lv in self.levels for t in lv.tensors.values()
        ) + sum(lv.network_energy_pJ for lv in self.levels)

    @property
    def edp_J_cycles(self) -> float:
        return self.energy_pJ * 1e-12 * self.cycles

    def to_json(self) -> dict:
        return {
            "computes": self.computes,
            "cycles": self.cycles,
            "utilization": self.utilization,
            "energy_pJ": self.energy_pJ,
            "compute_energy_pJ": self.compute_energy_pJ,
            "edp_J_cycles": self.edp_J_cycles,
            "levels": [
                {
                    "name": lv.name,
                    "instances": lv.instances,
                    "bandwidth_throttling": lv.bandwidth_throttling,
                    "network_energy_pJ": lv.network_energy_pJ,
                    "tensors": {
                        name: {
                            "partition_size": plain(t.partition_size),
                            "utilized_capacity": t.utilized_capacity,
                            "utilized_instances": t.utilized_instances,
                            "reads": plain(t.reads),
                            "fills": plain(t.fills),
                            "updates": plain(t.updates),
                            "energy_pJ": t.energy_pJ,
                        }
                        for name, t in lv.tensors.items()
                    },
                }
                for lv in self.levels
            ],
        }


def plain(count: int | Fraction) -> int | float:
    """A count as a plain number (for JSON and arithmetic with floats): an average over
    instances that differ (remainders) is a Fraction, a whole one an int, any other the
    nearest float."""
    if isinstance(count, Fraction):
        return int(count) if count.denominator == 1 else float(count)
    return count
