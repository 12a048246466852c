"""Fixtures shared by the test files."""

import subprocess
import sys
from pathlib import Path

import pytest

from alexnet_lib import util

from .helpers import cli_env, make_cifar_like

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The book, built once per test session from a clean state, warnings as errors."""
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jb), "build", str(ROOT), "--path-output", str(out), "--all", "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out / "_build" / "html"


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No data anywhere: an empty $ALEXNET_DATA, an empty cwd, and a project folder (for its data/
    and data/sample) without datasets. Returns the empty data root. Checks that it took: no place
    searched for data is inside the real project."""
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("ALEXNET_DATA", str(root))
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ALEXNET_DOWNLOAD", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(util, "PROJECT_ROOT", tmp_path / "project")
    from alexnet_lib.data import data_roots

    assert not [p for _, p in data_roots() if p.resolve().is_relative_to(ROOT)], "the real project is still searched"
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A two-class CIFAR-10 tree (16 train, 16 test images) and the environment of a CLI run that finds
    it, made once per test file: the command-line fault tests' data."""
    base = tmp_path_factory.mktemp("cli-data")
    make_cifar_like(base / "root", per_class=8)
    return base, cli_env(base / "root", base / "cache")
