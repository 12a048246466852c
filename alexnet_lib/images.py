"""Image files: finding them in class folders, decoding them, streaming them.

* :func:`scan_image_folder` lists an ImageFolder-style split (``<split>/<class>/<image>``),
  and :func:`subsample` takes a fixed class-balanced subset of it;
* :func:`decode_image` and :func:`decode_all` turn files into uint8 arrays. Every image is
  converted to RGB and, when a size is given, rescaled as §2 says (shorter side to the
  size, then the central square). A file that cannot be decoded raises
  :class:`CorruptImageError`, naming the file and what to do;
* :class:`ImageFolderStream` reads a tree too large to hold in memory (ILSVRC-2012) image by
  image, for a DataLoader.
"""

from __future__ import annotations

import os
import random
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .transforms import resize_shorter_and_crop
from .util import progress as progress_bar

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


class DatasetLayoutError(ValueError):
    """A dataset folder exists but is not laid out as expected."""


class CorruptImageError(ValueError):
    """An image file cannot be decoded."""


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


def decode_all(files: list[Path], size: int | None, on_corrupt: str = "error", progress: bool = True, desc: str = ""):
    """Decode many images with a few threads (PIL releases the GIL while decoding)."""

    def one(path):
        try:
            return decode_image(path, size)
        except CorruptImageError:
            if on_corrupt == "error":
                raise
            return None

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        arrays = list(
            progress_bar(pool.map(one, files, chunksize=64), progress, total=len(files), desc=desc, leave=False)
        )
    skipped = [f for f, a in zip(files, arrays) if a is None]
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} corrupt image(s): "
            + ", ".join(str(s) for s in skipped[:5])
            + (" ..." if len(skipped) > 5 else ""),
            stacklevel=2,
        )
    return arrays, skipped


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
