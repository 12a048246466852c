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
import random
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")

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


class DatasetLayoutError(ValueError):
    """A dataset folder exists but is not laid out as expected."""


class CorruptImageError(ValueError):
    """An image file cannot be decoded."""


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
    roots.append(("the project's data/", PROJECT_ROOT / "data"))
    seen, unique = set(), []
    for label, path in roots:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append((label, path))
    return unique


def display_path(path) -> str:
    """A path as shown to readers: relative to the project when that is shorter, else
    relative to the home directory (``~/...``), so committed outputs never carry one
    machine's absolute paths."""
    path = Path(path)
    resolved = path.resolve()
    try:
        rel = os.path.relpath(resolved, PROJECT_ROOT)
    except ValueError:
        return str(path)
    if len(rel) <= len(str(path)) or not path.is_absolute():
        return rel
    home = Path.home().resolve()
    return str(Path("~") / resolved.relative_to(home)) if resolved.is_relative_to(home) else str(path)


def cache_dir() -> Path:
    """Where decoded tensors are cached: ``$ALEXNET_CACHE`` or the project's data/cache."""
    path = Path(os.environ.get("ALEXNET_CACHE", PROJECT_ROOT / "data" / "cache")).expanduser()
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
        return _download(name, PROJECT_ROOT / "data")
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


# ------------------------------------------------------------------------ scanning
def scan_image_folder(split_dir: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(file, label) pairs of an ImageFolder-style split, classes sorted by name."""
    if not split_dir.is_dir():
        parent = split_dir.parent
        have = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        raise DatasetLayoutError(
            f"missing split folder {split_dir}. Found {have or 'no sub-folders'} in {parent}. "
            f"Expected {parent}/<split>/<class>/<image> with the split named {split_dir.name!r}."
        )
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    loose = [p.name for p in split_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not classes:
        raise DatasetLayoutError(
            f"{split_dir} has no class folders"
            + (f" but {len(loose)} loose images (e.g. {loose[0]})" if loose else "")
            + f". Put each image in a folder named after its class: {split_dir}/<class>/<image>."
        )
    if loose:
        raise DatasetLayoutError(
            f"{split_dir} mixes class folders with {len(loose)} loose images (e.g. {loose[0]}). "
            "Move every image into its class folder."
        )
    items = []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (split_dir / cls).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DatasetLayoutError(
                f"class folder {split_dir / cls} holds no images ({', '.join(IMAGE_EXTENSIONS)}). "
                "Remove the empty folder or add its images."
            )
        items += [(f, label) for f in files]
    return items, classes


def subsample(items: list[tuple[Path, int]], limit: int | None, seed: int = 0) -> list[tuple[Path, int]]:
    """A class-balanced subset of at most ``limit`` items, the same for every call."""
    if limit is None or limit >= len(items):
        return items
    by_class: dict[int, list] = {}
    for item in items:
        by_class.setdefault(item[1], []).append(item)
    rng = random.Random(seed)
    per_class = max(1, limit // len(by_class))
    chosen = []
    for label in sorted(by_class):
        group = list(by_class[label])
        rng.shuffle(group)
        chosen += sorted(group[:per_class])
    return chosen


# ------------------------------------------------------------------------ decoding
def decode_image(path: Path, size: int | None = None) -> np.ndarray:
    """One image as an H×W×3 uint8 array; shorter side to ``size`` and centre crop."""
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if size is not None:
                img = resize_shorter_and_crop(img, size)
            return np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CorruptImageError(
            f"cannot decode image {path}: {e}. Delete or replace the file, "
            "or load with on_corrupt='skip' to leave it out with a warning."
        ) from e


def resize_shorter_and_crop(img: Image.Image, size: int) -> Image.Image:
    """§2: 'rescaled the image such that the shorter side was of length 256, and then
    cropped out the central 256×256 patch' (with ``size`` in place of 256)."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=None)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def decode_all(files: list[Path], size: int | None, on_corrupt: str = "error", progress: bool = True, desc: str = ""):
    """Decode many images with a few threads (PIL releases the GIL while decoding)."""
    from .experiments import progress as progress_bar

    def one(path):
        try:
            return decode_image(path, size)
        except CorruptImageError:
            if on_corrupt == "error":
                raise
            return None

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        arrays = list(progress_bar(pool.map(one, files, chunksize=64), progress, total=len(files), desc=desc, leave=False))
    skipped = [f for f, a in zip(files, arrays) if a is None]
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} corrupt image(s): " + ", ".join(str(s) for s in skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
            stacklevel=2,
        )
    return arrays, skipped


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
        return f"ImageTensors({self.name}/{self.split}: {n} images {c}x{h}x{w} uint8, {len(self.classes)} classes, from {display_path(self.source)})"

    def subset(self, index) -> "ImageTensors":
        index = torch.as_tensor(index)
        return ImageTensors(self.images[index], self.labels[index], self.classes, self.source, self.name, self.split, dict(self.info))

    def class_counts(self) -> dict:
        counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts))


def _read_cifar_pickle(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list]:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for n in names:
        f = path / n
        if not f.exists():
            raise DatasetLayoutError(f"CIFAR-10 batch file {f} is missing; re-download torchvision's cifar-10-batches-py.")
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


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
    check_dataset_name(name)
    if split not in SPLITS[name]:
        raise ValueError(f"unknown split {split!r} for {name}; valid splits are {', '.join(map(repr, SPLITS[name]))}.")
    if on_corrupt not in ("error", "skip"):
        raise ValueError(f"unknown on_corrupt={on_corrupt!r}; valid values are 'error', 'skip'.")
    if name == "imagenet":
        raise ValueError("ILSVRC-2012 is too large to hold as one tensor: use ImageFolderStream(find_dataset('imagenet').path / split).")
    loc = find_dataset(name, download=download)
    t0 = time.perf_counter()

    if loc.layout == "cifar-pickle":
        key = _fingerprint([name, split, loc.path.resolve(), size, limit, "pickle"])
        files, classes = None, None
    else:
        if loc.layout == "samples":
            items, classes = _scan_samples(loc.path)
        else:
            items, classes = scan_image_folder(loc.path / split)
        items = subsample(items, limit)
        stats = [(str(f.relative_to(loc.path)), f.stat().st_size) for f, _ in items]
        key = _fingerprint([name, split, loc.path.resolve(), size, limit, len(stats), *stats])
        files = items
    tag = f"{name}-{split}-{size or 'native'}-{limit or 'all'}-{key}.pt"
    cache_path = cache_dir() / tag if cache else None
    if cache_path is not None and cache_path.exists():
        try:
            blob = torch.load(cache_path, weights_only=True)
            data = ImageTensors(blob["images"], blob["labels"], blob["classes"], str(loc.path), name, split, dict(blob["info"]))
            data.info.update(load_seconds=time.perf_counter() - t0, from_cache=True, root=loc.root_label)
            return data
        except Exception as e:  # a damaged cache is rebuilt, never trusted
            warnings.warn(f"cache file {cache_path} is unreadable ({e}); decoding again", stacklevel=2)

    skipped: list = []
    if loc.layout == "cifar-pickle":
        images, labels, classes = _read_cifar_pickle(loc.path, split)
        if limit is not None:
            idx = subsample([(i, int(l)) for i, l in enumerate(labels)], limit)
            keep = torch.tensor([i for i, _ in idx])
            images, labels = images[keep], labels[keep]
        if size is not None and size != 32:
            images = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
            images = images.round().clamp(0, 255).to(torch.uint8)
    else:
        arrays, skipped = decode_all([f for f, _ in files], size, on_corrupt, progress, desc=f"decoding {name}/{split}")
        kept = [(a, lab) for a, (_, lab) in zip(arrays, files) if a is not None]
        if not kept:
            raise DatasetLayoutError(f"no decodable images in {loc.path / split}")
        shapes = {a.shape for a, _ in kept}
        if len(shapes) > 1:
            raise DatasetLayoutError(
                f"images in {loc.path} have different sizes {sorted(shapes)[:3]}...; pass size=... to resize them to one size."
            )
        images = torch.from_numpy(np.stack([a for a, _ in kept])).permute(0, 3, 1, 2).contiguous()
        labels = torch.tensor([lab for _, lab in kept], dtype=torch.int64)
    info = {"decode_seconds": time.perf_counter() - t0, "skipped": [str(s) for s in skipped], "files": len(labels)}
    data = ImageTensors(images, labels, list(classes), str(loc.path), name, split, info)
    if cache_path is not None:
        atomic_save({"images": images, "labels": labels, "classes": list(classes), "info": info}, cache_path)
    data.info.update(load_seconds=time.perf_counter() - t0, from_cache=False, root=loc.root_label)
    return data


def _scan_samples(path: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """imagenet-samples: one photo per class; labels are the ILSVRC-2012 indices in labels.csv."""
    table = path / "labels.csv"
    if not table.exists():
        raise DatasetLayoutError(f"{table} is missing: imagenet-samples needs its labels.csv (file, wnid, ilsvrc2012_index, class_name, ...).")
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


class ImageFolderStream(torch.utils.data.Dataset):
    """A large ImageFolder tree (ILSVRC-2012) read image by image, for a DataLoader.

    Each item is a uint8 (3, size, size) tensor, shorter side to ``size`` then centre
    crop (the paper's 256×256), and its label. Augmentation happens on whole batches
    afterwards, the same code as for the cached datasets.
    """

    def __init__(self, split_dir, size: int = 256, on_corrupt: str = "error"):
        self.items, self.classes = scan_image_folder(Path(split_dir))
        self.size, self.on_corrupt = size, on_corrupt

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        try:
            arr = decode_image(path, self.size)
        except CorruptImageError:
            if self.on_corrupt == "error":
                raise
            warnings.warn(f"skipping corrupt image {path}", stacklevel=2)
            arr = np.zeros((self.size, self.size, 3), np.uint8)
            label = -1  # the trainer drops label -1
        if not arr.flags.writeable:  # PIL's buffer is read-only; torch wants to own writable memory
            arr = arr.copy()
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), label
