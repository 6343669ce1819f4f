"""A network of four small shapes (mm_d has mm_a's) on a small architecture, each
searched in a few seconds, and helpers to run `mapper` in its own process: for the
tests that stop, kill or share searches between processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

ARCH = {"name": "small", "levels": [
    {"name": "DRAM", "size": "unbounded", "energy": {"read": 200, "write": 200},
     "read_bandwidth": 1, "write_bandwidth": 1},
    {"name": "Buffer", "size": 32, "energy": {"read": 6, "write": 6}, "fanout": 2, "network_energy": 2},
    {"name": "Register", "size": 4, "energy": {"read": 1, "write": 1}}], "compute": {"energy": 1}}
NETWORK = {"name": "tiny-net", "layers": [
    {"matmul": {"name": "mm_a", "M": 4, "N": 4, "K": 8}},
    {"matmul": {"name": "mm_b", "M": 8, "N": 4, "K": 4}},
    {"conv": {"name": "conv_c", "C": 2, "M": 4, "P": 4, "Q": 2, "R": 3, "S": 1}},
    {"matmul": {"name": "mm_d", "M": 4, "N": 4, "K": 8}},
    {"linear": {"name": "fc_e", "M": 2, "N": 8, "K": 4}}]}
LAYERS = [next(iter(layer.values()))["name"] for layer in NETWORK["layers"]]
SEARCHED = ["mm_a", "mm_b", "conv_c", "fc_e"]  # the first layer of each shape


def write_specs(folder: Path) -> list[str]:
    """arch.yaml and net.yaml in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "arch.yaml").write_text(yaml.safe_dump({"architecture": ARCH}))
    (folder / "net.yaml").write_text(yaml.safe_dump({"workload": NETWORK}))
    return [str(folder / "arch.yaml"), str(folder / "net.yaml")]


def write_layer(folder: Path, layer: str = "conv_c") -> list[str]:
    """arch.yaml and a file with one layer of the network."""
    spec = next(entry for entry in NETWORK["layers"] if next(iter(entry.values()))["name"] == layer)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "arch.yaml").write_text(yaml.safe_dump({"architecture": ARCH}))
    (folder / "layer.yaml").write_text(yaml.safe_dump({"problem": spec}))
    return [str(folder / "arch.yaml"), str(folder / "layer.yaml")]


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`mapper ARGS` in a process of its own, taking Ctrl-C as a terminal's foreground
    job does, even when the tests run in the background (`nohup ... &` makes every
    process below it ignore SIGINT, and mapper keeps ignoring it then). `env`: more
    environment variables."""
    return subprocess.Popen([sys.executable, "-m", "mapper.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    """Its exit code and everything it wrote (the timeout only guards against a hang)."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def best_mappings(folder: Path) -> dict[str, list]:
    """Each layer's best mapping, from a network search's output folder."""
    return {name: json.loads((folder / "layers" / name / "best.json").read_text())["mapping"] for name in LAYERS}
