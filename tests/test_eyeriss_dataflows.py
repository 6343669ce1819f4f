"""The Eyeriss dataflow comparison (specs/experiments/eyeriss-dataflows.yaml), reduced:
one CONV layer, two dataflows, a small search budget. Its ordering must agree with the
committed full results (results/eyeriss-dataflows/summary.json), whatever that ordering
is; and its outputs must say what the full run's say, in the same shapes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mapper.dataflow_comparison import (
    DATA_TYPES, LEVEL_CLASSES, by_data_type, by_level, energy_breakdown, level_classes, load_comparison,
    most_used_macs, run_comparison, utilization_floor, write_outputs)
from mapper.model.reference import evaluate_reference
from mapper.search.outputs import native_mapping, result_json
from mapper.search.tilings import Effort
from mapper.specs.errors import SpecError
from mapper.specs.load import load_specs
from mapper.specs.native import load_workload
from mapper.specs.native.mapping import parse_mapping

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "specs/experiments/eyeriss-dataflows.yaml"
COMMITTED = ROOT / "results/eyeriss-dataflows"
DATAFLOWS = ("WS", "OS_A", "OS_B", "OS_C", "NLR", "RS")
LAYERS = ("CONV1", "CONV2", "CONV3", "CONV4", "CONV5", "FC6", "FC7", "FC8")
# The paper's proposal against no local reuse. A small budget overestimates a dataflow
# whose good mappings are rare (WS on CONV3: about 20 per MAC after 3 trials of 256
# tilings, under 6 after the full search), so it can only confirm orderings that the
# full search finds by a wide margin, as this one.
LAYER, PAIR = "conv3", ("RS", "NLR")


def committed_summary() -> dict[str, dict[str, float]]:
    return json.loads((COMMITTED / "summary.json").read_text())


def reduced(layers: list[str], dataflows: tuple[str, ...], trials: int, effort: Effort):
    comparison = load_comparison(EXPERIMENT)
    return replace(comparison, problems=tuple(p for p in comparison.problems if p.name in layers),
                   dataflows=tuple(d for d in comparison.dataflows if d.name in dataflows),
                   settings=replace(comparison.settings, trials=trials, effort=effort))


def run(comparison, folder: Path) -> list[dict]:
    with ThreadPoolExecutor(1) as pool:
        return run_comparison(comparison, folder, pool, with_charts=False)


def test_the_committed_summary_has_every_dataflow_and_layer_in_mac_units():
    summary = committed_summary()
    assert list(summary) == list(DATAFLOWS)
    for dataflow in DATAFLOWS:
        assert list(summary[dataflow]) == list(LAYERS)
        # a MAC costs 1, and each of its operands is read from a register file at least
        assert all(1 < v < 1000 for v in summary[dataflow].values())


def test_a_reduced_run_orders_two_dataflows_as_the_committed_results_do(tmp_path):
    records = run(reduced([LAYER], PAIR, trials=4, effort=Effort(samples=512, rounds=4)), tmp_path)
    found, committed, label = json.loads((tmp_path / "summary.json").read_text()), committed_summary(), LAYER.upper()
    first, second = PAIR
    assert (found[first][label] < found[second][label]) == (committed[first][label] < committed[second][label])
    assert {p.name for p in tmp_path.iterdir()} >= {"summary.json", "ratios.json", "breakdown.csv", "tables.md"}
    ratios = json.loads((tmp_path / "ratios.json").read_text())
    assert ratios["RS"]["CONV"] == 1 and ratios["NLR"]["CONV"] == pytest.approx(found["NLR"][label] / found["RS"][label])
    for record in records:  # the breakdown accounts for all of the energy, by level and by data type
        assert sum(by_level(record["breakdown"]).values()) == pytest.approx(record["energy"])
        moved = sum(by_data_type(record["breakdown"]).values())
        assert moved + record["breakdown"]["ALU"]["MAC"] == pytest.approx(record["energy"])
        assert record["utilization"] >= record["utilization_floor"] - 1e-9


def test_a_finished_dataflow_is_read_back_not_searched_again(tmp_path):
    comparison = reduced(["fc8"], ("RS", "NLR"), trials=1, effort=Effort(samples=64, rounds=1))
    first = run(comparison, tmp_path)
    best = tmp_path / "cells" / "RS" / "layers" / "fc8" / "best.json"
    stamp = best.stat().st_mtime_ns
    assert run(comparison, tmp_path) == first and best.stat().st_mtime_ns == stamp


def test_the_charts_are_drawn_as_png_files(tmp_path):
    comparison = reduced(["fc8"], ("RS", "NLR"), trials=1, effort=Effort(samples=64, rounds=1))
    charts = [p for p in write_outputs(comparison, run(comparison, tmp_path), tmp_path) if p.suffix == ".png"]
    assert {p.name for p in charts} == {"energy-by-level.png", "energy-by-data-type.png"}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in charts)


def test_the_levels_of_each_dataflow_are_classed_as_the_paper_does():
    def classes(name: str) -> list[str]:
        return level_classes(load_specs([ROOT / f"specs/arch/eyeriss-dataflows/{name}.yaml"]).architecture)
    assert classes("ws") == ["DRAM", "buffer", "RF"]
    assert classes("nlr") == ["DRAM", "buffer"]
    assert classes("rs") == ["DRAM", "buffer", "RF", "RF", "RF"]


def test_every_dataflow_has_the_same_storage_area_under_the_stated_area_model():
    rf_byte = 1.625  # global-buffer bytes of area per RF byte (specs/arch/eyeriss-dataflows/*.yaml)
    budget = 256 * 512 * rf_byte + 128 * 1024
    for name in ("ws", "os_a", "os_b", "os_c", "nlr", "rs"):
        arch = load_specs([ROOT / f"specs/arch/eyeriss-dataflows/{name}.yaml"]).architecture
        buffer_bytes = arch.levels[1].capacity * 2
        rf_bytes = sum(level.capacity * 2 for level in arch.levels[2:])
        assert arch.compute.instances == 256
        assert buffer_bytes + 256 * rf_bytes * rf_byte == budget, name


def test_the_energy_breakdown_adds_up_to_the_models_total_network_included():
    specs = load_specs([ROOT / "specs/arch/eyeriss-dataflows/rs.yaml", ROOT / "specs/workloads/tiny-conv.yaml"])
    problem, arch = specs.problems[0], specs.architecture
    mapping = parse_mapping([{"level": "DRAM", "temporal": "", "keep": ["Weights", "Inputs", "Outputs"]},
                          {"level": "GlobalBuffer", "keep": ["Weights", "Inputs", "Outputs"],
                           "spatial": " ".join(f"{d}{b}{'X' if i % 2 else 'Y'}" for i, (d, b) in
                                               enumerate(problem.bounds.items()) if b > 1 and d in "MC")},
                          {"level": "ifmap_spad", "keep": ["Inputs"]},
                          {"level": "weights_spad", "keep": ["Weights"]},
                          {"level": "psum_spad", "keep": ["Outputs"],
                           "temporal": " ".join(f"{d}{b}" for d, b in problem.bounds.items() if b > 1 and d not in "MC")}],
                            problem, arch)
    evaluation = evaluate_reference(problem, arch, mapping)
    best = result_json(problem, arch, mapping, evaluation)
    assert parse_mapping(best["mapping"], problem, arch) == mapping
    energy = energy_breakdown(problem, arch, mapping, best)
    assert set(energy) == set(LEVEL_CLASSES) and set(by_data_type(energy)) == set(DATA_TYPES.values())
    assert sum(by_level(energy).values()) == pytest.approx(evaluation.energy_pJ)
    network = sum(lv.network_energy_pJ for lv in evaluation.levels)
    assert network > 0 and by_level(energy)["array"] == pytest.approx(network)


def test_a_mapping_unrolling_one_dimension_along_both_axes_reads_back():
    arch = load_specs([ROOT / "specs/arch/eyeriss-dataflows/ws.yaml"]).architecture
    entries = [{"level": "DRAM", "temporal": "M32", "keep": ["Weights", "Inputs", "Outputs"]},
               {"level": "GlobalBuffer", "temporal": "C16 R3 S3", "spatial": "C4Y M4Y C4X M3X",
                "keep": ["Weights", "Outputs"]},
               {"level": "weight_reg", "temporal": "N16 P13 Q13", "keep": ["Weights"]}]
    conv3 = next(p for p in load_workload("alexnet", 16) if p.name == "conv3")
    assert native_mapping(conv3, arch, parse_mapping(entries, conv3, arch)) == entries


def test_a_dataflow_that_cannot_fill_the_array_on_a_layer_is_held_to_what_it_can_use():
    specs = load_specs([ROOT / "specs/arch/eyeriss-dataflows/os_a.yaml",
                        ROOT / "specs/constraints/eyeriss-dataflows/os_a.yaml"])
    layers = {p.name: p for p in load_workload("alexnet", 16)}
    # one output plane of an FC layer is a single pixel: one PE
    assert most_used_macs(layers["fc7"], specs.architecture, specs.constraints) == 1
    assert utilization_floor(layers["fc7"], specs.architecture, specs.constraints, 0.5) == 1 / 256
    # conv3's 13 x 13 output plane fills 169 PEs
    assert utilization_floor(layers["conv3"], specs.architecture, specs.constraints, 0.5) == 0.5
    assert utilization_floor(layers["conv3"], specs.architecture, specs.constraints, 0.9) == 169 / 256


def test_a_comparison_searches_with_every_setting_its_file_gives(tmp_path):
    settings = load_comparison(EXPERIMENT).settings
    assert (settings.trials, settings.patience, settings.seed, settings.remainders) == (40, None, 0, False)
    changed = tmp_path / "changed.yaml"
    changed.write_text(EXPERIMENT.read_text().replace("patience: 0,", "patience: 7, seeds: 2, remainder_searches: 1,")
                       .replace("../", str(EXPERIMENT.parent.parent) + "/"))
    settings = load_comparison(changed).settings
    assert (settings.patience, settings.seeds, settings.remainder_searches) == (7, 2, 1)
    changed.write_text(changed.read_text().replace("patience: 7,", "fusion: true,"))
    with pytest.raises(SpecError, match="search.fusion"):
        load_comparison(changed)


def test_a_malformed_comparison_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    for change, key in ((("baseline: RS", "baseline: XY"), "baseline"),
                        (("batch: 16", "batch: 0"), "workload.batch"),
                        (("min_utilization: 0.5", "min_utilization: 2"), "min_utilization"),
                        (("ws.yaml, constraints", "nowhere.yaml, constraints"), "dataflows[0].architecture")):
        bad.write_text(EXPERIMENT.read_text().replace(*change))
        # the paths in the file are relative to it: copy the specs' layout
        bad.write_text(bad.read_text().replace("../", str(EXPERIMENT.parent.parent) + "/"))
        with pytest.raises(SpecError, match=key.replace("[", r"\[").replace("]", r"\]")):
            load_comparison(bad)


def test_a_dataflow_without_constraints_is_its_architecture_unconstrained(tmp_path):
    spec = yaml.safe_load(EXPERIMENT.read_text().replace("../", str(EXPERIMENT.parent.parent) + "/"))
    del spec["dataflows"][0]["constraints"]
    (tmp_path / "free.yaml").write_text(yaml.safe_dump(spec))
    first, second = load_comparison(tmp_path / "free.yaml").dataflows[:2]
    assert first.constraints is None and second.constraints is not None


def test_a_comparison_of_one_dataflow_is_refused_for_what_it_is(tmp_path):
    spec = yaml.safe_load(EXPERIMENT.read_text().replace("../", str(EXPERIMENT.parent.parent) + "/"))
    spec["dataflows"], spec["baseline"] = spec["dataflows"][:1], spec["dataflows"][0]["name"]
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match="dataflows: found a list of 1 item; allowed: a list of at least 2 items"):
        load_comparison(tmp_path / "one.yaml")


def test_a_comparison_finds_its_files_from_the_working_directory_as_an_experiment_does(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / "comparison.yaml"
    moved.write_text(EXPERIMENT.read_text().replace("../", "specs/"))  # paths from the repository's root
    monkeypatch.chdir(EXPERIMENT.parent.parent.parent)
    assert [d.name for d in load_comparison(moved).dataflows] == ["WS", "OS_A", "OS_B", "OS_C", "NLR", "RS"]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError, match="relative to the experiment file or the working directory"):
        load_comparison(moved)
