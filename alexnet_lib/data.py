"""Finding the datasets, decoding them once, and caching them as uint8 tensors (§2).

One function finds a dataset, :func:`find_dataset`. It looks, in this order, at

1. ``$ALEXNET_DATA``,
2. ``./data`` (the folder you run from),
3. the project's own ``data/`` folder,
4. torchvision's download (CIFAR-10, Imagenette), only when ``download=True``,

and otherwise stops with an error that names every place it looked and says how to
get the data. Data roots are only read, never written: caches go to ``$ALEXNET_CACHE``
(default: the project's ``data/cache``).

Layouts accepted under a root:

======================  ===========================================================
``cifar10``             ``cifar10/{train,test}/<class>/*.png`` or torchvision's
                        ``cifar-10-batches-py/``
``imagenette``          ``imagenette/{train,val}/<wnid>/*.JPEG`` or torchvision's
                        ``imagenette2{,-320,-160}/{train,val}/<wnid>/``
``imagenet``            any ILSVRC-2012 tree in ImageFolder layout:
                        ``imagenet/{train,val}/<wnid>/*`` (or ``ILSVRC2012/``)
``imagenet-samples``    ``imagenet-samples/*.JPEG`` with ``labels.csv``
======================  ===========================================================

Small datasets (CIFAR-10, Imagenette) are decoded once into a uint8 tensor and cached,
so the second load is a single ``torch.load``. ILSVRC-2012 is too large for that and is
read as a stream (:class:`ImageFolderStream`).
"""

from __future__ import annotations

import csv
import hashlib
import os
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .images import (  # noqa: F401  (re-exported from their older home)
    IMAGE_EXTENSIONS,
    CorruptImageError,
    DatasetLayoutError,
    ImageFolderStream,
    decode_all,
    decode_image,
    scan_image_folder,
    subsample,
)
from .transforms import resize_shorter_and_crop  # noqa: F401  (its older home)
from .util import PROJECT_ROOT, atomic_save, display_path, project_root  # noqa: F401  (PROJECT_ROOT: its older home)

SPLITS = {
    "cifar10": ("train", "test"),
    "imagenette": ("train", "val"),
    "imagenet": ("train", "val"),
    "imagenet-samples": ("all",),
}
FOLDER_CANDIDATES = {
    "cifar10": ["cifar10", "cifar-10-batches-py"],
    "imagenette": ["imagenette", "imagenette2-320", "imagenette2-160", "imagenette2"],
    "imagenet": ["imagenet", "ILSVRC2012", "ilsvrc2012"],
    "imagenet-samples": ["imagenet-samples"],
}
HOW_TO_GET = {
    "cifar10": "call load_dataset('cifar10', ..., download=True) on a machine with internet "
    "(torchvision.datasets.CIFAR10), or put CIFAR-10 as cifar10/{train,test}/<class>/*.png under a data root",
    "imagenette": "call load_dataset('imagenette', ..., download=True) on a machine with internet "
    "(torchvision.datasets.Imagenette), or put it as imagenette/{train,val}/<wnid>/*.JPEG under a data root",
    "imagenet": "ILSVRC-2012 cannot be downloaded automatically: get it from image-net.org and arrange it "
    "as imagenet/{train,val}/<wnid>/*.JPEG (ImageFolder layout) under a data root",
    "imagenet-samples": "put the sample photos and their labels.csv in imagenet-samples/ under a data root",
}


class DatasetNotFoundError(FileNotFoundError):
    """No data root holds the dataset."""


def check_dataset_name(name: str) -> None:
    if name not in SPLITS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets are {', '.join(map(repr, SPLITS))}.")


def data_roots() -> list[tuple[str, Path]]:
    """The places searched for data, in order, with the label shown in errors."""
    roots = []
    env = os.environ.get("ALEXNET_DATA")
    if env:
        roots.append(("$ALEXNET_DATA", Path(env).expanduser()))
    roots.append(("./data", Path.cwd() / "data"))
    roots.append(("the project's data/", project_root() / "data"))
    seen, unique = set(), []
    for label, path in roots:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append((label, path))
    return unique


def cache_dir() -> Path:
    """Where decoded tensors are cached: ``$ALEXNET_CACHE`` or the project's data/cache."""
    path = Path(os.environ.get("ALEXNET_CACHE", project_root() / "data" / "cache")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Located:
    name: str
    path: Path  # the dataset folder
    layout: str  # "folders", "cifar-pickle", "samples"
    root_label: str


def _locate_in(name: str, root: Path) -> Located | None:
    for folder in FOLDER_CANDIDATES[name]:
        path = root / folder
        if not path.is_dir():
            continue
        if name == "cifar10":
            if (path / "data_batch_1").exists() or (path / "test_batch").exists():
                return Located(name, path, "cifar-pickle", "")
            if (path / "cifar-10-batches-py" / "data_batch_1").exists():
                return Located(name, path / "cifar-10-batches-py", "cifar-pickle", "")
        if name == "imagenet-samples":
            return Located(name, path, "samples", "")
        return Located(name, path, "folders", "")
    return None


def find_dataset(name: str, download: bool = False) -> Located:
    """Find ``name`` in the data roots (see the module docstring for the order)."""
    check_dataset_name(name)
    roots = data_roots()
    for label, root in roots:
        found = _locate_in(name, root)
        if found is not None:
            found.root_label = f"{label} = {display_path(root)}"
            return found
    looked = "\n".join(f"  - {label}: {display_path(root / FOLDER_CANDIDATES[name][0])}" for label, root in roots)
    if download and name in ("cifar10", "imagenette"):
        return _download(name, project_root() / "data")
    raise DatasetNotFoundError(
        f"dataset {name!r} not found. Looked in:\n{looked}\n"
        f"To fix: set ALEXNET_DATA to a folder that holds it, or {HOW_TO_GET[name]}."
    )


def _download(name: str, root: Path) -> Located:  # pragma: no cover - needs the internet
    """torchvision's own download, into the project's data/ folder."""
    import torchvision

    root.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
        torchvision.datasets.CIFAR10(str(root), train=False, download=True)
    else:
        for split in ("train", "val"):
            torchvision.datasets.Imagenette(str(root), split=split, size="320px", download=True)
    found = _locate_in(name, root)
    assert found is not None, f"torchvision downloaded {name} but it is not where expected under {root}"
    found.root_label = f"downloaded to {root}"
    return found


@dataclass
class ImageTensors:
    """A decoded dataset split: uint8 images (N, 3, H, W), int64 labels, class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list
    source: str = ""
    name: str = ""
    split: str = ""
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return (f"ImageTensors({self.name}/{self.split}: {n} images {c}x{h}x{w} uint8, {len(self.classes)} classes, "
                f"from {display_path(self.source)})")

    def subset(self, index) -> "ImageTensors":
        index = torch.as_tensor(index)
        return ImageTensors(
            self.images[index], self.labels[index], self.classes, self.source, self.name, self.split, dict(self.info)
        )

    def class_counts(self) -> dict:
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts))


def _read_cifar_pickle(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list]:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for n in names:
        f = path / n
        if not f.exists():
            raise DatasetLayoutError(
                f"CIFAR-10 batch file {f} is missing; re-download torchvision's cifar-10-batches-py."
            )
        with open(f, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels += list(batch[b"labels"])
    meta = path / "batches.meta"
    if meta.exists():
        with open(meta, "rb") as fh:
            classes = [c.decode() for c in pickle.load(fh, encoding="bytes")[b"label_names"]]
    else:
        classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.int64), classes


def _fingerprint(parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def load_dataset(
    name: str,
    split: str = "train",
    size: int | None = None,
    limit: int | None = None,
    download: bool = False,
    cache: bool = True,
    on_corrupt: str = "error",
    progress: bool = True,
) -> ImageTensors:
    """Decode a dataset split once into uint8 tensors, and cache it.

    Args:
        name: "cifar10", "imagenette" or "imagenet-samples" ("imagenet" is streamed,
            see :class:`ImageFolderStream`).
        split: "train"/"test" (CIFAR-10), "train"/"val" (Imagenette), "all" (samples).
        size: resize the shorter side to ``size`` and centre-crop ``size``×``size``;
            None keeps the stored size (CIFAR-10 32, our Imagenette copy 224).
        limit: keep a fixed class-balanced subset of about this many images.
        on_corrupt: "error" (default: stop, naming the file) or "skip" (leave the file
            out, with a warning naming it; the count is in ``.info["skipped"]``).
    """
    _check_load_arguments(name, split, on_corrupt)
    loc = find_dataset(name, download=download)
    t0 = time.perf_counter()
    files, classes, key = _list_files(loc, name, split, size, limit)
    cache_path = cache_dir() / f"{name}-{split}-{size or 'native'}-{limit or 'all'}-{key}.pt" if cache else None
    data = _read_cache(cache_path, loc, name, split)
    from_cache = data is not None
    if data is None:
        if files is None:
            images, labels, classes = _read_cifar_pickle_split(loc.path, split, size, limit)
            skipped = []
        else:
            images, labels, skipped = _decode_files(
                files, loc.path / split, size, on_corrupt, progress, f"{name}/{split}"
            )
        info = {"decode_seconds": time.perf_counter() - t0, "skipped": [str(s) for s in skipped], "files": len(labels)}
        data = ImageTensors(images, labels, list(classes), str(loc.path), name, split, info)
        if cache_path is not None:
            atomic_save({"images": images, "labels": labels, "classes": list(classes), "info": info}, cache_path)
    data.info.update(load_seconds=time.perf_counter() - t0, from_cache=from_cache, root=loc.root_label)
    return data


def _check_load_arguments(name: str, split: str, on_corrupt: str) -> None:
    check_dataset_name(name)
    if split not in SPLITS[name]:
        raise ValueError(f"unknown split {split!r} for {name}; valid splits are {', '.join(map(repr, SPLITS[name]))}.")
    if on_corrupt not in ("error", "skip"):
        raise ValueError(f"unknown on_corrupt={on_corrupt!r}; valid values are 'error', 'skip'.")
    if name == "imagenet":
        raise ValueError(
            "ILSVRC-2012 is too large to hold as one tensor: "
            "use ImageFolderStream(find_dataset('imagenet').path / split)."
        )


def _list_files(loc: Located, name: str, split: str, size: int | None, limit: int | None):
    """(files with labels, class names, cache key) of a split; files and classes are None for
    CIFAR-10's pickles, whose key is their folder."""
    if loc.layout == "cifar-pickle":
        return None, None, _fingerprint([name, split, loc.path.resolve(), size, limit, "pickle"])
    if loc.layout == "samples":
        items, classes = _scan_samples(loc.path)
    else:
        items, classes = scan_image_folder(loc.path / split)
    items = subsample(items, limit)
    stats = [(str(f.relative_to(loc.path)), f.stat().st_size) for f, _ in items]
    return items, classes, _fingerprint([name, split, loc.path.resolve(), size, limit, len(stats), *stats])


def _read_cache(cache_path: Path | None, loc: Located, name: str, split: str) -> ImageTensors | None:
    """The cached split, or None if there is none; a damaged cache is decoded again, never trusted."""
    if cache_path is None or not cache_path.exists():
        return None
    try:
        blob = torch.load(cache_path, weights_only=True)
        return ImageTensors(
            blob["images"], blob["labels"], blob["classes"], str(loc.path), name, split, dict(blob["info"])
        )
    except Exception as e:
        warnings.warn(f"cache file {cache_path} is unreadable ({e}); decoding again", stacklevel=3)
        return None


def _read_cifar_pickle_split(path: Path, split: str, size: int | None, limit: int | None):
    """(images, labels, classes) of torchvision's CIFAR-10 pickles, subset and resized."""
    images, labels, classes = _read_cifar_pickle(path, split)
    if limit is not None:
        idx = subsample([(i, int(lab)) for i, lab in enumerate(labels)], limit)
        keep = torch.tensor([i for i, _ in idx])
        images, labels = images[keep], labels[keep]
    if size is not None and size != 32:
        images = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
        images = images.round().clamp(0, 255).to(torch.uint8)
    return images, labels, classes


def _decode_files(files, where: Path, size: int | None, on_corrupt: str, progress: bool, desc: str):
    """(uint8 images (N, 3, H, W), labels, skipped files) of image files with their labels."""
    arrays, skipped = decode_all([f for f, _ in files], size, on_corrupt, progress, desc=f"decoding {desc}")
    kept = [(a, lab) for a, (_, lab) in zip(arrays, files) if a is not None]
    if not kept:
        raise DatasetLayoutError(f"no decodable images in {where}")
    shapes = {a.shape for a, _ in kept}
    if len(shapes) > 1:
        raise DatasetLayoutError(
            f"images in {where.parent} have different sizes {sorted(shapes)[:3]}...; "
            "pass size=... to resize them to one size."
        )
    images = torch.from_numpy(np.stack([a for a, _ in kept])).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor([lab for _, lab in kept], dtype=torch.int64), skipped


def _scan_samples(path: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """imagenet-samples: one photo per class; labels are the ILSVRC-2012 indices in labels.csv."""
    table = path / "labels.csv"
    if not table.exists():
        raise DatasetLayoutError(
            f"{table} is missing: imagenet-samples needs its labels.csv "
            "(file, wnid, ilsvrc2012_index, class_name, ...)."
        )
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh))
    items, classes = [], []
    for row in rows:
        items.append((path / row["file"], len(classes)))
        classes.append(f"{row['class_name']} ({row['ilsvrc2012_index']})")
    return items, classes


def imagenet_samples() -> list[dict]:
    """The sample photos as rows of labels.csv, with the full path of each file."""
    loc = find_dataset("imagenet-samples")
    with open(loc.path / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["path"] = loc.path / row["file"]
        row["ilsvrc2012_index"] = int(row["ilsvrc2012_index"])
    return rows
