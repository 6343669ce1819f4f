"""Security: names from specs become file names inside the output folder and nowhere
else, one file per name; storage URLs never show their password; the package reads
YAML with the safe loader only and evaluates nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.safe_names import MIN_LENGTH, file_in, mask_password, mask_passwords, masked_command, safe_file_name
from mapper.search.storage import storage_error

PACKAGE = Path(__file__).resolve().parents[1] / "mapper"


# -- file names ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["conv1", "resnet50.layer1.0.conv2", "fc_8-out", "Block_3"])
def test_a_plain_name_is_kept_as_it_is(name: str) -> None:
    assert safe_file_name(name) == name


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/path", "conv/3x3", "a\\b", "..", ".", "", ".hidden",
                                  "~user", "CON", "nul.txt", "name with spaces", "ünïcødé", "a\x00b", "x" * 500])
def test_any_other_name_is_cleaned_and_tagged(name: str) -> None:
    safe = safe_file_name(name)
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not safe.startswith(".") and safe not in ("", ".", "..")
    assert len(safe) <= 100 and "~" in safe


def test_names_that_clean_alike_get_different_files() -> None:
    names = ["conv/1", "conv\\1", "conv 1", "conv:1", "conv_1"]
    assert len({safe_file_name(n) for n in names}) == len(names)
    assert safe_file_name("conv_1") == "conv_1"


def test_a_long_name_is_cut_and_stays_unique() -> None:
    a, b = "L" * 300 + "a", "L" * 300 + "b"
    assert len(safe_file_name(a, 40)) == 40 and safe_file_name(a, 40) != safe_file_name(b, 40)


def test_the_length_bound_leaves_room_for_the_hash() -> None:
    with pytest.raises(ValueError):
        safe_file_name("x", MIN_LENGTH - 1)


@settings(max_examples=300)
@given(st.lists(st.text(max_size=30), unique=True, max_size=8))
def test_every_name_lands_in_the_folder_under_its_own_file(tmp_path_factory, names: list[str]) -> None:
    folder = tmp_path_factory.getbasetemp() / "out"
    paths = [file_in(folder, name, ".json") for name in names]
    assert all(p.parent == folder and p.resolve().parent == folder.resolve() for p in paths)
    assert len(set(paths)) == len(paths)


def test_a_suffix_cannot_leave_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        file_in(tmp_path, "conv1", "/../../x")


# -- storage URLs -------------------------------------------------------------------

@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
    ("postgresql+psycopg2://mapper:s3cr%40t@db.example:5432/jobs?sslmode=require",
     "postgresql+psycopg2://mapper:***@db.example:5432/jobs?sslmode=require"),
    ("postgresql://user:p@ss/w:rd@host/db", "postgresql://user:***@host/db"),
    ("postgresql://:secret@host/db", "postgresql://:***@host/db"),
    ("postgresql://host/db?user=u&password=secret&x=1", "postgresql://host/db?user=u&password=***&x=1"),
    ("postgresql://user@host/db", "postgresql://user@host/db"),
    ("postgresql://host:5432/db", "postgresql://host:5432/db"),
    ("sqlite:///results/study.db", "sqlite:///results/study.db"),
    ("postgresql://mapper:my secret@host/db", "postgresql://mapper:***@host/db"),
    ("user:secret@host/db", "user:***@host/db"),  # the scheme left out: a mistake an error quotes
    ("specs/arch/a:b@c.yaml", "specs/arch/a:b@c.yaml"),
    ("not a url", "not a url"),
])
def test_the_password_of_a_storage_url_is_masked(url: str, shown: str) -> None:
    assert mask_password(url) == shown


def test_every_url_in_a_message_is_masked() -> None:
    message = ("could not connect to 'postgresql://a:one@h1/db' (fallback mysql://b:two@h2/db): "
               "password authentication failed")
    masked = mask_passwords(message)
    assert "one" not in masked and "two" not in masked
    assert masked == ("could not connect to 'postgresql://a:***@h1/db' (fallback mysql://b:***@h2/db): "
                      "password authentication failed")


def test_a_command_line_is_masked_word_by_word_a_password_with_a_space_too() -> None:
    argv = ["mapper", "search", "a.yaml", "--storage", "postgresql://mapper:my secret@h/db", "-o", "out dir"]
    assert masked_command(argv) == "mapper search a.yaml --storage 'postgresql://mapper:***@h/db' -o 'out dir'"
    assert "secret" not in masked_command(["mapper", "--storage=mysql://u:my secret@h/db"])


def test_a_storage_url_that_cannot_be_parsed_is_said_so_in_one_line() -> None:
    """A stray bracket makes urllib raise; the message still masks the password."""
    said = storage_error("postgresql://user:secret@db]:5432/db", ValueError("Invalid IPv6 URL"))
    assert "secret" not in str(said) and "Invalid IPv6 URL" in str(said)


# -- nothing from a file is evaluated ------------------------------------------------

def calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                f"{getattr(func.value, 'id', '?')}.{func.attr}" if isinstance(func, ast.Attribute) else "?")
            found.append((name, node))
    return found


def test_the_package_reads_yaml_safely_and_evaluates_nothing() -> None:
    forbidden = {"eval", "exec", "compile", "__import__", "yaml.load", "yaml.load_all", "yaml.full_load",
                 "yaml.unsafe_load", "yaml.full_load_all", "yaml.unsafe_load_all", "pickle.load", "pickle.loads",
                 "marshal.loads", "os.system"}
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, call in calls(ast.parse(path.read_text(), str(path))):
            loaders = [k.value for k in call.keywords if k.arg == "Loader"]
            if name in forbidden or any(ast.unparse(v) != "yaml.SafeLoader" for v in loaders):
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{call.lineno}: {ast.unparse(call)[:80]}")
    assert not offences, offences
