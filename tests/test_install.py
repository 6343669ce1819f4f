"""Installs leave a working `mapper`: the README's two set-up lines run one after the
other in one virtual environment (`pip install .`, a search, then `pip install -e`),
and the compiled kernels are cached outside the package (mapper/model/kernel_cache.py).

The new environment sees this one's packages through a .pth file, so the test installs
only mapper itself (pip fetches just the build backend, setuptools, as in any install):
what it checks is what pip leaves behind."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from mapper.model import kernel_cache

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES = ("pyproject.toml", "README.md", "mapper")


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def fresh_venv(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A new virtual environment that can import this one's dependencies but has no mapper."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    new_site = Path(run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        tmp_path, dict(os.environ)).stdout.strip())
    (new_site / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "MAPPER_CACHE_DIR": str(tmp_path / "cache"), "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    env.pop("NUMBA_CACHE_DIR", None)
    return venv, env


def test_install_then_editable_install_leaves_a_working_mapper(tmp_path: Path,
                                                               fresh_venv: tuple[Path, dict[str, str]]) -> None:
    venv, env = fresh_venv
    source = tmp_path / "source"
    source.mkdir()
    for name in PACKAGE_FILES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "specs", source / "specs")
    python, mapper = str(venv / "bin" / "python"), str(venv / "bin" / "mapper")
    pip = [python, "-m", "pip", "install", "-q", "--no-deps"]

    run(pip + ["."], source, env)
    run([mapper, "search", "specs/arch/toy-3level.yaml", "specs/workloads/tiny-conv.yaml", "--trials", "2",
         "-o", str(tmp_path / "run")], source, env)
    assert list((tmp_path / "cache" / "numba").rglob("*.nbi")), "the kernels were not cached in MAPPER_CACHE_DIR"
    installed = Path(run([python, "-c", "import mapper, os; print(os.path.dirname(mapper.__file__))"], tmp_path,
                         env).stdout.strip())
    assert not list(installed.rglob("*.nbi")), "numba cached kernels inside the installed package"

    run(pip + ["-e", "."], source, env)
    assert not installed.exists(), f"the uninstall left {installed} behind"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert "usage: mapper" in run([mapper, "--help"], elsewhere, env).stdout
    evaluated = run([mapper, "evaluate", *(str(source / "specs" / f) for f in (
        "arch/toy-3level.yaml", "workloads/tiny-conv.yaml", "mappings/toy-3level-tiny-conv.yaml"))], elsewhere, env)
    assert "energy" in evaluated.stdout


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAPPER_CACHE_DIR", str(tmp_path / "chosen"))
    assert kernel_cache.cache_folder() == tmp_path / "chosen"
    monkeypatch.delenv("MAPPER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernel_cache.cache_folder() == tmp_path / "xdg" / "mapper"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert kernel_cache.cache_folder() == Path.home() / ".cache" / "mapper"
