"""The `mapper` command. The only module that prints."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from .model.capacity import violations
from .model.reference import evaluate_reference
from .report import counts_table, loop_nest, totals
from .specs.errors import SpecError
from .specs.load import load_specs


def write_json_atomically(path: Path, data: dict) -> None:
    """Never leave a half-written result behind: write beside it, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def cmd_evaluate(args: argparse.Namespace) -> int:
    specs = load_specs(args.files)
    missing = [name for name, part in (("a problem", specs.problems), ("an architecture", specs.architecture),
                                       ("a mapping", specs.mapping)) if not part]
    if missing:
        raise SpecError(", ".join(args.files), "", "no " + " and no ".join(m.split(" ", 1)[1] for m in missing),
                        "files that together give a problem, an architecture and a mapping")
    problem, arch, mapping = specs.problems[0], specs.architecture, specs.mapping
    reasons = violations(problem, arch, mapping)
    if reasons:
        raise SpecError(", ".join(args.files), "mapping", "a mapping that does not fit: " + "; ".join(reasons),
                        "tiles within each level's capacity and spatial factors within each fan-out")
    ev = evaluate_reference(problem, arch, mapping)
    print(loop_nest(problem, arch, mapping))
    print()
    print(counts_table(ev))
    print()
    print(totals(ev))
    if args.json:
        write_json_atomically(Path(args.json), ev.to_json())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mapper", description="Dataflow mapping of DNN layers onto spatial accelerators.")
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="evaluate one mapping (native or Timeloop YAML, merged)")
    ev.add_argument("files", nargs="+")
    ev.add_argument("--json", metavar="PATH", help="write the stats as JSON")
    ev.set_defaults(run=cmd_evaluate)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
