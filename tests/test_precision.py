"""Per-tensor precision (mapper/precision.py): an element of a tensor takes its own
bits at every level, so that capacities, accesses, bandwidth and network energy follow
bits, not words; tensors without one keep Timeloop's counts in words exactly (the
reference cases, tests/test_timeloop_reference.py). The random cases against the
brute-force simulator draw precisions too (tests/test_brute_force.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from mapper import api
from mapper.architecture import Architecture, ComputeUnit, StorageLevel
from mapper.constraints import Constraints, LevelConstraints
from mapper.mapping import LevelMapping, Loop, Mapping
from mapper.mapspace import Mapspace, NoValidMapping
from mapper.model.batch import batch_from_mappings
from mapper.model.capacity import violations
from mapper.model.reference import evaluate_reference
from mapper.model.vectorized import evaluate_batch, evaluate_mapping
from mapper.precision import level_widths
from mapper.problem import Problem, Tensor
from mapper.specs.errors import SpecError
from mapper.specs.load import load_specs
from mapper.specs.native import load_native
from mapper.specs.native.problem import parse_problem, parse_workload

ALL = frozenset({"Inputs", "Weights", "Outputs"})
DATA = Path(__file__).parent / "data"


def matvec(**bits: int) -> Problem:
    """Outputs[M] += Inputs[M, K] x Weights[K], with the given bits per tensor."""
    return Problem("matvec", ("M", "K"), {"M": 4, "K": 8}, (
        Tensor("Inputs", (((1, "M"),), ((1, "K"),)), word_bits=bits.get("Inputs")),
        Tensor("Weights", (((1, "K"),),), word_bits=bits.get("Weights")),
        Tensor("Outputs", (((1, "M"),),), read_write=True, word_bits=bits.get("Outputs"))))


INT8 = matvec(Inputs=8, Weights=8, Outputs=24)
WORDS = matvec()


def two_levels(buffer_words: int, read_bandwidth: float | None = None) -> Architecture:
    """DRAM with a 64-bit port (4 x 16-bit words) over a buffer of 16-bit words."""
    return Architecture("two", (
        StorageLevel("DRAM", word_bits=16, block_size=4, read_energy=100.0, write_energy=100.0),
        StorageLevel("Buffer", depth=buffer_words, word_bits=16, read_energy=1.0, write_energy=2.0,
                     read_bandwidth=read_bandwidth)), ComputeUnit("MAC", energy=0.5))


# The buffer holds the K row of one M at a time; the weights stay for every M.
MAPPING = Mapping((LevelMapping(temporal=(Loop("M", 4),), keep=ALL),
                   LevelMapping(temporal=(Loop("K", 8),), keep=ALL)))


def energies(problem: Problem, arch: Architecture, level: str) -> dict[str, float]:
    ev = evaluate_reference(problem, arch, MAPPING)
    return {name: t.energy_pJ for name, t in next(lv for lv in ev.levels if lv.name == level).tensors.items()}


def test_a_port_moves_as_many_elements_as_fit_its_bits() -> None:
    """At DRAM's 64-bit port: 32 Inputs of 8 bits are 4 accesses, 8 Weights one, the 4
    Outputs of 24 bits ceil(96 / 64) = 2; in 16-bit words 8, 2 and 1."""
    arch = two_levels(64)
    assert energies(INT8, arch, "DRAM") == {"Inputs": 400.0, "Weights": 100.0, "Outputs": 200.0}
    assert energies(WORDS, arch, "DRAM") == {"Inputs": 800.0, "Weights": 200.0, "Outputs": 100.0}


def test_precision_changes_energies_but_not_counts() -> None:
    arch = two_levels(64)
    mixed, words = evaluate_reference(INT8, arch, MAPPING), evaluate_reference(WORDS, arch, MAPPING)
    for a, b in zip(mixed.levels, words.levels):
        for name in a.tensors:
            counts = ("partition_size", "utilized_capacity", "reads", "fills", "updates")
            assert [getattr(a.tensors[name], c) for c in counts] == [getattr(b.tensors[name], c) for c in counts]
    # The buffer's port is one 16-bit word: it moves two 8-bit elements at once, and a
    # 24-bit one in 1.5 accesses (here every count is even).
    narrow, wide = mixed.levels[1].tensors, words.levels[1].tensors
    assert narrow["Inputs"].energy_pJ == wide["Inputs"].energy_pJ / 2
    assert narrow["Weights"].energy_pJ == wide["Weights"].energy_pJ / 2
    assert narrow["Outputs"].energy_pJ == wide["Outputs"].energy_pJ * 1.5


def test_both_models_agree_on_mixed_precisions() -> None:
    arch = two_levels(16, read_bandwidth=1.0)
    reference = evaluate_reference(INT8, arch, MAPPING)
    assert evaluate_mapping(INT8, arch, MAPPING) == reference
    scores = evaluate_batch(INT8, arch, batch_from_mappings(INT8, arch, [MAPPING]))
    assert scores.energy_pJ[0] == pytest.approx(reference.energy_pJ, rel=1e-12)
    assert scores.cycles[0] == reference.cycles and scores.valid[0]


def test_bandwidth_counts_an_element_as_its_share_of_a_word() -> None:
    """1 word/cycle at the buffer: what it reads per cycle, in 16-bit words, slows the MACs."""
    arch = two_levels(16, read_bandwidth=1.0)
    for problem in (INT8, WORDS):
        ev = evaluate_reference(problem, arch, MAPPING)
        buffer = ev.levels[1]
        words = sum(t.reads * (problem.tensor(name).word_bits or 16) / 16 for name, t in buffer.tensors.items())
        assert buffer.bandwidth_throttling == pytest.approx(min(1.0, 1.0 / (words / 32)))
    assert evaluate_reference(INT8, arch, MAPPING).cycles < evaluate_reference(WORDS, arch, MAPPING).cycles


def test_network_energy_is_per_word_of_the_level() -> None:
    arch = Architecture("net", (StorageLevel("DRAM", word_bits=16, network_energy=1.0, mesh_x=1),
                                StorageLevel("PE", instances=4, mesh_x=4, word_bits=16)),
                        ComputeUnit("MAC", 4, 4, 1))
    mapping = Mapping((LevelMapping(spatial=(Loop("M", 4, "X"),), keep=ALL),
                       LevelMapping(temporal=(Loop("K", 8),), keep=ALL)))
    mixed, words = (evaluate_reference(p, arch, mapping).levels[0] for p in (INT8, WORDS))
    assert mixed.network_words == words.network_words
    assert mixed.network_energy_pJ == sum(n * {"Inputs": 0.5, "Weights": 0.5, "Outputs": 1.5}[name]
                                          for name, n in mixed.network_words.items())


def test_8_bit_operands_fit_where_16_bit_ones_do_not() -> None:
    """Tiles of 8 Inputs, 8 Weights and one Output: 8x8 + 8x8 + 24 = 152 bits fit a
    buffer of 10 16-bit words (160 bits); 17 words do not."""
    arch = two_levels(10)
    assert violations(INT8, arch, MAPPING) == []
    assert violations(WORDS, arch, MAPPING) == ["Buffer holds 10 words; the tiles need Inputs 8 + Weights 8 + "
                                                "Outputs 1 = 17"]
    assert violations(INT8, two_levels(9), MAPPING) == ["Buffer holds 144 bits; the tiles need Inputs 64 + "
                                                        "Weights 64 + Outputs 24 = 152"]
    for problem, fits in ((INT8, True), (WORDS, False)):
        assert evaluate_batch(problem, arch, batch_from_mappings(problem, arch, [MAPPING])).valid[0] == fits
        space = Mapspace(problem, arch)
        assert space.valid(batch_from_mappings(problem, arch, [MAPPING]))[0] == fits


def test_multiple_buffering_halves_the_bits_a_level_holds() -> None:
    arch = replace(two_levels(20), levels=(two_levels(20).levels[0],
                                           replace(two_levels(20).levels[1], multiple_buffering=2.0)))
    assert level_widths(INT8, arch)[1].usable == 160 and violations(INT8, arch, MAPPING) == []


def test_no_valid_mapping_says_bits_where_precisions_differ() -> None:
    """32-bit outputs and 8-bit operands all kept in a 2-word buffer: 48 bits > 32."""
    problem = matvec(Inputs=8, Weights=8, Outputs=32)
    keep_all = Constraints({"Buffer": LevelConstraints(keep=ALL)})
    with pytest.raises(NoValidMapping) as info:
        Mapspace(problem, two_levels(2), keep_all).check()
    assert "Buffer holds 32 bits; the smallest tiles the constraints allow are Inputs 8 + Weights 8 + " \
           "Outputs 32 = 48" in str(info.value)


def test_an_exhaustive_search_finds_the_best_mapping_by_bits(tmp_path: Path) -> None:
    arch = two_levels(10)
    space = Mapspace(INT8, arch)
    best = min(float(evaluate_batch(INT8, arch, batch).energy_pJ.min()) for batch in space.enumerate())
    (mapping, evaluation), = api.search(INT8, arch, tmp_path / "out", exhaustive=True, objective="energy").points
    assert evaluation.energy_pJ == pytest.approx(best, rel=1e-12)
    assert violations(INT8, arch, mapping) == []


def test_sampled_tilings_fit_the_buffer_in_bits() -> None:
    """The sampler refits tiles against bits: nearly every sampled tiling fits."""
    arch = two_levels(10)
    space = Mapspace(INT8, arch)
    rng = np.random.default_rng(0)
    structure = space.structure([space.permutation_choices(l)[0] for l in range(space.L)],
                                [((1, 1), (1, 1))] * space.L, space.keep_choices()[-1])
    batch = space.sample_tilings(structure, 200, rng)
    valid = space.valid(batch)
    assert valid.mean() > 0.9
    for b in range(0, 200, 20):
        assert valid[b] == (not violations(INT8, arch, batch.mapping(b, INT8)))


# -- the specs ----------------------------------------------------------------------

def test_a_conv_or_linear_layer_gives_its_tensors_precisions() -> None:
    conv = parse_problem({"conv": {"name": "c", "C": 4, "M": 4, "P": 4, "Q": 4, "R": 3, "S": 3,
                                   "precision": {"Weights": 8, "Inputs": 8, "Outputs": 24}}})
    assert {t.name: t.word_bits for t in conv.tensors} == {"Weights": 8, "Inputs": 8, "Outputs": 24}
    linear = parse_problem({"linear": {"name": "fc", "M": 4, "N": 4, "K": 4, "precision": {"Weights": 4}}})
    assert {t.name: t.word_bits for t in linear.tensors} == {"Inputs": None, "Weights": 4, "Outputs": None}


def test_a_workloads_precision_fills_in_what_a_layer_leaves_out() -> None:
    layers = parse_workload({"precision": {"Weights": 8, "Inputs": 8, "Outputs": 24, "A": 4}, "layers": [
        {"conv": {"name": "a", "C": 4, "M": 4, "P": 4, "Q": 4, "R": 1, "S": 1, "precision": {"Outputs": 32}}},
        {"name": "e", "dimensions": {"K": 4}, "tensors": [
            {"name": "A", "ranks": ["K"], "word_bits": 16}, {"name": "Z", "ranks": ["K"], "read_write": True}]}]})
    assert [{t.name: t.word_bits for t in p.tensors} for p in layers] == [
        {"Weights": 8, "Inputs": 8, "Outputs": 32}, {"A": 16, "Z": None}]


@pytest.mark.parametrize(("text", "key_path", "fragments"), [
    ("workload: {precision: {Weight: 8}, layers: [{linear: {name: f, M: 2, N: 2, K: 2}}]}", "workload.precision",
     ["'Weight'", "Inputs, Outputs, Weights", "Weights"]),
    ("workload: {precision: {Weights: 0}, layers: [{linear: {name: f, M: 2, N: 2, K: 2}}]}",
     "workload.precision.Weights", ["found 0", "from 1 to 1024"]),
    ("problem: {conv: {name: c, C: 2, M: 2, P: 2, Q: 2, R: 1, S: 1, precision: {Psums: 24}}}",
     "problem.conv.precision.Psums", ["Psums"]),
    ("problem: {name: e, dimensions: {K: 4}, tensors: [{name: A, ranks: [K], word_bits: 2048}, "
     "{name: Z, ranks: [K], read_write: true}]}", "problem.tensors[0].word_bits", ["2048", "from 1 to 1024"]),
])
def test_bad_precisions_are_one_line_errors(tmp_path: Path, text: str, key_path: str, fragments: list[str]) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text + "\n")
    with pytest.raises(SpecError) as info:
        load_native([path])
    assert info.value.key_path == key_path and "\n" not in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_a_level_beyond_64_bit_counts_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "arch.yaml"
    path.write_text("architecture: {name: a, levels: [{name: M, size: 4611686018427387904, word_bits: 16, "
                    "energy: {read: 1, write: 1}}], compute: {energy: 1}}\n")
    with pytest.raises(SpecError) as info:
        load_native([path])
    assert info.value.key_path == "architecture.levels[0].size" and "at most 2**62 bits" in str(info.value)


def test_a_port_beyond_64_bit_counts_is_refused_where_no_capacity_bounds_it(tmp_path: Path) -> None:
    native = tmp_path / "arch.yaml"
    native.write_text("architecture: {name: a, levels: [{name: DRAM, size: unbounded, word_bits: 8, "
                      "block_size: 1000000000000000000000000000000, energy: {read: 1, write: 1}}], "
                      "compute: {energy: 1}}\n")
    with pytest.raises(SpecError) as info:
        load_native([native])
    assert info.value.key_path == "architecture.levels[0].block_size"
    assert "8e+30 bits per access" in str(info.value) and "at most 2**62 bits per access" in str(info.value)
    case = yaml.safe_load((DATA / "timeloop-conv1d-p8.yaml").read_text())
    case["architecture"]["subtree"][0]["local"][0]["attributes"]["width"] = 10**30  # the DRAM's port, in bits
    timeloop = tmp_path / "case.yaml"
    timeloop.write_text(yaml.safe_dump(case))
    with pytest.raises(SpecError) as info:
        load_specs([timeloop])
    assert info.value.key_path == "architecture.subtree[0].local[0].attributes.width"
    assert "1e+30 bits per access" in str(info.value)
