"""The model reproduces Timeloop's own outputs on every reference case: every count
exactly, every dynamic energy to a relative 1e-6 (or to the 0.01 pJ Timeloop printed),
cycles and utilization."""

from __future__ import annotations

import re

import pytest

from mapper.model.reference import evaluate_reference
from mapper.specs.errors import SpecError
from mapper.specs.timeloop import load
from timeloop_reference import REFERENCE, case_ids, expected, load_input

COUNTS = ("partition_size", "utilized_capacity", "utilized_instances", "reads", "fills", "updates")

pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference/timeloop is not here")


def energy_close(got: float, want: float, decimals: int) -> bool:
    return abs(got - want) <= max(1e-6 * abs(want), 0.5 * 10 ** -decimals + 1e-9)


def mismatches(case: str, link_transfers: bool = True) -> list[tuple]:
    spec = load(load_input(case))
    ev = evaluate_reference(spec.problem, spec.architecture, spec.mapping, link_transfers)
    want = expected(case, link_transfers)
    found = []
    if (ev.computes, ev.cycles) != (want.computes, want.cycles):
        found.append((case, "-", "-", "computes/cycles", (ev.computes, ev.cycles), (want.computes, want.cycles)))
    if abs(ev.utilization - want.utilization) > 0.005:
        found.append((case, "-", "-", "utilization", ev.utilization, want.utilization))
    if not energy_close(ev.compute_energy_pJ, want.compute_energy_pJ, want.energy_decimals):
        found.append((case, "MAC", "-", "energy_pJ", ev.compute_energy_pJ, want.compute_energy_pJ))
    got = {lv.name: lv.tensors for lv in ev.levels}
    for level, tensors in want.levels.items():
        assert set(got.get(level, {})) == set(tensors), f"{case}: tensors kept at {level}"
        for tensor, values in tensors.items():
            stats = got[level][tensor]
            for key in COUNTS:
                if getattr(stats, key) != values[key]:
                    found.append((case, level, tensor, key, getattr(stats, key), values[key]))
            if not energy_close(stats.energy_pJ, values["energy_pJ"], want.energy_decimals):
                found.append((case, level, tensor, "energy_pJ", stats.energy_pJ, values["energy_pJ"]))
    for level in got:
        assert level in want.levels or not got[level], f"{case}: {level} keeps tensors Timeloop does not show"
    return found


@pytest.mark.parametrize("case", case_ids())
def test_case_matches_timeloop(case: str) -> None:
    assert mismatches(case) == []


@pytest.mark.parametrize("case", [c for c in case_ids() if c.startswith("extra-v303/")])
def test_case_matches_timeloop_without_link_transfers(case: str) -> None:
    assert mismatches(case, link_transfers=False) == []


def printed_stats(case: str) -> str:
    """The stats.txt Timeloop printed for the case."""
    root = REFERENCE / case
    folder = {"cases": root / "ref-output", "v303-generated": root / "output"}.get(case.split("/")[0], root)
    return next(folder.glob("*.stats.txt")).read_text()


@pytest.mark.parametrize("case", case_ids())
def test_each_level_throttles_as_timeloop_prints(case: str) -> None:
    """Timeloop's "Bandwidth throttling" of each level (no reference case throttles:
    tests/test_search.py has one that does)."""
    blocks = re.split(r"^=== (\S+) ===$", printed_stats(case).split("Networks")[0], flags=re.M)
    printed = {name: found[1] for name, block in zip(blocks[1::2], blocks[2::2])
               if (found := re.search(r"^    Bandwidth throttling : ([\d.]+)$", block, flags=re.M))}
    spec = load(load_input(case))
    ev = evaluate_reference(spec.problem, spec.architecture, spec.mapping)
    got = {lv.name: f"{lv.bandwidth_throttling:.2f}" for lv in ev.levels if lv.name in printed}
    assert got and got == printed


def _leaf(node: object, name: str) -> dict:
    """The architecture leaf whose name starts with `name`."""
    if isinstance(node, dict):
        if str(node.get("name", "")).startswith(name) and "attributes" in node:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            try:
                return _leaf(child, name)
            except LookupError:
                pass
    raise LookupError(name)


@pytest.mark.parametrize(("size", "capacity"), [
    ({"depth": 16384}, 131072),  # blocks of 8 words (64 bits of 8-bit words)
    ({"memory_depth": 16384}, 131072),
    ({"entries": 131072}, 131072),  # words
    ({"sizeKB": 128}, 131072),  # 128 KB of 8-bit words
    ({"entries": 4096, "depth": 16384}, 4096),  # entries first, as Timeloop reads them
])
def test_a_buffers_size_is_read_as_timeloop_reads_it(size: dict, capacity: int) -> None:
    """Timeloop's BufferLevel: `entries` in words, `depth` or `memory_depth` in blocks,
    `sizeKB` in kilobytes; the Eyeriss-like global buffer's 64-bit blocks of 8-bit words."""
    spec = load_input("cases/ed_eyeriss_like_default")
    attributes = _leaf(spec["architecture"], "shared_glb")["attributes"]
    del attributes["depth"]
    attributes.update(size)
    glb = next(level for level in load(spec).architecture.levels if level.name == "shared_glb")
    assert (glb.block_size, glb.capacity) == (8, capacity)


@pytest.mark.parametrize(("key", "alias"), [("width", "memory_width"), ("width", "data_storage_width"),
                                            ("datawidth", "word_width"), ("depth", "data_storage_depth"),
                                            ("depth", "memory_depth")])
def test_a_buffer_attribute_is_read_under_each_name_timeloop_reads_it_by(key: str, alias: str) -> None:
    spec = load_input("cases/ed_eyeriss_like_default")
    expected = next(level for level in load(spec).architecture.levels if level.name == "shared_glb")
    attributes = _leaf(spec["architecture"], "shared_glb")["attributes"]
    attributes[alias] = attributes.pop(key)
    assert next(level for level in load(spec).architecture.levels if level.name == "shared_glb") == expected


def test_n_words_is_a_block_size() -> None:
    """A 16-bit port of 8-bit words with blocks of one word: two spads to a cluster."""
    spec = load_input("cases/ed_eyeriss_like_default")
    attributes = _leaf(spec["architecture"], "weights_spad")["attributes"]
    attributes.update(n_words=1, cluster_size=None)
    spad = next(level for level in load(spec).architecture.levels if level.name == "weights_spad")
    assert (spad.block_size, spad.cluster_size, spad.capacity) == (1, 2, 192)


@pytest.mark.parametrize("other", [{"entries": 4096}, {"depth": 512}, {"memory_depth": 512}])
def test_sizekb_besides_another_size_is_refused(other: dict) -> None:
    """Timeloop's BufferLevel asserts that `sizeKB` comes alone."""
    spec = load_input("cases/ed_eyeriss_like_default")
    attributes = _leaf(spec["architecture"], "shared_glb")["attributes"]
    del attributes["depth"]
    attributes.update(other, sizeKB=128)
    with pytest.raises(SpecError, match=r"sizeKB: found sizeKB besides"):
        load(spec)


CONV1D_SPATIAL = "v303-generated/04-model-conv1d+oc-3levelspatial_cp"


def test_a_port_narrower_than_a_block_is_refused() -> None:
    """Timeloop's BufferLevel asserts that `width` holds whole blocks (block-size words of
    word-bits bits); an 8-bit port cannot carry a block of 128 8-bit words."""
    spec = load_input(CONV1D_SPATIAL)
    _leaf(spec["architecture"], "RegisterFile")["attributes"]["block-size"] = 128
    with pytest.raises(SpecError, match=r"width: found 8 bits, not a whole number of blocks of 128 words"):
        load(spec)


SIMBA = "cases/ed_simba_like_default"


@pytest.mark.parametrize(("attributes", "block_and_cluster"), [
    ({"width": 512, "cluster_size": 64}, (1, 64)),  # the case's: 64 registers share one 512-bit port
    ({"width": 512, "block_size": 8}, (8, 8)),
    ({"width": 512, "block-size": 2, "cluster-size": 32}, (2, 32)),
    ({"width": 512}, (64, 1)),  # neither given: one register's 64-word blocks
    ({"cluster_size": 4}, (1, 4)),
])
def test_a_width_splits_into_block_and_cluster_size_as_timeloop_reads_it(attributes: dict,
                                                                          block_and_cluster: tuple) -> None:
    spec = load_input(SIMBA)
    leaf = _leaf(spec["architecture"], "PEWeightRegs")["attributes"]
    for key in ("width", "cluster_size"):
        del leaf[key]
    leaf.update(attributes)
    regs = next(level for level in load(spec).architecture.levels if level.name == "PEWeightRegs")
    assert (regs.block_size, regs.cluster_size) == block_and_cluster


def test_the_weight_registers_pay_each_access_once_per_cluster_they_use() -> None:
    """48 of Simba's 256 registers hold weights; Timeloop takes them to be spread over
    all four clusters of 64, and charges each per-instance access four times, not 48."""
    spec = load(load_input(SIMBA))
    regs = next(lv for lv in evaluate_reference(spec.problem, spec.architecture, spec.mapping).levels
                if lv.name == "PEWeightRegs")
    weights = regs.tensors["Weights"]
    level = next(level for level in spec.architecture.levels if level.name == "PEWeightRegs")
    assert weights.utilized_instances == 48
    per_cluster = weights.reads * level.read_energy + weights.fills * level.write_energy
    assert weights.energy_pJ == pytest.approx(4 * per_cluster)


@pytest.mark.parametrize(("leaf", "attributes", "found"), [
    ("PEWeightRegs", {"width": 512, "block_size": 2, "cluster_size": 64},
     "width: found 512 bits beside block_size 2, cluster_size 64 and 8-bit words"),
    ("PEWeightRegs", {"width": 512, "cluster_size": 3}, "width: found 512 bits, not a whole number of clusters"),
    ("GlobalBuffer", {"width": 256, "cluster_size": 2}, "cluster_size: found clusters of 2 instances of GlobalBuffer"),
    ("GlobalBuffer", {"width": 256, "block_size": 4, "cluster_size": None},
     "width: found clusters of 8 instances of GlobalBuffer"),
    ("DRAM", {"width": 64, "cluster_size": 2}, "clusters of 1: Timeloop asserts that a DRAM's are"),
])
def test_clusters_timeloop_would_refuse_or_price_at_nothing_are_refused(leaf: str, attributes: dict,
                                                                        found: str) -> None:
    spec = load_input(SIMBA)
    _leaf(spec["architecture"], leaf)["attributes"].update(attributes)
    with pytest.raises(SpecError, match=re.escape(found)):
        load(spec)


@pytest.mark.parametrize(("names", "found"), [
    ({"MACC": "MACC[0..7]"}, "8 instances of MACC (mesh 8 x 1) under 16 of RegisterFile (mesh 16 x 1)"),
    ({"MACC": "MACC[0..23]"}, "24 instances of MACC (mesh 24 x 1) under 16 of RegisterFile"),
    ({"GlobalBuffer": "GlobalBuffer[0..3]", "RegisterFile": "RegisterFile[0..5]", "MACC": "MACC[0..5]"},
     "6 instances of RegisterFile (mesh 6 x 1) under 4 of GlobalBuffer (mesh 4 x 1)"),
    ({"GlobalBuffer": "GlobalBuffer[0..31]"}, "16 instances of RegisterFile (mesh 16 x 1) under 32 of GlobalBuffer"),
])
def test_instances_that_are_not_a_whole_fanout_of_the_level_above_are_refused(names: dict, found: str) -> None:
    """Each instance of a level fans out to the same number below (Timeloop's topology):
    8 MACs under 16 register files had been taken for 16, at 200% utilization."""
    spec = load_input(CONV1D_SPATIAL)
    for leaf, name in names.items():
        _leaf(spec["architecture"], leaf)["name"] = name
    with pytest.raises(SpecError, match=re.escape(found)):
        load(spec)


@pytest.mark.parametrize(("component", "kept", "missing"), [
    ("GlobalBuffer", ["read", "idle"], "write"), ("RegisterFile", ["write"], "read"), ("MACC", ["idle"], "compute"),
])
def test_an_ert_table_without_an_action_the_model_prices_is_refused(component: str, kept: list, missing: str) -> None:
    """Its energy would be 0 pJ: Timeloop falls back to its own energy model there."""
    spec = load_input(CONV1D_SPATIAL)
    table = next(t for t in spec["ERT"]["tables"] if t["name"].split("[")[0].split(".")[-1] == component)
    table["actions"] = [a for a in table["actions"] if a["name"] in kept]
    with pytest.raises(SpecError, match=re.escape(f"the table of '{component}' without {missing}")):
        load(spec)


def test_a_mapping_factor_of_zero_is_the_whole_dimension_as_timeloop_reads_it() -> None:
    spec = load_input(CONV1D_SPATIAL)
    expected_mapping = load(spec).mapping
    spec["mapping"][3]["factors"] = "R=1 P=0 K=1 C=1"  # P's bound is 16
    assert load(spec).mapping == expected_mapping
    spec["mapping"][3]["factors"] = "R=1 P=1 K=1 C=1"
    spec["mapping"][1]["factors"] = "R=3 P=0 K=32 C=2"
    moved = load(spec).mapping
    spec["mapping"][1]["factors"] = "R=3 P=16 K=32 C=2"
    assert moved == load(spec).mapping != expected_mapping


def test_a_second_directive_of_one_kind_for_a_level_is_refused() -> None:
    """Which of the two would hold is anyone's guess: the later one had replaced the first."""
    spec = load_input(CONV1D_SPATIAL)
    spec["mapping"].append({"target": "GlobalBuffer", "type": "temporal", "factors": "K=1"})
    with pytest.raises(SpecError, match=re.escape("mapping[4]: found a second temporal directive for GlobalBuffer (the "
                                                  "first is mapping[1])")):
        load(spec)


@pytest.mark.parametrize(("mesh", "key", "found"), [
    ({"meshX": 12, "meshY": 7}, "meshY", "meshX 12 x meshY 7 = 84 places for 168 instances"),
    ({"meshX": 5}, "meshX", "5, which does not divide the 168 instances"),
])
def test_a_mesh_that_does_not_hold_every_instance_once_is_refused(mesh: dict, key: str, found: str) -> None:
    """As Timeloop's ValidateTopology asserts: the 168 PE scratchpads on a 14 x 12 mesh."""
    spec = load_input("cases/ed_eyeriss_like_default")
    attributes = _leaf(spec["architecture"], "weights_spad")["attributes"]
    del attributes["meshX"], attributes["meshY"]
    attributes.update(mesh)
    with pytest.raises(SpecError, match=re.escape(key) + r".*" + re.escape(found)):
        load(spec)
