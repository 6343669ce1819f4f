"""Mutations of spec files, and the check that the CLI meets them with a result or a
clear error. Shared by tests/test_fuzz_specs.py (a fixed corpus) and
benchmarks/fuzz_specs.py (a longer random fuzz).

A mutation rewrites one file of a set that `mapper evaluate` is given: either its
YAML tree (a key deleted, a value of the wrong type or out of range, a name no other
part knows, a list item duplicated, a list emptied or reversed, a node replaced by
its own ancestor, an alias bomb) or its text (truncated, junk inserted, a key
repeated, deep nesting, a Python tag, binary bytes, other encodings). Whatever the
mutant, the CLI must exit 0, or exit 2 with a single 'error: ' line that names a
file it was given, within a time limit: never a traceback, never a hang.
"""

from __future__ import annotations

import contextlib
import copy
import io
import random
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mapper.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
TIMELOOP_CASE = Path(__file__).resolve().parent / "data" / "timeloop-conv1d-p8.yaml"


@dataclass(frozen=True)
class Seed:
    """A set of files the CLI evaluates together, one of which gets mutated."""

    name: str
    files: tuple[Path, ...]
    target: int  # index in `files` of the file to mutate
    table: Path | None = None  # an energy table to copy beside the mutated files

    def target_file(self) -> Path:
        return self.files[self.target] if self.target >= 0 else self.table


def seeds() -> list[Seed]:
    """The shipped specs (each file of a full evaluation, an architecture with a
    multi-layer workload, an energy table) and a Timeloop case input."""
    arch, conv, mapping = SPECS / "arch/toy-3level.yaml", SPECS / "workloads/tiny-conv.yaml", \
        SPECS / "mappings/toy-3level-tiny-conv.yaml"
    toy = (arch, conv, mapping)
    found = [Seed(f"toy-{part}", toy, i) for i, part in enumerate(("arch", "workload", "mapping"))]
    found.append(Seed("toy-energy-table", toy, -1, SPECS / "energy/eyeriss-normalized.yaml"))
    found.append(Seed("eyeriss-alexnet-arch", (SPECS / "arch/eyeriss.yaml", SPECS / "workloads/alexnet.yaml"), 0))
    found.append(Seed("eyeriss-alexnet-workload", (SPECS / "arch/eyeriss.yaml", SPECS / "workloads/alexnet.yaml"), 1))
    found.append(Seed("timeloop-case", (TIMELOOP_CASE,), 0))
    return found


# -- mutations of the YAML tree ------------------------------------------------------

NodePath = tuple[Any, ...]  # keys and list indices from the document root


def node_paths(doc: Any, prefix: NodePath = (), seen: set[int] | None = None) -> Iterator[NodePath]:
    """Every node below the root, parents before children; a container reached again
    through an alias (shared or cyclic) is not entered twice."""
    seen = set() if seen is None else seen
    if id(doc) in seen:
        return
    seen.add(id(doc))
    children = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in list(children):
        yield (*prefix, key)
        yield from node_paths(value, (*prefix, key), seen)


def _parent(doc: Any, path: NodePath) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _alias_bomb(depth: int = 9, width: int = 9) -> list:
    """A list that YAML writes in a few lines with anchors and aliases but that holds
    width**depth leaves when walked: it must be rejected, not expanded."""
    node: list = ["lol"] * width
    for _ in range(depth - 1):
        node = [node] * width
    return node


WRONG_VALUES: tuple[Any, ...] = (
    None, True, "text", "", [], {}, [1, 2, 3], {"key": 1}, -1, 0, 1.5, -2.5, 10**30, -(10**30), 2**63,
    float("inf"), float("-inf"), float("nan"), "Bogus", "../../../etc/passwd", "ünïcødé ✓", "1e400", "0x10",
)


def delete(doc: Any, path: NodePath) -> None:
    del _parent(doc, path)[path[-1]]


def replace_with(value: Any) -> Callable[[Any, NodePath], None]:
    def mutate(doc: Any, path: NodePath) -> None:
        _parent(doc, path)[path[-1]] = copy.deepcopy(value)
    mutate.__name__ = f"replace with {value!r}"[:60]
    return mutate


def misspell(doc: Any, path: NodePath) -> None:
    """A name one letter short: an unknown name that a suggestion should catch."""
    parent = _parent(doc, path)
    value = parent[path[-1]]
    parent[path[-1]] = value[:-1] if isinstance(value, str) and len(value) > 1 else f"{value}x"


def duplicate(doc: Any, path: NodePath) -> None:
    """The same list item twice: duplicate names of levels, layers, tensors, loops."""
    parent = _parent(doc, path)
    parent.insert(path[-1], copy.deepcopy(parent[path[-1]]))


def empty(doc: Any, path: NodePath) -> None:
    parent = _parent(doc, path)
    parent[path[-1]] = type(parent[path[-1]])()


def reverse(doc: Any, path: NodePath) -> None:
    """A hierarchy upside down (levels innermost first, mapping entries reversed)."""
    _parent(doc, path)[path[-1]].reverse()


def cycle(doc: Any, path: NodePath) -> None:
    """The node replaced by its parent: a cyclic structure (YAML anchors allow it)."""
    parent = _parent(doc, path)
    parent[path[-1]] = parent


def bomb(doc: Any, path: NodePath) -> None:
    _parent(doc, path)[path[-1]] = _alias_bomb()


def tree_mutations(value: Any) -> list[Callable[[Any, NodePath], None]]:
    """What makes sense for a node holding `value` (beyond delete and replace)."""
    found: list[Callable[[Any, NodePath], None]] = []
    if isinstance(value, str):
        found.append(misspell)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        found += [replace_with(0), replace_with(-value or -1), replace_with(10**12), replace_with(10**30)]
    if isinstance(value, list) and value:
        found += [empty, reverse, cycle]
    if isinstance(value, dict) and value:
        found += [empty, cycle]
    return found


def dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode("utf-8")


# -- mutations of the text -------------------------------------------------------------

def truncate(text: bytes, fraction: float) -> bytes:
    return text[: int(len(text) * fraction)]


def insert(text: bytes, fraction: float, junk: bytes) -> bytes:
    at = int(len(text) * fraction)
    return text[:at] + junk + text[at:]


def repeat_a_key_line(text: bytes) -> bytes:
    """A key written twice in the same mapping (safe_load alone keeps the last one)."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith((b"#", b"-")) and b":" in stripped:
            return b"".join(lines[: i + 1] + [line] + lines[i + 1:])
    return text + text


JUNK: tuple[bytes, ...] = (
    b"\t", b":", b": :", b"[", b"]", b"{", b"}", b"- ", b"&a", b"*a", b"*undefined", b"!!binary x",
    b"!!python/object/apply:os.system ['echo pwned']", b"!Component", b"%YAML 1.1\n---\n", b"\n---\n",
    b"\x00", b"\xff\xfe", b"\xc3\x28", b"'", b'"', b"\\", b"? ", b"|", b">", b"@", b"`", b"\n  - x\n",
    b"\n key: : value\n", b"\n  \t- y\n",
)


# Deeper than the YAML parser's recursion can go; the same for any file, and slow to
# parse (about a second each), so tried once rather than per seed.
NESTING: tuple[tuple[str, bytes], ...] = (
    ("deep flow nesting", b"a: " + b"[" * 5_000 + b"]" * 5_000 + b"\n"),
    ("deep block nesting", b"".join(b"  " * i + b"k:\n" for i in range(1500)) + b"  " * 1500 + b"1\n"),
)


def text_corpus(text: bytes) -> list[tuple[str, bytes]]:
    """Fixed text mutants of one file."""
    found = [(f"truncated at {f:.0%}", truncate(text, f)) for f in (0.0, 0.1, 0.33, 0.5, 0.77, 0.95)]
    found += [(f"{junk!r} inserted at {f:.0%}", insert(text, f, junk))
              for k, junk in enumerate(JUNK) for f in ((0.13 + 0.29 * k) % 1.0,)]
    found += [
        ("a key line repeated", repeat_a_key_line(text)),
        ("a python tag", b"problem: !!python/object/apply:os.system ['echo pwned']\n"),
        ("a python name tag", b"problem: !!python/name:os.system\n"),
        ("only a comment", b"# nothing here\n"),
        ("a lone scalar", b"42\n"),
        ("a lone list", b"- a\n- b\n"),
        ("utf-16", text.decode("utf-8", "replace").encode("utf-16")),
        ("latin-1 bytes", "name: café\n".encode("latin-1")),
        ("NUL bytes", b"\x00" * 64),
        ("random bytes", random.Random(6).randbytes(512)),
        ("a very long key", b"k" * 200_000 + b": 1\n"),
        ("many documents", text + b"\n---\n" + text),
    ]
    return found


# -- running the CLI -------------------------------------------------------------------

class Hang(Exception):
    """The CLI used more than its time limit."""


# A hang is judged by the CPU time the CLI uses, not by the clock, so that a busy
# machine (the suite shares its cores) never turns a slow answer into a "hang"; the
# wall-clock limit, this many times longer, only catches a wait that uses no CPU.
WALL_CLOCK_FACTOR = 30


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """At most `seconds` of this process's CPU time (ITIMER_PROF) and
    WALL_CLOCK_FACTOR times that of wall-clock time."""
    def expire(signum: int, frame: object) -> None:
        raise Hang(f"no answer within {seconds} s of CPU time" if signum == signal.SIGPROF else
                   f"no answer within {seconds * WALL_CLOCK_FACTOR} s")

    previous = {s: signal.signal(s, expire) for s in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds * WALL_CLOCK_FACTOR)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in previous.items():
            signal.signal(s, handler)


@dataclass(frozen=True)
class Outcome:
    loaded: bool  # exit 0
    error: str  # the message of exit 2, '' when loaded
    problem: str  # why the answer is unacceptable, '' when it is fine


def run_cli(args: list[str], files: list[Path], seconds: float = 10.0) -> Outcome:
    """Run `mapper ARGS` in-process; judge its answer."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with time_limit(seconds), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    except Hang as hang:
        return Outcome(False, "", str(hang))
    except BaseException as error:  # noqa: BLE001 - any escape from main is what we look for
        return Outcome(False, "", f"{type(error).__name__} escaped the CLI: {str(error)[:300]}")
    message = err.getvalue()
    if code == 0:
        return Outcome(True, "", "")
    if code != 2:
        return Outcome(False, message, f"exit status {code}")
    lines = message.rstrip("\n").split("\n")
    if len(lines) != 1 or not lines[0].startswith("error: "):
        return Outcome(False, message, "not a single 'error: ' line")
    if not any(lines[0].startswith(f"error: {f}") for f in files):
        return Outcome(False, message, "the message does not start with the name of a file it was given")
    if "Traceback" in message:
        return Outcome(False, message, "a traceback")
    return Outcome(False, lines[0], "")


def evaluate_mutant(seed: Seed, content: bytes, workdir: Path, seconds: float = 10.0) -> Outcome:
    """Write the mutant of the seed's target file into `workdir` and evaluate the set."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = [Path(f) for f in seed.files]
    if seed.table is not None:  # the architecture names the table: a copy beside it is found first
        files[0] = workdir / seed.files[0].name
        shutil.copyfile(seed.files[0], files[0])
        (workdir / seed.table.name).write_bytes(content)
        involved = files + [workdir / seed.table.name]
    else:
        files[seed.target] = workdir / seed.files[seed.target].name
        files[seed.target].write_bytes(content)
        involved = files
    return run_cli(["evaluate", *map(str, files)], involved, seconds)


def tree_corpus(doc: Any, per_kind: int | None = None) -> list[tuple[str, bytes]]:
    """Fixed tree mutants of one document: at every node, delete it and put a wrong
    value in its place (taken in turn from WRONG_VALUES), plus the mutations that fit
    its kind (zero, negative and huge numbers; misspelt names; emptied, reversed and
    cyclic containers); at every list item, a duplicate; under each top-level key, an
    alias bomb. With `per_kind`, at most that many of each kind of mutation, spread
    evenly over the document."""
    by_kind: dict[str, list[tuple[NodePath, Callable[[Any, NodePath], None]]]] = {}
    for k, path in enumerate(node_paths(doc)):
        value = _parent(doc, path)[path[-1]]
        mutations = [delete, replace_with(WRONG_VALUES[k % len(WRONG_VALUES)]), *tree_mutations(value)]
        if isinstance(path[-1], int):
            mutations.append(duplicate)
        if len(path) == 2:
            mutations.append(bomb)
        for mutate in mutations:
            kind = mutate.__name__ if not mutate.__name__.startswith("replace") else f"replace-{k % 2}"
            by_kind.setdefault(kind, []).append((path, mutate))
    found: list[tuple[str, bytes]] = []
    for chosen in by_kind.values():
        if per_kind is not None and len(chosen) > per_kind:
            chosen = [chosen[round(i * (len(chosen) - 1) / (per_kind - 1))] for i in range(per_kind)]
        for path, mutate in chosen:
            mutant = copy.deepcopy(doc)
            mutate(mutant, path)
            found.append((f"{mutate.__name__} at {'.'.join(map(str, path))}", dump(mutant)))
    return found


def random_mutant(text: bytes, rng: random.Random, rounds: int) -> tuple[str, bytes]:
    """`rounds` random mutations in a row, on the tree or on the text."""
    names = []
    for _ in range(rounds):
        doc = _safe_parse(text)
        paths = list(node_paths(doc)) if isinstance(doc, (dict, list)) else []
        if paths and rng.random() < 0.75:
            path = rng.choice(paths)
            value = _parent(doc, path)[path[-1]]
            options = [delete, replace_with(rng.choice(WRONG_VALUES)), replace_with(_random_number(rng)),
                       *tree_mutations(value)]
            if isinstance(path[-1], int):
                options.append(duplicate)
            mutate = rng.choice(options)
            mutate(doc, path)
            text = dump(doc)
            names.append(f"{mutate.__name__} at {'.'.join(map(str, path))}")
        else:
            name, text = rng.choice(_random_text_mutations(text, rng))
            names.append(name)
    return "; ".join(names), text


def _random_number(rng: random.Random) -> int | float:
    return rng.choice([rng.randint(-3, 3), rng.randint(1, 10**6), 10 ** rng.randint(7, 40), rng.uniform(-5, 5)])


def _random_text_mutations(text: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    at = rng.random()
    junk = rng.choice(JUNK) if rng.random() < 0.8 else rng.randbytes(rng.randint(1, 16))
    return [("truncated", truncate(text, at)), (f"{junk!r} inserted", insert(text, at, junk)),
            ("a key line repeated", repeat_a_key_line(text)),
            ("random bytes", rng.randbytes(rng.randint(0, 256)))]


def _safe_parse(text: bytes) -> Any:
    """The tree of a text, or None when an earlier mutation broke it (then only text
    mutations apply)."""
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None
