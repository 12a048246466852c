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
read as a stream (:class:`ImageFolderStream`). The cache is keyed on every file's path, size,
modification time and inode change time (which no user can set back), and its checksum covers
its pixels, labels and class names.

What a dataset *is*, wherever it lies, is ``identity.data_identity``: no paths, no file times.
"""

from __future__ import annotations

import os
import pickle
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .download import make_data
from .images import (
    IMAGE_EXTENSIONS,
    CorruptImageError,
    DatasetLayoutError,
    check_count,
    check_on_corrupt,
    check_same_classes,
    check_size,
    class_folders,
    decode_to_tensors,
    read_sample_labels,
    scan_image_folder,
    scan_samples,
    subsample,
    unreadable,
)
from .storage import (
    SPLIT_PLAIN,
    SPLIT_TENSORS,
    cache_key,
    read_split_cache,
    usable_cache_dir,
    write_cache,
)
from .util import display_path, get_mode, project_root

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
    if not isinstance(name, str) or name not in SPLITS:
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
    _check_flags(True, download=download)
    if mode is not None and not isinstance(mode, str):
        raise ValueError(f"mode must be one of 'smoke', 'quick', 'full' or None (ALEXNET_MODE); got {mode!r}.")
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
        """What the data are (dataset, split, images), not where they lie on this machine (``.source``)."""
        n, c, h, w = self.images.shape
        return f"ImageTensors({self.name}/{self.split}: {n} images {c}x{h}x{w} uint8, {len(self.classes)} classes)"

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
    size, limit = _check_load_arguments(name, split, size, limit, on_corrupt, download, cache, progress)
    try:
        loc = find_dataset(name, download=download)
    except PermissionError as e:
        raise unreadable(e.filename, e) from e
    t0 = time.perf_counter()
    files, classes, key = _list_files(loc, name, split, size, limit)
    folder = usable_cache_dir() if cache else None
    cache_path = folder / f"{name}-{split}-{size or 'native'}-{limit or 'all'}-{key}.pt" if folder else None
    data = _read_cache(cache_path, loc, name, split, classes, on_corrupt)
    from_cache = data is not None
    if data is None:
        if files is None:
            images, labels, classes = _read_cifar_pickle_split(loc.path, split, size, limit)
            skipped = []
        else:
            images, labels, skipped = decode_to_tensors(
                files, loc.path / split, size, on_corrupt, progress, f"{name}/{split}"
            )
        info = {"decode_seconds": time.perf_counter() - t0, "skipped": [str(s) for s in skipped], "files": len(labels)}
        data = ImageTensors(images, labels, list(classes), str(loc.path), name, split, info)
        if cache_path is not None:
            write_cache({"images": images, "labels": labels, "classes": list(classes), "info": info}, cache_path,
                        SPLIT_TENSORS, SPLIT_PLAIN)
    data.info.update(load_seconds=time.perf_counter() - t0, from_cache=from_cache, root=loc.root_label)
    return data


def _check_flags(none_allowed: bool = False, **flags) -> None:
    for flag, value in flags.items():
        if not (isinstance(value, (bool, np.bool_)) or (none_allowed and value is None)):
            raise ValueError(f"{flag} must be True or False{' or None' if none_allowed else ''}, got {value!r}.")


def _check_load_arguments(name, split, size, limit, on_corrupt, download, cache, progress) -> tuple:
    """(size, limit) as ints or None, once every argument of :func:`load_dataset` is checked; a
    ValueError names the first wrong one."""
    check_dataset_name(name)
    if not isinstance(split, str) or split not in SPLITS[name]:
        raise ValueError(f"unknown split {split!r} for {name}; valid splits are {', '.join(map(repr, SPLITS[name]))}.")
    size = check_size(size)
    limit = check_count("limit", limit, "about that many images", "for all of them")
    check_on_corrupt(on_corrupt)
    _check_flags(True, download=download)
    _check_flags(cache=cache, progress=progress)
    if name == "imagenet":
        raise ValueError(
            "ILSVRC-2012 is too large to hold as one tensor: "
            "use ImageFolderStream(find_dataset('imagenet').path / split)."
        )
    return size, limit


def _list_files(loc: Located, name: str, split: str, size: int | None, limit: int | None):
    """(files with labels, class names, cache key) of a split; files and classes are None for
    CIFAR-10's pickles, whose key is their folder."""
    if loc.layout == "cifar-pickle":
        stats = [(f.name, *_file_times(f)) for f in sorted(loc.path.glob("*_batch*")) + [loc.path / "batches.meta"]
                 if f.exists()]
        return None, None, cache_key([name, split, loc.path.resolve(), size, limit, "pickle", *stats])
    if loc.layout == "samples":
        items, classes = scan_samples(loc.path)
    else:
        items, classes = scan_image_folder(loc.path / split)
        others = [s for s in SPLITS[name] if s != split and (loc.path / s).is_dir()]
        check_same_classes(loc.path, {split: classes, **{s: class_folders(loc.path / s) for s in others}})
    items = subsample(items, limit)
    stats = [(str(f.relative_to(loc.path)), *_file_times(f)) for f, _ in items]
    return items, classes, cache_key([name, split, loc.path.resolve(), size, limit, len(stats), *stats])


def _file_times(path: Path) -> tuple[int, int, int]:
    """(size, modification time, inode change time) of a file. An image edited in place may keep its
    size and have its modification time set back (``touch -d``, ``os.utime``), but every write sets
    the change time to the present, and no user can set it back: a cache key, never an identity."""
    try:
        st = path.stat()
    except PermissionError as e:
        raise unreadable(path, e) from e
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _read_cache(cache_path: Path | None, loc: Located, name: str, split: str, classes, on_corrupt: str):
    """The cached split, or None if there is none; a damaged cache (its checksum tells), or one that
    does not hold a decoded split of these ``classes``, is decoded again (a warning), never trusted."""
    blob = read_split_cache(cache_path, classes)
    if blob is None:
        return None
    skipped = blob["info"].get("skipped")
    if skipped and on_corrupt == "error":  # the same files, unchanged since: the cache key holds their times
        raise CorruptImageError(
            f"cannot decode image {skipped[0]}" + (f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else "")
            + ": it was left out when this split was decoded with on_corrupt='skip'. Delete or replace the file, "
            "or load with on_corrupt='skip' (command line: --on-corrupt skip) to leave it out with a warning."
        )
    if skipped:
        warnings.warn(f"skipped {len(skipped)} corrupt image(s) (when this split was decoded): "
                      + ", ".join(skipped[:5]), stacklevel=3)
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


def imagenet_samples() -> list[dict]:
    """The sample photos as rows of labels.csv, with the full path of each file."""
    loc = find_dataset("imagenet-samples")
    rows = read_sample_labels(loc.path)
    for row in rows:
        row["path"] = loc.path / row["file"]
    return rows
