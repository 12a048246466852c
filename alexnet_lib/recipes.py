"""The builders: a model by name, and the paper's data pipeline for a dataset.

The command line, the chapters and the bench scripts build their models and data here, so
one name means one thing everywhere:

* :func:`build_model`: ``"alexnet"`` (the two-tower net of §3.5 and its variants),
  ``"cifar-fig1"`` (the four-layer net of Figure 1) or ``"cifar-lrn-pair"`` (the net behind
  "13% -> 11%" in §3.3);
* :func:`paper_data`: (train, val, augment) with the preprocessing of §2 and the
  augmentation of §4.1, for CIFAR-10, Imagenette or ILSVRC-2012.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import ImageFolderStream, check_same_classes, find_dataset, load_dataset
from .model import AlexNet
from .small_nets import CifarNet
from .transforms import Augment, channel_mean, mean_image, pca_basis
from .util import check_choice

MODELS = ("alexnet", "cifar-fig1", "cifar-lrn-pair")
MEANS = ("pixel", "channel")


def build_model(
    name: str,
    num_classes: int,
    towers: int = 2,
    activation: str = "relu",
    lrn: bool = True,
    lrn_convention: str = "cuda-convnet",
    pooling: str = "overlapping",
    dropout: float = 0.5,
    init: str = "paper",
    width: float = 1.0,
    input_size: int | None = None,
    pool_rounding: str = "floor",
) -> nn.Module:
    """A fresh model by name. The CIFAR nets take ``activation``, ``pooling``, ``width``,
    ``input_size`` (default 32), ``pool_rounding`` and (the LRN pair only) ``lrn``; AlexNet takes
    every other option (``input_size`` default 224)."""
    check_choice("model", name, MODELS)
    if name == "alexnet":
        return AlexNet(
            num_classes=num_classes,
            towers=towers,
            activation=activation,
            lrn=lrn,
            lrn_alpha_convention=lrn_convention,
            pooling=pooling,
            dropout=dropout,
            init=init,
            width=width,
            input_size=input_size or 224,
        )
    kind = "fig1" if name == "cifar-fig1" else "lrn-pair"
    return CifarNet(
        kind, activation=activation, lrn=lrn and kind == "lrn-pair", num_classes=num_classes, pooling=pooling,
        width=width, input_size=input_size or 32, pool_rounding=pool_rounding,
    )


def paper_data(
    dataset: str = "imagenette",
    input_size: int = 224,
    limit: int | None = None,
    mean: str = "pixel",
    pca: bool = True,
    flip: bool = True,
    scale: float = 1.0,
    crop: int | None = None,
    on_corrupt: str = "error",
    download: bool | None = None,
    random_crop: bool = True,
):
    """(train, val, augment) with the paper's pipeline (§2, §4.1), scaled to ``input_size``.

    Images are stored at round(input_size · 256/224) (256 for 224 crops: shorter side, centre
    crop), the per-pixel mean image (or per-channel mean) and the RGB PCA basis come from the
    training images, and training takes random input_size crops with flips and PCA colour.
    CIFAR-10 is kept at 32×32 (no crop unless ``crop`` is smaller). ILSVRC-2012 is streamed
    from its folders; its mean and PCA basis come from 2,000 of its training images.
    ``on_corrupt`` and ``download`` are passed on to :func:`data.load_dataset`.
    ``random_crop=False`` trains on the centre crop (with ``flip=False``: no translations or
    reflections, the control of §4.1).
    """
    check_choice("mean", mean, MEANS)
    cifar = dataset == "cifar10"
    store = None if cifar else round(input_size * 256 / 224)
    if dataset == "imagenet":
        root = find_dataset("imagenet").path
        train = ImageFolderStream(root / "train", size=store, on_corrupt=on_corrupt)
        val = ImageFolderStream(root / "val", size=store, on_corrupt=on_corrupt)
        check_same_classes(root, {"train": train.classes, "val": val.classes})
        images = torch.stack([train[i][0] for i in torch.randperm(len(train))[:2000].tolist()])
    else:
        train = load_dataset(dataset, "train", size=store, limit=limit, on_corrupt=on_corrupt, download=download)
        val = load_dataset(dataset, "test" if cifar else "val", size=store, on_corrupt=on_corrupt, download=download)
        images = train.images
    m = mean_image(images) if mean == "pixel" else channel_mean(images)
    crop = crop or (32 if cifar else input_size)
    random_crop = random_crop and (dataset == "imagenet" or crop < images.shape[-1])
    augment = Augment(
        crop=crop, mean=m, flip=flip, pca=pca_basis(images) if pca else None, random_crop=random_crop, scale=scale
    )
    return train, val, augment
