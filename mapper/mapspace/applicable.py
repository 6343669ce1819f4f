"""Constraints against the layer and architecture they are applied to: a constraint
that names a level, dimension or tensor the layer or architecture lacks is a spec
mistake (a preset written for convs names C, which a matmul lacks), found before any
search starts."""

from __future__ import annotations

from collections.abc import Sequence

from ..architecture import Architecture
from ..constraints import Constraints, LevelConstraints
from ..problem import Problem
from ..specs.errors import SpecError, did_you_mean


def layer_constraints(constraints: Constraints | None, problem: Problem, arch: Architecture) -> Constraints | None:
    """The constraints of one layer of a workload: the preset, if any, expanded for it,
    and every dimension and tensor they name checked against it, so that a network
    learns before searching which layers the constraints cannot apply to (one written
    for a conv names C, which a matmul lacks). Raises SpecError (no file: the caller
    knows which) saying what does not apply."""
    if constraints is None:
        return None
    try:
        resolved = constraints.resolve(problem, arch)
    except ValueError as e:
        raise SpecError(None, "dataflow", repr(constraints.preset), f"a dataflow that layer {problem.name!r} on "
                        f"{arch.name!r} supports", str(e)) from None
    check_names(resolved, problem, arch)
    return resolved


def not_applicable_reason(error: SpecError) -> str:
    """`layer_constraints`' error as a reason in a summary: the key and what it names."""
    return f"{error.key_path} names {error.found}, not {error.allowed}" + (
        f" ({error.suggestion})" if error.suggestion else "")


def check_names(constraints: Constraints, problem: Problem, arch: Architecture) -> None:
    """Constraints written for another problem or architecture are a spec mistake."""
    levels = [lv.name for lv in arch.levels]
    tensors = [t.name for t in problem.tensors]
    for name, lc in constraints.levels.items():
        path = f"constraints.levels.{name}"
        if name not in levels:
            raise SpecError(None, path, f"level {name!r}", f"a level of architecture {arch.name!r}: "
                            + ", ".join(levels), did_you_mean(name, levels))
        for field_name, dims in _named_dims(lc):
            for dim in dims:
                if dim not in problem.dims:
                    raise SpecError(None, f"{path}.{field_name}", f"dimension {dim!r}", f"a dimension of problem "
                                    f"{problem.name!r}: " + ", ".join(problem.dims), did_you_mean(dim, problem.dims))
        for field_name in ("keep", "bypass"):
            for tensor in sorted(getattr(lc, field_name)):
                if tensor not in tensors:
                    raise SpecError(None, f"{path}.{field_name}", f"tensor {tensor!r}", f"a tensor of problem "
                                    f"{problem.name!r}: " + ", ".join(tensors), did_you_mean(tensor, tensors))


def _named_dims(lc: LevelConstraints) -> list[tuple[str, Sequence[str]]]:
    return [("temporal", list(lc.temporal)), ("spatial", list(lc.spatial)), ("spatial_x", list(lc.spatial_x)),
            ("spatial_y", list(lc.spatial_y)), ("x_dims", sorted(lc.x_dims or ())),
            ("y_dims", sorted(lc.y_dims or ())), ("innermost", lc.innermost), ("outermost", lc.outermost),
            ("spatial_order", lc.spatial_order)]
