"""mapper: find the best dataflow mapping of each DNN layer onto a spatial accelerator.

The pipeline, one module per stage and data flowing one way:
specs -> problem / architecture / mapping -> mapspace -> model -> search -> report / CLI.
"""

__version__ = "0.1.0"
