"""Finding the datasets, decoding them once, and caching them as uint8 tensors (§2).

One function finds a dataset, :func:`find_dataset`. It looks, in this order, at

1. ``$ALEXNET_DATA`` (an error if it is set but not a folder: a misspelt path),
2. ``./data`` (the folder you run from),
3. the project's own ``data/`` folder,
4. the download (``make data``), only when asked: ``download=True`` or ``$ALEXNET_DOWNLOAD=1``,
5. the small sample committed in ``data/sample/``, in smoke mode only, and loudly,

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

import hashlib
import os
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .download import make_data
from .images import (  # noqa: F401  (re-exported from their older home)
    IMAGE_EXTENSIONS,
    CorruptImageError,
    DatasetLayoutError,
    ImageFolderStream,
    UnreadableDataError,
    check_same_classes,
    class_folders,
    decode_all,
    decode_image,
    read_sample_labels,
    scan_image_folder,
    subsample,
    unreadable,
)
from .storage import CacheFolderError, cache_dir, read_checked_cache, usable_cache_dir, write_cache  # noqa: F401
from .transforms import resize_shorter_and_crop  # noqa: F401  (its older home)
from .util import PROJECT_ROOT, atomic_save, display_path, get_mode, project_root  # noqa: F401  (PROJECT_ROOT: older home)

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
#: Datasets ``make data`` can download (the sample photos are taken from Imagenette's).
DOWNLOADABLE = {"cifar10": ["cifar10"], "imagenette": ["imagenette"],
                "imagenet-samples": ["imagenette", "imagenet-samples"]}
GET_IT = ("run `make data` (python -m alexnet_lib.download) where the internet is reachable, or set ALEXNET_DOWNLOAD=1 "
          "to download it on first use")
HOW_TO_GET = {
    "cifar10": f"{GET_IT}, or put CIFAR-10 as cifar10/{{train,test}}/<class>/*.png under a data root",
    "imagenette": f"{GET_IT}, or put it as imagenette/{{train,val}}/<wnid>/*.JPEG under a data root",
    "imagenet": "ILSVRC-2012 cannot be downloaded automatically: get it from image-net.org and arrange it "
    "as imagenet/{train,val}/<wnid>/*.JPEG (ImageFolder layout) under a data root",
    "imagenet-samples": f"{GET_IT} (the photos are taken from Imagenette), or put photos and their labels.csv in "
    "imagenet-samples/ under a data root",
}
SAMPLE_LABEL = "the embedded sample"


class DatasetNotFoundError(FileNotFoundError):
    """No data root holds the dataset."""


def check_dataset_name(name: str) -> None:
    if name not in SPLITS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets are {', '.join(map(repr, SPLITS))}.")


def data_roots(sample: bool = True) -> list[tuple[str, Path]]:
    """The places searched for data, in order, with the label shown in errors; the embedded
    sample (``data/sample``) last, unless ``sample=False``."""
    roots = []
    env = os.environ.get("ALEXNET_DATA")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DatasetNotFoundError(
                f"ALEXNET_DATA={env!r} is not a folder{' (it is a file)' if path.exists() else ''}. "
                "Set it to the folder that holds cifar10/, imagenette/, ... (check the spelling), or unset it."
            )
        roots.append(("$ALEXNET_DATA", path))
    roots.append(("./data", Path.cwd() / "data"))
    roots.append(("the project's data/", project_root() / "data"))
    if sample:
        roots.append((SAMPLE_LABEL, project_root() / "data" / "sample"))
    seen, unique = set(), []
    for label, path in roots:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append((label, path))
    return unique


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


def find_dataset(name: str, download: bool | None = None, mode: str | None = None) -> Located:
    """Find ``name`` in the data roots (see the module docstring for the order).

    ``download`` (default: ``$ALEXNET_DOWNLOAD``) lets it download what no root holds. The
    embedded sample is used only in smoke ``mode`` (default: :func:`util.get_mode`).
    """
    check_dataset_name(name)
    roots = data_roots()
    for label, root in roots:
        found = _locate_in(name, root)
        if found is not None and label != SAMPLE_LABEL:
            found.root_label = f"{label} = {display_path(root)}"
            return found
    if download is None:
        download = os.environ.get("ALEXNET_DOWNLOAD", "").lower() in ("1", "true", "yes")
    if download and name in DOWNLOADABLE:
        root = make_data(only=DOWNLOADABLE[name])
        found = _locate_in(name, root)
        found.root_label = f"downloaded to {display_path(root)}"
        return found
    looked = "\n".join(f"  - {label}: {display_path(root / FOLDER_CANDIDATES[name][0])}" for label, root in roots)
    if found is not None:  # only the embedded sample holds it
        return _use_sample(found, get_mode(mode), looked)
    raise DatasetNotFoundError(
        f"dataset {name!r} not found. Looked in:\n{looked}\n"
        f"To fix: set ALEXNET_DATA to a folder that holds it, or {HOW_TO_GET[name]}."
    )


_SAMPLES_ANNOUNCED: set = set()


def _use_sample(found: Located, mode: str, looked: str) -> Located:
    """The embedded sample, in smoke mode, announced once per dataset; an error in any other mode."""
    images = sum(1 for p in found.path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if mode != "smoke":
        raise DatasetNotFoundError(
            f"dataset {found.name!r} is not here, only its embedded sample ({images} images in "
            f"{display_path(found.path)}), and {mode} mode needs the real data: a result on a sample that small "
            f"would mean nothing. Looked in:\n{looked}\nTo fix: set ALEXNET_DATA to a folder that holds it, or "
            f"{HOW_TO_GET[found.name]}; or run in smoke mode (ALEXNET_MODE=smoke), which checks the code only."
        )
    if found.name not in _SAMPLES_ANNOUNCED:
        _SAMPLES_ANNOUNCED.add(found.name)
        warnings.warn(
            f"USING THE EMBEDDED SAMPLE of {found.name!r}: {images} images in {display_path(found.path)}, enough to "
            f"run the code in smoke mode, not to measure anything. For the real data, {HOW_TO_GET[found.name]}.",
            SampleDataWarning, stacklevel=3,
        )
    found.root_label = f"{SAMPLE_LABEL} = {display_path(found.path.parent)} (smoke mode only)"
    return found


class SampleDataWarning(UserWarning):
    """A dataset was found only in the embedded sample."""


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


def _load_pickle(path: Path) -> dict:
    """A CIFAR pickle as a dict with str keys: the release's (Python 2 strings, read as latin1, as
    torchvision does) or one written by Python 3 (str or bytes keys)."""
    with open(path, "rb") as fh:
        blob = pickle.load(fh, encoding="latin1")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in blob.items()}


def _read_cifar_pickle(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list]:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for n in names:
        f = path / n
        if not f.exists():
            raise DatasetLayoutError(
                f"CIFAR-10 batch file {f} is missing; re-download torchvision's cifar-10-batches-py."
            )
        batch = _load_pickle(f)
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels += list(batch["labels"])
    meta = path / "batches.meta"
    if meta.exists():
        classes = [c.decode() if isinstance(c, bytes) else c for c in _load_pickle(meta)["label_names"]]
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
    download: bool | None = None,
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
    _check_load_arguments(name, split, on_corrupt, limit)
    try:
        loc = find_dataset(name, download=download)
    except PermissionError as e:
        raise unreadable(e.filename, e) from e
    t0 = time.perf_counter()
    files, classes, key = _list_files(loc, name, split, size, limit)
    folder = usable_cache_dir() if cache else None
    cache_path = folder / f"{name}-{split}-{size or 'native'}-{limit or 'all'}-{key}.pt" if folder else None
    data = _read_cache(cache_path, loc, name, split)
    if data is not None and on_corrupt == "error" and data.info.get("skipped"):
        skipped = data.info["skipped"]  # the same files, unchanged since: the cache key holds their mtimes
        raise CorruptImageError(
            f"cannot decode image {skipped[0]}" + (f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else "")
            + ": it was left out when this split was decoded with on_corrupt='skip'. Delete or replace the file, "
            "or load with on_corrupt='skip' (command line: --on-corrupt skip) to leave it out with a warning."
        )
    if data is not None and data.info.get("skipped"):
        warnings.warn(f"skipped {len(data.info['skipped'])} corrupt image(s) (when this split was decoded): "
                      + ", ".join(data.info["skipped"][:5]), stacklevel=2)
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
            write_cache({"images": images, "labels": labels, "classes": list(classes), "info": info}, cache_path,
                        ("images", "labels"))
    data.info.update(load_seconds=time.perf_counter() - t0, from_cache=from_cache, root=loc.root_label)
    return data


def _check_load_arguments(name: str, split: str, on_corrupt: str, limit: int | None) -> None:
    check_dataset_name(name)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1 (about that many training images), got {limit}; None: all")
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
        stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(loc.path.glob("*_batch*"))]
        return None, None, _fingerprint([name, split, loc.path.resolve(), size, limit, "pickle", *stats])
    if loc.layout == "samples":
        items, classes = _scan_samples(loc.path)
    else:
        items, classes = scan_image_folder(loc.path / split)
        others = [s for s in SPLITS[name] if s != split and (loc.path / s).is_dir()]
        check_same_classes(loc.path, {split: classes, **{s: class_folders(loc.path / s) for s in others}})
    items = subsample(items, limit)
    # an image edited in place keeps its size but not its modification time
    stats = [(str(f.relative_to(loc.path)), *_size_and_mtime(f)) for f, _ in items]
    return items, classes, _fingerprint([name, split, loc.path.resolve(), size, limit, len(stats), *stats])


def _size_and_mtime(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except PermissionError as e:
        raise unreadable(path, e) from e
    return st.st_size, st.st_mtime_ns


def _read_cache(cache_path: Path | None, loc: Located, name: str, split: str) -> ImageTensors | None:
    """The cached split, or None if there is none; a damaged cache (its checksum tells) is decoded
    again, never trusted."""
    blob = read_checked_cache(cache_path, ("images", "labels"))
    if blob is None:
        return None
    return ImageTensors(blob["images"], blob["labels"], blob["classes"], str(loc.path), name, split, dict(blob["info"]))


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
            f"images in {where} have different sizes {sorted(shapes)[:3]}...; pass size=... to load_dataset to "
            "resize them to one size (the command line does so for Imagenette; CIFAR-10's images must all be 32x32)."
        )
    images = torch.from_numpy(np.stack([a for a, _ in kept])).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor([lab for _, lab in kept], dtype=torch.int64), skipped


def _scan_samples(path: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """imagenet-samples: one photo per class; labels are the ILSVRC-2012 indices in labels.csv."""
    items, classes = [], []
    for row in read_sample_labels(path):
        items.append((path / row["file"], len(classes)))
        classes.append(f"{row['class_name']} ({row['ilsvrc2012_index']})")
    return items, classes


def imagenet_samples() -> list[dict]:
    """The sample photos as rows of labels.csv, with the full path of each file."""
    loc = find_dataset("imagenet-samples")
    rows = read_sample_labels(loc.path)
    for row in rows:
        row["path"] = loc.path / row["file"]
    return rows
