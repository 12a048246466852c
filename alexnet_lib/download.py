"""``make data``: the real datasets, downloaded and arranged in the layouts the book reads.

    python -m alexnet_lib.download [--root DIR] [--only cifar10 imagenette imagenet-samples]

The archives come through torchvision's own dataset classes, which check every archive's
md5 (and CIFAR-10's batch files' too):

* CIFAR-10 (``torchvision.datasets.CIFAR10``, 163 MB) into ``<root>/cifar10/cifar-10-batches-py/``;
* Imagenette, the full-size release (``torchvision.datasets.Imagenette``, 1.5 GB) into
  ``<root>/imagenette2/{train,val}/<wnid>/``, with the ``wnid_to_name.txt`` chapters 1 and
  10 read;
* the sample photos: the first full-size validation photo of each Imagenette class, copied
  to ``<root>/imagenet-samples/`` with their ``labels.csv``.

The root is ``$ALEXNET_DATA`` when set, else the project's ``data/``. Each step is skipped
when its result is already there and verified, so an interrupted run is simply run again.
Offline, it stops at once and says so.

``$ALEXNET_MIRROR`` points the downloads at another server (a local mirror, or the tests'
loopback server): it must serve the same archive names, and a file ``MD5SUMS`` with the md5
of each archive and of CIFAR-10's batch files (``md5sum`` format). Only point it at a
mirror you trust: its checksums replace torchvision's.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from PIL import Image

from .images import scan_image_folder
from .util import display_path, project_root

DATASETS = ("cifar10", "imagenette", "imagenet-samples")
#: Imagenette's classes: wnid -> (ILSVRC-2012 class index, class name).
IMAGENETTE_CLASSES = {
    "n01440764": (0, "tench"), "n02102040": (217, "English springer"), "n02979186": (482, "cassette player"),
    "n03000684": (491, "chain saw"), "n03028079": (497, "church"), "n03394916": (566, "French horn"),
    "n03417042": (569, "garbage truck"), "n03425413": (571, "gas pump"), "n03445777": (574, "golf ball"),
    "n03888257": (701, "parachute"),
}


class DownloadError(RuntimeError):
    """A dataset could not be downloaded or did not verify."""


def download_root() -> Path:
    """Where ``make data`` builds the datasets: ``$ALEXNET_DATA`` when set, else the project's data/."""
    env = os.environ.get("ALEXNET_DATA")
    return Path(env).expanduser() if env else project_root() / "data"


def mirror() -> str | None:
    """``$ALEXNET_MIRROR`` with a trailing slash, or None."""
    url = os.environ.get("ALEXNET_MIRROR", "").strip()
    return (url.rstrip("/") + "/") if url else None


def mirror_checksums(base: str) -> dict:
    """{file name: md5} from the mirror's MD5SUMS."""
    text = _fetch(base + "MD5SUMS").decode()
    return {name.strip().lstrip("*"): md5 for md5, name in (line.split(None, 1) for line in text.splitlines() if line)}


def _fetch(url: str, timeout: float = 15) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(
            f"cannot reach {url} ({getattr(e, 'reason', e)}). Downloading the data needs the internet "
            "(or $ALEXNET_MIRROR pointing at a reachable mirror). Offline, set ALEXNET_DATA to a folder that "
            "already holds the data; without any, the chapters run in smoke mode on the sample in data/sample/."
        ) from None


def check_reachable(url: str) -> None:
    """Fail at once, with advice, when the server of ``url`` cannot be reached."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError:
        return  # the server answered (some refuse HEAD): it is reachable
    except (urllib.error.URLError, OSError):
        _fetch(url, timeout=10)  # raises DownloadError with the reason


def cifar10_class():
    """torchvision's CIFAR10, or a subclass that reads the mirror with the mirror's checksums."""
    from torchvision.datasets import CIFAR10

    base = mirror()
    if base is None:
        return CIFAR10
    sums = mirror_checksums(base)
    listed = lambda files: [[name, sums.get(name, md5)] for name, md5 in files]  # noqa: E731
    return type("MirroredCIFAR10", (CIFAR10,), {
        "url": base + CIFAR10.filename, "tgz_md5": sums[CIFAR10.filename],
        "train_list": listed(CIFAR10.train_list), "test_list": listed(CIFAR10.test_list),
        "meta": {**CIFAR10.meta, "md5": sums.get(CIFAR10.meta["filename"], CIFAR10.meta["md5"])},
    })


def imagenette_class():
    """torchvision's Imagenette, or a subclass that reads the mirror with the mirror's checksums."""
    from torchvision.datasets import Imagenette

    base = mirror()
    if base is None:
        return Imagenette
    url, _ = Imagenette._ARCHIVES["full"]
    name = url.rsplit("/", 1)[1]
    return type("MirroredImagenette", (Imagenette,), {
        "_ARCHIVES": {**Imagenette._ARCHIVES, "full": (base + name, mirror_checksums(base)[name])}})


def get_cifar10(root: Path) -> Path:
    cls = cifar10_class()
    folder = root / "cifar10"
    try:  # already there: torchvision checks every batch file's md5 when it opens them
        counts = {split: len(cls(str(folder), train=split == "train")) for split in ("train", "test")}
    except RuntimeError:  # missing or damaged: download (or re-extract a verified archive) and check again
        check_reachable(cls.url)
        counts = {split: len(cls(str(folder), train=split == "train", download=True)) for split in ("train", "test")}
    if not all(counts.values()):
        raise DownloadError(f"CIFAR-10 in {display_path(folder)} did not verify: {counts}")
    print(f"CIFAR-10: {counts['train']:,} training and {counts['test']:,} test images in {display_path(folder)}")
    return folder


def get_imagenette(root: Path) -> Path:
    cls = imagenette_class()
    folder, done = root / "imagenette2", root / "imagenette2" / ".verified"
    if folder.exists() and not done.exists():  # an extraction that was interrupted: extract again
        shutil.rmtree(folder)
    if not done.exists():
        check_reachable(cls._ARCHIVES["full"][0])
    counts = {split: len(cls(str(root), split=split, size="full", download=True)) for split in ("train", "val")}
    for split in ("train", "val"):
        _, classes = scan_image_folder(folder / split)
        if classes != sorted(IMAGENETTE_CLASSES):
            raise DownloadError(f"Imagenette in {folder / split} has classes {classes}, not Imagenette's ten wnids")
    lines = ["# wnid\tILSVRC-2012 class index (0-999)\tclass name"]
    lines += [f"{wnid}\t{index}\t{name}" for wnid, (index, name) in sorted(IMAGENETTE_CLASSES.items())]
    (folder / "wnid_to_name.txt").write_text("\n".join(lines) + "\n")
    done.write_text(f"{counts}\n")
    print(f"Imagenette (full size): {counts['train']:,} training and {counts['val']:,} validation photos "
          f"in {display_path(folder)}")
    return folder


def get_samples(root: Path) -> Path:
    """The first validation photo (by file name) of each Imagenette class, as the sample photos."""
    source = root / "imagenette2" / "val"
    if not source.is_dir():
        raise DownloadError(f"the sample photos are taken from Imagenette's validation photos, and {source} "
                            "does not exist: download Imagenette first (make data, or --only imagenette)")
    folder = root / "imagenet-samples"
    partial = root / ".imagenet-samples.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    rows = []
    for wnid, (index, name) in sorted(IMAGENETTE_CLASSES.items()):
        first = min((p for p in (source / wnid).iterdir() if p.is_file()), key=lambda p: p.name)
        file = f"{wnid}_{name.replace(' ', '_')}.JPEG"
        shutil.copyfile(first, partial / file)
        with Image.open(first) as img:
            rows.append({"file": file, "wnid": wnid, "ilsvrc2012_index": index, "class_name": name,
                         "width": img.size[0], "height": img.size[1], "mode": img.mode, "why_included": "imagenette",
                         "source": f"imagenette2/val/{wnid}/{first.name}"})
    with open(partial / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    print(f"sample photos: {len(rows)} in {display_path(folder)}")
    return folder


def make_data(root: Path | None = None, only=DATASETS) -> Path:
    """Download and arrange the datasets in ``only`` under ``root`` (default: :func:`download_root`)."""
    unknown = set(only) - set(DATASETS)
    if unknown:
        raise ValueError(f"unknown dataset(s) {sorted(unknown)}; make data knows {', '.join(DATASETS)}")
    root = Path(root) if root is not None else download_root()
    root.mkdir(parents=True, exist_ok=True)
    steps = {"cifar10": get_cifar10, "imagenette": get_imagenette, "imagenet-samples": get_samples}
    for name in DATASETS:
        if name in only:
            steps[name](root)
    return root


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m alexnet_lib.download", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, help="where to build the datasets (default: $ALEXNET_DATA, else data/)")
    p.add_argument("--only", nargs="+", choices=DATASETS, default=list(DATASETS))
    args = p.parse_args(argv)
    try:
        root = make_data(args.root, args.only)
    except DownloadError as e:
        print(f"make data: {e}", file=sys.stderr)
        return 1
    print(f"done: the data root is {display_path(root)}"
          + ("" if root.resolve() == (project_root() / "data").resolve() else f" (set ALEXNET_DATA={root} to use it)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
