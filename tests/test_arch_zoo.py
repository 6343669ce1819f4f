"""The shipped architectures of the zoo: the Eyeriss-like and Simba-like designs are
Timeloop's example designs written natively, so Timeloop's own case evaluates the
same either way; the TPU-like array is weight stationary."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mapper.architecture import Architecture, StorageLevel
from mapper.model.capacity import violations
from mapper.model.reference import evaluate_reference
from mapper.model.stats import Evaluation
from mapper.specs.files import shipped_specs_dir
from mapper.specs.native import load_native
from mapper.specs.native.mapping import parse_mapping
from mapper.specs.timeloop import load
from timeloop_reference import REFERENCE, load_input

SPECS = shipped_specs_dir()

# The mapping Timeloop's mapper found for each case (timeloop-mapper.map.txt), written
# natively: loops outermost first, the placeholder levels' spatial loops on the level
# that carries the fan-out here.
TIMELOOP_CASES = {
    "eyeriss-like": ("cases/ed_eyeriss_like_default", [
        {"level": "DRAM", "temporal": "P8 Q2 M4"},
        {"level": "shared_glb", "temporal": "P14 Q4"},
        {"level": "inter_PE_column_spatial", "spatial": "Q14X"},
        {"level": "inter_PE_spatial", "spatial": "C3Y S3Y"},
        {"level": "weights_spad", "temporal": "R3"},
        {"level": "psum_spad", "temporal": "M8"},
    ]),
    "simba-like": ("cases/ed_simba_like_default", [
        {"level": "DRAM", "temporal": "Q28"},
        {"level": "GlobalBuffer", "temporal": "P4", "spatial": "C3X M4X"},
        {"level": "PEInputBuffer", "temporal": "Q4", "spatial": "M4Y"},
        {"level": "PEWeightBuffer", "temporal": "R3 P4 S3"},
        {"level": "PEAccuBuffer", "temporal": "M2 P7"},
    ]),
}


def architecture(name: str) -> Architecture:
    return load_native([SPECS / f"arch/{name}.yaml"])["architecture"]


def hardware(level: StorageLevel) -> tuple:
    """What the model reads of a level, but for which tensors it may keep (the
    Timeloop inputs say that in their mapping)."""
    return (level.name, level.instances, level.mesh_x, level.mesh_y, level.capacity, level.block_size,
            level.cluster_size, level.read_bandwidth, level.write_bandwidth, level.multiple_buffering,
            level.read_energy, level.write_energy, level.network_energy)


def without_placeholders(ev: Evaluation) -> Evaluation:
    """Timeloop's placeholder levels keep nothing: the natively written Simba-like design
    carries their fan-outs on real levels instead."""
    return replace(ev, levels=tuple(level for level in ev.levels if level.tensors))


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")
@pytest.mark.parametrize("name", TIMELOOP_CASES)
def test_native_design_is_timeloops_example(name: str) -> None:
    case, native_mapping = TIMELOOP_CASES[name]
    timeloop = load(load_input(case))
    native = architecture(name)
    timeloop_levels = {level.name: level for level in timeloop.architecture.levels}
    assert [hardware(level) for level in native.levels] == [hardware(timeloop_levels[lv.name]) for lv in native.levels]
    assert (native.compute.instances, native.compute.energy) == (timeloop.architecture.compute.instances,
                                                                timeloop.architecture.compute.energy)
    mapping = parse_mapping(native_mapping, timeloop.problem, native)
    assert without_placeholders(evaluate_reference(timeloop.problem, native, mapping)) == without_placeholders(
        evaluate_reference(timeloop.problem, timeloop.architecture, timeloop.mapping))


def test_tpu_like_keeps_each_weight_in_its_pe_for_a_whole_output_plane() -> None:
    specs = load_native([SPECS / "arch/tpu-like.yaml", SPECS / "workloads/alexnet-conv3.yaml"])
    tpu, (conv3,) = specs["architecture"], specs["problems"]
    assert tpu.compute.instances == 128 * 128 and (tpu.compute.mesh_x, tpu.compute.mesh_y) == (128, 128)
    # output channels across the 128 columns, input channels down the 128 rows
    mapping = parse_mapping([
        {"level": "DRAM", "temporal": "M3 C2 R3 S3"},
        {"level": "WeightFIFO", "spatial": "M128X"},
        {"level": "Accumulators", "temporal": "P13 Q13", "spatial": "C128Y"},
    ], conv3, tpu)
    assert violations(conv3, tpu, mapping) == []
    ev = evaluate_reference(conv3, tpu, mapping)
    weights = {lv.name: lv.tensors["Weights"] for lv in ev.levels if "Weights" in lv.tensors}
    register = weights["WeightRegister"]
    assert register.fills == register.partition_size  # each weight enters its PE once ...
    assert register.reads == register.partition_size * 13 * 13  # ... and serves every output pixel
    assert weights["DRAM"].reads == conv3.tensor_size(conv3.tensor("Weights"))  # read from DRAM once
    assert ev.utilization == 1.0
