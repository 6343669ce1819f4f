"""Faults a batch job meets, tried against the `mapper` command; a table of outcomes.

    python benchmarks/fault_table.py [--rounds 5] [--seed 0] [-o results/faults]

Every fault is tried in a process of its own, as a user meets it: kills at random
moments (SIGKILL of the process group, SIGKILL of the main process alone, SIGTERM, two
Ctrl-C) then the same command again; two runs started together into one folder; left
over lock files; a torn last journal record; a full file system (a small tmpfs: needs
root and `mount`, else an injected ENOSPC is left to the test suite and the row says
"not tried"); unwritable output paths; hostile specs; small budgets; constraints some
layers cannot take; an ONNX model whose weights file is missing. Each try ends in one
of:

    answer       exit 0 with the answer of a run that met no fault (where one exists)
    clear error  exit 2 (or 130/143 for a signal) with one line per problem, no traceback
    traceback    a Python traceback reached the user
    hang         no exit within the time limit (the process group is then killed)
    data loss    the resumed run failed, or ended with another answer than a run that
                 met no fault, or a secret from another file was printed, or worker
                 processes outlived a killed main process

Writes FOLDER/faults.md and FOLDER/faults.json and prints the table. The README quotes
the totals.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from tiny_network import ARCH, LAYERS, write_layer, write_specs  # noqa: E402

LIMIT = 300  # seconds before a command counts as hung
OUTCOMES = ("answer", "clear error", "traceback", "hang", "data loss")
NETWORK_BUDGET = ["--trials", "40", "--patience", "0", "--seed", "3", "--jobs", "2"]
SECRET = "s3cr3t-password-1234"


@dataclass
class Run:
    code: int | None  # None: hung
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Row:
    fault: str
    outcomes: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def add(self, outcome: str, note: str = "") -> None:
        self.outcomes[outcome] += 1
        if note and outcome not in ("answer", "clear error") and len(self.notes) < 3:
            self.notes.append(note[:300])


def mapper(*args: str, cwd: Path = ROOT, start_only: bool = False) -> subprocess.Popen[str] | Run:
    process = subprocess.Popen([sys.executable, "-m", "mapper.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    return process if start_only else finish(process)


def finish(process: subprocess.Popen[str], limit: float = LIMIT) -> Run:
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        kill_group(process)
        out, err = process.communicate()
        return Run(None, out, err)
    return Run(process.returncode, out, err)


def judged(run: Run, expect_error: bool = False) -> tuple[str, str]:
    """The outcome of a run that needs no answer to compare with."""
    if run.code is None:
        return "hang", run.err[-300:]
    if "Traceback" in run.text:
        return "traceback", run.err[-300:]
    if run.code == 0:
        return ("data loss", "exit 0 where an error was due: " + run.text[-200:]) if expect_error else ("answer", "")
    said = run.err.strip().splitlines()
    if run.code == 2 and len(said) == 1 and "error: " in said[0]:  # "error: ..." or "mapper search: error: ..."
        return "clear error", ""
    return "traceback", f"exit {run.code}, not one error line: {run.err[-300:]}"


def network_answer(folder: Path) -> dict[str, object] | None:
    """Each layer's best mapping and stats, or None when a layer has no answer."""
    answers = {}
    for name in LAYERS:
        best = folder / "layers" / name / "best.json"
        if not best.is_file():
            return None
        data = json.loads(best.read_text())
        answers[name] = (data["mapping"], data["energy_pJ"], data["cycles"])
    return answers


def resumed(row: Row, args: list[str], out: Path, reference: dict, first: Run | None = None) -> None:
    """Run the same command again; judge by the answer."""
    if first is not None and first.code is None:
        row.add("hang", first.err[-300:])
        return
    if first is not None and "Traceback" in first.text:
        row.add("traceback", first.err[-300:])
        return
    again = mapper(*args)
    if again.code is None:
        row.add("hang", again.err[-300:])
    elif "Traceback" in again.text:
        row.add("traceback", again.err[-300:])
    elif again.code != 0 or network_answer(out) != reference:
        row.add("data loss", f"resume exit {again.code}: {again.err[-300:]}")
    else:
        row.add("answer")


def wait_for_trials(out: Path, process: subprocess.Popen[str], delay: float) -> None:
    """Until the job has written something and `delay` seconds have passed."""
    start = time.monotonic()
    while process.poll() is None and time.monotonic() - start < LIMIT:
        if time.monotonic() - start >= delay and list(out.glob("layers/*/study.journal")):
            return
        time.sleep(0.02)


# -- kills and collisions ------------------------------------------------------------


def killed(row: Row, work: Path, reference: dict, rng: random.Random, rounds: int,
           stop: Callable[[subprocess.Popen[str]], None]) -> None:
    for k in range(rounds):
        out = work / f"{row.fault[:8].replace(' ', '_')}-{k}"
        args = ["search", *write_specs(work / "specs"), "-o", str(out), *NETWORK_BUDGET]
        process = mapper(*args, start_only=True)
        wait_for_trials(out, process, rng.uniform(0.5, 6.0))
        stop(process)
        resumed(row, args, out, reference, finish(process))


def kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # every process of the group has ended


def sigterm(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)


def two_ctrl_c(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(process.pid, signal.SIGINT)


def orphans(row: Row, work: Path, rng: random.Random, rounds: int) -> None:
    """SIGKILL of the main process alone: its workers must not outlive it."""
    for k in range(rounds):
        out = work / f"orphans-{k}"
        process = mapper("search", *write_specs(work / "specs"), "-o", str(out), *NETWORK_BUDGET, start_only=True)
        wait_for_trials(out, process, rng.uniform(0.5, 4.0))
        children = child_pids(process.pid)
        process.kill()
        process.wait()  # not its pipes: live workers would hold them open
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in children if alive(pid)]
        kill_group(process)
        finish(process)
        row.add("data loss" if left else "answer", f"{len(left)} worker processes alive 60 s after the kill")


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def concurrent(row: Row, work: Path, reference: dict, rng: random.Random, rounds: int) -> None:
    """Two identical runs into one folder, started moments apart: one answers, the
    other says the folder is taken; the folder holds the single run's answer."""
    for k in range(rounds):
        out = work / f"concurrent-{k}"
        args = ["search", *write_specs(work / "specs"), "-o", str(out), *NETWORK_BUDGET]
        first = mapper(*args, start_only=True)
        time.sleep(rng.uniform(0.0, 0.5))
        second = finish(mapper(*args, start_only=True))
        first_run = finish(first)
        runs = sorted([first_run, second], key=lambda r: r.code if r.code is not None else 99)
        if any(r.code is None for r in runs):
            row.add("hang")
        elif any("Traceback" in r.text for r in runs):
            row.add("traceback", next(r.err for r in runs if "Traceback" in r.text)[-300:])
        elif network_answer(out) != reference or runs[0].code != 0 or runs[1].code not in (0, 2):
            row.add("data loss", f"exits {[r.code for r in runs]}: {runs[1].err[-200:]}")
        else:
            row.add("answer")


def leftover_journal_lock(row: Row, work: Path, reference: dict) -> None:
    out = work / "lockfile"
    args = ["search", *write_specs(work / "specs"), "-o", str(out), *NETWORK_BUDGET]
    for name in LAYERS:
        (out / "layers" / name).mkdir(parents=True, exist_ok=True)
        (out / "layers" / name / "study.journal.lock").write_text("")
    resumed(row, args, out, reference)


def torn_journal(row: Row, work: Path, reference: dict, rng: random.Random) -> None:
    out = work / "torn"
    args = ["search", *write_specs(work / "specs"), "-o", str(out), *NETWORK_BUDGET]
    process = mapper(*args, start_only=True)
    wait_for_trials(out, process, rng.uniform(1.0, 4.0))
    kill_group(process)
    finish(process)
    for journal in out.glob("layers/*/study.journal"):
        with journal.open("a") as f:
            f.write('{"op_code": 5, "worker_id": "torn", "trial_id"')
    resumed(row, args, out, reference)


# -- file systems ------------------------------------------------------------------


def full_disk(row: Row, work: Path, reference: dict) -> None:
    """A tmpfs too small for the job; then more space, and the same command."""
    mount = work / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
                      capture_output=True, check=False).returncode != 0:
        row.notes.append("not tried: mounting a tmpfs needs root")
        return
    try:
        specs = write_specs(work / "specs")
        args = ["search", *specs, "-o", str(mount / "out"), *NETWORK_BUDGET]
        full = mapper(*args)
        row.add(*judged(full, expect_error=True))
        subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)
        resumed(row, args, mount / "out", reference)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def unwritable(row: Row, work: Path) -> None:
    specs = write_specs(work / "specs")
    layer = write_layer(work / "layer")
    a_file = work / "a-file"
    a_file.write_text("x")
    for args in (["search", *specs, "-o", str(a_file)],
                 ["search", *layer, "-o", str(a_file / "below")],
                 ["search", *layer, "-o", str(a_file), "--trials", "2"],
                 ["evaluate", *(str(ROOT / "specs" / f) for f in ("arch/toy-3level.yaml", "workloads/tiny-conv.yaml",
                                                                  "mappings/toy-3level-tiny-conv.yaml")),
                  "--json", str(work)],
                 ["run", str(ROOT / "specs/experiments/example.yaml"), "-o", str(a_file)]):
        row.add(*judged(mapper(*args), expect_error=True))
    readonly = work / "readonly"
    readonly.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(readonly)],
                      capture_output=True, check=False).returncode == 0:
        try:
            row.add(*judged(mapper("search", *layer, "-o", str(readonly / "out"), "--trials", "2"),
                            expect_error=True))
        finally:
            subprocess.run(["umount", "-l", str(readonly)], check=False)


# -- hostile and mistaken inputs -----------------------------------------------------


def hostile_specs(row: Row, work: Path) -> None:
    """Each must give one clear line, quickly, and never print another file's contents."""
    work.mkdir(parents=True, exist_ok=True)
    layer = write_layer(work / "layer")
    secret = work / "credentials"
    secret.write_text(f"password: {SECRET}\n")
    arch = dict(ARCH, levels=[dict(level) for level in ARCH["levels"]])

    def arch_file(name: str, spec: dict) -> str:
        path = work / name
        path.write_text(yaml.safe_dump({"architecture": spec}))
        return str(path)

    def layer_file(name: str, problem: dict) -> str:
        path = work / name
        path.write_text(yaml.safe_dump({"problem": {"matmul": problem}}))
        return str(path)

    big = work / "big.yaml"
    with big.open("wb") as f:
        f.truncate(50 * 2**20)
    deep = {"name": "deep", "levels": [{"name": f"L{i}", "size": 2**20 - i, "energy": {"read": 1, "write": 1}}
                                       for i in range(202)], "compute": {"energy": 1}}
    deep["levels"][0]["size"] = "unbounded"
    wide = dict(arch, levels=[dict(arch["levels"][0]), dict(arch["levels"][1], fanout=2**20), arch["levels"][2]])
    timeloop = ROOT.parent / "shared/reference/timeloop/cases/t00_conv1d_1level/ref-output/parsed-processed-input.yaml"
    error, either = ("clear error",), ("answer", "clear error")  # either: refusing beyond a stated limit is fine
    cases: list[tuple[list[str], tuple[str, ...]]] = [
        (["evaluate", arch_file("table.yaml", {**arch, "energy_table": str(secret)}), layer[1]], error),
        (["evaluate", str(secret), layer[1]], error),
        (["search", arch_file("huge-energy.yaml", dict(arch, levels=[
            dict(arch["levels"][0], energy={"read": 1e308, "write": 1e308}), *arch["levels"][1:]])), layer[1]], error),
        (["search", layer[0], str(big)], error),
        (["search", layer[0], "/dev/zero"], error),
        (["search", layer[0], layer_file("bound.yaml", {"name": "big", "M": 2**62, "N": 1, "K": 1}), "--trials", "2"],
         either),
        (["search", arch_file("deep.yaml", deep), layer[1], "--trials", "2"], either),
        (["search", arch_file("wide.yaml", wide), layer[1], "--trials", "2"], either),
        (["search", *layer, "--time", "nan"], error),
        (["search", *layer, "--seed", "-1"], error),
        (["search", *layer, "--trials", "0"], error),
        *([(["evaluate", str(timeloop)], error)] if timeloop.is_file() else []),
    ]
    for k, (args, allowed) in enumerate(cases):
        run = mapper(*args, *(["-o", str(work / f"out-{k}")] if args[0] == "search" else []))
        outcome, note = judged(run)
        if SECRET in run.text:
            row.add("data loss", f"printed the secret: {args}")
        elif outcome == "answer" and outcome not in allowed:
            row.add("data loss", f"accepted: {args}: {run.out[-200:]}")
        else:
            row.add(outcome, note)


def small_budgets(row: Row, work: Path) -> None:
    """A mappable layer is never called unmappable for want of trials."""
    for k, arch in enumerate(("eyeriss-like", "simba-like", "tpu-like")):
        run = mapper("search", str(ROOT / "specs/arch" / f"{arch}.yaml"), str(ROOT / "specs/workloads/alexnet.yaml"),
                     "--trials", "1", "-o", str(work / f"small-{k}"), "--jobs", "2")
        row.add(*judged(run))


def constraints_some_layers_cannot_take(row: Row, work: Path) -> None:
    specs = write_specs(work / "specs")
    constraints = work / "constraints.yaml"
    constraints.write_text(yaml.safe_dump({"constraints": {"levels": {"Buffer": {"x_dims": ["C"]}}}}))
    run = mapper("search", *specs, "--constraints", str(constraints), "-o", str(work / "constrained"),
                 "--trials", "5", "--jobs", "2")
    summary = work / "constrained" / "summary.json"
    if run.code is None or "Traceback" in run.text:
        row.add(*judged(run))
    elif run.code == 2 and summary.is_file() and json.loads(summary.read_text()).get("skipped"):
        row.add("answer")  # the layers it applies to, searched; the others listed as skipped
    else:
        row.add("data loss", f"exit {run.code}, no summary with the skipped layers: {run.err[-200:]}")


def onnx_without_weights(row: Row, work: Path) -> None:
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        row.notes.append("not tried: onnx is not installed")
        return
    import numpy as np
    work.mkdir(parents=True, exist_ok=True)
    weight = numpy_helper.from_array(np.ones((8, 3, 3, 3), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], [weight])
    model = helper.make_model(graph)
    onnx.save_model(model, str(work / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    (work / "weights.bin").unlink()
    row.add(*judged(mapper("import-onnx", str(work / "model.onnx"), "-o", str(work / "model.yaml"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="tries of each kill and collision (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="when the kills come (default 0)")
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "results" / "faults")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mapper-faults-") as tmp:
        work = Path(tmp)
        reference_run = mapper("search", *write_specs(work / "specs"), "-o", str(work / "reference"), *NETWORK_BUDGET)
        assert reference_run.code == 0, reference_run.err
        reference = network_answer(work / "reference")

        def row(fault: str) -> Row:
            rows.append(Row(fault))
            print(f"... {fault}", file=sys.stderr, flush=True)
            return rows[-1]

        killed(row("SIGKILL of the process group, then resume"), work, reference, rng, args.rounds, kill_group)
        killed(row("SIGTERM, then resume"), work, reference, rng, args.rounds, sigterm)
        killed(row("two Ctrl-C, then resume"), work, reference, rng, args.rounds, two_ctrl_c)
        orphans(row("SIGKILL of the main process: no orphan workers"), work, rng, args.rounds)
        concurrent(row("two identical runs into one folder"), work, reference, rng, args.rounds)
        leftover_journal_lock(row("left-over study.journal.lock files"), work, reference)
        torn_journal(row("torn last journal record"), work, reference, rng)
        full_disk(row("full file system, then more space"), work, reference)
        unwritable(row("unwritable outputs (a file as folder, read-only fs)"), work / "unwritable")
        hostile_specs(row("hostile specs and CLI numbers"), work / "hostile")
        small_budgets(row("--trials 1 on mappable networks"), work)
        constraints_some_layers_cannot_take(row("a constraint some layers cannot take"), work / "partial")
        onnx_without_weights(row("ONNX model without its external weights"), work / "onnx")
    write_table(rows, args.out, time.monotonic() - started, args)


def write_table(rows: list[Row], folder: Path, seconds: float, args: argparse.Namespace) -> None:
    totals = Counter()
    for r in rows:
        totals.update(r.outcomes)
    lines = [f"# Faults tried: `python benchmarks/fault_table.py --rounds {args.rounds} --seed {args.seed}`", "",
             "| fault | tried | " + " | ".join(OUTCOMES) + " | notes |",
             "|---|---:|" + "---:|" * len(OUTCOMES) + "---|"]
    for r in rows:
        lines.append(f"| {r.fault} | {sum(r.outcomes.values())} | "
                     + " | ".join(str(r.outcomes[o]) for o in OUTCOMES) + " | " + "; ".join(r.notes).replace("\n", " ")
                     .replace("|", "/") + " |")
    lines.append(f"| **total** | {sum(totals.values())} | " + " | ".join(str(totals[o]) for o in OUTCOMES) + " | |")
    lines += ["", f"{seconds:.0f} s on this machine."]
    text = "\n".join(lines) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "faults.md").write_text(text)
    (folder / "faults.json").write_text(json.dumps(
        {"rounds": args.rounds, "seed": args.seed, "totals": {o: totals[o] for o in OUTCOMES},
         "faults": [{"fault": r.fault, "outcomes": {o: r.outcomes[o] for o in OUTCOMES}, "notes": r.notes}
                    for r in rows]}, indent=1, allow_nan=False))
    print(text, end="")


if __name__ == "__main__":
    main()
