"""The analytical model: Timeloop's default semantics, scalar reference and vectorized."""
