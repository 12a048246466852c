"""What a dataset is, wherever it lies: every image, every label and the class names count; paths,
file times and the cache do not."""

import hashlib
import json
import os
import shutil
import time

import pytest
from PIL import Image

from alexnet_lib import data as D
from alexnet_lib import images
from alexnet_lib.identity import data_identity


@pytest.fixture
def root(tmp_path, monkeypatch):
    """A data root with cifar10/{train,test}/{cat,dog}, three 8x8 images per class, found first."""
    monkeypatch.setenv("ALEXNET_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    for split in ("train", "test"):
        for c, cls in enumerate(("cat", "dog")):
            for i in range(3):
                path = tmp_path / "root" / "cifar10" / split / cls / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (8, 8), (40 * c + i, 7 * i, 100)).save(path)
    return tmp_path / "root"


def load():
    return D.load_dataset("cifar10", "train", progress=False)


def test_the_identity_counts_what_a_reader_can_count(root):
    ident = data_identity(load())
    assert ident["items"] == 6 and ident["classes"] == 2 and ident["shape"] == [3, 8, 8]
    # the class names' hash is the form checkpoints have always stored: SHA-1 of the names joined by NUL
    assert ident["class_names"] == hashlib.sha1(b"cat\0dog").hexdigest()[:12]
    assert ident["content"].startswith("sha256:") and len(ident["content"]) == len("sha256:") + 64
    assert json.loads(json.dumps(ident)) == ident  # plain JSON, to be stored in a checkpoint
    assert data_identity(None) is None


def test_every_image_and_every_label_counts(root):
    """Each of the six images changed by one step of one pixel, and each label, gives other data."""
    data = load()
    seen = {data_identity(data)["content"]}
    for i in range(len(data)):
        images = data.images.clone()
        images[i, 2, 7, 7] += 1  # the last byte of image i
        seen.add(data_identity(D.ImageTensors(images, data.labels, data.classes))["content"])
        labels = data.labels.clone()
        labels[i] = 1 - labels[i]
        seen.add(data_identity(D.ImageTensors(data.images, labels, data.classes))["content"])
    assert len(seen) == 1 + 2 * len(data)
    renamed = data_identity(D.ImageTensors(data.images, data.labels, ["cat", "wolf"]))
    assert renamed["class_names"] != data_identity(data)["class_names"]


def test_the_same_data_moved_elsewhere_is_the_same_data(root, tmp_path, monkeypatch):
    first = load()
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)  # new paths, new file times
    os.utime(moved / "cifar10" / "train" / "cat" / "0.png", ns=(1, 1))
    monkeypatch.setenv("ALEXNET_DATA", str(moved))
    again = load()
    assert not again.info["from_cache"] and again.source != first.source  # decoded afresh, from elsewhere
    assert data_identity(again) == data_identity(first)
    assert data_identity(load()) == data_identity(first) and load().info["from_cache"]  # and from the cache


def rewrite(path, colour):
    """Write an 8x8 image over ``path`` at a later tick of the file system's clock than its last write
    (an edit within one tick of the previous write, keeping the size, leaves no trace in the file's times)."""
    before = path.stat().st_ctime_ns
    while True:
        Image.new("RGB", (8, 8), colour).save(path)
        if path.stat().st_ctime_ns != before:
            return
        time.sleep(0.005)


def test_one_image_replaced_in_the_data_root_is_other_data(root):
    """The resume check once compared 64 images' checksums: a replaced image outside them went unnoticed."""
    first = data_identity(load())
    rewrite(root / "cifar10" / "train" / "dog" / "1.png", (41, 7, 100))  # written again, as it was
    same = data_identity(load())
    rewrite(root / "cifar10" / "train" / "dog" / "1.png", (42, 7, 100))
    other = data_identity(load())
    assert same == first and other != first and other["items"] == first["items"]


def test_a_change_in_place_is_seen_though_the_identity_is_kept(root):
    data = load()
    first = data_identity(data)
    data.images[4, 0, 3, 3] += 1  # PyTorch counts this change in the tensor's version
    changed = data_identity(data)
    data.images[4, 0, 3, 3] -= 1
    assert changed != first and data_identity(data) == first
    data.labels[0] = 1
    assert data_identity(data) != first
    data.labels[0] = 0
    data.images = data.images.flip(0)  # a new tensor in place of the old
    assert data_identity(data) != first
    returned = data_identity(data)
    returned["shape"].append(99)  # what a caller does with its copy changes nothing kept
    assert data_identity(data)["shape"] == [3, 8, 8]


def test_a_streamed_split_is_identified_by_its_files_and_labels(root, tmp_path):
    stream = images.ImageFolderStream(root / "cifar10" / "train", size=8)
    shutil.copytree(root, tmp_path / "moved")
    moved = images.ImageFolderStream(tmp_path / "moved" / "cifar10" / "train", size=8)
    ident = data_identity(stream)
    assert ident == data_identity(moved) and ident["items"] == 6 and ident["content"].startswith("files-sha256:")
    (tmp_path / "moved" / "cifar10" / "train" / "dog" / "2.png").rename(tmp_path / "moved" / "cifar10" / "train"
                                                                       / "dog" / "3.png")
    assert data_identity(images.ImageFolderStream(tmp_path / "moved" / "cifar10" / "train", size=8)) != ident


real = pytest.mark.skipif(not os.environ.get("ALEXNET_DATA"), reason="set ALEXNET_DATA to the shared data to run")


@real
def test_real_cifar10_test_split_every_image_counts():
    test = D.load_dataset("cifar10", "test", progress=False)
    ident = data_identity(test)
    assert ident["items"] == 10_000 and ident["classes"] == 10 and ident["shape"] == [3, 32, 32]
    last = test.images.clone()
    last[-1, 2, 31, 31] ^= 1  # the very last byte of the last image
    assert data_identity(D.ImageTensors(last, test.labels, test.classes))["content"] != ident["content"]
