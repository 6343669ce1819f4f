"""Readers that turn YAML specs (native or Timeloop) into the plain typed data."""
