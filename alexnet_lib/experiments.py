"""Run modes and the sizes of every named experiment.

One switch, ``ALEXNET_MODE``, picks the size of everything a chapter runs:

========  ==================================  ====================================
smoke     CI, 2 CPU cores, ≤ 60 s a chapter   every code path runs, tiny sizes
quick     a laptop CPU, ≤ 5 min a chapter     the qualitative effect, where a CPU can
full      a GPU                               the paper's sizes
========  ==================================  ====================================

Without ``ALEXNET_MODE`` the mode is ``full`` when a GPU is found and ``quick`` when not.
The sizes live here, not in the notebooks, so a chapter reads ``preset("relu_tanh")``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

MODES = ("smoke", "quick", "full")


class ModeError(ValueError):
    """ALEXNET_MODE holds something other than smoke, quick or full."""


def get_mode(mode: str | None = None) -> str:
    """The run mode: the argument, else ``$ALEXNET_MODE``, else full on a GPU, quick on a CPU."""
    mode = mode or os.environ.get("ALEXNET_MODE") or ("full" if torch.cuda.is_available() else "quick")
    mode = mode.strip().lower()
    if mode not in MODES:
        raise ModeError(
            f"unknown ALEXNET_MODE={mode!r}; valid modes are {', '.join(map(repr, MODES))} "
            "(smoke: CI-sized, quick: a few minutes on a CPU, full: the paper's sizes on a GPU)."
        )
    return mode


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
        "smoke": {"limit": 160, "width": 0.25, "input_size": 128, "batch": 32, "epochs": 1, "seeds": [0], "resume_limit": 64},
        "quick": {"limit": None, "width": 0.25, "input_size": 128, "batch": 128, "epochs": 4, "seeds": [0, 1, 2], "resume_limit": 256},
        "full": {"limit": None, "width": 1.0, "input_size": 224, "batch": 128, "epochs": 30, "seeds": [0, 1, 2], "resume_limit": 1024},
    },
    # Chapters 2, 4 and 5: the CIFAR-10 side experiments (§3.1, §3.3, §3.4).
    "relu_tanh": {
        # thresholds: the training errors at which the two nets are also compared, for runs too
        # short to reach the paper's 25% (quick mode reaches about 35%; the recorded runs reach 25%)
        "smoke": {"limit": 512, "sweep_lrs": [0.001, 0.03], "sweep_epochs": 1, "seeds": [0, 1], "epochs": 2, "target": 0.25,
                  "thresholds": [0.9, 0.85, 0.8, 0.75, 0.7]},
        "quick": {"limit": 2500, "sweep_lrs": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], "sweep_epochs": 3, "seeds": [0, 1, 2],
                  "epochs": 36, "target": 0.25, "thresholds": [0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25]},
        "full": {"limit": None, "sweep_lrs": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], "sweep_epochs": 3, "seeds": [0, 1, 2, 3, 4],
                 "epochs": 60, "target": 0.25, "thresholds": [0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25]},
    },
    "lrn": {
        "smoke": {"limit": 256, "test_limit": 200, "epochs": 1, "seeds": [0, 1], "lr": 0.001, "eval_every": 1, "scatter_every": 400, "photos": 8},
        "quick": {"limit": 2500, "test_limit": 2000, "epochs": 8, "seeds": [0, 1, 2], "lr": 0.001, "eval_every": 8, "scatter_every": 40, "photos": 40},
        "full": {"limit": None, "test_limit": None, "epochs": 60, "seeds": [0, 1, 2, 3, 4], "lr": 0.001, "eval_every": 5, "scatter_every": 40, "photos": 40},
    },
    "pooling": {
        "smoke": {"limit": 512, "test_limit": 200, "epochs": 2, "seeds": [0, 1], "lr": 0.001, "eval_every": 1},
        "quick": {"limit": 4000, "test_limit": 2000, "epochs": 12, "seeds": [0, 1, 2], "lr": 0.001, "eval_every": 1},
        "full": {"limit": None, "test_limit": None, "epochs": 60, "seeds": [0, 1, 2, 3, 4], "lr": 0.001, "eval_every": 1},
    },
    # Chapter 3: the two towers (§3.2). Quick mode times the layers but cannot train the
    # two-tower vs one-tower comparison; smoke runs its code path tiny, full runs it.
    "towers": {
        "smoke": {"time_batch": 1, "time_repeats": 1,
                  "experiment": {"width": 0.125, "input_size": 67, "limit": 100, "epochs": 1, "batch_size": 16, "lr": 0.01, "seeds": [0]}},
        "quick": {"time_batch": 8, "time_repeats": 3, "experiment": None},
        "full": {"time_batch": 128, "time_repeats": 10,
                 "experiment": {"width": 1.0, "input_size": 224, "limit": None, "epochs": 40, "batch_size": 128, "lr": 0.01, "seeds": [0, 1, 2]}},
    },
    # Chapter 11: PReLU and He initialisation on CIFAR-10 with deep plain nets (He et al. 2015).
    "prelu_he": {
        "smoke": {"limit": 256, "test_limit": 200, "seeds": [0], "var_depth": 30, "var_width": 16, "var_nets": 2,
                  "deep": {"depth": 30, "width": 4, "epochs": 1, "lr": 0.005, "batch_size": 32},
                  "fig2": {"depth": 22, "width": 4, "epochs": 1, "lr": 0.005, "batch_size": 32},
                  "prelu": {"depth": 8, "width": 4, "epochs": 1, "lr": 0.01, "batch_size": 32}},
        "quick": {"limit": 4000, "test_limit": 1000, "seeds": [0, 1, 2], "var_depth": 30, "var_width": 64, "var_nets": 8,
                  "deep": {"depth": 30, "width": 8, "epochs": 10, "lr": 0.005, "batch_size": 64},
                  "fig2": {"depth": 22, "width": 8, "epochs": 10, "lr": 0.005, "batch_size": 64},
                  "prelu": {"depth": 8, "width": 8, "epochs": 4, "lr": 0.01, "batch_size": 64}},
        "full": {"limit": None, "test_limit": None, "seeds": [0, 1, 2, 3, 4], "var_depth": 30, "var_width": 256, "var_nets": 16,
                 "deep": {"depth": 30, "width": 32, "epochs": 30, "lr": 0.005, "batch_size": 128},
                 "fig2": {"depth": 22, "width": 32, "epochs": 30, "lr": 0.005, "batch_size": 128},
                 "prelu": {"depth": 14, "width": 32, "epochs": 30, "lr": 0.01, "batch_size": 128}},
    },
    # Chapter 10: kernels, top-5 predictions and fc7 neighbours (§6.1) of a two-tower net trained on Imagenette.
    "kernels": {
        "smoke": {"limit": 160, "val_limit": 100, "width": 0.25, "input_size": 128, "batch": 32, "epochs": 1, "seeds": [0, 1],
                  "schedule": "constant", "eval_every": 1, "dup_limit": 200, "photos": 8, "queries": 5, "k": 6, "permutations": 200},
        "quick": {"limit": None, "val_limit": None, "width": 0.25, "input_size": 128, "batch": 128, "epochs": 12, "seeds": [0, 1, 2],
                  "schedule": "constant", "eval_every": 4, "dup_limit": None, "photos": 8, "queries": 5, "k": 6, "permutations": 2000},
        "full": {"limit": None, "val_limit": None, "width": 1.0, "input_size": 224, "batch": 128, "epochs": 60, "seeds": [0, 1, 2],
                 "schedule": "plateau", "eval_every": 1, "dup_limit": None, "photos": 8, "queries": 5, "k": 6, "permutations": 2000},
    },
    # Chapters 6 and 7: augmentation (§4.1) and dropout (§4.2) on Imagenette. Quick mode: a
    # quarter-width net on 96 crops of 110 images, 50 training photos per class, so that it overfits.
    "augmentation": {
        "smoke": {"limit": 100, "width": 0.25, "input_size": 67, "batch": 20, "lr": 0.01, "epochs": 1, "seeds": [0], "pca_limit": 400},
        "quick": {"limit": 500, "width": 0.25, "input_size": 96, "batch": 32, "lr": 0.01, "epochs": 30, "seeds": [0, 1, 2], "pca_limit": None},
        "full": {"limit": None, "width": 1.0, "input_size": 224, "batch": 128, "lr": 0.01, "epochs": 60, "seeds": [0, 1, 2], "pca_limit": None},
    },
    "dropout": {
        "smoke": {"limit": 100, "width": 0.25, "input_size": 67, "batch": 20, "lr": 0.01, "epochs": 3, "seeds": [0],
                  "loss_thresholds": [2.5, 2.4, 2.35, 2.3, 2.25, 2.2]},
        "quick": {"limit": 500, "width": 0.25, "input_size": 96, "batch": 32, "lr": 0.01, "epochs": 36, "seeds": [0, 1, 2],
                  "loss_thresholds": [2.2, 2.1, 2.0, 1.9, 1.8, 1.7, 1.6, 1.5]},
        "full": {"limit": None, "width": 1.0, "input_size": 224, "batch": 128, "lr": 0.01, "epochs": 90, "seeds": [0, 1, 2],
                 "loss_thresholds": [2.0, 1.8, 1.6, 1.4, 1.2, 1.0, 0.8, 0.6, 0.4]},
    },
}


def preset(name: str, mode: str | None = None) -> dict:
    """The sizes of experiment ``name`` in ``mode`` (default: :func:`get_mode`)."""
    if name not in PRESETS:
        raise KeyError(f"unknown experiment {name!r}; known experiments are {', '.join(sorted(PRESETS))}.")
    return {"mode": get_mode(mode), **PRESETS[name][get_mode(mode)]}


def progress(iterable=None, enabled: bool = True, **kwargs):
    """A tqdm.auto progress bar (a widget in JupyterLab, text in a terminal).

    Off when ``enabled`` is False or ``$TQDM_DISABLE`` is set (CI, and the runs that make
    the committed outputs, where a bar is noise).
    """
    from tqdm.auto import tqdm

    off = not enabled or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return tqdm(iterable, disable=off, **kwargs)


def device_description(device: torch.device | str | None = None) -> str:
    device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class Chapter:
    """The first and last output of every chapter: mode, device, data; then wall time.

    >>> chapter = Chapter("1. The dataset", data="cifar10, imagenette")   # prints the header
    >>> chapter.done()                                                   # prints the wall time
    """

    def __init__(self, title: str, mode: str | None = None, data: str = "", seed: int | None = None):
        self.title, self.mode, self.start = title, get_mode(mode), time.perf_counter()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        from .data import data_roots, display_path

        roots = ", ".join(f"{label}={display_path(path)}" for label, path in data_roots())
        print(f"{title}\nmode: {self.mode} | device: {device_description(self.device)} | torch {torch.__version__}")
        print(f"data: {data or '-'} | searched: {roots}" + (f" | seed: {seed}" if seed is not None else ""))

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def done(self) -> None:
        print(f"wall time: {self.elapsed():.1f} s in {self.mode} mode on {device_description(self.device)}")


# ----------------------------------------------------------------- runs over seeds
@dataclass
class Run:
    """One training run of a named variant with one seed."""

    label: str
    seed: int
    history: "object"  # alexnet_lib.train.History
    seconds: float
    model: "object" = None

    def column(self, key: str) -> list:
        return self.history.column(key)

    def last(self, key: str):
        return self.history.epochs[-1][key]


def train_runs(make_model, train_data, val_data, augment, config, seeds, label: str = "", keep_models: bool = False) -> list:
    """Train a fresh ``make_model()`` once per seed with ``config`` (its seed replaced).

    The seed sets the initial weights (``torch.manual_seed`` before ``make_model``), the data
    order, the augmentation and dropout. Returns one :class:`Run` per seed.
    """
    from .train import Trainer

    runs = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = make_model()
        cfg = replace(config, seed=seed, label=label or config.label)
        t = time.perf_counter()
        history = Trainer(model, train_data, val_data, augment, cfg).fit()
        runs.append(Run(label, seed, history, time.perf_counter() - t, model if keep_models else None))
    return runs


def spread(values) -> dict:
    """Mean, sample standard deviation, min, max and count of a list of numbers."""
    v = [float(x) for x in values]
    n = len(v)
    mean = sum(v) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else float("nan")
    return {"mean": mean, "std": std, "min": min(v), "max": max(v), "n": n}


def format_spread(values, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    """'12.3 ± 0.4 (11.9–12.8, n=3)' for a list of per-seed values."""
    s = spread([x * scale for x in values])
    return (f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}{unit} "
            f"({s['min']:.{digits}f}–{s['max']:.{digits}f}, n={s['n']})")


VERDICTS = ("replicates", "does not replicate at this scale", "cannot be tested here")


def compare(baseline, variant, paper_says: str) -> dict:
    """Compare a per-seed metric of two variants, where the paper says the variant is
    ``"lower"`` or ``"higher"`` than the baseline (e.g. error with LRN is lower).

    The effect is mean(variant) − mean(baseline). The verdict is "replicates" when the
    effect has the paper's sign and is larger than twice its standard error (Welch's,
    from the spread over seeds), else "does not replicate at this scale".
    """
    if paper_says not in ("lower", "higher"):
        raise ValueError(f"paper_says must be 'lower' or 'higher', got {paper_says!r}")
    a, b = spread(baseline), spread(variant)
    effect = b["mean"] - a["mean"]
    se = math.sqrt((a["std"] ** 2 if a["n"] > 1 else 0) / a["n"] + (b["std"] ** 2 if b["n"] > 1 else 0) / b["n"])
    right_sign = effect < 0 if paper_says == "lower" else effect > 0
    verdict = VERDICTS[0] if right_sign and abs(effect) > 2 * se else VERDICTS[1]
    return {"baseline": a, "variant": b, "effect": effect, "standard_error": se, "paper_says": paper_says, "verdict": verdict}


RESULTS_DIR = Path(__file__).resolve().parent.parent / "book" / "results"


def record_claim(key: str, payload: dict, mode: str, seeds, seconds: float | None = None) -> None:
    """Save a chapter's measured claim to ``book/results/claims/<key>.json`` for chapter 9.

    Recorded results are only written when asked (``ALEXNET_RECORD=1``, which
    ``make chapters`` sets) and never in smoke mode, so running a chapter never overwrites
    what the book shows by accident. It prints where the claim went and returns nothing, so
    a notebook cell ending in it shows no path of the machine it ran on.
    """
    if mode == "smoke" or os.environ.get("ALEXNET_RECORD", "") not in ("1", "true", "yes"):
        print(f"claim '{key}' not recorded (mode {mode}; set ALEXNET_RECORD=1 outside smoke mode to record it)")
        return
    from .train import git_commit

    path = RESULTS_DIR / "claims" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"mode": mode, "device": device_description(), "seeds": list(seeds), "commit": git_commit(),
            "torch": torch.__version__, "seconds": seconds, "recorded": time.strftime("%Y-%m-%d")}
    path.write_text(json.dumps({"key": key, **payload, "meta": meta}, indent=1, default=str))
    print(f"claim '{key}' recorded in {path.relative_to(RESULTS_DIR.parent.parent)}")


def load_claims() -> dict:
    """Every recorded claim, by key."""
    folder = RESULTS_DIR / "claims"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def recorded_logs(folder: str, pattern: str = "*.json") -> list:
    """(path, History) of every training log recorded in ``book/results/<folder>`` whose file
    name matches ``pattern``, in file-name order; evaluations (``*.eval.json``) are left out."""
    from .train import History

    paths = sorted((RESULTS_DIR / folder).glob(pattern))
    return [(p, History.load(p)) for p in paths if not p.name.endswith(".eval.json")]


def paper_data(dataset: str = "imagenette", input_size: int = 224, limit: int | None = None, mean: str = "pixel",
               pca: bool = True, flip: bool = True, scale: float = 1.0, crop: int | None = None):
    """(train, val, augment) with the paper's pipeline (§2, §4.1), scaled to ``input_size``.

    Images are stored at round(input_size · 256/224) (256 for 224 crops: shorter side, centre
    crop), the per-pixel mean image (or per-channel mean) and the RGB PCA basis come from the
    training images, and training takes random input_size crops with flips and PCA colour.
    CIFAR-10 is kept at 32×32 (no crop unless ``crop`` is smaller).
    """
    from .data import load_dataset
    from .transforms import Augment, channel_mean, mean_image, pca_basis

    if mean not in ("pixel", "channel"):
        raise ValueError(f"unknown mean={mean!r}; valid values are 'pixel' (the paper) and 'channel'")
    cifar = dataset == "cifar10"
    store = None if cifar else round(input_size * 256 / 224)
    train = load_dataset(dataset, "train", size=store, limit=limit)
    val = load_dataset(dataset, "test" if cifar else "val", size=store)
    m = mean_image(train.images) if mean == "pixel" else channel_mean(train.images)
    crop = crop or (32 if cifar else input_size)
    augment = Augment(crop=crop, mean=m, flip=flip, pca=pca_basis(train.images) if pca else None,
                      random_crop=crop < train.images.shape[-1], scale=scale)
    return train, val, augment
