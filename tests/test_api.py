"""The Python API does what the commands do, and returns the data they print from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tiny_network import write_specs

from mapper import api
from mapper.cli import main
from mapper.specs.errors import SpecError
from mapper.specs.files import shipped_specs_dir

SPECS = shipped_specs_dir()
TOY = [SPECS / "arch/toy-3level.yaml", SPECS / "workloads/tiny-conv.yaml", SPECS / "mappings/toy-3level-tiny-conv.yaml"]
QUICK = {"trials": 3, "patience": None}


def test_evaluate_and_explain_give_what_the_commands_write(tmp_path: Path) -> None:
    loaded = api.load(*TOY)
    problem, arch, mapping = loaded.problems[0], loaded.architecture, loaded.mapping
    ev = api.evaluate(problem, arch, mapping)
    assert main(["evaluate", *map(str, TOY), "--json", str(tmp_path / "ev.json")]) == 0
    written = json.loads((tmp_path / "ev.json").read_text())
    assert (ev.energy_pJ, ev.cycles) == (written["energy_pJ"], written["cycles"])
    assert api.explain(problem, arch, mapping).pe_stationary == "Outputs"


def test_evaluate_checks_the_mapping_against_the_constraints_among_its_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped toy mapping meets the shipped toy constraints; under constraints it
    breaks it is still evaluated, and the command says which it breaks, as does the
    API."""
    shipped = SPECS / "constraints/toy-3level-custom.yaml"
    assert main(["evaluate", *map(str, TOY), str(shipped), "--json", str(tmp_path / "met.json")]) == 0
    assert "constraints: the mapping meets every one" in capsys.readouterr().out
    assert json.loads((tmp_path / "met.json").read_text())["constraints_broken"] == []
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text("constraints:\n  levels:\n    Buffer:\n      temporal: Q<=2\n      keep: [Outputs]\n")
    assert main(["evaluate", *map(str, TOY), str(stricter), "--json", str(tmp_path / "broken.json")]) == 0
    out = capsys.readouterr().out
    broken = ["Q at Buffer: a factor of 4, where the constraints allow at most 2",
              "Buffer bypasses Outputs, which it must keep"]
    assert "constraints: the mapping breaks 2:\n" + "".join(f"  - {b}\n" for b in broken) in out
    written = json.loads((tmp_path / "broken.json").read_text())
    assert written["constraints_broken"] == broken and written["cycles"] == 288
    loaded = api.load(*TOY, stricter)
    assert api.broken_constraints(loaded.problems[0], loaded.architecture, loaded.mapping,
                                  loaded.constraints) == broken
    assert main(["evaluate", *map(str, TOY), "--json", str(tmp_path / "unchecked.json")]) == 0
    assert "constraints_broken" not in json.loads((tmp_path / "unchecked.json").read_text())  # none given


def test_evaluate_refuses_a_mapping_that_does_not_map_the_layer(tmp_path: Path) -> None:
    """As `mapper evaluate` does: a mapping of another layer (P 4 of 8 covered) or of
    another architecture (3 levels of 7) is a SpecError, not figures of half a layer."""
    toy = api.load(*TOY)
    (tmp_path / "taller.yaml").write_text(TOY[1].read_text().replace("P: 4", "P: 8"))
    taller = api.load(TOY[0], tmp_path / "taller.yaml").problems[0]
    with pytest.raises(SpecError, match="factors of dimension P that multiply to 4"):
        api.evaluate(taller, toy.architecture, toy.mapping)
    eyeriss = api.load(SPECS / "arch/eyeriss-like.yaml").architecture
    with pytest.raises(SpecError, match="a mapping of 3 levels"):
        api.evaluate(toy.problems[0], eyeriss, toy.mapping)


@pytest.mark.parametrize("batch", [0, -1, 2.5, True])
def test_a_batch_that_is_not_a_whole_number_of_samples_is_a_spec_error(batch: object) -> None:
    with pytest.raises(SpecError, match="batch: found"):
        api.load(SPECS / "workloads/alexnet.yaml", batch=batch)


@pytest.mark.parametrize("setting, found", [
    ({"objective": "EDP"}, "objective: found 'EDP'; allowed: edp, energy, delay, pareto; did you mean 'edp'?"),
    ({"trials": 0}, "trials: found 0"), ({"trials": "5"}, "trials: found '5'"),
    ({"trials": float("nan")}, "trials: found nan"), ({"seconds": -1}, "seconds: found -1"),
    ({"patience": 0}, "patience: found 0"), ({"seed": -1}, "seed: found -1; allowed: 0 to 4294967295"),
    ({"trails": 5}, "trails: found an unknown search setting; allowed: objective, trials"),
])
def test_search_settings_out_of_their_range_are_refused_before_searching(tmp_path: Path, setting: dict,
                                                                         found: str) -> None:
    """As the command line refuses its options: a SpecError naming the setting."""
    loaded = api.load(*TOY)
    with pytest.raises(SpecError, match=re.escape(found)):
        api.search(loaded.problems[0], loaded.architecture, tmp_path / "out", **setting)
    assert not (tmp_path / "out").exists()


def test_a_layer_of_a_workload_is_found_by_name_or_said_missing() -> None:
    loaded = api.load(SPECS / "arch/eyeriss-like.yaml", SPECS / "workloads/alexnet.yaml")
    assert loaded.problem("conv3").bounds["C"] == 256
    with pytest.raises(SpecError, match="no layer 'conv9'"):
        loaded.problem("conv9")


def test_search_and_search_network_write_the_folders_the_commands_write(tmp_path: Path) -> None:
    loaded = api.load(*write_specs(tmp_path))
    layer = api.search(loaded.problem("conv_c"), loaded.architecture, tmp_path / "one", **QUICK)
    assert json.loads((tmp_path / "one/best.json").read_text())["energy_pJ"] == layer.points[0][1].energy_pJ
    assert api.compare(tmp_path / "one")["runs"][0]["edp_J_cycles"] == layer.points[0][1].edp_J_cycles
    network = api.search_network(loaded, tmp_path / "net", jobs=1, **QUICK)
    assert [row["layer"] for row in network.summary["layers"]] == [p.name for p in loaded.problems]
    table = api.compare(tmp_path / "net", tmp_path / "net")
    assert table["runs"][1]["ratio_to_first"]["edp_J_cycles"] == 1.0
    with pytest.raises(SpecError, match="no runs"):
        api.compare()


def test_estimate_and_graph_give_what_the_commands_print(tmp_path: Path) -> None:
    specs = api.load(SPECS / "arch/eyeriss-like.yaml")
    found = api.estimate(specs)
    out = tmp_path / "x.json"
    assert main(["estimate", str(SPECS / "arch/eyeriss-like.yaml"), "--json", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(found.to_json()))
    assert api.estimate(specs, technology=45).node_nm == 45
    assert api.estimate(specs, technology="45nm").node_nm == 45
    with pytest.raises(SpecError, match="no technology node"):
        api.estimate(api.load(SPECS / "arch/tpu-like.yaml"))
    with pytest.raises(SpecError, match="outside the estimator's range"):  # as --technology refuses it
        api.estimate(specs, technology=1000)
    graph = api.graph("alexnet")
    assert list(graph.nodes) == [p.name for p in api.load(SPECS / "workloads/alexnet.yaml").problems]
    assert graph.number_of_edges() == 7
