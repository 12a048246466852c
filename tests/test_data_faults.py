"""What the data path used to get silently wrong: class lists that differ between splits, images
in sub-folders, 16-bit PNGs, a cache that trusted edited images and damaged files, a broken
labels.csv, unreadable folders, and the litter of killed writes."""

import os
import pickle
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet_lib import data as D
from alexnet_lib import images as I
from alexnet_lib.images import UnreadableDataError
from alexnet_lib.storage import CACHE_VERSIONS_KEPT, SPLIT_PLAIN, SPLIT_TENSORS, save_checked

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
    with pytest.raises(I.DatasetLayoutError, match=r"different class folders \(only in train/: dog\).*Add the missing"):
        D.load_dataset("cifar10", "test", progress=False)
    two_splits(root / "other", test=("cat", "dog", "eel"))
    os.environ["ALEXNET_DATA"] = str(root / "other")
    with pytest.raises(I.DatasetLayoutError, match=r"only in test/: eel"):
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
    decoded = I.decode_image(path)
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
    with pytest.raises(I.DatasetLayoutError, match=words):
        D.load_dataset("imagenet-samples", "all", progress=False)
    with pytest.raises(I.DatasetLayoutError, match=words):
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
    with pytest.raises(I.CorruptImageError, match=r"b\.png: it was left out .*on_corrupt='skip'.*--on-corrupt skip"):
        D.load_dataset("cifar10", "train", progress=False)


# ------------------------------------------------------------- the cache, once more
def test_an_image_edited_keeping_its_size_and_modification_time_is_decoded_again(root):
    """An edit that keeps the size, with the modification time set back (touch -d, os.utime, a
    copy that keeps times): only the inode change time, which no user can set, tells."""
    path = image(root / "cifar10" / "train" / "cat" / "a.bmp", (1, 2, 3))  # BMP: the size never changes
    image(root / "cifar10" / "train" / "dog" / "b.bmp")
    first = D.load_dataset("cifar10", "train", progress=False)
    before = path.stat()
    image(path, (7, 8, 9))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    while path.stat().st_ctime_ns == before.st_ctime_ns:  # a coarse clock that has not ticked since the first write
        time.sleep(0.01)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    second = D.load_dataset("cifar10", "train", progress=False)
    assert first.images[0, :, 0, 0].tolist() == [1, 2, 3] and second.images[0, :, 0, 0].tolist() == [7, 8, 9]
    assert not second.info["from_cache"]


def the_cache_file(tmp_path):
    (cached,) = (tmp_path / "cache").glob("cifar10-train-*.pt")
    return cached


@pytest.mark.parametrize("edit", ["class names", "skipped files"])
def test_class_names_or_facts_edited_in_a_cache_file_are_caught_by_its_checksum(root, tmp_path, edit):
    two_splits(root)
    D.load_dataset("cifar10", "train", progress=False)
    cached = the_cache_file(tmp_path)
    blob = torch.load(cached, weights_only=True)
    if edit == "class names":
        blob["classes"] = ["dog", "cat"]  # pixels and labels as they were: their checksum alone would hold
    else:
        blob["info"]["skipped"] = ["cat/gone.png"]
    torch.save(blob, cached)
    with pytest.warns(UserWarning, match=r"is damaged: its content gives crc32:.*decoding again"):
        again = D.load_dataset("cifar10", "train", progress=False)
    assert again.classes == ["cat", "dog"] and again.info["skipped"] == [] and not again.info["from_cache"]
    assert D.load_dataset("cifar10", "train", progress=False).info["from_cache"]  # rebuilt, sound


@pytest.mark.parametrize("damage, words", [
    ("truncated", r"cache file .* is unreadable"),
    ("empty", r"cache file .* is unreadable"),
    ("text", r"cache file .* is unreadable"),
    ("a list", r"carries no checksum"),
    ("no classes", r"is damaged: it lacks classes"),
    ("other classes", r"names other classes \(cow, dog, \.\.\.\) than the data's \(cat, dog, \.\.\.\)"),
    ("labels out of range", r"holds labels outside its 2 classes"),
])
def test_a_corrupt_cache_is_rebuilt_with_a_warning(root, tmp_path, damage, words):
    two_splits(root)
    first = D.load_dataset("cifar10", "train", progress=False)
    cached = the_cache_file(tmp_path)
    blob = torch.load(cached, weights_only=True)
    del blob["checksum"]
    if damage == "truncated":
        cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    elif damage == "empty":
        cached.write_bytes(b"")
    elif damage == "text":
        cached.write_text("not a cache file")
    elif damage == "a list":
        torch.save([blob["images"], blob["labels"]], cached)
    elif damage == "no classes":
        save_checked({k: v for k, v in blob.items() if k != "classes"}, cached, ("images", "labels"))
    else:  # written with a sound checksum by something else
        if damage == "other classes":
            blob["classes"] = ["cow", "dog"]
        else:
            blob["labels"] = torch.tensor([0, 5])
        save_checked(blob, cached, SPLIT_TENSORS, plain=SPLIT_PLAIN)
    with pytest.warns(UserWarning, match=words + r".*decoding again"):
        again = D.load_dataset("cifar10", "train", progress=False)
    assert torch.equal(again.images, first.images) and again.classes == ["cat", "dog"]
    assert again.labels.tolist() == [0, 1] and not again.info["from_cache"]
    assert D.load_dataset("cifar10", "train", progress=False).info["from_cache"]  # rebuilt, sound


def test_class_names_edited_in_cifar_pickles_are_read_again(root):
    """torchvision's layout: batches.meta holds the class names; the cache key now covers it."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    data = np.zeros((2, 3072), dtype=np.uint8)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": [0, 1]}, fh)
    for names in ([b"airplane", b"automobile"], [b"aeroplane", b"car"]):
        with open(folder / "batches.meta", "wb") as fh:
            pickle.dump({b"label_names": names}, fh)
        assert D.load_dataset("cifar10", "train", progress=False).classes == [n.decode() for n in names]


# ------------------------------------------------------------ decompression bombs
def png_claiming(path, width, height):
    """A PNG whose header claims ``width`` x ``height`` pixels: what a decompression bomb shows PIL first."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.parent.mkdir(parents=True, exist_ok=True)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_a_decompression_bomb_is_a_corrupt_image_named_and_skipped(root):
    """10^10 pixels, over twice PIL's limit: PIL raises its own error, which was a traceback."""
    two_splits(root)
    bomb = png_claiming(root / "cifar10" / "train" / "cat" / "bomb.png", 100_000, 100_000)
    with pytest.raises(I.CorruptImageError, match=r"cannot decode image .*bomb\.png: .*decompression bomb.*"
                                                  r"on_corrupt='skip'.*MAX_IMAGE_PIXELS"):
        D.load_dataset("cifar10", "train", progress=False)
    with pytest.warns(UserWarning, match=r"skipped 1 corrupt image.*bomb\.png"):
        data = D.load_dataset("cifar10", "train", progress=False, on_corrupt="skip")
    assert len(data) == 2 and data.info["skipped"] == [str(bomb)]
    with pytest.warns(UserWarning, match=r"skipping corrupt image .*bomb\.png"):
        stream = I.ImageFolderStream(root / "cifar10" / "train", size=8, on_corrupt="skip")
        assert stream[1][1] == -1  # cat/a.png, cat/bomb.png, dog/a.png: the trainer drops label -1


def test_an_image_just_over_pils_limit_is_refused_too(root, monkeypatch):
    """Between the limit and twice it PIL only warns, then decodes it all: the memory a bomb wants.
    (The limit is lowered here, as a user may set it, so that an 8x8 image is over it.)"""
    for split in ("train", "test"):
        image(root / "cifar10" / split / "cat" / "big.png", size=(8, 8))  # 64 pixels: over 40, under twice 40
        image(root / "cifar10" / split / "dog" / "small.png", size=(6, 6))  # 36 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)
    with pytest.raises(I.CorruptImageError, match=r"cannot decode image .*big\.png: Image size \(64 pixels\) exceeds"):
        D.load_dataset("cifar10", "train", progress=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        data = D.load_dataset("cifar10", "train", progress=False, on_corrupt="skip")
    assert len(data) == 1 and data.classes == ["cat", "dog"] and data.labels.tolist() == [1]
    assert [str(w.message) for w in seen if "big.png" in str(w.message)][0].startswith("skipped 1 corrupt image")
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]  # no stray PIL warning


# ---------------------------------------------------------------- symbolic links
@pytest.mark.parametrize("where, links, words", [
    ("a dangling image link", {"cat/b.png": "gone.png"},
     r"symbolic link .*train/cat/b\.png points to gone\.png, which does not exist \(a dangling link\)"),
    ("a dangling link with no extension", {"cat/night": "/nowhere/night"},
     r"symbolic link .*train/cat/night points to /nowhere/night, which does not exist"),
    ("a dangling class folder", {"horse": "../elsewhere/horse"},
     r"symbolic link .*train/horse points to \.\./elsewhere/horse, which does not exist"),
    ("a loop of two links", {"cat/x.png": "y.png", "cat/y.png": "x.png"},
     r"symbolic link .*train/cat/x\.png loops \(too many levels of symbolic links\)"),
    ("a folder link to its own split", {"cat/again": ".."},
     r"symbolic link .*train/cat/again loops: it points to \.\., a folder that holds the link itself"),
    ("two folders linked to each other", {"cat/one/two": "../two", "cat/two/one": "../one"},
     r"symbolic link .*train/cat/one/two/one loops: it points to \.\./one"),
])
def test_a_symbolic_link_that_dangles_or_loops_is_named(root, where, links, words):
    """Before: a traceback (a stat of a dangling link), a class silently missing (a dangling class
    folder link shifts every label after it), or a walk that never ends."""
    two_splits(root)
    split = root / "cifar10" / "train"
    for name, target in links.items():
        (split / name).parent.mkdir(parents=True, exist_ok=True)
        (split / name).symlink_to(target)
    with pytest.raises(I.DatasetLayoutError, match=words + r".*Remove the link"):
        D.load_dataset("cifar10", "train", progress=False)


def test_symbolic_links_that_resolve_are_followed(root, tmp_path):
    two_splits(root)
    outside = image(tmp_path / "elsewhere" / "red.png", (250, 0, 0))
    (root / "cifar10" / "train" / "cat" / "red.png").symlink_to(outside)
    image(tmp_path / "elsewhere" / "night" / "blue.png", (0, 0, 250))
    (root / "cifar10" / "train" / "dog" / "night").symlink_to(tmp_path / "elsewhere" / "night")
    data = D.load_dataset("cifar10", "train", progress=False)
    assert data.labels.tolist() == [0, 0, 1, 1]  # cat/a, cat/red, dog/a, dog/night/blue
    assert data.images[1, :, 0, 0].tolist() == [250, 0, 0] and data.images[3, :, 0, 0].tolist() == [0, 0, 250]


# ------------------------------------------------------------- wrong arguments
@pytest.mark.parametrize("arguments, words", [
    ({"limit": "100"}, r"limit must be a whole number \(about that many images\), or None for all of them; "
                       r"got '100' \(a str\)"),
    ({"limit": 2.5}, r"limit must be a whole number.*got 2\.5 \(a float\)"),
    ({"limit": True}, r"limit must be a whole number.*got True \(a bool\)"),
    ({"limit": 0}, r"limit must be at least 1 .*got 0"),
    ({"limit": -1}, r"limit must be at least 1 .*got -1"),
    ({"size": 0}, r"size must be at least 1 \(pixels of the shorter side and of the square crop\), or None to keep "
                  r"the stored size; got 0"),
    ({"size": "32"}, r"size must be a whole number .*got '32' \(a str\)"),
    ({"name": "mnist"}, r"unknown dataset 'mnist'; valid datasets are 'cifar10', 'imagenette'"),
    ({"name": None}, r"unknown dataset None; valid datasets are"),
    ({"split": "val"}, r"unknown split 'val' for cifar10; valid splits are 'train', 'test'"),
    ({"split": None}, r"unknown split None for cifar10"),
    ({"on_corrupt": "ignore"}, r"unknown on_corrupt='ignore'; valid values are 'error', 'skip'"),
    ({"download": "no"}, r"download must be True or False or None, got 'no'"),
    ({"cache": None}, r"cache must be True or False, got None"),
    ({"progress": "off"}, r"progress must be True or False, got 'off'"),
])
def test_load_dataset_names_the_wrong_argument_before_any_work(no_data, arguments, words):
    """No data anywhere: each argument is checked before the data is looked for. size=0 was reported
    as a corrupt image, with advice to delete a good file; limit='100' was a TypeError."""
    arguments = {"name": "cifar10", "split": "train", **arguments}
    with pytest.raises(ValueError, match=words) as caught:
        D.load_dataset(progress=arguments.pop("progress", False), **arguments)
    assert type(caught.value) is ValueError  # not CorruptImageError, a ValueError too


def test_the_other_functions_name_their_wrong_argument(root):
    two_splits(root)
    png = root / "cifar10" / "train" / "cat" / "a.png"
    with pytest.raises(ValueError, match=r"size must be at least 1.*got 0") as caught:
        I.decode_image(png, size=0)
    assert type(caught.value) is ValueError
    with pytest.raises(ValueError, match=r"size must be at least 1.*got -8"):
        I.ImageFolderStream(root / "cifar10" / "train", size=-8)
    with pytest.raises(ValueError, match=r"unknown on_corrupt='warn'"):
        I.ImageFolderStream(root / "cifar10" / "train", on_corrupt="warn")
    with pytest.raises(ValueError, match=r"limit must be a whole number.*got '5' \(a str\)"):
        I.subsample([(png, 0)], "5")
    with pytest.raises(ValueError, match=r"unknown dataset \['cifar10'\]"):
        D.find_dataset(["cifar10"])
    with pytest.raises(ValueError, match=r"download must be True or False or None, got 1\.0"):
        D.find_dataset("cifar10", download=1.0)
    with pytest.raises(ValueError, match=r"mode must be one of 'smoke', 'quick', 'full' or None"):
        D.find_dataset("cifar10", mode=3)
    stream = I.ImageFolderStream(str(root / "cifar10" / "train"), size=8)  # a str names a folder as well
    assert len(stream) == 2 and stream[1][1] == 1


def test_the_cache_just_written_is_kept_whatever_the_clock_says(root, tmp_path):
    """Older versions are deleted by modification time; two versions written within one tick of the
    file system's clock, or versions dated in the future (a copy from a machine whose clock is ahead),
    once made the new cache file the one deleted."""
    two_splits(root)
    cache = tmp_path / "cache"
    cache.mkdir()
    future = time.time_ns() + 10**12
    for key in ("0123456789ab", "ba9876543210"):
        dated = cache / f"cifar10-train-native-all-{key}.pt"
        dated.write_bytes(b"an older version")
        os.utime(dated, ns=(future, future))
    assert not D.load_dataset("cifar10", "train", progress=False).info["from_cache"]
    assert len(list(cache.glob("cifar10-train-native-all-*.pt"))) == CACHE_VERSIONS_KEPT
    assert D.load_dataset("cifar10", "train", progress=False).info["from_cache"]
