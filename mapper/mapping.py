"""A mapping: per storage level, its temporal loops, the spatial loops of its
fan-out, and which tensors it keeps. Loops are listed outermost first."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod


@dataclass(frozen=True)
class Loop:
    dim: str
    factor: int
    spatial: str | None = None  # None (temporal), "X" or "Y"


@dataclass(frozen=True)
class LevelMapping:
    temporal: tuple[Loop, ...] = ()
    spatial: tuple[Loop, ...] = ()
    keep: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Mapping:
    levels: tuple[LevelMapping, ...]  # outermost first, one per architecture level

    def factor(self, dim: str) -> int:
        return prod(l.factor for lm in self.levels for l in lm.temporal + lm.spatial if l.dim == dim)
