"""The hardware: storage levels from outermost (DRAM) to innermost, then the MAC array.

A level's `instances` count the copies of it in the whole chip; the fan-out from a
level to the next inner one is the ratio of their instance counts, laid out as a
mesh (`mesh_x` x `mesh_y` is the number of instances of the level).

Energies are in the architecture's `energy_unit`: pJ, unless its energy table is in
another unit (e.g. "MAC": multiples of one MAC's energy). The model is indifferent to
the unit; the outputs name it, and give EDP in J*cycles only for pJ.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StorageLevel:
    name: str
    instances: int = 1
    mesh_x: int = 1
    mesh_y: int = 1
    depth: int | None = None  # in blocks; None = unbounded
    block_size: int = 1  # words per access
    word_bits: int = 16
    read_bandwidth: float | None = None  # words per cycle, per instance
    write_bandwidth: float | None = None
    multiple_buffering: float = 1.0
    read_energy: float = 0.0  # per block access
    write_energy: float = 0.0  # per block access (fills and updates)
    network_energy: float = 0.0  # per word delivered across the fan-out below it
    keeps: frozenset[str] | None = None  # tensors it may hold; None = any
    # Instances that share one access (Timeloop's cluster_size): a row of weight
    # registers read by one wide port, each keeping its own word of it.
    cluster_size: int = 1

    @property
    def capacity(self) -> int | None:
        return None if self.depth is None else self.depth * self.block_size

    def utilized_clusters(self, utilized_instances: int) -> int:
        """The clusters that the utilized instances access, each access paid once per
        cluster. As Timeloop does, the utilized instances are taken to be spread over
        all of the level's clusters, and a partial cluster at the end is not one.
        Clusters of one are the instances themselves, as many as a mapping uses."""
        if self.cluster_size == 1:
            return utilized_instances
        return min(utilized_instances, self.instances // self.cluster_size)


@dataclass(frozen=True)
class ComputeUnit:
    name: str
    instances: int = 1
    mesh_x: int = 1
    mesh_y: int = 1
    energy: float = 0.0  # per MAC


@dataclass(frozen=True)
class Architecture:
    name: str
    levels: tuple[StorageLevel, ...]  # outermost first
    compute: ComputeUnit = field(default_factory=lambda: ComputeUnit("MAC"))
    energy_unit: str = "pJ"  # the symbol of the energy table's unit

    def fanout(self, i: int) -> tuple[int, int]:
        """Mesh (X, Y) of children under one instance of level i."""
        child, parent = self._child(i), self.levels[i]
        return child.mesh_x // parent.mesh_x or 1, child.mesh_y // parent.mesh_y or 1

    def fanouts(self) -> list[tuple[int, int]]:
        """The mesh (X, Y) below every level, outermost first (`fanout`)."""
        return [self.fanout(i) for i in range(len(self.levels))]

    def fanout_name(self, i: int) -> str:
        """The fan-out below level i by both its ends, as Timeloop names it in errors:
        `GlobalBuffer -> LocalBuffer`, `RegisterFile -> MACC`."""
        return f"{self.levels[i].name} -> {self._child(i).name}"

    def _child(self, i: int) -> StorageLevel | ComputeUnit:
        """What is below level i: the next level, or the MACs below the last."""
        return self.levels[i + 1] if i + 1 < len(self.levels) else self.compute
