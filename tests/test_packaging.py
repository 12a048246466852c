"""Versions: exact pins in constraints.txt, mirrored by environment.yml and binder/; compatible
ranges in pyproject.toml, so that installing the library keeps an environment's own torch."""

import json
import subprocess
import sys

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

from .helpers import ROOT


def pins(lines) -> dict:
    """{name: version} of the `name==version` lines, names normalised."""
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==")
            out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


CONSTRAINTS = pins((ROOT / "constraints.txt").read_text().splitlines())


def declared() -> list:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_every_dependency_is_pinned_and_the_pin_is_in_its_range():
    for req in declared():
        name = req.name.lower()
        assert name in CONSTRAINTS, f"{name} has no pin in constraints.txt"
        assert req.specifier.contains(CONSTRAINTS[name]), f"{name}=={CONSTRAINTS[name]} is outside {req.specifier}"
        assert "==" not in str(req.specifier), f"pyproject.toml pins {req}: give a range, pin in constraints.txt"


def test_the_ranges_admit_colab_s_kind_of_torch():
    torch_req = next(r for r in declared() if r.name == "torch")
    for version in ("2.4.0", "2.6.0+cu124", "2.9.1"):
        assert torch_req.specifier.contains(version, prereleases=False), version


def test_environment_yml_and_binder_mirror_the_constraints():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip) == CONSTRAINTS
    binder = pins((ROOT / "binder" / "requirements.txt").read_text().splitlines())
    assert binder and all(CONSTRAINTS[name] == version for name, version in binder.items())
    assert "pip install" in (ROOT / "binder" / "postBuild").read_text()


def test_torch_pair_is_the_one_that_works_here():
    assert CONSTRAINTS["torch"] == "2.14.1" and CONSTRAINTS["torchvision"] == "0.29.1"
    assert CONSTRAINTS["jupyter-book"].startswith("1.")  # Jupyter Book 1.x, below 2


def test_installing_the_project_keeps_the_installed_torch(tmp_path):
    """pip, asked to install the project into this environment (which has torch already),
    plans to install nothing that is already there: torch is kept. Offline: no index is used."""
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--no-build-isolation",
                           "--quiet", "--report", str(report), str(ROOT)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        pytest.skip(f"pip cannot build the project here: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert planned == {"alexnet-lib"} or planned == {"alexnet_lib"}, planned


def test_every_sub_package_and_its_data_is_packaged():
    """An install (not only an editable one) carries every sub-package of alexnet_lib and the C++
    source of the CPU kernel, which is compiled on first use."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {".".join(p.relative_to(ROOT).parts) for p in (ROOT / "alexnet_lib").rglob("__init__.py")
                for p in [p.parent]}
    assert packages == set(tool["packages"]) and "alexnet_lib.lrn" in packages
    for package, patterns in tool["package-data"].items():
        folder = ROOT.joinpath(*package.split("."))
        assert all(list(folder.glob(pattern)) for pattern in patterns), (package, patterns)
    assert "cpu.cpp" in tool["package-data"]["alexnet_lib.lrn"]
