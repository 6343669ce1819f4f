"""Sizes beyond which a spec is refused rather than loaded: past them a mistake (an
extra zero, an alias bomb, a path to the wrong file) would make the loader or the
model run for hours, exhaust memory, or overflow the model's 64-bit counts."""

from __future__ import annotations

from ..architecture import StorageLevel
from ..problem import Problem

# Instances of a level or of the MACs: a 256 x 256 array (TPU v1's). The model's count
# of link transfers walks the instances a mapping uses, for every mapping it scores: a
# layer spread over 2**20 PEs took 0.7 s per mapping, and a search no answer in minutes.
MAX_INSTANCES = 2**16

# A YAML tree, aliases expanded; the validators walk it as if expanded.
MAX_EXPANDED_NODES = 1_000_000

# A spec file, in bytes: the largest shipped or Timeloop reference file is under 30 KB.
# Checked before the file is read, so a huge file (or a device such as /dev/zero) costs
# nothing.
MAX_FILE_BYTES = 16 * 2**20

# The loop bound of a dimension and the product of all of a layer's bounds (its MACs):
# the model counts accesses and cycles in signed 64-bit integers.
MAX_MACS = 2**62

# Storage levels of an architecture: real designs have up to about 8; the mapspace
# keeps a table per level and the search a parameter per level, tensor and fan-out.
MAX_LEVELS = 32

# One access (read, write, per-word network transfer, MAC) in the architecture's
# energy unit: a petajoule-scale access is a typo, and a limit keeps every total
# (counts up to 2**62 times this) far from float overflow.
MAX_ENERGY = 1e12

# A word, of a level or of a tensor's elements (the widest real ones have 64 bits), and
# a level's capacity and the port of one access in bits (2**62 bits: 512 PiB): where
# precisions differ, capacities, tiles and ports are counted in bits
# (mapper/precision.py), in 64-bit integers.
MAX_WORD_BITS = 1024
MAX_CAPACITY_BITS = 2**62

# A search's seed: numpy's and Optuna's generators take 32-bit unsigned seeds.
MAX_SEED = 2**32 - 1
# Independent searches of one layer (`--seeds`): each is a whole search, so the count
# multiplies the time (a --time limit holds for each).
MAX_SEEDS = 100

# The mapspace's tables of one dimension's temporal factorizations: (divisors of what
# is left of its bound)**2 x (levels + 2) 64-bit entries, at most 256 MiB. A bound
# below a billion has at most 1,344 divisors, which 8 levels keep well within it.
MAX_FACTOR_TABLE = 2**25

# Keep tables (a choice of kept tensors per level) that `mapper search --exhaustive`
# lists: 2**20 is 16 levels free to keep either of two tensors; the ordinary search
# checks tables level by level and has no such limit.
MAX_ENUMERATED_KEEP_TABLES = 2**20

LAYER_LIMIT = f"a layer of at most {MAX_MACS:.3g} (2**62) MACs and tensor elements: the model counts in 64 bits"


def problem_too_large(problem: Problem) -> str | None:
    """What makes a layer too large for 64-bit counts (its MACs, or a tensor's
    elements above MAX_MACS, or its bits where a tensor has a precision and tiles may
    be counted in bits), in words; None when it fits."""
    if problem.macs > MAX_MACS:
        return f"{problem.macs:.3g} MACs (the product of the bounds)"
    in_bits = any(t.word_bits for t in problem.tensors)
    for tensor in problem.tensors:
        elements = problem.tensor_size(tensor)
        if elements > MAX_MACS:
            return f"{elements:.3g} elements of {tensor.name}"
        bits = tensor.word_bits or MAX_WORD_BITS  # a tensor without one takes a level's word, at most this wide
        if in_bits and elements * bits > MAX_MACS:
            return f"{elements:.3g} elements of {tensor.name}, {elements * bits:.3g} bits at up to {bits} bits each"
    return None


def level_too_large(level: StorageLevel) -> tuple[str, str, str] | None:
    """(key, what was found, what is allowed) when a level's word or capacity is beyond
    the limits above; None when it fits."""
    if level.word_bits > MAX_WORD_BITS:
        return "word_bits", f"{level.word_bits} bits", f"at most {MAX_WORD_BITS} bits per word"
    if level.capacity is not None and level.capacity * level.word_bits > MAX_CAPACITY_BITS:
        return ("depth", f"{level.capacity:.3g} words of {level.word_bits} bits",
                "at most 2**62 bits (512 PiB); for a memory without a limit, size: unbounded (outermost level)")
    if level.block_size * level.word_bits > MAX_CAPACITY_BITS:  # an unbounded level's port, which no capacity bounds
        return ("block_size", f"{level.block_size * level.word_bits:.3g} bits per access ({level.block_size:.3g} "
                f"words of {level.word_bits} bits)", "at most 2**62 bits per access")
    return None
