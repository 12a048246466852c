"""Run modes and the sizes of every named experiment.

One switch, ``ALEXNET_MODE``, picks the size of everything a chapter runs:

========  ==================================  ====================================
smoke     CI, 2 CPU cores, ≤ 60 s a chapter   every code path runs, tiny sizes
quick     a laptop CPU, ≤ 5 min a chapter     the qualitative effect, where a CPU can
full      a GPU                               the paper's sizes
========  ==================================  ====================================

Without ``ALEXNET_MODE`` the mode is ``full`` when a GPU is found and ``quick`` when not.
The sizes live here, not in the notebooks, so a chapter reads ``preset("relu_tanh")``.

Also here: :class:`Chapter` (the first and last output of every chapter, naming the data it
uses), :func:`train_runs` (one run per seed) and :func:`recorded_logs` (the training logs
recorded in ``book/results``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import torch
from torch import nn

from .checkpoint import History
from .data import DatasetNotFoundError, find_dataset
from .images import read_sample_labels, scan_image_folder, subsample
from .train import Trainer
from .util import default_device, device_description, get_mode, results_dir

#: Where recorded results live when this module is imported (``util.results_dir()`` reads
#: ``$ALEXNET_RESULTS`` at each call; the functions here use it).
RESULTS_DIR = results_dir()

#: Sizes of each named experiment in each mode. Seeds are run seeds; ``limit`` is a
#: class-balanced subset of the training set (None: all of it).
PRESETS: dict[str, dict[str, dict]] = {
    "dataset": {
        "smoke": {"limit": 400, "grid": 4},
        "quick": {"limit": None, "grid": 6},
        "full": {"limit": None, "grid": 6},
    },
    # Chapter 8: the recipe of §5 on Imagenette. Quick mode: a quarter-width net on 128 crops.
    "training": {
        "smoke": {"limit": 160, "width": 0.25, "input_size": 128, "batch": 32, "epochs": 1, "seeds": [0],
                  "resume_limit": 64},
        "quick": {"limit": None, "width": 0.25, "input_size": 128, "batch": 128, "epochs": 4, "seeds": [0, 1, 2],
                  "resume_limit": 256},
        "full": {"limit": None, "width": 1.0, "input_size": 224, "batch": 128, "epochs": 30, "seeds": [0, 1, 2],
                 "resume_limit": 1024},
    },
    # Chapters 2, 4 and 5: the CIFAR-10 side experiments (§3.1, §3.3, §3.4).
    "relu_tanh": {
        # thresholds: the training errors at which the nets are also compared, for runs too short to
        # reach the paper's 25% (quick mode stops short of it; the recorded runs reach it). Three nets
        # (ReLU, tanh, tanh with cuda-convnet's init) of 3 seeds each cost what two nets of 5 seeds did.
        "smoke": {"limit": 512, "sweep_lrs": [0.001, 0.03], "sweep_epochs": 1, "seeds": [0, 1], "epochs": 2,
                  "target": 0.25, "thresholds": [0.9, 0.85, 0.8, 0.75, 0.7]},
        "quick": {"limit": 2500, "sweep_lrs": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], "sweep_epochs": 3,
                  "seeds": [0, 1, 2], "epochs": 30, "target": 0.25,
                  "thresholds": [0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25]},
        "full": {"limit": None, "sweep_lrs": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], "sweep_epochs": 3,
                 "seeds": [0, 1, 2, 3, 4], "epochs": 60, "target": 0.25,
                 "thresholds": [0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25]},
    },
    "lrn": {
        # lr: one learning rate for both nets, fixed (chapter 4 says why: the rate an earlier one-seed
        # sweep chose for each net on its own; a rate tuned per net would add the tuning to the effect)
        "smoke": {"limit": 256, "test_limit": 200, "epochs": 1, "seeds": [0, 1], "lr": 0.0003, "eval_every": 1,
                  "scatter_every": 400, "photos": 8},
        "quick": {"limit": 2500, "test_limit": 2000, "epochs": 8, "seeds": [0, 1, 2], "lr": 0.0003, "eval_every": 8,
                  "scatter_every": 40, "photos": 40},
        "full": {"limit": None, "test_limit": None, "epochs": 60, "seeds": [0, 1, 2, 3, 4], "lr": 0.0003,
                 "eval_every": 5, "scatter_every": 40, "photos": 40},
    },
    # train_probe: about this many training images (every k-th of the class-balanced subset), scored
    # after every epoch in evaluation mode, so that the nets can be compared at matched training error
    "pooling": {
        "smoke": {"limit": 512, "test_limit": 200, "epochs": 2, "seeds": [0, 1], "lr": 0.001, "eval_every": 1,
                  "train_probe": 128},
        "quick": {"limit": 4000, "test_limit": 2000, "epochs": 12, "seeds": [0, 1, 2, 3, 4], "lr": 0.001,
                  "eval_every": 1, "train_probe": 1000},
        "full": {"limit": None, "test_limit": None, "epochs": 60, "seeds": [0, 1, 2, 3, 4], "lr": 0.001,
                 "eval_every": 1, "train_probe": 10000},
    },
    # Chapter 3: the two towers (§3.2). Quick mode times the layers but cannot train the
    # two-tower vs one-tower comparison; smoke runs its code path tiny, full runs it.
    "towers": {
        "smoke": {"time_batch": 1, "time_repeats": 1,
                  "experiment": {"width": 0.125, "input_size": 67, "limit": 100, "epochs": 1, "batch_size": 16,
                                 "lr": 0.01, "seeds": [0]}},
        "quick": {"time_batch": 8, "time_repeats": 3, "experiment": None},
        "full": {"time_batch": 128, "time_repeats": 10,
                 "experiment": {"width": 1.0, "input_size": 224, "limit": None, "epochs": 40, "batch_size": 128,
                                "lr": 0.01, "seeds": [0, 1, 2]}},
    },
    # Chapter 11: PReLU and He initialisation on CIFAR-10 with deep plain nets (He et al. 2015).
    "prelu_he": {
        "smoke": {"limit": 256, "test_limit": 200, "seeds": [0], "var_depth": 30, "var_width": 16, "var_nets": 2,
                  "deep": {"depth": 30, "width": 4, "epochs": 1, "lr": 0.005, "batch_size": 32},
                  "fig2": {"depth": 22, "width": 4, "epochs": 1, "lr": 0.005, "batch_size": 32},
                  "prelu": {"depth": 8, "width": 4, "epochs": 1, "lr": 0.01, "batch_size": 32}},
        "quick": {"limit": 4000, "test_limit": 1000, "seeds": [0, 1, 2, 3, 4], "var_depth": 30, "var_width": 64,
                  "var_nets": 8,
                  "deep": {"depth": 30, "width": 8, "epochs": 10, "lr": 0.005, "batch_size": 64},
                  "fig2": {"depth": 22, "width": 8, "epochs": 10, "lr": 0.005, "batch_size": 64},
                  "prelu": {"depth": 8, "width": 8, "epochs": 4, "lr": 0.01, "batch_size": 64}},
        "full": {"limit": None, "test_limit": None, "seeds": [0, 1, 2, 3, 4], "var_depth": 30, "var_width": 256,
                 "var_nets": 16,
                 "deep": {"depth": 30, "width": 32, "epochs": 30, "lr": 0.005, "batch_size": 128},
                 "fig2": {"depth": 22, "width": 32, "epochs": 30, "lr": 0.005, "batch_size": 128},
                 "prelu": {"depth": 14, "width": 32, "epochs": 30, "lr": 0.01, "batch_size": 128}},
    },
    # Chapter 10: kernels, top-5 predictions and fc7 neighbours (§6.1) of a two-tower net trained on Imagenette.
    "kernels": {
        "smoke": {"limit": 160, "val_limit": 100, "width": 0.25, "input_size": 128, "batch": 32, "epochs": 1,
                  "seeds": [0, 1], "schedule": "constant", "eval_every": 1, "dup_limit": 200, "photos": 8,
                  "queries": 5, "k": 6, "permutations": 200},
        "quick": {"limit": None, "val_limit": None, "width": 0.25, "input_size": 128, "batch": 128, "epochs": 12,
                  "seeds": [0, 1, 2], "schedule": "constant", "eval_every": 4, "dup_limit": None, "photos": 8,
                  "queries": 5, "k": 6, "permutations": 2000},
        "full": {"limit": None, "val_limit": None, "width": 1.0, "input_size": 224, "batch": 128, "epochs": 60,
                 "seeds": [0, 1, 2], "schedule": "plateau", "eval_every": 1, "dup_limit": None, "photos": 8,
                 "queries": 5, "k": 6, "permutations": 2000},
    },
    # Chapters 6 and 7: augmentation (§4.1) and dropout (§4.2) on Imagenette. Quick mode: a
    # quarter-width net on 96 crops of 110 images, 50 training photos per class, so that it overfits.
    "augmentation": {
        "smoke": {"limit": 100, "width": 0.25, "input_size": 67, "batch": 20, "lr": 0.01, "epochs": 1, "seeds": [0],
                  "pca_limit": 400},
        "quick": {"limit": 500, "width": 0.25, "input_size": 96, "batch": 32, "lr": 0.01, "epochs": 30,
                  "seeds": [0, 1, 2], "pca_limit": None},
        "full": {"limit": None, "width": 1.0, "input_size": 224, "batch": 128, "lr": 0.01, "epochs": 60,
                 "seeds": [0, 1, 2], "pca_limit": None},
    },
    "dropout": {
        "smoke": {"limit": 100, "width": 0.25, "input_size": 67, "batch": 20, "lr": 0.01, "epochs": 3, "seeds": [0],
                  "loss_thresholds": [2.5, 2.4, 2.35, 2.3, 2.25, 2.2]},
        "quick": {"limit": 500, "width": 0.25, "input_size": 96, "batch": 32, "lr": 0.01, "epochs": 36,
                  "seeds": [0, 1, 2], "loss_thresholds": [2.2, 2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4, 0.3, 0.2]},
        "full": {"limit": None, "width": 1.0, "input_size": 224, "batch": 128, "lr": 0.01, "epochs": 90,
                 "seeds": [0, 1, 2], "loss_thresholds": [2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4, 0.2, 0.1]},
    },
}


def preset(name: str, mode: str | None = None) -> dict:
    """The sizes of experiment ``name`` in ``mode`` (default: :func:`get_mode`)."""
    if name not in PRESETS:
        raise KeyError(f"unknown experiment {name!r}; known experiments are {', '.join(sorted(PRESETS))}.")
    return {"mode": get_mode(mode), **PRESETS[name][get_mode(mode)]}


class Chapter:
    """The first and last output of every chapter: mode, device and the data it uses; then the
    wall time. ``data`` lists the splits as (dataset, split, limit) triples (``limit`` as given to
    ``data.load_dataset``; a pair means all of the split), or says in words what the chapter reads.

    >>> chapter = Chapter("4. LRN", data=[("cifar10", "train", 2500), ("cifar10", "test")])  # prints the header
    >>> chapter.done()                                                                     # prints the wall time
    """

    def __init__(self, title: str, mode: str | None = None, data=(), seed: int | None = None):
        self.title, self.mode, self.start = title, get_mode(mode), time.perf_counter()
        os.environ["ALEXNET_MODE"] = self.mode  # the chapter's mode holds for all it runs (data included)
        self.device = default_device()
        print(f"{title}\nmode: {self.mode} | device: {device_description(self.device)} | torch {torch.__version__}")
        print(f"data: {data_used(data)}" + (f" | seed: {seed}" if seed is not None else ""))

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def done(self) -> None:
        print(f"wall time: {self.elapsed():.1f} s in {self.mode} mode on {device_description(self.device)}")


def split_size(name: str, split: str, limit: int | None = None) -> int:
    """How many images ``data.load_dataset(name, split, limit=limit)`` holds, counted from the
    dataset's file list (nothing is decoded)."""
    found = find_dataset(name)
    if found.layout == "samples":  # one photo per class
        items = [(row["file"], i) for i, row in enumerate(read_sample_labels(found.path))]
    elif found.layout == "cifar-pickle":  # torchvision's batches: 5,000 training, 1,000 test images per class
        items = [(i, i % 10) for i in range(10 * (5000 if split == "train" else 1000))]
    else:
        items = scan_image_folder(found.path / split)[0]
    return len(subsample(items, limit))


def data_used(parts) -> str:
    """'cifar10/train: 2,500 images, cifar10/test: 10,000 images' for (dataset, split, limit)
    triples; text is returned as it is."""
    if isinstance(parts, str):
        return parts or "-"
    described = []
    for name, split, *limit in parts:
        try:
            described.append(f"{name}/{split}: {split_size(name, split, *limit):,} images")
        except DatasetNotFoundError:
            described.append(f"{name}/{split}: not found")
    return ", ".join(described) or "-"


@dataclass
class Run:
    """One training run of a named variant with one seed."""

    label: str
    seed: int
    history: History
    seconds: float
    model: nn.Module | None = None

    def column(self, key: str) -> list:
        return self.history.column(key)

    def last(self, key: str):
        return self.history.epochs[-1][key]


def train_runs(make_model, train_data, val_data, augment, config, seeds, label: str = "",
               keep_models: bool = False, on_epoch_end=None) -> list:
    """Train a fresh ``make_model()`` once per seed with ``config`` (its seed replaced).

    The seed sets the initial weights (``torch.manual_seed`` before ``make_model``), the data
    order, the augmentation and dropout. ``on_epoch_end(trainer)`` runs after every epoch (its
    record is ``trainer.history.epochs[-1]``, where it may add measurements). Returns one
    :class:`Run` per seed.
    """
    runs = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = make_model()
        cfg = replace(config, seed=seed, label=label or config.label)
        t = time.perf_counter()
        trainer = Trainer(model, train_data, val_data, augment, cfg)
        trainer.on_epoch_end = on_epoch_end
        history = trainer.fit()
        runs.append(Run(label, seed, history, time.perf_counter() - t, model if keep_models else None))
    return runs


def recorded_logs(folder: str, pattern: str = "*.json") -> list:
    """(path, History) of every training log recorded in ``book/results/<folder>`` whose file
    name matches ``pattern``, in file-name order; evaluations (``*.eval.json``) are left out."""
    paths = sorted((results_dir() / folder).glob(pattern))
    return [(p, History.load(p)) for p in paths if not p.name.endswith(".eval.json")]
