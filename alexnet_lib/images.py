"""Image files: finding them in class folders, decoding them, streaming them.

* :func:`scan_image_folder` lists an ImageFolder-style split (``<split>/<class>/<image>``,
  images in sub-folders of a class folder included), :func:`check_same_classes` makes sure
  every split has the same class folders, and :func:`subsample` takes a fixed
  class-balanced subset;
* :func:`decode_image` and :func:`decode_all` turn files into uint8 arrays. Every image is
  converted to RGB (16-bit images by their high byte, as PIL does for 16-bit colour) and,
  when a size is given, rescaled as §2 says (shorter side to the size, then the central
  square). A file that cannot be decoded (a decompression bomb included: an image larger
  than PIL's ``Image.MAX_IMAGE_PIXELS``) raises :class:`CorruptImageError`, and one that
  cannot be read :class:`UnreadableDataError`, each naming the file and what to do; a
  symbolic link that dangles or loops is a :class:`DatasetLayoutError` naming the link;
* :class:`ImageFolderStream` reads a tree too large to hold in memory (ILSVRC-2012) image by
  image, for a DataLoader.
"""

from __future__ import annotations

import csv
import errno
import numbers
import os
import random
import threading
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


class UnreadableDataError(PermissionError):
    """A data folder or file exists but this user may not read it."""


def check_count(name: str, value, meaning: str, none_means: str):
    """``value`` as an int of at least 1 (or None), else a ValueError naming the argument."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number ({meaning}), or None {none_means}; "
                         f"got {value!r} (a {type(value).__name__}).")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 ({meaning}), or None {none_means}; got {value}.")
    return int(value)


def check_size(size):
    """The ``size`` argument of the decoders: pixels of the shorter side and of the square crop."""
    return check_count("size", size, "pixels of the shorter side and of the square crop", "to keep the stored size")


def check_on_corrupt(on_corrupt) -> None:
    if on_corrupt not in ("error", "skip"):
        raise ValueError(f"unknown on_corrupt={on_corrupt!r}; valid values are 'error', 'skip'.")


def is_junk_folder(name: str) -> bool:
    """Folders that are never classes: macOS archive debris, hidden folders (.ipynb_checkpoints)."""
    return name.startswith(".") or name == "__MACOSX"


def unreadable(path, error: OSError) -> UnreadableDataError:
    return UnreadableDataError(
        f"cannot read {path}: {error.strerror or error}. Give your user read access to it "
        f"(for a folder: chmod -R u+rX {path}), or set ALEXNET_DATA to a readable copy of the data."
    )


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with 16-bit (and 32-bit integer) grey images reduced by their high byte; PIL's own
    conversion would clip them to white."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(img).astype(np.int64)
        img = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8), mode="L")
    return img.convert("RGB")


_OPEN_LOCK = threading.Lock()  # warning filters are the process's: one thread changes them at a time


def _open(path: Path) -> Image.Image:
    """``Image.open`` with PIL's decompression-bomb warning (an image over ``Image.MAX_IMAGE_PIXELS``)
    raised as an error, as its error is above twice that limit: such a file is not decoded."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def decode_image(path: Path, size: int | None = None) -> np.ndarray:
    """One image as an H×W×3 uint8 array; shorter side to ``size`` and centre crop."""
    size = check_size(size)
    try:
        with _open(path) as img:
            img = _to_rgb(img)
            if size is not None:
                img = resize_shorter_and_crop(img, size)
            return np.asarray(img, dtype=np.uint8)
    except PermissionError as e:
        raise unreadable(path, e) from e
    except FileNotFoundError as e:
        raise CorruptImageError(f"image {path} does not exist (it was moved or deleted after the folder was listed)."
                                " Restore it, or load again to list the folder afresh.") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise CorruptImageError(
            f"cannot decode image {path}: {e} Delete or replace the file, or load with on_corrupt='skip' (command "
            "line: --on-corrupt skip) to leave it out with a warning; if you trust the file, raise PIL's "
            "Image.MAX_IMAGE_PIXELS."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CorruptImageError(
            f"cannot decode image {path}: {e}. Delete or replace the file, "
            "or load with on_corrupt='skip' (command line: --on-corrupt skip) to leave it out with a warning."
        ) from e


def decode_all(files: list[Path], size: int | None, on_corrupt: str = "error", progress: bool = True, desc: str = ""):
    """Decode many images with a few threads (PIL releases the GIL while decoding)."""
    size = check_size(size)
    check_on_corrupt(on_corrupt)

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


def decode_to_tensors(files, where: Path, size: int | None, on_corrupt: str, progress: bool, desc: str):
    """(uint8 images (N, 3, H, W), int64 labels, skipped files) of (file, label) pairs; the files of
    one size (or made so by ``size``)."""
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


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except PermissionError as e:
        raise unreadable(folder, e) from e


def check_link(path: str) -> None:
    """Raise DatasetLayoutError, naming the link, if ``path`` is a symbolic link that dangles or loops."""
    try:
        os.stat(path)
        return
    except FileNotFoundError:
        what = f"points to {os.readlink(path)}, which does not exist (a dangling link)"
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        what = "loops (too many levels of symbolic links)"
    raise DatasetLayoutError(f"symbolic link {path} {what}. Remove the link, or point it at the image (or folder) "
                             "it stands for.")


def _check_no_cycle(link: str, chain: tuple) -> None:
    """A link to a folder that holds it (the real paths of the folders walked down to it are
    ``chain``) would list its images forever."""
    target = os.path.realpath(link)
    if any(os.path.commonpath([target, held]) == target for held in chain):
        raise DatasetLayoutError(f"symbolic link {link} loops: it points to {os.readlink(link)}, a folder that holds "
                                 "the link itself. Remove the link, or point it at a folder outside the dataset.")


def class_folders(split_dir: Path) -> list[str]:
    """The class folders of a split, sorted by name; junk folders (``__MACOSX``, hidden ones)
    are left out with a warning that names them. A link that dangles or loops is an error: it
    may stand for a class folder, and a missing class would shift every label after it."""
    listed = _listdir(split_dir)
    for p in listed:
        if p.is_symlink() and not is_junk_folder(p.name):
            check_link(str(p))
    entries = [p for p in listed if p.is_dir()]
    junk = [p.name for p in entries if is_junk_folder(p.name)]
    if junk:
        warnings.warn(f"{split_dir}: ignored {', '.join(junk)} (not class folders)", stacklevel=3)
    return [p.name for p in entries if not is_junk_folder(p.name)]


def _images_under(folder: Path, chain: tuple = ()) -> list[Path]:
    """Every image file in ``folder`` and its sub-folders (hidden ones and __MACOSX left out), sorted;
    a symbolic link that dangles, or loops back to a folder that holds it, is named in an error."""
    try:
        with os.scandir(folder) as it:  # DirEntry knows file from folder without a stat per file
            entries = sorted(it, key=lambda e: e.name)
    except PermissionError as e:
        raise unreadable(folder, e) from e
    found, chain = [], (*chain, os.path.realpath(folder))
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            check_link(entry.path)
        if entry.is_dir():
            if entry.is_symlink():
                _check_no_cycle(entry.path, chain)
            if not is_junk_folder(entry.name):
                found += _images_under(Path(entry.path), chain)
        elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
            found.append(Path(entry.path))
    return found


def scan_image_folder(split_dir: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(file, label) pairs of an ImageFolder-style split, classes sorted by name. Images in
    sub-folders of a class folder belong to that class (as in torchvision's ImageFolder)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        parent = split_dir.parent
        have = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        raise DatasetLayoutError(
            f"missing split folder {split_dir}. Found {have or 'no sub-folders'} in {parent}. "
            f"Expected {parent}/<split>/<class>/<image> with the split named {split_dir.name!r}."
        )
    classes = class_folders(split_dir)
    loose = [p.name for p in _listdir(split_dir) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
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
        files = _images_under(split_dir / cls)
        if not files:
            raise DatasetLayoutError(
                f"class folder {split_dir / cls} holds no images ({', '.join(IMAGE_EXTENSIONS)}). "
                "Remove the empty folder or add its images."
            )
        items += [(f, label) for f in files]
    return items, classes


def check_same_classes(dataset_dir: Path, classes: dict) -> None:
    """Raise DatasetLayoutError unless every split in ``classes`` ({split: class names}) has the
    same classes: a label is a class's position in the sorted list, so one folder more or less in
    one split shifts the labels of every class after it."""
    splits = list(classes)
    reference = splits[0]
    for split in splits[1:]:
        if classes[split] == classes[reference]:
            continue
        only_ref = sorted(set(classes[reference]) - set(classes[split]))
        only_other = sorted(set(classes[split]) - set(classes[reference]))
        parts = [f"only in {reference}/: {', '.join(only_ref)}" if only_ref else "",
                 f"only in {split}/: {', '.join(only_other)}" if only_other else ""]
        raise DatasetLayoutError(
            f"the splits of {dataset_dir} have different class folders ({'; '.join(p for p in parts if p)}). "
            "Every split needs the same class folders, or the labels of one split would mean other classes "
            "in the other. Add the missing class folders, or remove (or move away) the extra ones."
        )


SAMPLE_COLUMNS = ("file", "wnid", "ilsvrc2012_index", "class_name")


def read_sample_labels(folder: Path) -> list[dict]:
    """The rows of ``folder/labels.csv`` (the sample photos), checked: the columns are there, each
    row names a file that exists and an integer class index (made an int here)."""
    table = folder / "labels.csv"
    if not table.exists():
        raise DatasetLayoutError(
            f"{table} is missing: the sample photos need their labels.csv ({', '.join(SAMPLE_COLUMNS)}, ...)."
        )
    try:
        with open(table, newline="") as fh:
            reader = csv.DictReader(fh)
            rows, header = list(reader), reader.fieldnames or []
    except PermissionError as e:
        raise unreadable(table, e) from e
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetLayoutError(f"{table} is not a readable CSV file ({e}). Restore the original labels.csv.") from e
    fix = f"Restore the original labels.csv; its first line names the columns {', '.join(SAMPLE_COLUMNS)}."
    missing = [c for c in SAMPLE_COLUMNS if c not in header]
    if missing or not rows:
        what = f"lacks the column(s) {', '.join(missing)} (its first line is {header})" if missing else "has no rows"
        raise DatasetLayoutError(f"{table} {what}. {fix}")
    for line, row in enumerate(rows, start=2):
        try:
            row["ilsvrc2012_index"] = int(row["ilsvrc2012_index"])
        except (TypeError, ValueError):
            raise DatasetLayoutError(
                f"{table}, line {line}: ilsvrc2012_index is {row['ilsvrc2012_index']!r}, not a class number. {fix}"
            ) from None
        if not row["file"] or not (folder / row["file"]).is_file():
            raise DatasetLayoutError(
                f"{table}, line {line} names the photo {row['file']!r}, which is not in {folder}. "
                "Put the photo there, or remove its line."
            )
    return rows


def scan_samples(path: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """imagenet-samples: one photo per class; labels are the ILSVRC-2012 indices in labels.csv."""
    items, classes = [], []
    for row in read_sample_labels(path):
        items.append((path / row["file"], len(classes)))
        classes.append(f"{row['class_name']} ({row['ilsvrc2012_index']})")
    return items, classes


def subsample(items: list[tuple[Path, int]], limit: int | None, seed: int = 0) -> list[tuple[Path, int]]:
    """A class-balanced subset of at most ``limit`` items, the same for every call."""
    limit = check_count("limit", limit, "about that many images", "for all of them")
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
        check_on_corrupt(on_corrupt)
        self.size, self.on_corrupt, self.root = check_size(size), on_corrupt, Path(split_dir)
        self.items, self.classes = scan_image_folder(self.root)

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
