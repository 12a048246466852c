"""environment.yml agrees with pyproject.toml, the single source of versions."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pins += extra
    wanted = dict(p.split("==") for p in pins)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    have = dict(p.split("==") for p in pip if "==" in p)
    assert have == wanted


def test_torch_pair_is_the_one_that_works_here():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"torch==2\.14\.1"', text) and re.search(r'"torchvision==0\.29\.1"', text)
    assert re.search(r'"jupyter-book==1\.', text)  # Jupyter Book 1.x, below 2
