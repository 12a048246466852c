"""The embedded sample (data/sample): intact, small, made by its script, used last and only in
smoke mode, and loudly."""

import hashlib
import os
import runpy
import shutil
from pathlib import Path

import pytest

from alexnet_lib import data as D
from alexnet_lib import util

from .helpers import ROOT

SAMPLE = ROOT / "data" / "sample"


def test_the_sample_is_intact_and_small():
    listed = {}
    for line in (SAMPLE / "MANIFEST.sha256").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    files = {f.relative_to(SAMPLE).as_posix(): f for f in SAMPLE.rglob("*") if f.is_file()}
    assert set(files) - set(listed) == {"README.md", "MANIFEST.sha256"}, "files missing from or not in the manifest"
    for rel, digest in listed.items():
        assert hashlib.sha256(files[rel].read_bytes()).hexdigest() == digest, rel
    # the layouts of the real data, at most about 3 MB
    assert sum(f.stat().st_size for f in files.values()) < 3.2e6
    assert len(list((SAMPLE / "cifar10" / "train").iterdir())) == 10
    assert (SAMPLE / "imagenette" / "wnid_to_name.txt").exists()
    assert (SAMPLE / "imagenet-samples" / "labels.csv").exists()


full_data = pytest.mark.skipif(
    not all(os.path.isdir(os.path.join(os.environ.get("ALEXNET_DATA", "/nonexistent"), n))
            for n in ("cifar10", "imagenette", "imagenet-samples")),
    reason="needs the full data in $ALEXNET_DATA (the sample's source)")


@full_data
def test_the_script_makes_the_committed_sample_byte_for_byte(tmp_path):
    script = runpy.run_path(str(ROOT / "data" / "make_sample.py"))
    script["make_sample"](Path(os.environ["ALEXNET_DATA"]), tmp_path)
    assert (tmp_path / "MANIFEST.sha256").read_text() == (SAMPLE / "MANIFEST.sha256").read_text()


@pytest.fixture
def only_the_sample(no_data, monkeypatch, tmp_path):
    """No data anywhere but the embedded sample (a copy of it, in the isolated project)."""
    monkeypatch.delenv("ALEXNET_DATA")
    shutil.copytree(SAMPLE, util.PROJECT_ROOT / "data" / "sample")
    D._SAMPLES_ANNOUNCED.clear()
    return util.PROJECT_ROOT / "data" / "sample"


def test_smoke_mode_uses_the_sample_and_says_so(only_the_sample, monkeypatch):
    monkeypatch.setenv("ALEXNET_MODE", "smoke")
    with pytest.warns(D.SampleDataWarning, match=r"EMBEDDED SAMPLE of 'cifar10': 300 images.*make data"):
        train = D.load_dataset("cifar10", "train", progress=False)
    assert len(train) == 200 and set(train.class_counts().values()) == {20}
    assert "embedded sample" in train.info["root"] and "smoke mode only" in train.info["root"]


@pytest.mark.parametrize("mode", ["quick", "full"])
def test_quick_and_full_mode_refuse_the_sample(only_the_sample, mode):
    with pytest.raises(D.DatasetNotFoundError) as e:
        D.find_dataset("imagenette", mode=mode)
    msg = str(e.value)
    assert "only its embedded sample" in msg and f"{mode} mode needs the real data" in msg
    assert "make data" in msg and "ALEXNET_DATA" in msg and "ALEXNET_MODE=smoke" in msg


def test_a_real_root_comes_before_the_sample(only_the_sample, tmp_path, monkeypatch):
    real = tmp_path / "real"
    shutil.copytree(only_the_sample / "cifar10", real / "cifar10")
    monkeypatch.setenv("ALEXNET_DATA", str(real))
    assert D.find_dataset("cifar10", mode="quick").root_label.startswith("$ALEXNET_DATA")


def test_a_misspelt_data_root_is_an_error(no_data, monkeypatch, tmp_path):
    monkeypatch.setenv("ALEXNET_DATA", str(tmp_path / "shraed" / "data"))
    with pytest.raises(D.DatasetNotFoundError, match=r"ALEXNET_DATA=.*shraed.* is not a folder.*spelling"):
        D.find_dataset("cifar10")
