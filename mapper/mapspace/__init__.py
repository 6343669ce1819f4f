"""The mapspace of one layer on one architecture (space.py): every mapping the
constraints allow, its sub-space sizes, sampling, enumeration, and the reasons when
there is none. The tables of one dimension's factors are factors.py's; the canonical
loop orders, orders.py's."""

from .space import Mapspace, NoValidMapping, Structure, layer_constraints, not_applicable_reason

__all__ = ["Mapspace", "NoValidMapping", "Structure", "layer_constraints", "not_applicable_reason"]
