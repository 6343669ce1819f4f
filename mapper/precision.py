"""Word widths: how many bits a tensor's elements take at a storage level, and what
that does to the level's capacity and accesses.

A tensor's precision (`Tensor.word_bits`, e.g. 8-bit weights and 24-bit partial sums)
is the same at every level; a tensor without one takes each level's word
(`StorageLevel.word_bits`), as every tensor does in Timeloop's model. A level holds
`capacity x word_bits` bits and moves `block_size x word_bits` bits per access (its
port), so:

- its tiles fit when the sum over tensors of elements x bits is at most what it
  holds (after multiple buffering);
- moving n elements of b bits through it costs ceil(n x b / port bits) accesses, each
  priced at the level's energy per access;
- bandwidth (words per cycle) and network energy (per word) count an element as
  b / word_bits of the level's words.

Where every tensor has the level's word width these are Timeloop's counts in words,
exactly: capacities stay in words and an access moves `block_size` elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import gcd

from .architecture import Architecture, StorageLevel
from .problem import Problem


@dataclass(frozen=True)
class LevelWidths:
    """One level's view of the problem's tensors (module docstring)."""

    unit: str  # what `usable` and `per_element` count: "words", or "bits" where precisions differ
    usable: int | None  # held by one instance after multiple buffering; None = unbounded
    per_element: tuple[int, ...]  # units one element of each tensor takes
    access_bits: tuple[int, ...]  # numerator, per tensor: n elements take ceil(n * access_bits / port_bits) accesses
    port_bits: tuple[int, ...]  # denominator, per tensor (the fraction reduced, so that words give (1, block_size))
    words_per_element: tuple[float, ...]  # level words per element of each tensor (bandwidth, network energy)

    def accesses(self, tensor: int, elements: int | Fraction) -> int | Fraction:
        """Accesses (blocks through the port) that move `elements` of a tensor: whole
        blocks for an instance's count. Under remainders a count is the average over
        instances that differ (a Fraction), some of them idle: rounding it up to a
        whole block would charge every idle instance an access, so it is left
        unrounded, the instances' accesses summed and shared out (exact where a block
        is one element; otherwise short of rounding each instance's by under one
        access per instance)."""
        if isinstance(elements, Fraction):
            return elements * self.access_bits[tensor] / self.port_bits[tensor]
        return -(-elements * self.access_bits[tensor] // self.port_bits[tensor])


def level_widths(problem: Problem, arch: Architecture) -> tuple[LevelWidths, ...]:
    """Every level's LevelWidths for `problem`, outermost level first."""
    return tuple(_widths(problem, level) for level in arch.levels)


def _widths(problem: Problem, level: StorageLevel) -> LevelWidths:
    bits = [t.word_bits or level.word_bits for t in problem.tensors]
    in_words = all(b == level.word_bits for b in bits)
    if level.capacity is None:
        usable = None
    elif in_words:
        usable = int(level.capacity / level.multiple_buffering)
    else:
        usable = int(level.capacity * level.word_bits / level.multiple_buffering)
    port = level.block_size * level.word_bits
    reduced = [(b // gcd(b, port), port // gcd(b, port)) for b in bits]
    return LevelWidths(
        unit="words" if in_words else "bits",
        usable=usable,
        per_element=tuple(1 if in_words else b for b in bits),
        access_bits=tuple(n for n, _ in reduced),
        port_bits=tuple(d for _, d in reduced),
        words_per_element=tuple(b / level.word_bits for b in bits),
    )
