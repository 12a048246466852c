"""Make data/sample/: a small real sample of the book's datasets, so that a fresh clone runs
every chapter in smoke mode with no data and no network.

    python data/make_sample.py --source PATH/TO/FULL/DATA [--out data/sample]

The source is a full data root in the layouts the book reads (cifar10/, imagenette/,
imagenet-samples/; see data/README.md). The sample is made deterministically: the same
source gives the same files, byte for byte (checked against data/sample/MANIFEST.sha256 by
tests/test_sample.py when the full data is at hand).

- CIFAR-10: 20 training and 10 test images per class, byte copies of the PNGs.
- Imagenette: 12 training and 6 validation images per class, byte copies of the JPEGs, and
  wnid_to_name.txt.
- imagenet-samples: the photos of the 10 Imagenette classes and the leopard (chapter 6),
  scaled so the shorter side is 256 (what the chapters use), re-encoded as JPEG quality 90,
  with their rows of labels.csv.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import shutil
from pathlib import Path

from PIL import Image

PER_CLASS = {("cifar10", "train"): 20, ("cifar10", "test"): 10, ("imagenette", "train"): 12, ("imagenette", "val"): 6}
PHOTO_REASONS = ("imagenette",)  # every photo with this why_included, plus the names below
EXTRA_PHOTOS = ("leopard",)
PHOTO_SHORTER_SIDE = 256
SEED = 2012


def pick(files: list[Path], k: int, rng: random.Random) -> list[Path]:
    """k of the files, drawn without replacement, listed by name (deterministic for a seed)."""
    return sorted(rng.sample(sorted(files), min(k, len(files))))


def copy_folders(source: Path, out: Path) -> None:
    for (name, split), k in PER_CLASS.items():
        rng = random.Random(f"{SEED}-{name}-{split}")
        for class_dir in sorted(p for p in (source / name / split).iterdir() if p.is_dir()):
            for f in pick([p for p in class_dir.iterdir() if p.is_file()], k, rng):
                target = out / name / split / class_dir.name / f.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, target)
    shutil.copyfile(source / "imagenette" / "wnid_to_name.txt", out / "imagenette" / "wnid_to_name.txt")


def scaled_photos(source: Path, out: Path) -> None:
    with open(source / "imagenet-samples" / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep = [r for r in rows if r["why_included"] in PHOTO_REASONS or r["class_name"] in EXTRA_PHOTOS]
    folder = out / "imagenet-samples"
    folder.mkdir(parents=True, exist_ok=True)
    for row in keep:
        with Image.open(source / "imagenet-samples" / row["file"]) as img:
            w, h = img.size
            scale = PHOTO_SHORTER_SIDE / min(w, h)
            size = (max(PHOTO_SHORTER_SIDE, round(w * scale)), max(PHOTO_SHORTER_SIDE, round(h * scale)))
            small = img.resize(size, Image.LANCZOS) if scale < 1 else img.copy()
            small.save(folder / row["file"], quality=90, optimize=True)
            row["width"], row["height"] = str(small.size[0]), str(small.size[1])
    with open(folder / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(keep)


def manifest(out: Path) -> str:
    """sha256 and path of every file of the sample but the README and the manifest itself."""
    lines = []
    for f in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = f.relative_to(out).as_posix()
        if rel not in ("README.md", "MANIFEST.sha256"):
            lines.append(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {rel}")
    return "\n".join(lines) + "\n"


def make_sample(source: Path, out: Path) -> None:
    for name in ("cifar10", "imagenette", "imagenet-samples"):
        if not (source / name).is_dir():
            raise SystemExit(f"{source / name} does not exist: --source must be a full data root "
                             "holding cifar10/, imagenette/ and imagenet-samples/ (see data/README.md)")
        shutil.rmtree(out / name, ignore_errors=True)
    copy_folders(source, out)
    scaled_photos(source, out)
    (out / "MANIFEST.sha256").write_text(manifest(out))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, type=Path, help="a full data root (cifar10/, imagenette/, imagenet-samples/)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "sample")
    args = p.parse_args(argv)
    make_sample(args.source, args.out)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"sample written to {args.out}: {sum(1 for f in args.out.rglob('*') if f.is_file())} files, "
          f"{total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
