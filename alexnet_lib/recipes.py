"""The builders: a model by name, and the paper's data pipeline for a dataset.

The command line, the chapters and the bench scripts build their models and data here, so
one name means one thing everywhere:

* :func:`model_config` and :func:`build_model`: ``"alexnet"`` (the two-tower net of §3.5 and its variants),
  ``"cifar-fig1"`` (the four-layer net of Figure 1) or ``"cifar-lrn-pair"`` (the net behind
  "13% -> 11%" in §3.3);
* :func:`paper_data`: (train, val, augment) with the preprocessing of §2 and the
  augmentation of §4.1, for CIFAR-10, Imagenette or ILSVRC-2012.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import nn

from .data import find_dataset, load_dataset
from .images import ImageFolderStream, check_same_classes
from .model import AlexNet, AlexNetConfig
from .small_nets import CifarNet, CifarNetConfig
from .transforms import Augment, channel_mean, mean_image, pca_basis
from .util import check_choice

MODELS = ("alexnet", "cifar-fig1", "cifar-lrn-pair")
MEANS = ("pixel", "channel")


#: The config class of each model family: what a checkpoint names in ``model_config["family"]``.
FAMILIES = {cls.family: cls for cls in (AlexNetConfig, CifarNetConfig)}
MODEL_CLASSES = {AlexNetConfig: AlexNet, CifarNetConfig: CifarNet}


def model_config(
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
) -> AlexNetConfig | CifarNetConfig:
    """The config of the model called ``name`` (one of ``MODELS``) with these options. The CIFAR nets
    take ``activation``, ``pooling``, ``width``, ``input_size`` (default 32), ``pool_rounding`` and
    (the LRN pair only) ``lrn``; AlexNet takes every other option (``input_size`` default 224)."""
    check_choice("model", name, MODELS)
    if name == "alexnet":
        return AlexNetConfig(num_classes=num_classes, towers=towers, activation=activation, lrn=lrn,
                             lrn_alpha_convention=lrn_convention, pooling=pooling, dropout=dropout, init=init,
                             width=width, input_size=input_size or 224)
    kind = "fig1" if name == "cifar-fig1" else "lrn-pair"
    return CifarNetConfig(kind, activation=activation, lrn=lrn and kind == "lrn-pair", num_classes=num_classes,
                          pooling=pooling, width=width, input_size=input_size or 32, pool_rounding=pool_rounding)


def build_model(config: AlexNetConfig | CifarNetConfig | str, num_classes: int | None = None, **options) -> nn.Module:
    """A fresh model from its config, or by name: ``build_model("cifar-lrn-pair", 10, lrn=False)``
    is ``build_model(model_config("cifar-lrn-pair", 10, lrn=False))``."""
    if isinstance(config, str):
        if num_classes is None:
            raise ValueError(f"build_model({config!r}, ...) needs num_classes (10 for CIFAR-10 or Imagenette)")
        config = model_config(config, num_classes, **options)
    elif options or num_classes is not None:
        raise ValueError("build_model(config) takes the config alone; change it with dataclasses.replace")
    if type(config) not in MODEL_CLASSES:
        raise TypeError(f"build_model takes a model config ({', '.join(c.__name__ for c in MODEL_CLASSES)}) "
                        f"or a model name ({', '.join(MODELS)}), got {type(config).__name__}")
    return MODEL_CLASSES[type(config)](config)


def config_from_dict(blob: dict):
    """The model config a checkpoint stored (``checkpoint.model_description``); ValueError naming what is
    wrong."""
    if not isinstance(blob, dict) or blob.get("family") not in FAMILIES:
        raise ValueError(f"a model config names its family ({', '.join(FAMILIES)}), got {blob!r:.80}")
    cls = FAMILIES[blob["family"]]
    names = {f.name for f in fields(cls)}
    unknown = set(blob) - names - {"family"}
    if unknown:
        raise ValueError(f"the stored {blob['family']} config has options this version does not know: "
                         f"{', '.join(sorted(unknown))}")
    return cls(**{k: v for k, v in blob.items() if k != "family"})


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
