"""The mapspace of one layer on one architecture (space.py): every mapping the
constraints allow, its sub-space sizes, sampling, enumeration, and the reasons when
there is none; its parts in factors.py, orders.py, spatial.py, capacity.py,
keeps.py, sampling.py and applicable.py."""

from .applicable import layer_constraints, not_applicable_reason
from .factors import TemporalFactors
from .space import Mapspace, NoValidMapping, Structure

__all__ = ["Mapspace", "NoValidMapping", "Structure", "TemporalFactors", "layer_constraints", "not_applicable_reason"]
