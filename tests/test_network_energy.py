"""Array (network) energy, counted by hand on a 4-PE matrix-vector product.

toy-3level: DRAM -> a buffer -> 4 PEs in a row (a one-word register and a MAC each),
2 units of `network_energy` per word crossing the row. Outputs[n] += Inputs[k] x
Weights[k, n] for N = 4 outputs (one per PE) and K = 8: 32 MACs, the buffer stepping
k. A word crosses the array for every delivery to a PE (a multicast input once per
PE that receives it) and every partial-sum update a PE sends back; what a PE keeps
in its register crosses once, what it bypasses crosses for every MAC that uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mapper import api
from mapper.cli import main
from mapper.model.batch import batch_from_mappings
from mapper.model.reference import evaluate_reference
from mapper.model.vectorized import evaluate_batch
from mapper.report import counts_table
from mapper.specs.load import load_specs
from mapper.specs.files import shipped_specs_dir

SHIPPED = shipped_specs_dir()

ROOT = Path(__file__).resolve().parents[1]
MATRIX_VECTOR = """
problem:
  linear: {{name: mv, M: 1, N: 4, K: 8}}
mapping:
  - {{level: DRAM, keep: [Weights, Inputs, Outputs]}}
  - {{level: Buffer, temporal: K8, spatial: N4X, keep: [Weights, Inputs, Outputs]}}
  - {{level: Register, keep: [{register_keeps}]}}
"""


def array_words(tmp_path: Path, register_keeps: str) -> dict[str, float]:
    spec = tmp_path / "mv.yaml"
    spec.write_text(MATRIX_VECTOR.format(register_keeps=register_keeps))
    specs = load_specs([ROOT / "specs/arch/toy-3level.yaml", spec])
    problem, arch, mapping = specs.problems[0], specs.architecture, specs.mapping
    evaluation = evaluate_reference(problem, arch, mapping)
    buffer = evaluation.levels[1]
    assert buffer.network_energy_pJ == 2 * sum(buffer.network_words.values())
    vectorized = evaluate_batch(problem, arch, batch_from_mappings(problem, arch, [mapping]))
    assert vectorized.energy_pJ[0] == pytest.approx(evaluation.energy_pJ, rel=1e-12)
    return buffer.network_words


def test_operands_a_pe_does_not_keep_cross_the_array_for_every_mac(tmp_path: Path) -> None:
    words = array_words(tmp_path, register_keeps="Weights")
    assert words["Weights"] == 32  # each PE its own weight at each of the 8 steps
    assert words["Inputs"] == 32  # 8 inputs, each multicast to 4 PEs
    assert words["Outputs"] == 32  # every MAC's partial sum goes back to the buffer


def test_a_partial_sum_kept_in_the_pe_crosses_once(tmp_path: Path) -> None:
    words = array_words(tmp_path, register_keeps="Outputs")
    assert words["Outputs"] == 4  # one finished sum per PE
    assert words["Weights"] == 32 and words["Inputs"] == 32


def test_the_printed_table_and_the_json_add_up_to_the_total_network_included(tmp_path: Path) -> None:
    """The toy design prices its Buffer's network: its row and JSON field are part of the total."""
    files = [str(SHIPPED / "arch/toy-3level.yaml"), str(SHIPPED / "workloads/tiny-conv.yaml"),
             str(SHIPPED / "mappings/toy-3level-tiny-conv.yaml")]
    assert main(["evaluate", *files, "--json", str(tmp_path / "ev.json")]) == 0
    stats = json.loads((tmp_path / "ev.json").read_text())
    parts = sum(t["energy_pJ"] for lv in stats["levels"] for t in lv["tensors"].values())
    networks = sum(lv["network_energy_pJ"] for lv in stats["levels"])
    assert networks > 0 and parts + networks + stats["compute_energy_pJ"] == pytest.approx(stats["energy_pJ"])
    loaded = api.load(*files)
    table = counts_table(api.evaluate(loaded.problems[0], loaded.architecture, loaded.mapping), "MAC")
    rows = [line.split() for line in table.splitlines()[2:]]
    assert sum(float(row[-1]) for row in rows) == pytest.approx(stats["energy_pJ"])
    assert ["Buffer", "network"] in [row[:2] for row in rows]
