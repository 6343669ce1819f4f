"""Where the compiled model kernels are cached: a per-user folder, never the package.

numba caches compiled code beside the source by default (the package's
`__pycache__`). Those files are not in pip's record of the install, so an uninstall
leaves `site-packages/mapper/` behind as a namespace package that shadows a later
editable install ("No module named mapper.model.capacity"). A per-user folder keeps
installs, reinstalls and uninstalls clean; numba names the cache of each source file
by that file's path and checks its timestamp, so several installs never share stale
code.

    MAPPER_CACHE_DIR   the folder (default $XDG_CACHE_HOME/mapper, else ~/.cache/mapper)
    NUMBA_CACHE_DIR    numba's own setting; when given, it wins
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numba

ENVIRONMENT_VARIABLE = "MAPPER_CACHE_DIR"


def cache_folder() -> Path:
    """The folder that MAPPER_CACHE_DIR or the XDG convention names."""
    if os.environ.get(ENVIRONMENT_VARIABLE):
        return Path(os.environ[ENVIRONMENT_VARIABLE])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mapper"


def use_kernel_cache() -> None:
    """Point numba's cache at the per-user folder, unless NUMBA_CACHE_DIR chose one.
    A home that cannot be written (a batch job's read-only home, say) falls back to the
    temporary folder: numba would otherwise fall back to the package's `__pycache__`."""
    if numba.config.CACHE_DIR:
        return
    for folder in (cache_folder() / "numba", Path(tempfile.gettempdir()) / f"mapper-{os.getuid()}" / "numba"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError:
            continue
        numba.config.CACHE_DIR = str(folder)
        return
