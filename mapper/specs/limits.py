"""Sizes beyond which a spec is refused rather than loaded: past them a mistake (an
extra zero, an alias bomb) would make the loader or the model run for hours."""

# More PEs than any chip has; the model's search for link transfers walks each mesh.
MAX_INSTANCES = 2**20

# A YAML tree, aliases expanded; the validators walk it as if expanded.
MAX_EXPANDED_NODES = 1_000_000
