"""Spec files: found by name, read into YAML, every way they can be unusable a SpecError.

Both formats (mapper/specs/native, mapper/specs/timeloop.py), the constraints and the
experiments read their files here: the checks that keep a hostile file from hanging
or flooding the loader (size, special files, alias bombs, duplicate keys) are made
once, for all of them."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError, did_you_mean, join_key_path
from .limits import MAX_EXPANDED_NODES, MAX_FILE_BYTES


SHIPPED_SPECS = Path(__file__).resolve().parents[2] / "specs"
_SPEC_SUBDIRS = ("arch", "workloads", "mappings", "energy")


@dataclass(frozen=True)
class DocumentKind:
    """What a YAML file is expected to be (`what`: "a spec"), told by its top-level keys.

    A spec can name another file (an energy table, an architecture), and a path to the
    wrong file must not make an error message print that file's content (a credentials
    file, /etc/passwd). So nothing of a file's content appears in an error until the
    file is a mapping with at least one key of its kind (or one so close to a key of
    its kind that it is surely a misspelling); before that, errors say only what the
    file is not."""

    what: str
    keys: tuple[str, ...]


def load_yaml(path: str | Path, kind: DocumentKind) -> dict[str, Any]:
    """Parse one file into a mapping, turning every way it can be unusable into a
    SpecError: missing, unreadable, too large or not a regular file, YAML syntax,
    duplicate keys (which `safe_load` would silently resolve to the last one), a
    non-mapping document, or a mapping with none of the keys of its `kind`."""
    path = Path(path)
    text = _read_text(path)
    # What yaml.safe_load does, in its steps: the node tree is checked before it is
    # built into values, and the text is parsed once (a 16 MiB file in half the time).
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        _reject_alias_bombs(root, path)
        duplicate = _duplicate_key(root, path)  # before building, which merges `<<` keys into the tree
        doc = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as error:
        raise _yaml_error(error, path) from None
    except RecursionError:
        raise SpecError(path, "", "YAML nested too deeply to read", "a spec nested at most a few hundred "
                        "levels deep") from None
    if not isinstance(doc, dict):
        found = "an empty document" if doc is None else f"{_kind_of(doc)}, not a YAML mapping"
        raise SpecError(path, "", found, f"{kind.what}: a mapping with top-level keys such as "
                        + ", ".join(kind.keys[:6]))
    if not any(key in kind.keys or did_you_mean(key, kind.keys) for key in map(str, doc)):
        raise SpecError(path, "", f"a YAML mapping without any top-level key of {kind.what}",
                        f"{kind.what}: a mapping with top-level keys such as " + ", ".join(kind.keys[:6]))
    if duplicate is not None:
        raise duplicate
    return doc


def _read_text(path: Path) -> str:
    """The whole file, refused before reading when it is not a regular file (a FIFO
    or /dev/zero would block or never end) or larger than MAX_FILE_BYTES."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise SpecError(path, "", f"{_file_type(path)}, not a regular file", "a regular YAML file")
        # O_NONBLOCK: should the path become a FIFO after the check, open returns at once.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SpecError(path, "", "a special file, not a regular file", "a regular YAML file")
            if info.st_size > MAX_FILE_BYTES:
                raise SpecError(path, "", f"a file of {info.st_size:,} bytes", f"a spec of at most "
                                f"{MAX_FILE_BYTES:,} bytes (16 MiB)")
            data = f.read(MAX_FILE_BYTES + 1)  # a file growing while read stays bounded
    except FileNotFoundError:
        siblings = [p.name for p in path.parent.glob("*")] if path.parent.is_dir() else []
        raise SpecError(path, "", "no such file", "a path to an existing YAML file",
                        did_you_mean(path.name, siblings)) from None
    except OSError as error:
        raise SpecError(path, "", f"a file that cannot be read ({error.strerror or error})",
                        "a readable UTF-8 YAML file") from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(path, "", "a file that grew past the size limit while read",
                        f"a spec of at most {MAX_FILE_BYTES:,} bytes (16 MiB)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(path, "", f"not a UTF-8 text file (byte {error.start} is not UTF-8)",
                        "a readable UTF-8 YAML file") from None


def _file_type(path: Path) -> str:
    """What a non-regular file is, in words."""
    mode = path.stat().st_mode
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def _kind_of(value: object) -> str:
    """A YAML value's type in words, never its content (module note at DocumentKind)."""
    names = {str: "a string", list: "a list", int: "an integer", float: "a number", bool: "a boolean"}
    return next((name for kind, name in names.items() if type(value) is kind), "a scalar")


def _yaml_error(error: yaml.YAMLError, path: Path) -> SpecError:
    """Say where the YAML syntax breaks, in the editor-friendly file:line:column form.
    PyYAML's messages quote the file (a snippet of the line, an alias or tag name):
    the file may not be a spec at all, so only the problem's wording is kept, with its
    quoted names dropped, and the position."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or type(error).__name__
    hint = None
    if isinstance(error, yaml.constructor.ConstructorError) and "tag" in problem:
        hint = ("YAML tags (!Component, ...) belong to Timeloop v0.4 input files, which its front end turns into "
                "one plain YAML file: pass the parsed-processed-input.yaml Timeloop wrote (with its ERT.yaml)")
    if isinstance(error, yaml.reader.ReaderError):
        code = error.character if isinstance(error.character, int) else ord(error.character)
        problem = f"unacceptable character #x{code:04x}: {error.reason}, at offset {error.position}"
    return SpecError(
        path, "", f"invalid YAML ({_QUOTED_CONTENT.sub('', problem).strip()})", "YAML syntax", hint,
        line=None if mark is None else mark.line + 1,
        column=None if mark is None else mark.column + 1,
    )


# PyYAML quotes content of the file in 'single' or "double" quotes; its own token
# names ('<block end>') and the one offending character ('%') say nothing of it.
_QUOTED_CONTENT = re.compile(r"""\s*(?:'(?!<)[^']{2,}'|"(?!<)[^"]{2,}")""")


def _reject_alias_bombs(root: yaml.Node | None, path: Path) -> None:
    """Aliases let a few lines describe a tree of billions of nodes, or one that
    contains itself; everything after loading walks the tree as if expanded, so such
    a document would hang the loader. Count the expanded size without expanding."""
    size: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [] if root is None else [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _child_nodes(node)
        if children_done:
            ancestors.discard(id(node))
            size[id(node)] = 1 + sum(size[id(child)] for child in children)
            if size[id(node)] > MAX_EXPANDED_NODES:
                raise SpecError(path, "", f"aliases that expand to more than {MAX_EXPANDED_NODES} nodes",
                                "aliases of a reasonable size", line=node.start_mark.line + 1,
                                column=node.start_mark.column + 1)
            continue
        if id(node) in size:
            continue
        ancestors.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in ancestors:
                raise SpecError(path, "", "an alias inside the node it names (a cyclic structure)",
                                "aliases of nodes defined before and outside them",
                                line=child.start_mark.line + 1, column=child.start_mark.column + 1)
            if id(child) not in size:
                stack.append((child, False))


def _child_nodes(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _duplicate_key(root: yaml.Node | None, path: Path) -> SpecError | None:
    """A key written twice in one mapping is a mistake (a dimension declared twice,
    a level configured twice), so the error that reports it, instead of keeping the
    last value (None: each key once)."""
    stack: list[tuple[yaml.Node, str]] = [] if root is None else [(root, "")]
    visited: set[int] = set()
    while stack:
        node, key_path = stack.pop()
        if id(node) in visited:  # an alias of an anchor already checked
            continue
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, f"{key_path}[{i}]") for i, child in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in first_line and key_node.tag != "tag:yaml.org,2002:merge":
                    return SpecError(path, join_key_path(key_path, [key]), f"the key {key!r} a second time "
                                     f"(first on line {first_line[key]})", "each key once per mapping",
                                     line=line, column=key_node.start_mark.column + 1)
                first_line.setdefault(key, line)
                stack.append((value_node, join_key_path(key_path, [key])))
    return None


def shipped_specs_dir() -> Path:
    """The repository's specs/ when running from a checkout (editable install), else
    ./specs: the shipped specs are files of the repository, not package data."""
    return SHIPPED_SPECS if SHIPPED_SPECS.is_dir() else Path.cwd() / "specs"


def is_file_or_special(path: Path) -> bool:
    """A path meant as a file: a device or a FIFO too, which `load_yaml` then refuses
    by name rather than as missing."""
    return path.exists() and not path.is_dir()


def find_spec_file(name: str | Path) -> Path:
    """A spec named on the command line: a path as given, else a shipped spec such as
    `eyeriss` or `arch/eyeriss` (the .yaml suffix may be left out)."""
    path = Path(name)
    if is_file_or_special(path):
        return path
    root = shipped_specs_dir()
    for directory in (root, *(root / sub for sub in _SPEC_SUBDIRS)):
        for candidate in (directory / path, directory / f"{path}.yaml"):
            if candidate.is_file():
                return candidate
    shipped = sorted(str(p.relative_to(root).with_suffix("")) for p in root.glob("*/*.yaml"))
    raise SpecError(path, "", "a directory" if path.is_dir() else "no such file, nor a shipped spec of that name",
                    "a path to a YAML file, or a shipped spec: " + ", ".join(shipped),
                    did_you_mean(path.with_suffix("").name, [Path(s).name for s in shipped] + shipped))
