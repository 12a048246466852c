"""What the data path used to get silently wrong: class lists that differ between splits, images
in sub-folders, 16-bit PNGs, a cache that trusted edited images and damaged files, a broken
labels.csv, unreadable folders, and the litter of killed writes."""

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet_lib import data as D
from alexnet_lib.images import UnreadableDataError
from alexnet_lib.storage import CACHE_VERSIONS_KEPT

from .helpers import dead_pid


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty data root and cache, found first ($ALEXNET_DATA, $ALEXNET_CACHE)."""
    monkeypatch.setenv("ALEXNET_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


def image(path, colour=(10, 20, 30), size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def two_splits(root, train=("cat", "dog"), test=("cat", "dog")):
    for split, classes in (("train", train), ("test", test)):
        for c in classes:
            image(root / "cifar10" / split / c / "a.png")


# -------------------------------------------------------------------- 5. class lists
def test_splits_must_have_the_same_class_folders(root):
    two_splits(root, test=("cat",))
    with pytest.raises(D.DatasetLayoutError, match=r"different class folders \(only in train/: dog\).*Add the missing"):
        D.load_dataset("cifar10", "test", progress=False)
    two_splits(root / "other", test=("cat", "dog", "eel"))
    os.environ["ALEXNET_DATA"] = str(root / "other")
    with pytest.raises(D.DatasetLayoutError, match=r"only in test/: eel"):
        D.load_dataset("cifar10", "train", progress=False)


def test_macos_debris_and_hidden_folders_are_not_classes(root):
    two_splits(root)
    image(root / "cifar10" / "train" / "__MACOSX" / "._a.png")
    image(root / "cifar10" / "train" / ".ipynb_checkpoints" / "a.png")
    with pytest.warns(UserWarning, match=r"ignored \.ipynb_checkpoints, __MACOSX \(not class folders\)"):
        train = D.load_dataset("cifar10", "train", progress=False)
    assert train.classes == ["cat", "dog"] and train.labels.tolist() == [0, 1]


# -------------------------------------------------------- 6. sub-folders, 16-bit images
def test_images_in_sub_folders_of_a_class_folder_belong_to_it(root):
    two_splits(root)
    image(root / "cifar10" / "train" / "dog" / "night" / "b.png", (200, 0, 0))
    image(root / "cifar10" / "train" / "dog" / "night" / "deeper" / "c.png", (0, 200, 0))
    image(root / "cifar10" / "train" / "dog" / ".ipynb_checkpoints" / "a-checkpoint.png")  # a copy, not data
    train = D.load_dataset("cifar10", "train", progress=False)
    assert train.labels.tolist() == [0, 1, 1, 1]
    assert sorted(tuple(train.images[i, :, 0, 0].tolist()) for i in (2, 3)) == [(0, 200, 0), (200, 0, 0)]


def test_a_16_bit_png_decodes_by_its_high_byte(tmp_path):
    values = np.array([[0, 255, 256, 32768], [40000, 65280, 65535, 1000]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit grey PNG
    decoded = D.decode_image(path)
    expected = (values // 256).astype(np.uint8)  # 65535 is white, 32768 is mid grey
    assert decoded.shape == (2, 4, 3) and all((decoded[..., c] == expected).all() for c in range(3))


# ---------------------------------------------------------------------------- 7. the cache
def test_an_image_edited_in_place_is_decoded_again(root):
    # BMP files have the same size whatever their pixels: only the modification time tells
    path = image(root / "cifar10" / "train" / "cat" / "a.bmp", (1, 2, 3))
    image(root / "cifar10" / "train" / "dog" / "b.bmp")
    first = D.load_dataset("cifar10", "train", progress=False)
    size = path.stat().st_size
    image(path, (7, 8, 9))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert path.stat().st_size == size
    second = D.load_dataset("cifar10", "train", progress=False)
    assert first.images[0, :, 0, 0].tolist() == [1, 2, 3] and second.images[0, :, 0, 0].tolist() == [7, 8, 9]
    assert not second.info["from_cache"]


def test_bytes_overwritten_in_a_cache_file_are_caught_by_its_checksum(root, tmp_path):
    two_splits(root)
    first = D.load_dataset("cifar10", "train", progress=False)
    (cached,) = (tmp_path / "cache").glob("cifar10-train-*.pt")
    blob = cached.read_bytes()
    red = bytes([10]) * 64  # the red plane of the first image: 8x8 pixels of 10
    assert blob.count(red) >= 1
    cached.write_bytes(blob.replace(red, bytes([99]) * 64, 1))
    with pytest.warns(UserWarning, match=r"is damaged: its content gives crc32:.*decoding again"):
        second = D.load_dataset("cifar10", "train", progress=False)
    assert torch.equal(first.images, second.images) and not second.info["from_cache"]
    assert D.load_dataset("cifar10", "train", progress=False).info["from_cache"]  # written again, sound


def test_old_cache_versions_and_killed_writes_are_cleaned_up(root, tmp_path):
    two_splits(root)
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / f".cifar10-train-native-all-0123456789ab.pt.tmp-{dead_pid()}"
    stale.write_bytes(b"half a cache file")
    alive = cache / f".cifar10-train-native-all-0123456789ab.pt.tmp-{os.getpid()}"  # a write going on now
    alive.write_bytes(b"being written")
    for i in range(4):  # four versions of the training split
        image(root / "cifar10" / "train" / "cat" / f"new{i}.png")
        D.load_dataset("cifar10", "train", progress=False)
    assert len(list(cache.glob("cifar10-train-native-all-*.pt"))) == CACHE_VERSIONS_KEPT == 2
    assert not stale.exists() and alive.exists()


# ------------------------------------------------------------------- 10. broken inputs
@pytest.mark.parametrize("table, words", [
    ("file,wnid,index,class_name\na.JPEG,n1,0,tench\n", r"lacks the column\(s\) ilsvrc2012_index"),
    ("file,wnid,ilsvrc2012_index,class_name\na.JPEG,n1,zero,tench\n", r"line 2: ilsvrc2012_index is 'zero'"),
    ("file,wnid,ilsvrc2012_index,class_name\nb.JPEG,n1,0,tench\n", r"line 2 names the photo 'b.JPEG'.*not in"),
    ("file,wnid,ilsvrc2012_index,class_name\n", r"has no rows"),
])
def test_a_broken_labels_csv_is_named_with_its_line(root, table, words):
    folder = root / "imagenet-samples"
    image(folder / "a.JPEG")
    (folder / "labels.csv").write_text(table)
    with pytest.raises(D.DatasetLayoutError, match=words):
        D.load_dataset("imagenet-samples", "all", progress=False)
    with pytest.raises(D.DatasetLayoutError, match=words):
        D.imagenet_samples()


def test_a_folder_that_cannot_be_read_is_named_with_the_fix(root, monkeypatch):
    """Root reads everything, so the refusal is staged: listing the folder fails as it would."""
    two_splits(root)
    locked = root / "cifar10" / "train" / "dog"
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(UnreadableDataError, match=rf"cannot read {locked}: Permission denied.*chmod -R u\+rX"):
        D.load_dataset("cifar10", "train", progress=False)


def test_limit_below_one_is_refused(root):
    two_splits(root)
    with pytest.raises(ValueError, match=r"limit must be at least 1.*got 0"):
        D.load_dataset("cifar10", "train", limit=0, progress=False)


def test_the_cli_nets_take_width(tmp_path):
    """--width was ignored by the CIFAR nets; now it sizes them. Counted by hand: fig1 at width 0.5
    has conv 3->16, 16->16, 16->32 (5x5, with biases) and fc 32*3*3 -> 10."""
    from alexnet_lib.recipes import build_model

    net = build_model("cifar-fig1", 10, width=0.5)
    by_hand = (16 * 3 * 25 + 16) + (16 * 16 * 25 + 16) + (32 * 16 * 25 + 32) + (32 * 3 * 3 * 10 + 10)
    assert sum(p.numel() for p in net.parameters()) == by_hand
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_a_cache_decoded_with_on_corrupt_skip_does_not_hide_the_corrupt_file(root):
    two_splits(root)
    bad = root / "cifar10" / "train" / "cat" / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.warns(UserWarning, match=r"skipped 1 corrupt image.*b\.png"):
        D.load_dataset("cifar10", "train", progress=False, on_corrupt="skip")
    with pytest.warns(UserWarning, match=r"skipped 1 corrupt image.*when this split was decoded.*b\.png"):
        assert D.load_dataset("cifar10", "train", progress=False, on_corrupt="skip").info["from_cache"]
    with pytest.raises(D.CorruptImageError, match=r"b\.png: it was left out .*on_corrupt='skip'.*--on-corrupt skip"):
        D.load_dataset("cifar10", "train", progress=False)
