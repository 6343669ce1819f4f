"""Runs stopped in every way a batch job gets stopped, then resumed; and two identical
runs started together into one folder. Prints a table: tried / clear / traceback /
hang / wrong answer.

    python benchmarks/fault_runs.py [--cycles 12] [--folder DIR]

Each cycle starts a `--jobs 2` search of the tests' tiny network in a process group of
its own, stops it after a random 3-12 s with SIGKILL of the whole group, SIGTERM or
SIGINT (in turn), then runs the same command again. A cycle is clear when nothing
printed a traceback, nothing hung (300 s), the resume exited 0 and every layer's best
mapping equals an undisturbed run's. A concurrent pair is clear when one exits 0, the
other 2 (the folder is in use), and the answers equal an undisturbed run's.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tiny_network import best_mappings, write_specs  # noqa: E402

BUDGET = ["--trials", "30", "--patience", "0", "--jobs", "2"]
HANG_SECONDS = 300
STOPS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)


def start(specs: list[str], out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mapper.cli", "search", *specs, *BUDGET, "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(process: subprocess.Popen[str]) -> tuple[int | None, str]:
    """Exit code and output; None for a run that hung (it is killed)."""
    try:
        out, err = process.communicate(timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None, ""
    return process.returncode, out + err


def outcome(results: list[tuple[int | None, str]], answer_ok: bool) -> str:
    if any(code is None for code, _ in results):
        return "hang"
    if any("Traceback" in text for _, text in results):
        return "traceback"
    return "clear" if answer_ok else "wrong answer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=12)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    root = args.folder or Path(tempfile.mkdtemp(prefix="fault-runs-"))
    specs = write_specs(root / "specs")
    code, text = finish(start(specs, root / "whole"))
    assert code == 0, text
    whole = best_mappings(root / "whole")
    rng, table = random.Random(1), {"tried": 0, "clear": 0, "traceback": 0, "hang": 0, "wrong answer": 0}
    for i in range(args.cycles):
        stop, out = STOPS[i % len(STOPS)], root / f"stopped-{i}"
        run = start(specs, out)
        try:
            run.wait(timeout=rng.uniform(3, 12))
        except subprocess.TimeoutExpired:
            if stop == signal.SIGKILL:
                os.killpg(run.pid, stop)  # the main process and its workers at once
            else:
                run.send_signal(stop)
        stopped = finish(run)
        resumed = finish(start(specs, out))
        result = outcome([stopped, resumed], resumed[0] == 0 and best_mappings(out) == whole)
        table["tried"] += 1
        table[result] += 1
        print(f"{signal.Signals(stop).name}: exit {stopped[0]}, resumed: exit {resumed[0]}: {result}", flush=True)
    for i in range(max(1, args.cycles // 3)):
        out = root / f"together-{i}"
        pair = [start(specs, out), start(specs, out)]
        results = [finish(run) for run in pair]
        codes = sorted(code for code, _ in results if code is not None)
        result = outcome(results, codes == [0, 2] and best_mappings(out) == whole)
        table["tried"] += 1
        table[result] += 1
        print(f"two together: exits {codes}: {result}", flush=True)
    print("| " + " | ".join(table) + " |")
    print("|" + "---:|" * len(table))
    print("| " + " | ".join(str(n) for n in table.values()) + " |")


if __name__ == "__main__":
    main()
