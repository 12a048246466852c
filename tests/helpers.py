"""What several test files share: tiny datasets, a tiny trainer, the book's chapter list.

Test files import from here, never from each other.
"""

import os
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from alexnet_lib.data import ImageTensors
from alexnet_lib.model import CifarNet
from alexnet_lib.train import TrainConfig, Trainer
from alexnet_lib.transforms import Augment

ROOT = Path(__file__).resolve().parent.parent


def chapters() -> list:
    """Every file of the table of contents, in order (without extension)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def notebooks() -> list:
    """The chapters that are notebooks."""
    return [f for f in chapters() if (ROOT / f"{f}.ipynb").exists()]


def make_cifar_like(root, per_class=12):
    """A two-class CIFAR-10 tree of random 32x32 PNGs under ``root``/cifar10/{train,test}."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(("cat", "dog")):
            folder = root / "cifar10" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                arr[..., 0] = arr[..., 0] // 2 if c else arr[..., 0]
                Image.fromarray(arr).save(folder / f"{i}.png")


def cli_env(data_root, cache, **extra) -> dict:
    """The environment of a CLI run in a test: its own data root and cache, no progress bars."""
    return {**os.environ, "ALEXNET_DATA": str(data_root), "ALEXNET_CACHE": str(cache), "TQDM_DISABLE": "1", **extra}


def tiny_data(n=96, seed=0):
    """96 random 36x36 uint8 images in 10 classes, with something learnable (red halved in even classes)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 36, 36), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    images[labels % 2 == 0, 0] //= 2  # something learnable
    return ImageTensors(images, labels, [str(i) for i in range(10)], "synthetic", "tiny", "train")


def tiny_augment(data):
    return Augment(crop=32, mean=data.images.float().mean(0), pca=(torch.tensor([0.2, 0.02, 0.004]), torch.eye(3)))


def make_trainer(tmp_path, epochs, seed=0, **kw):
    """A quarter-width Figure-1 net on tiny_data, checkpointing to tmp_path/ckpt, logging to tmp_path/log.json."""
    torch.manual_seed(seed)
    data = tiny_data()
    model = CifarNet("fig1", width=0.25)
    config = TrainConfig(
        epochs=epochs,
        batch_size=16,
        lr=0.01,
        seed=seed,
        progress=False,
        device="cpu",
        checkpoint_dir=str(tmp_path / "ckpt"),
        log_path=str(tmp_path / "log.json"),
        **kw,
    )
    return Trainer(model, data, data.subset(torch.arange(32)), tiny_augment(data), config)


def close_relative(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> bool:
    """``actual`` equals ``expected`` up to ``rel`` times the size of ``expected``'s largest entry.

    A tolerance relative to the tensor's scale, not to each element: summing the same numbers in
    another order (another CPU's kernels, another layout) moves every entry by a few ulps of the
    largest partial sums, so an element near zero can differ by far more than its own ulps.
    fp32 has 6e-8 relative precision; 1e-5 leaves room for sums of a few thousand terms.
    """
    scale = expected.detach().abs().max().clamp_min(torch.finfo(expected.dtype).tiny)
    return bool(((actual.detach() - expected.detach()).abs().max() <= rel * scale).item())
