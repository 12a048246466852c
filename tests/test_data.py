"""Finding data, layouts, corrupt files, the cache, and the real datasets' published facts."""

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet_lib import data as D
from alexnet_lib import images
from alexnet_lib.util import PROJECT_ROOT, display_path


@pytest.fixture
def isolated(no_data):
    """No data anywhere (tests/conftest.py): the empty $ALEXNET_DATA folder."""
    return no_data


def write_png(path, colour=(10, 20, 30), size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_not_found_names_every_place_and_the_fix(isolated):
    with pytest.raises(D.DatasetNotFoundError) as e:
        D.find_dataset("cifar10")
    msg = str(e.value)
    assert "$ALEXNET_DATA" in msg and "./data" in msg and "project's data/" in msg
    assert "make data" in msg and "ALEXNET_DOWNLOAD=1" in msg and "ALEXNET_DATA" in msg


def test_unknown_dataset_and_split(isolated):
    with pytest.raises(ValueError, match="valid datasets are 'cifar10'"):
        D.find_dataset("mnist")
    write_png(isolated / "cifar10" / "train" / "cat" / "a.png")
    with pytest.raises(ValueError, match="valid splits are 'train', 'test'"):
        D.load_dataset("cifar10", "val")


def test_search_order_env_first_then_cwd(isolated, tmp_path):
    write_png(tmp_path / "data" / "cifar10" / "train" / "cat" / "a.png")
    assert D.find_dataset("cifar10").root_label.startswith("./data")
    write_png(isolated / "cifar10" / "train" / "cat" / "a.png")
    assert D.find_dataset("cifar10").root_label.startswith("$ALEXNET_DATA")


def test_loose_images_are_a_layout_error(isolated):
    write_png(isolated / "cifar10" / "train" / "a.png")
    with pytest.raises(images.DatasetLayoutError, match=r"no class folders.*1 loose images.*<class>/<image>"):
        D.load_dataset("cifar10", "train", progress=False)


def test_missing_split_is_a_layout_error(isolated):
    write_png(isolated / "cifar10" / "train" / "cat" / "a.png")
    with pytest.raises(images.DatasetLayoutError, match=r"missing split folder .*test.*Found \['train'\]"):
        D.load_dataset("cifar10", "test", progress=False)


def test_empty_class_folder_is_named(isolated):
    write_png(isolated / "cifar10" / "train" / "cat" / "a.png")
    (isolated / "cifar10" / "train" / "dog").mkdir()
    with pytest.raises(images.DatasetLayoutError, match=r"class folder .*dog holds no images"):
        D.load_dataset("cifar10", "train", progress=False)


def test_corrupt_image_error_names_the_file_or_is_skipped(isolated):
    write_png(isolated / "cifar10" / "train" / "cat" / "a.png")
    bad = isolated / "cifar10" / "train" / "cat" / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(images.CorruptImageError, match=r"b\.png.*on_corrupt='skip'"):
        D.load_dataset("cifar10", "train", progress=False)
    with pytest.warns(UserWarning, match=r"skipped 1 corrupt image.*b\.png"):
        data = D.load_dataset("cifar10", "train", progress=False, on_corrupt="skip")
    assert len(data) == 1 and data.info["skipped"][0].endswith("b.png")


def test_folder_layout_decodes_pixels_and_labels_and_caches(isolated):
    write_png(isolated / "cifar10" / "train" / "cat" / "a.png", (1, 2, 3))
    write_png(isolated / "cifar10" / "train" / "dog" / "b.png", (4, 5, 6))
    first = D.load_dataset("cifar10", "train", progress=False)
    assert first.classes == ["cat", "dog"] and first.labels.tolist() == [0, 1]
    assert first.images.dtype == torch.uint8 and first.images.shape == (2, 3, 8, 8)
    assert first.images[1, :, 0, 0].tolist() == [4, 5, 6]
    assert not first.info["from_cache"]
    second = D.load_dataset("cifar10", "train", progress=False)
    assert second.info["from_cache"] and torch.equal(first.images, second.images)
    # a changed file set is a different cache entry
    write_png(isolated / "cifar10" / "train" / "dog" / "c.png")
    assert len(D.load_dataset("cifar10", "train", progress=False)) == 3


def test_torchvision_cifar_pickle_layout(isolated):
    folder = isolated / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        with open(folder / name, "wb") as fh:
            pickle.dump(batches[name], fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird", b"cat"]}, fh)
    train = D.load_dataset("cifar10", "train", progress=False)
    assert len(train) == 20 and train.classes[3] == "cat"
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values, row-major
    row = batches["data_batch_1"][b"data"][2]
    assert train.images[2, 1, 0, 5].item() == row[1024 + 5]
    assert train.images[2, 2, 31, 31].item() == row[3071]


def test_imagenette_torchvision_layout(isolated):
    write_png(isolated / "imagenette2-320" / "train" / "n01440764" / "a.JPEG")
    assert D.find_dataset("imagenette").path.name == "imagenette2-320"


def test_subsample_is_class_balanced_and_stable():
    items = [(f"f{i}", i % 4) for i in range(400)]
    a, b = images.subsample(items, 40), images.subsample(items, 40)
    assert a == b and len(a) == 40
    assert sorted({lab for _, lab in a}) == [0, 1, 2, 3]
    assert all(sum(1 for _, lab in a if lab == c) == 10 for c in range(4))


def test_display_path_hides_machine_paths():
    shown = display_path(PROJECT_ROOT / "data" / "cache")
    assert shown == os.path.join("data", "cache")


real = pytest.mark.skipif(not os.environ.get("ALEXNET_DATA"), reason="set ALEXNET_DATA to the shared data to run")


@real
def test_real_cifar10_matches_its_published_facts():
    test = D.load_dataset("cifar10", "test", progress=False)
    assert len(test) == 10_000 and set(test.class_counts().values()) == {1000}
    assert test.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    mean = test.images.float().mean(dim=(0, 2, 3)) / 255
    # SOURCE.md gives 4 decimals (rounding: 5e-5); a float32 mean of 3e8 values of about 0.5 is
    # good to a few 1e-6. 2e-4 is loose enough for both and would still catch a wrong channel order.
    assert torch.allclose(mean, torch.tensor([0.4942, 0.4851, 0.4504]), atol=2e-4)


@real
def test_real_imagenette_and_samples():
    val = D.load_dataset("imagenette", "val", progress=False)
    assert len(val) == 500 and val.images.shape[1:] == (3, 224, 224)
    rows = D.imagenet_samples()
    assert len(rows) == 40 and {r["ilsvrc2012_index"] for r in rows} >= {0, 217, 482}
