"""Names from specs used as file names, and storage URLs shown to people.

Layer and experiment names come from user files (or an ONNX model): one written
`../../etc/x` or `conv/3x3` must not put an output outside the output folder, and
two layers must not end up in one file. A storage URL (`postgresql://user:secret@
host/db`) must not show its password in a message or a log.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
_UNSAFE_CHARACTER = re.compile(r"[^A-Za-z0-9_.-]")
# Names Windows refuses for a file whatever the extension.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_HASH_LENGTH = 16  # hex digits of SHA-256: 64 bits, collisions out of reach
MIN_LENGTH = 1 + 1 + _HASH_LENGTH  # one character, '~' and the hash
MASK = "***"


def safe_file_name(name: str, max_length: int = 100) -> str:
    """A file name (no directory part) for `name`, unique per name.

    A name of letters, digits, '_', '.' and '-' that does not start with a dot,
    is not a Windows device name and fits in `max_length` is kept as it is. Any
    other name is cleaned (other characters become '_', leading dots go, the length
    is cut) and gets '~' and a hash of the original name: names kept as they are
    never contain '~', and different names get different hashes, so two names never
    share a file. Leave room in `max_length` for a suffix such as '.json'.
    """
    if max_length < MIN_LENGTH:
        raise ValueError(f"max_length must be at least {MIN_LENGTH}, got {max_length}")
    if _is_safe_as_is(name, max_length):
        return name
    cleaned = _UNSAFE_CHARACTER.sub("_", name).lstrip(".") or "_"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LENGTH]
    return f"{cleaned[: max_length - 1 - _HASH_LENGTH]}~{digest}"


def _is_safe_as_is(name: str, max_length: int) -> bool:
    return (_SAFE.fullmatch(name) is not None and not name.startswith(".") and len(name) <= max_length
            and name.split(".")[0].upper() not in _RESERVED)


def file_in(folder: str | Path, name: str, suffix: str = "") -> Path:
    """The path of the output for `name` inside `folder`, e.g. file_in(out, layer,
    ".json"): always a direct child of `folder`."""
    folder = Path(folder)
    path = folder / (safe_file_name(name) + suffix)
    if path.parent != folder or path.name in ("", ".", ".."):
        raise ValueError(f"suffix {suffix!r} would put the file outside {folder}")
    return path


def mask_password(url: str) -> str:
    """The URL with its password replaced by '***': in the user information
    (`scheme://user:password@host`) and in query parameters such as `password=`.

    The password is taken to end at the last '@', so a password with an unencoded
    '@' or '/' is masked whole (at worst, more than the password is masked). A URL
    written without its scheme (`user:password@host/db`, a mistake an error message
    then quotes) is masked alike.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    user_end = rest.rfind("@")
    if user_end >= 0:
        username, colon, _ = rest[:user_end].partition(":")
        if colon and "/" not in username:
            rest = f"{username}:{MASK}{rest[user_end:]}"
    rest = re.sub(r"(?i)([?&;](?:password|passwd|pwd|pass)=)[^&;#]*", rf"\g<1>{MASK}", rest)
    return f"{scheme}{separator}{rest}"


def masked_command(argv: Sequence[str]) -> str:
    """A command line as shell words, the password of every URL in it masked word by
    word: a password may hold a space, where a URL in running text (mask_passwords)
    is taken to end."""
    return shlex.join(mask_password(word) for word in argv)


def mask_passwords(text: str) -> str:
    """Any message with the password of every URL in it masked (see mask_password),
    e.g. an error from a database driver that quotes the storage URL."""
    return re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", lambda m: mask_password(m.group(0)), text)
