"""Run modes and the sizes of every named experiment.

One switch, ``ALEXNET_MODE``, picks the size of everything a chapter runs:

========  ==================================  ====================================
smoke     CI, 2 CPU cores, ≤ 60 s a chapter   every code path runs, tiny sizes
quick     a laptop CPU, ≤ 5 min a chapter     the qualitative effect, where a CPU can
full      a GPU                               the paper's sizes
========  ==================================  ====================================

Without ``ALEXNET_MODE`` the mode is ``full`` when a GPU is found and ``quick`` when not.
The sizes live here, not in the notebooks, so a chapter reads ``preset("relu_tanh")``.

Also here: :class:`Chapter` (the first and last output of every chapter), :func:`train_runs`
(one run per seed), and :class:`Claim`, the typed record of one claim of the paper as a
chapter measured it, which :func:`record_claim` saves and :func:`load_claims` reads back
for chapter 9.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace

import torch
from torch import nn

from .analysis import VERDICTS as OLD_VERDICTS
from .analysis import compare, format_spread, spread  # noqa: F401  (re-exported for the chapters)
from .checkpoint import History
from .data import data_roots
from .recipes import paper_data  # noqa: F401  (re-exported for the chapters)
from .stats import VERDICTS, Comparison, Regime
from .stats import compare as judge
from .train import Trainer
from .util import (  # noqa: F401  (MODES, ModeError, progress: re-exported for the chapters)
    MODES,
    ModeError,
    default_device,
    device_description,
    display_path,
    get_mode,
    git_commit,
    progress,
    results_dir,
)

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
        # thresholds: the training errors at which the two nets are also compared, for runs too
        # short to reach the paper's 25% (quick mode stops short of it; the recorded runs reach it)
        "smoke": {"limit": 512, "sweep_lrs": [0.001, 0.03], "sweep_epochs": 1, "seeds": [0, 1], "epochs": 2,
                  "target": 0.25, "thresholds": [0.9, 0.85, 0.8, 0.75, 0.7]},
        "quick": {"limit": 2500, "sweep_lrs": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], "sweep_epochs": 3,
                  "seeds": [0, 1, 2, 3, 4], "epochs": 30, "target": 0.25,
                  "thresholds": [0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25]},
        "full": {"limit": None, "sweep_lrs": [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1], "sweep_epochs": 3,
                 "seeds": [0, 1, 2, 3, 4], "epochs": 60, "target": 0.25,
                 "thresholds": [0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25]},
    },
    "lrn": {
        # sweep_lrs: each arm's learning rate is chosen by a short sweep (as in chapter 2)
        "smoke": {"limit": 256, "test_limit": 200, "epochs": 1, "seeds": [0, 1], "sweep_lrs": [0.001, 0.003],
                  "sweep_epochs": 1, "eval_every": 1, "scatter_every": 400, "photos": 8},
        "quick": {"limit": 2500, "test_limit": 2000, "epochs": 8, "seeds": [0, 1, 2],
                  "sweep_lrs": [0.0003, 0.001, 0.003], "sweep_epochs": 2, "eval_every": 8, "scatter_every": 40,
                  "photos": 40},
        "full": {"limit": None, "test_limit": None, "epochs": 60, "seeds": [0, 1, 2, 3, 4],
                 "sweep_lrs": [0.0003, 0.001, 0.003, 0.01], "sweep_epochs": 3, "eval_every": 5, "scatter_every": 40,
                 "photos": 40},
    },
    "pooling": {
        "smoke": {"limit": 512, "test_limit": 200, "epochs": 2, "seeds": [0, 1], "lr": 0.001, "eval_every": 1},
        "quick": {"limit": 4000, "test_limit": 2000, "epochs": 12, "seeds": [0, 1, 2, 3, 4], "lr": 0.001,
                  "eval_every": 1},
        "full": {"limit": None, "test_limit": None, "epochs": 60, "seeds": [0, 1, 2, 3, 4], "lr": 0.001,
                 "eval_every": 1},
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
    """The first and last output of every chapter: mode, device, data; then wall time.

    >>> chapter = Chapter("1. The dataset", data="cifar10, imagenette")   # prints the header
    >>> chapter.done()                                                   # prints the wall time
    """

    def __init__(self, title: str, mode: str | None = None, data: str = "", seed: int | None = None):
        self.title, self.mode, self.start = title, get_mode(mode), time.perf_counter()
        os.environ["ALEXNET_MODE"] = self.mode  # the chapter's mode holds for all it runs (data included)
        self.device = default_device()
        roots = ", ".join(f"{label}={display_path(path)}" for label, path in data_roots())
        print(f"{title}\nmode: {self.mode} | device: {device_description(self.device)} | torch {torch.__version__}")
        print(f"data: {data or '-'} | searched: {roots}" + (f" | seed: {seed}" if seed is not None else ""))

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def done(self) -> None:
        print(f"wall time: {self.elapsed():.1f} s in {self.mode} mode on {device_description(self.device)}")


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


# ------------------------------------------------------------------------- claims
@dataclass
class Claim:
    """One claim of the paper as a chapter measured it, with its verdict.

    ``baseline`` and ``variant`` hold one value of ``metric`` per seed (or per run); the
    effect is variant − baseline (a ratio with ``log_scale``), judged by the one procedure of
    ``stats.compare`` with the design (``paired`` or not), the paper's direction and the regime
    recorded here, so the verdict can be recomputed from the record (:func:`judged`).
    Anything a claim records beyond these goes in ``details`` (a second comparison, notes),
    stored beside them in the same JSON object.
    """

    key: str
    claim: str
    chapter: str
    paper_effect: str
    metric: str
    verdict: str
    scale: str
    baseline_label: str = ""
    variant_label: str = ""
    baseline: list | None = None
    variant: list | None = None
    effect: float | None = None
    effect_std: float | None = None
    paper_says: str = ""  # "lower" or "higher": the variant's side of the baseline in the paper
    paper_value: float | None = None  # the paper's effect in the claim's units, where it gives a number
    paired: bool | None = None
    log_scale: bool = False
    regime: str = ""  # how the runs differ from the paper's regime ("" when comparable)
    comparison: dict | None = None  # stats.Comparison: the interval, df, detectable effect
    details: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS + OLD_VERDICTS:
            raise ValueError(f"claim {self.key!r}: unknown verdict {self.verdict!r}; valid verdicts are {VERDICTS}")
        for name in ("key", "claim", "chapter", "paper_effect", "metric", "scale"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"claim {self.key!r}: {name} must be a non-empty string, got {getattr(self, name)!r}")
        if (self.baseline is None) != (self.variant is None):
            raise ValueError(f"claim {self.key!r}: give both baseline and variant values, or neither")
        if self.effect is not None and not math.isfinite(self.effect):
            raise ValueError(f"claim {self.key!r}: the effect must be a finite number or None, got {self.effect}")
        if self.effect is None and self.verdict == "replicates":
            raise ValueError(f"claim {self.key!r}: a claim that replicates needs its measured effect")
        clash = set(self.details) & {f.name for f in fields(self)}
        if clash:
            raise ValueError(f"claim {self.key!r}: details may not reuse the field names {sorted(clash)}")

    @property
    def n(self) -> int:
        """How many runs the effect rests on."""
        if self.comparison:
            return self.comparison["n"]
        return len(self.variant or []) or len(self.meta.get("seeds", []))

    def rejudge(self) -> Comparison:
        """The one procedure run again on the recorded per-run values."""
        regime = Regime(not self.regime, self.regime)
        return judge(self.baseline, self.variant, self.paper_says, paired=bool(self.paired), regime=regime,
                     log_scale=self.log_scale)

    def to_json(self) -> dict:
        """One flat JSON object: the fields, then the details, then the run's metadata."""
        blob = {k: v for k, v in asdict(self).items() if k not in ("details", "meta")}
        if self.baseline is None:
            for k in ("baseline_label", "variant_label", "baseline", "variant", "effect_std"):
                blob.pop(k)
        if self.comparison is None:
            for k in ("paper_says", "paper_value", "paired", "log_scale", "regime", "comparison"):
                blob.pop(k)
        return {**blob, **self.details, "meta": self.meta}

    @classmethod
    def from_json(cls, blob: dict) -> "Claim":
        names = {f.name for f in fields(cls)} - {"details"}
        known = {k: v for k, v in blob.items() if k in names}
        return cls(**known, details={k: v for k, v in blob.items() if k not in names})


def judged(key: str, claim: str, chapter: str, paper_effect: str, metric: str, scale: str, baseline, variant,
           paper_says: str, paired: bool, regime: Regime | None = None, log_scale: bool = False,
           paper_value: float | None = None, baseline_label: str = "", variant_label: str = "",
           details: dict | None = None) -> Claim:
    """A claim judged by the one procedure (``stats.compare``) from per-run values.

    ``regime`` is ``Regime(comparable, note)``: how far the runs are from the paper's setting
    (default: comparable). A claim whose interval excludes zero in the paper's direction
    "replicates" only in a comparable regime; otherwise it holds in "direction only".
    """
    regime = regime or Regime(True, "")
    result = judge(baseline, variant, paper_says, paired=paired, regime=regime, log_scale=log_scale)
    effect = None if math.isnan(result.effect) else result.effect
    std = None if math.isnan(result.standard_error) else result.standard_error
    return Claim(key=key, claim=claim, chapter=chapter, paper_effect=paper_effect, metric=metric,
                 verdict=result.verdict, scale=scale, baseline_label=baseline_label, variant_label=variant_label,
                 baseline=[float(x) for x in baseline], variant=[float(x) for x in variant], effect=effect,
                 effect_std=std, paper_says=paper_says, paper_value=paper_value, paired=paired, log_scale=log_scale,
                 regime="" if regime.comparable else regime.note,
                 comparison={k: (None if isinstance(v, float) and math.isnan(v) else v)
                             for k, v in result.to_json().items()},
                 details=details or {})


def record_claim(claim: Claim, mode: str, seeds, seconds: float | None = None) -> None:
    """Save a chapter's measured claim to ``<results>/claims/<key>.json`` for chapter 9.

    Recorded results are only written when asked (``ALEXNET_RECORD=1``, which
    ``make chapters`` sets) and never in smoke mode, so running a chapter never overwrites
    what the book shows by accident. It prints where the claim went and returns nothing, so
    a notebook cell ending in it shows no path of the machine it ran on.
    """
    if not isinstance(claim, Claim):
        raise TypeError(f"record_claim takes a Claim, got {type(claim).__name__}")
    key = claim.key
    if mode == "smoke" or os.environ.get("ALEXNET_RECORD", "") not in ("1", "true", "yes"):
        print(f"claim '{key}' not recorded (mode {mode}; set ALEXNET_RECORD=1 outside smoke mode to record it)")
        return
    root = results_dir()
    path = root / "claims" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"mode": mode, "device": device_description(), "seeds": list(seeds), "commit": git_commit(),
            "torch": torch.__version__, "seconds": seconds, "recorded": time.strftime("%Y-%m-%d")}
    path.write_text(json.dumps(replace(claim, meta=meta).to_json(), indent=1, default=str))
    print(f"claim '{key}' recorded in {display_path(path)}")


def load_claims() -> dict:
    """Every recorded claim, by key, as :class:`Claim`."""
    folder = results_dir() / "claims"
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return {p.stem: Claim.from_json(json.loads(p.read_text())) for p in paths}


def recorded_logs(folder: str, pattern: str = "*.json") -> list:
    """(path, History) of every training log recorded in ``book/results/<folder>`` whose file
    name matches ``pattern``, in file-name order; evaluations (``*.eval.json``) are left out."""
    paths = sorted((results_dir() / folder).glob(pattern))
    return [(p, History.load(p)) for p in paths if not p.name.endswith(".eval.json")]
