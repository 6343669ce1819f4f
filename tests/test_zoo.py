"""The model zoo: each network's MACs and weights are those of the literature's table
(Sze et al., Proc. IEEE 2017, as quoted in the issue) to the precision it quotes, or
differ by a documented convention; `mapper stats` reports them, and `--batch` scales
the batch of every layer."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mapper.cli import main
from mapper.specs.errors import SpecError
from mapper.specs.files import shipped_specs_dir
from mapper.specs.native import load_workload
from mapper.specs.native.problem import parse_workload
from mapper.workload_stats import WorkloadStats, workload_stats

WORKLOADS = shipped_specs_dir() / "workloads"


def stats(name: str, batch: int = 1) -> WorkloadStats:
    return workload_stats(load_workload(name, batch))


def quoted(figure: str) -> tuple[float, float]:
    """"15.5G" -> (15.5e9, 0.05e9): the value and the half unit of its last digit."""
    scale = {"k": 1e3, "M": 1e6, "G": 1e9}[figure[-1]]
    digits = figure[:-1]
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return float(digits) * scale, 0.5 * 10 ** -decimals * scale


def rounds_to(count: int, figure: str) -> bool:
    value, half_unit = quoted(figure)
    return abs(count - value) <= half_unit


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zoo_generate", WORKLOADS / "_generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("workload", "weights", "macs"), [
    ("alexnet", "61M", "724M"),
    ("vgg16", "138M", "15.5G"),
    ("resnet50", "25.5M", "3.9G"),
    ("efficientnet-b4", "19M", "4.4G"),
])
def test_totals_match_the_table(workload: str, weights: str, macs: str) -> None:
    totals = stats(workload)
    assert rounds_to(totals.total_weights, weights), totals.total_weights
    assert rounds_to(totals.total_macs, macs), totals.total_macs


def test_alexnet_worst_case_is_four_dram_accesses_per_mac() -> None:
    """The table's 2896M is 4 x its rounded 724M MACs."""
    alexnet = stats("alexnet")
    assert alexnet.worst_case_dram_accesses == 4 * alexnet.total_macs
    assert rounds_to(alexnet.worst_case_dram_accesses // 4, "724M")


def test_alexnet_is_the_grouped_network_eyeriss_uses() -> None:
    layers = {p.name: p for p in load_workload("alexnet")}
    assert list(layers) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    conv1 = layers["conv1"]
    assert (conv1.bounds["C"], conv1.bounds["M"], conv1.bounds["P"], conv1.bounds["R"]) == (3, 96, 55, 11)
    assert conv1.tensor_size(conv1.tensor("Inputs")) == 3 * 227 * 227
    for name, per_group_c, m, padded_h in (("conv2", 48, 256, 31), ("conv4", 192, 384, 15), ("conv5", 192, 256, 15)):
        layer = layers[name]
        assert (layer.bounds["G"], layer.bounds["C"], layer.bounds["G"] * layer.bounds["M"]) == (2, per_group_c, m)
        assert layer.tensor_size(layer.tensor("Inputs")) == 2 * per_group_c * padded_h * padded_h
    fc6 = layers["fc6"]
    assert (fc6.bounds["C"], fc6.bounds["R"], fc6.bounds["S"], fc6.bounds["M"], fc6.bounds["P"]) == (256, 6, 6, 4096, 1)


def test_googlenet_is_the_papers_network_and_the_table_rounds_its_pooling_down() -> None:
    """Szegedy et al.'s Table 1 lists 1,586M ops over 12 rows rounded to 1M; the table's
    1.43G MACs are the same layers with stride-2 max pooling rounding down."""
    googlenet = stats("googlenet")
    assert len(googlenet.layers) == 57 + 1  # 57 convolutions, one FC layer
    assert rounds_to(googlenet.total_weights, "7M")
    assert abs(googlenet.total_macs - 1_586e6) <= 12 * 0.5e6
    floor_pooling = generator().googlenet(pooling_rounds_up=False)
    problems = parse_workload({"layers": [{kind: fields} for kind, fields in floor_pooling.layers]})
    assert rounds_to(workload_stats(problems).total_macs, "1.43G")
    assert workload_stats(problems).total_weights == googlenet.total_weights


def test_lenet5_adds_up_to_lecuns_connections_and_parameters() -> None:
    """LeCun et al. (1998) count 340,908 connections and 60,000 trainable parameters
    (the table's 341k and 60k); the zoo counts the MACs and weights of the conv and FC
    layers only: add a connection per bias and the subsampling layers S2 and S4 (4 inputs
    and a bias per output, a coefficient and a bias per map), and leave out the output
    layer's RBF centres, which are fixed, not trained."""
    lenet = stats("lenet5")
    outputs = {layer.name: layer for layer in load_workload("lenet5")}
    biases = {name: p.bounds["M"] for name, p in outputs.items() if name != "output"}
    bias_connections = sum(p.tensor_size(p.output) for name, p in outputs.items() if name != "output")
    s2_outputs, s4_outputs = 6 * 14 * 14, 16 * 5 * 5
    subsampling_connections = 5 * (s2_outputs + s4_outputs)
    subsampling_parameters = 2 * (6 + 16)
    rbf_centres = 84 * 10
    assert lenet.total_macs + bias_connections + subsampling_connections == 340_908
    assert lenet.total_weights + sum(biases.values()) + subsampling_parameters - rbf_centres == 60_000
    assert rounds_to(340_908, "341k") and rounds_to(60_000, "60k")


def test_mobilenetv3_large_is_close_to_the_papers_counts() -> None:
    """Howard et al. report 219M multiply-adds and 5.4M parameters, with batch norm and
    biases and without saying what else; the conv and FC layers alone are within 1.5%."""
    mobilenet = stats("mobilenetv3-large")
    assert abs(mobilenet.total_macs / 219e6 - 1) < 0.015
    assert abs(mobilenet.total_weights / 5.4e6 - 1) < 0.015


def test_efficientnet_b4_counts_squeeze_and_excitation() -> None:
    efficientnet = stats("efficientnet-b4")
    se = [layer for layer in efficientnet.layers if "_se_" in layer.name]
    assert len(se) == 2 * 32  # two FC layers in each of the 32 blocks
    assert all(layer.macs == layer.weights for layer in se)  # FC on the pooled channels


def test_bert_base_layer() -> None:
    """Q, K, V and output projections (4 T H^2), attention (2 T^2 H), FFN (2 T H F)."""
    tokens, hidden, ffn = 512, 768, 3072
    bert = stats("bert-base")
    assert [layer.name for layer in bert.layers] == [
        "q_projection", "k_projection", "v_projection", "attention_scores", "attention_values",
        "output_projection", "ffn_up", "ffn_down"]
    assert bert.total_macs == 4 * tokens * hidden**2 + 2 * tokens**2 * hidden + 2 * tokens * hidden * ffn
    # the attention matmuls multiply two activations: no trained weights
    assert bert.total_weights == 4 * hidden**2 + 2 * hidden * ffn
    assert [layer.weights for layer in bert.layers[3:5]] == [0, 0]


@pytest.mark.parametrize("build", generator().NETWORKS, ids=lambda build: build.__name__)
def test_shipped_workloads_are_what_the_generator_writes(build) -> None:
    network = build()
    assert (WORKLOADS / network.file).read_text() == network.yaml()


# --- batch


def test_batch_scales_macs_not_weights() -> None:
    one, sixteen = stats("alexnet"), stats("alexnet", batch=16)
    assert sixteen.total_macs == 16 * one.total_macs
    assert sixteen.total_weights == one.total_weights
    assert all(p.bounds["N"] == 16 for p in load_workload("alexnet", batch=16))
    (conv3,) = load_workload("alexnet-conv3", batch=4)  # a file of one `problem`
    assert conv3.bounds["N"] == 4


def test_batch_of_a_transformer_batches_tokens_and_attention() -> None:
    layers = {p.name: p for p in load_workload("bert-base", batch=2)}
    assert layers["q_projection"].bounds["B"] == 2 and "B" not in layers["q_projection"].tensor("Weights").dims
    assert layers["attention_scores"].bounds["B"] == 2 * 12
    assert stats("bert-base", batch=2).total_weights == stats("bert-base").total_weights


def test_batch_of_an_einsum_is_an_error() -> None:
    einsum = {"name": "e", "dimensions": {"K": 4}, "tensors": [
        {"name": "A", "ranks": ["K"]}, {"name": "Z", "ranks": ["K"], "read_write": True}]}
    with pytest.raises(SpecError, match="einsum layer"):
        parse_workload({"layers": [einsum]}, batch=2)


# --- the command


def test_stats_command_prints_the_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "alexnet.json"
    assert main(["stats", "alexnet", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fc6" in printed and "N1 M96 C3 P55 Q55 R11 S11" in printed
    assert "724,406,816" in printed and "2,897,627,264" in printed
    data = json.loads(out.read_text())
    assert set(data) == {"layers", "total_macs", "total_weights", "worst_case_dram_accesses", "graph"}
    assert data["layers"][0] == {"name": "conv1", "macs": 105_415_200, "weights": 34_848}
    assert data["total_macs"] == sum(layer["macs"] for layer in data["layers"])
    assert data["worst_case_dram_accesses"] == 4 * data["total_macs"]
    assert [p.name for p in tmp_path.iterdir()] == ["alexnet.json"]  # no temporary file left


def test_stats_command_rejects_what_is_not_a_workload(capsys: pytest.CaptureFixture) -> None:
    assert main(["stats", "alexnt"]) == 2
    assert "did you mean 'alexnet'?" in capsys.readouterr().err
    assert main(["stats", "arch/eyeriss"]) == 2
    assert "no problem or workload" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["stats", "alexnet", "--batch", "0"])
    assert exit_.value.code == 2 and "allowed: a positive integer" in capsys.readouterr().err
