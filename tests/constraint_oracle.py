"""An independent reading of the constraint semantics (mapper/constraints.py docstring)
on plain `Mapping` objects, and brute-force enumerations of small mapspaces. It shares
no code with mapper.mapspace: the tests compare the two."""

from __future__ import annotations

import itertools
from collections import deque
from math import prod

from mapper.architecture import Architecture, ComputeUnit, StorageLevel
from mapper.constraints import Constraints, Factor
from mapper.mapping import LevelMapping, Loop, Mapping
from mapper.problem import Problem, Tensor


def chain(capacities: list[int | None], fanouts: list[tuple[int, int]], keeps: list | None = None) -> Architecture:
    """Levels outermost first with these capacities (words) and fan-outs below them."""
    levels, mx, my = [], 1, 1
    for i, (capacity, (fx, fy)) in enumerate(zip(capacities, fanouts)):
        keep = None if keeps is None else keeps[i]
        levels.append(StorageLevel(f"L{i}", mx * my, mx, my, capacity, read_energy=10.0 / (i + 1),
                                   write_energy=10.0 / (i + 1), network_energy=0.5, keeps=keep))
        mx, my = mx * fx, my * fy
    return Architecture("chain", tuple(levels), ComputeUnit("MAC", mx * my, mx, my, 1.0))


def conv1d(K: int, R: int, P: int) -> Problem:
    """Timeloop's conv1d+oc: Weights[K,R], Inputs[R+P], Outputs[K,P]."""
    return Problem("conv1d", ("K", "R", "P"), {"K": K, "R": R, "P": P}, (
        Tensor("Weights", (((1, "K"),), ((1, "R"),))),
        Tensor("Inputs", (((1, "R"), (1, "P")),)),
        Tensor("Outputs", (((1, "K"),), ((1, "P"),)), read_write=True)))


def matmul(M: int, N: int, K: int) -> Problem:
    return Problem("mm", ("M", "N", "K"), {"M": M, "N": N, "K": K}, (
        Tensor("Inputs", (((1, "M"),), ((1, "K"),))),
        Tensor("Weights", (((1, "K"),), ((1, "N"),))),
        Tensor("Outputs", (((1, "M"),), ((1, "N"),)), read_write=True)))


# ---------------------------------------------------------------------------
# The semantics, on one mapping


def factors_of(lm: LevelMapping, dim: str) -> tuple[int, int, int]:
    """(temporal, X, Y) factor of `dim` at one level."""
    t = prod(l.factor for l in lm.temporal if l.dim == dim)
    x = prod(l.factor for l in lm.spatial if l.dim == dim and l.spatial == "X")
    y = prod(l.factor for l in lm.spatial if l.dim == dim and l.spatial == "Y")
    return t, x, y


def within(f: Factor, value: int) -> bool:
    if f.exact is not None:
        return value == f.exact
    return f.min <= value and (f.max is None or value <= f.max)


def dimension_ok(c: Constraints, arch: Architecture, dim: str, t: list[int], x: list[int], y: list[int]) -> bool:
    """One dimension's factors at every level against the factor and axis constraints."""
    for l, level in enumerate(arch.levels):
        lc = c.level(level.name)
        for table, value in ((lc.temporal, t[l]), (lc.spatial_x, x[l]), (lc.spatial_y, y[l]),
                             (lc.spatial, x[l] * y[l])):
            if dim in table and not within(table[dim], value):
                return False
        if (lc.x_dims is not None and dim not in lc.x_dims and x[l] > 1) or \
                (lc.y_dims is not None and dim not in lc.y_dims and y[l] > 1):
            return False
    return True


def factor_problems(c: Constraints, problem: Problem, arch: Architecture, mapping: Mapping) -> list[str]:
    found = []
    for dim in problem.dims:
        per_level = [factors_of(lm, dim) for lm in mapping.levels]
        t, x, y = ([f[i] for f in per_level] for i in range(3))
        if prod(t) * prod(x) * prod(y) != problem.bounds[dim]:
            found.append(f"{dim} does not multiply to its bound")
        if not dimension_ok(c, arch, dim, t, x, y):
            found.append(f"{dim} breaks a factor constraint")
    used = prod(l.factor for lm in mapping.levels for l in lm.spatial)
    if c.min_utilization is not None and used < c.min_utilization * arch.compute.instances - 1e-9:
        found.append("utilization")
    return found


def order_ok(c: Constraints, arch: Architecture, l: int, live: list[str]) -> bool:
    """`live`: the loops of level l with factor > 1, outermost first; the innermost
    level's order is free when it feeds the MACs directly."""
    if l == len(arch.levels) - 1 and arch.fanout(l) == (1, 1):
        return True
    lc = c.level(arch.levels[l].name)
    inner = [d for d in lc.innermost if d in live]
    outer = [d for d in lc.outermost if d in live]
    return live[len(live) - len(inner):] == inner and live[:len(outer)] == outer


def keep_ok(c: Constraints, problem: Problem, arch: Architecture, l: int, keep: frozenset[str]) -> bool:
    level = arch.levels[l]
    lc = c.level(level.name)
    if l == 0:
        return keep == frozenset(t.name for t in problem.tensors)
    return (lc.keep <= keep and not (lc.bypass & keep)
            and (level.keeps is None or keep <= level.keeps))


def problems(c: Constraints, problem: Problem, arch: Architecture, mapping: Mapping) -> list[str]:
    """Every way `mapping` breaks the (resolved) constraints `c`."""
    found = factor_problems(c, problem, arch, mapping)
    for l, (level, lm) in enumerate(zip(arch.levels, mapping.levels)):
        if not order_ok(c, arch, l, [loop.dim for loop in lm.temporal if loop.factor > 1]):
            found.append(f"loop order at {level.name}")
        if not keep_ok(c, problem, arch, l, lm.keep):
            found.append(f"keep at {level.name}")
    return found


# ---------------------------------------------------------------------------
# Brute force


def ordered_factorizations(n: int, parts: int) -> list[tuple[int, ...]]:
    if parts == 1:
        return [(n,)]
    return [(f, *rest) for f in range(1, n + 1) if n % f == 0 for rest in ordered_factorizations(n // f, parts - 1)]


def dimension_options(c: Constraints, problem: Problem, arch: Architecture, dim: str) -> list[tuple]:
    """Every (temporal, X, Y) split of one dimension over the levels within the axis
    widths and its own constraints."""
    L = len(arch.levels)
    options = []
    for combo in ordered_factorizations(problem.bounds[dim], 3 * L):
        t, x, y = list(combo[:L]), list(combo[L:2 * L]), list(combo[2 * L:])
        if any(x[l] > arch.fanout(l)[0] or y[l] > arch.fanout(l)[1] for l in range(L)):
            continue
        if dimension_ok(c, arch, dim, t, x, y):
            options.append((tuple(t), tuple(x), tuple(y)))
    return options


def all_factorizations(c: Constraints, problem: Problem, arch: Architecture) -> list[dict[str, tuple]]:
    """Every split of every dimension allowed by the factor constraints, the fan-outs
    and the minimum utilization."""
    per_dim = [dimension_options(c, problem, arch, d) for d in problem.dims]
    found = []
    for choice in itertools.product(*per_dim):
        fits = all(prod(o[1][l] for o in choice) <= arch.fanout(l)[0] and
                   prod(o[2][l] for o in choice) <= arch.fanout(l)[1] for l in range(len(arch.levels)))
        used = prod(prod(o[1]) * prod(o[2]) for o in choice)
        if fits and (c.min_utilization is None or used >= c.min_utilization * arch.compute.instances - 1e-9):
            found.append(dict(zip(problem.dims, choice)))
    return found


def to_mapping(problem: Problem, arch: Architecture, split: dict[str, tuple], keep: list[frozenset[str]],
               orders: list[list[str]] | None = None) -> Mapping:
    levels = []
    for l in range(len(arch.levels)):
        order = orders[l] if orders else list(problem.dims)
        temporal = tuple(Loop(d, split[d][0][l]) for d in order if split[d][0][l] > 1)
        spatial = tuple(Loop(d, split[d][2][l], "Y") for d in problem.dims if split[d][2][l] > 1)
        spatial += tuple(Loop(d, split[d][1][l], "X") for d in problem.dims if split[d][1][l] > 1)
        levels.append(LevelMapping(temporal, spatial, keep[l]))
    return Mapping(tuple(levels))


def forced_unit(c: Constraints, problem: Problem, arch: Architecture, l: int, dim: str, slot: str) -> bool:
    """The factor of `dim` in `slot` ("t", "x" or "y") at level l is 1 by the bound,
    the fan-out or an exact / maximum constraint of 1."""
    lc = c.level(arch.levels[l].name)
    if problem.bounds[dim] == 1:
        return True
    if slot == "x" and (arch.fanout(l)[0] == 1 or (lc.x_dims is not None and dim not in lc.x_dims)):
        return True
    if slot == "y" and (arch.fanout(l)[1] == 1 or (lc.y_dims is not None and dim not in lc.y_dims)):
        return True
    tables = {"t": [lc.temporal], "x": [lc.spatial_x, lc.spatial], "y": [lc.spatial_y, lc.spatial]}[slot]
    return any(dim in table and (table[dim].exact == 1 or table[dim].max == 1) for table in tables)


def commutes(c: Constraints, problem: Problem, arch: Architecture, l: int, a: str, b: str) -> bool:
    """The documented swap rule: every tensor is indexed by neither loop, or by both
    through ranks of their own with no sliding window at this level."""
    def may_grow(dim: str) -> bool:
        return not all(forced_unit(c, problem, arch, k, dim, s) for k in range(l, len(arch.levels)) for s in "txy")

    for tensor in problem.tensors:
        ranks = [[d for coef, d in rank if coef and may_grow(d)] for rank in tensor.ranks]
        uses = [any(dim in r for r in ranks) for dim in (a, b)]
        alone = [all(len(r) == 1 for r in ranks if dim in r) for dim in (a, b)]
        if any(uses) and not (all(uses) and all(alone)):
            return False
    return True


def order_class(c: Constraints, problem: Problem, arch: Architecture, l: int, live: tuple[str, ...]) -> frozenset:
    """Every order of the same loops reachable by swapping adjacent commuting loops."""
    if l == len(arch.levels) - 1 and arch.fanout(l) == (1, 1):
        return frozenset(itertools.permutations(live))  # no count depends on it
    seen, queue = {live}, deque([live])
    while queue:
        order = queue.popleft()
        for k in range(len(order) - 1):
            if commutes(c, problem, arch, l, order[k], order[k + 1]):
                swapped = order[:k] + (order[k + 1], order[k]) + order[k + 2:]
                if swapped not in seen:
                    seen.add(swapped)
                    queue.append(swapped)
    return frozenset(seen)


def permutation_count(c: Constraints, problem: Problem, arch: Architecture, l: int) -> int:
    """Classes of orders of the loops that can be longer than 1 that contain an order
    meeting the order constraints."""
    free = tuple(d for d in problem.dims if not forced_unit(c, problem, arch, l, d, "t"))
    classes = {order_class(c, problem, arch, l, order) for order in itertools.permutations(free)}
    return sum(any(order_ok(c, arch, l, list(o)) for o in cls) for cls in classes)


def tile_words(problem: Problem, extents: dict[str, int]) -> dict[str, int]:
    return {t.name: problem.tensor_size(t, extents) for t in problem.tensors}


def keep_table_count(c: Constraints, problem: Problem, arch: Architecture) -> int:
    """Keep tables within the rules whose smallest tiles (per dimension, the least
    extent its own constraints allow) fit every level."""
    L = len(arch.levels)
    options = {d: dimension_options(c, problem, arch, d) for d in problem.dims}
    least = [{d: min(prod(o[0][k] * o[1][k] * o[2][k] for k in range(l, L)) for o in options[d])
              for d in problem.dims} for l in range(L)]
    names = [t.name for t in problem.tensors]
    count = 1
    for l, level in enumerate(arch.levels):
        words = tile_words(problem, least[l])
        rows = 0
        for bits in itertools.product((False, True), repeat=len(names)):
            keep = frozenset(n for n, b in zip(names, bits) if b)
            usable = None if level.capacity is None else int(level.capacity / level.multiple_buffering)
            if keep_ok(c, problem, arch, l, keep) and (usable is None or sum(words[n] for n in keep) <= usable):
                rows += 1
        count *= rows
    return count
