"""Constraints on the mapspace, and the named dataflows (presets) built from them.

Plain typed data: a user's YAML (native or Timeloop's `constraints: targets:`) is read
into these by `mapper.specs.constraints`; the mapspace (`mapper.mapspace`) honours
them. A constraint never changes what a mapping costs, only which mappings the search
may visit: it encodes what the hardware can do (a PE array that unrolls only two
dimensions, a scratchpad that holds only weights) or a dataflow the designer wants.

Per storage level (by name), a `LevelConstraints` may bound:

- the temporal factor of each dimension at that level (`temporal`),
- the spatial factors of each dimension on the fan-out below that level, along X
  (`spatial_x`), along Y (`spatial_y`) or their product (`spatial`), and which
  dimensions may be unrolled along X and along Y at all (`x_dims`, `y_dims`),
- the order of the level's temporal loops: `innermost` dimensions, written outermost
  first, must be the innermost loops of the level in that order; `outermost` ones the
  outermost. Loops whose factor is 1 do not count (they do nothing), so `innermost:
  (C, M)` means "ignoring unit loops, the level's loops end with C then M (those of
  them that are not 1)"; dimensions not listed may be in any order between. Order
  constraints on the innermost level are ignored when it feeds its MACs without a
  fan-out: no count depends on the order there (Timeloop ignores them too),
- which tensors the level must keep and which it must bypass.

`Constraints.min_utilization` bounds the fraction of the MACs that the spatial
unrolling keeps busy (used MACs / all MACs).

A factor bound (`Factor`) is exact (`M=4`), a minimum (`P>=2`), a maximum
(`M<=8`), both, or Timeloop's `M=0`: "the rest", all of the dimension that the exact
factors at the other levels leave (Timeloop's parser reads 0 as the full bound; the
two agree whenever no other level fixes a factor of that dimension).

# Presets

`preset(name, problem, arch)` builds the constraints of a named dataflow (the
taxonomy of Sze, Chen, Yang, Emer, "Efficient Processing of Deep Neural Networks",
2020, ch. 5). They are defined relative to the architecture, so they apply to any of
them: the *array* is every level with a fan-out below it; the *PE-local* levels are
the ones below the outermost fan-out (all but the outermost level when nothing fans
out); for a stationary tensor S, the *stationary level* is the innermost PE-local
level that may keep S (by the architecture's `keeps` and any user constraint that
bypasses S there). Each preset leaves every other choice to the search. For a
convolution (Weights[M,C,R,S], Inputs[N,C,P+R,Q+S], Outputs[N,M,P,Q]):

weight-stationary (S = Weights; NVDLA, TPU): each PE holds its own weights and uses
each one for every output it contributes to before the next arrives::

    DRAM, global buffer ...: any loops
      spatial-for over dimensions of Weights only (C, M, R, S)    # fan-outs above the
        PE-local levels above the stationary level: any loops    #   stationary level:
          stationary level (keeps Weights) and below:             #   different weights
            for over dimensions without Weights only (N, P, Q)    # the weight stays put
              MAC

output-stationary (S = Outputs; ShiDianNao): each PE accumulates its own outputs in
place, never sending a partial sum out before it is complete at that level::

    any loops above
      spatial-for over dimensions of Outputs only (N, M, P, Q)    # above it: no reduction
        stationary level (keeps Outputs) and below:
          for over dimensions without Outputs only (C, R, S)      # the psum stays put
            MAC

input-stationary (S = Inputs): each PE holds input activations and applies every
filter to them in place::

    any loops above
      spatial-for over dimensions of Inputs only (N, C, P, Q, R, S)
        stationary level (keeps Inputs) and below:
          for over dimensions without Inputs only (M)             # the input stays put
            MAC

row-stationary (Eyeriss, Chen et al. ISCA 2016; the constraints of Timeloop's
eyeriss_like design): each PE convolves one filter row with one input row. The
sliding-window pair of the last Inputs rank (Q with S here) is unrolled over the
array, output rows (Q) along X and filter rows (S) along Y; the other pair's filter
dimension (R) runs inside the PE with the channels::

    any loops above
      spatial-for X over Q and output channels M                  # PE columns: output rows
      spatial-for Y over S, input channels C and M                # PE rows: filter rows
        PE-local levels: for over R, C and M only                 # 1-D convolution of a row
          each tensor kept at the innermost PE-local level that   # the filter row, the input
          may keep it                                             #   row and the psum row stay
          MAC

  It needs a convolution: an Inputs tensor with at least one sliding-window rank
  (a rank that sums an output dimension and a filter dimension), and PEs that may
  keep every tensor. Without the keeps a search could return an "RS" mapping whose
  psum scratchpad keeps nothing, every partial sum crossing the array: no longer the
  dataflow the name promises.

no-local-reuse (DianNao): the PEs keep nothing; every operand comes from the level
above the array and partial sums are reduced across the array::

    any loops above (the global buffer holds everything)
      spatial-for over any dimensions
        PE-local levels: keep nothing, no loops
          MAC
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .architecture import Architecture
from .problem import Problem, Tensor

PRESETS = ("weight-stationary", "output-stationary", "input-stationary", "row-stationary", "no-local-reuse")


@dataclass(frozen=True)
class Factor:
    """Bounds on one loop factor: exactly `exact`, or between `min` and `max`
    (inclusive; `max=None` means up to the bound); `rest` is Timeloop's `=0` (see the
    module docstring)."""

    exact: int | None = None
    min: int = 1
    max: int | None = None
    rest: bool = False

    def __str__(self) -> str:
        if self.rest:
            return "=0"
        if self.exact is not None:
            return f"={self.exact}"
        parts = ([f">={self.min}"] if self.min > 1 else []) + ([f"<={self.max}"] if self.max is not None else [])
        return " ".join(parts) or ">=1"


ONE = Factor(exact=1)


@dataclass(frozen=True)
class LevelConstraints:
    """What a mapping may do at one storage level (module docstring). Dimension and
    tensor names are those of the problem."""

    temporal: Mapping[str, Factor] = field(default_factory=dict)
    spatial: Mapping[str, Factor] = field(default_factory=dict)  # X factor x Y factor
    spatial_x: Mapping[str, Factor] = field(default_factory=dict)
    spatial_y: Mapping[str, Factor] = field(default_factory=dict)
    x_dims: frozenset[str] | None = None  # dims that may be unrolled along X; None = any
    y_dims: frozenset[str] | None = None
    innermost: tuple[str, ...] = ()  # outermost first
    outermost: tuple[str, ...] = ()  # outermost first
    spatial_order: tuple[str, ...] = ()  # the fan-out's spatial loops, outermost first
    keep: frozenset[str] = frozenset()
    bypass: frozenset[str] = frozenset()

    def refined_by(self, other: LevelConstraints) -> LevelConstraints:
        """These constraints with `other`'s on top: where both say something about the
        same dimension, tensor or order, `other` wins."""
        return LevelConstraints(
            temporal={**self.temporal, **other.temporal},
            spatial={**self.spatial, **other.spatial},
            spatial_x={**self.spatial_x, **other.spatial_x},
            spatial_y={**self.spatial_y, **other.spatial_y},
            x_dims=self.x_dims if other.x_dims is None else other.x_dims,
            y_dims=self.y_dims if other.y_dims is None else other.y_dims,
            innermost=other.innermost or self.innermost,
            outermost=other.outermost or self.outermost,
            spatial_order=other.spatial_order or self.spatial_order,
            keep=(self.keep - other.bypass) | other.keep,
            bypass=(self.bypass - other.keep) | other.bypass,
        )


NO_CONSTRAINTS = LevelConstraints()


@dataclass(frozen=True)
class Constraints:
    """Constraints per storage level name, a minimum PE utilization (used MACs / all
    MACs) and optionally a named preset that the per-level entries refine."""

    levels: Mapping[str, LevelConstraints] = field(default_factory=dict)
    min_utilization: float | None = None
    preset: str | None = None

    def level(self, name: str) -> LevelConstraints:
        return self.levels.get(name, NO_CONSTRAINTS)

    def refined_by(self, other: Constraints) -> Constraints:
        """`other` on top of these (see `LevelConstraints.refined_by`)."""
        names = list(dict.fromkeys([*self.levels, *other.levels]))
        return Constraints(
            {n: self.level(n).refined_by(other.level(n)) for n in names},
            self.min_utilization if other.min_utilization is None else other.min_utilization,
            other.preset or self.preset,
        )

    def resolve(self, problem: Problem, arch: Architecture) -> Constraints:
        """The same constraints with the preset, if any, expanded for this problem and
        architecture (a preset depends on both) and refined by the per-level entries."""
        if self.preset is None:
            return self
        return preset(self.preset, problem, arch, self).refined_by(replace(self, preset=None))


# ---------------------------------------------------------------------------
# Presets


def preset(name: str, problem: Problem, arch: Architecture, user: Constraints | None = None) -> Constraints:
    """The constraints of a named dataflow on this problem and architecture (module
    docstring); `user`'s bypasses narrow where the stationary tensor may stay. Raises
    ValueError for an unknown name, or when the problem or the architecture lacks what
    the dataflow needs."""
    user = user or Constraints()
    builders = {
        "weight-stationary": lambda: _stationary(problem, arch, _named_tensor(problem, "Weights", name), user),
        "output-stationary": lambda: _stationary(problem, arch, problem.output, user),
        "input-stationary": lambda: _stationary(problem, arch, _named_tensor(problem, "Inputs", name), user),
        "row-stationary": lambda: _row_stationary(problem, arch, user),
        "no-local-reuse": lambda: _no_local_reuse(problem, arch),
    }
    if name not in builders:
        raise ValueError(f"unknown dataflow preset {name!r}; the presets are: " + ", ".join(PRESETS))
    return builders[name]()


def array_levels(arch: Architecture) -> list[int]:
    """Levels with a fan-out below them: together, the PE array."""
    return [i for i in range(len(arch.levels)) if arch.fanout(i) != (1, 1)]


def pe_local_levels(arch: Architecture) -> list[int]:
    """Levels inside the array: below the outermost fan-out (below the outermost
    level when nothing fans out)."""
    array = array_levels(arch)
    return list(range((array[0] if array else 0) + 1, len(arch.levels)))


def _named_tensor(problem: Problem, tensor: str, preset_name: str) -> Tensor:
    names = [t.name for t in problem.tensors]
    if tensor not in names:
        raise ValueError(f"the {preset_name} preset keeps the tensor {tensor} in the PEs, but problem "
                         f"{problem.name!r} has only " + ", ".join(names))
    return problem.tensor(tensor)


def _may_keep(arch: Architecture, level: int, tensor: str, user: Constraints) -> bool:
    keeps = arch.levels[level].keeps
    return (keeps is None or tensor in keeps) and tensor not in user.level(arch.levels[level].name).bypass


def _stationary(problem: Problem, arch: Architecture, tensor: Tensor, user: Constraints) -> Constraints:
    """Above the stationary level, spatial loops only over the tensor's dimensions;
    at it and below, temporal loops only over the others (module docstring)."""
    local = [i for i in pe_local_levels(arch) if _may_keep(arch, i, tensor.name, user)]
    if not local:
        names = ", ".join(arch.levels[i].name for i in pe_local_levels(arch)) or "none"
        raise ValueError(f"a {tensor.name}-stationary dataflow needs a level inside the PE that may keep "
                         f"{tensor.name}; architecture {arch.name!r} has none (PE-local levels: {names})")
    stationary = local[-1]
    relevant, other = _split_dims(problem, tensor)
    levels: dict[str, LevelConstraints] = {}
    for i in array_levels(arch):
        if i < stationary:
            levels[arch.levels[i].name] = LevelConstraints(spatial={d: ONE for d in other})
    for i in range(stationary, len(arch.levels)):
        keep = frozenset({tensor.name}) if i == stationary else frozenset()
        levels[arch.levels[i].name] = LevelConstraints(temporal={d: ONE for d in relevant}, keep=keep)
    return Constraints(levels)


def _split_dims(problem: Problem, tensor: Tensor) -> tuple[list[str], list[str]]:
    """The dimensions that index `tensor`, and the others."""
    return [d for d in problem.dims if d in tensor.dims], [d for d in problem.dims if d not in tensor.dims]


def _row_stationary(problem: Problem, arch: Architecture, user: Constraints) -> Constraints:
    """Eyeriss' row-stationary dataflow (module docstring)."""
    inputs = _named_tensor(problem, "Inputs", "row-stationary")
    weights = _named_tensor(problem, "Weights", "row-stationary")
    output = problem.output
    pairs = []  # (output dim, filter dim) of each sliding-window rank of Inputs
    for rank in inputs.ranks:
        dims = [d for c, d in rank if c]
        outs = [d for d in dims if d in output.dims and d not in weights.dims]
        filters = [d for d in dims if d in weights.dims and d not in output.dims]
        if len(dims) == 2 and len(outs) == 1 and len(filters) == 1:
            pairs.append((outs[0], filters[0]))
    if not pairs:
        raise ValueError(f"row-stationary needs a convolution, an Inputs rank that sums an output and a filter "
                         f"dimension (P+R); problem {problem.name!r} has none")
    array_out, array_filter = pairs[-1]
    pe_filter = [pairs[0][1]] if len(pairs) > 1 else []
    channels = [d for d in problem.dims if d in weights.dims and d in inputs.dims and d not in output.dims
                and d != array_filter and d not in pe_filter]
    out_channels = [d for d in problem.dims if d in weights.dims and d in output.dims and d not in inputs.dims]
    levels: dict[str, LevelConstraints] = {}
    for i in array_levels(arch):
        levels[arch.levels[i].name] = LevelConstraints(
            x_dims=frozenset([array_out, *out_channels]),
            y_dims=frozenset([array_filter, *channels, *out_channels]))
    in_pe = set(pe_filter + channels + out_channels)
    kept_at = {}
    for tensor in problem.tensors:  # each PE holds its rows of all of them: the innermost PE-local level that may
        local = [i for i in pe_local_levels(arch) if _may_keep(arch, i, tensor.name, user)]
        if not local:
            raise ValueError(f"row-stationary keeps a row of every tensor in each PE; architecture {arch.name!r} "
                             f"has no level inside the PE that may keep {tensor.name}")
        kept_at.setdefault(local[-1], set()).add(tensor.name)
    for i in pe_local_levels(arch):  # a fan-out may sit inside the PE too: keep both
        name = arch.levels[i].name
        local = LevelConstraints(temporal={d: ONE for d in problem.dims if d not in in_pe},
                                 keep=frozenset(kept_at.get(i, ())))
        levels[name] = levels[name].refined_by(local) if name in levels else local
    return Constraints(levels)


def _no_local_reuse(problem: Problem, arch: Architecture) -> Constraints:
    """PE-local levels keep nothing and run no loops (module docstring)."""
    everything = frozenset(t.name for t in problem.tensors)
    return Constraints({arch.levels[i].name: LevelConstraints(temporal={d: ONE for d in problem.dims},
                                                              bypass=everything)
                        for i in pe_local_levels(arch)})
