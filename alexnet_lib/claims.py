"""The paper's claims, each defined once, and the records of how the book measured them.

:data:`REGISTRY` holds every claim the book tests: its key, chapter, the paper's words and
value, the metric, the direction the paper gives, the design (paired, Welch or one-sample, on a
log scale or not) and the paper's scale. A chapter
judges a claim from its per-run values in a few lines::

    runs = Scale(data="CIFAR-10", images=2_500, net="cifar-lrn-pair", recipe="the book's quick recipe", epochs=8)
    claim = claims.judge("lrn_cifar", baseline=errors_without, variant=errors_with, runs=runs)
    claims.record(claim, P["mode"], P["seeds"])

Each claim states, before its runs, the effect it is about (the paper's value, or where the paper
gives no size the smallest effect of interest) and the paper's own scale (a ``stats.Scale``); the
regime of a record follows from its runs' scale by ``stats.regime``, never from its results.
:func:`judge` runs the one procedure (``stats.compare``) and returns a :class:`Claim`, the
record that :func:`record` saves to ``<results>/claims/<key>.json`` and :func:`load` reads back
for chapter 9. A record says which procedure judged it (``procedure``), whether it comes from a
chapter's own runs or from the runs at the paper's scale (``source``), and which claim it
measures (``measures``, when its key is not the claim's own).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from .stats import VERDICTS, VERSION, Comparison, Regime, Scale, compare, regime
from .tdist import DESIGNS
from .util import device_description, display_path, git_commit, results_dir

#: How an effect is shown: "points": the metric is a fraction, the effect is in percentage
#: points; "ratio": a ratio variant / baseline (judged on the log scale); "": as measured.
UNITS = {"points": (100.0, " points"), "ratio": (1.0, ""), "": (1.0, "")}
#: Where a record's runs come from: the chapter's own, or the runs at the paper's scale
#: (``tools/full_scale.py``, read by ``alexnet_lib.recorded``).
SOURCES = ("chapter", "paper scale")


@dataclass(frozen=True)
class Definition:
    """One claim of the paper, as the book tests it. ``metric`` and the labels may hold
    ``{fields}`` that the chapter fills in (:func:`judge`'s keyword arguments)."""

    key: str
    chapter: str  # the notebook, e.g. "04_lrn"
    claim: str  # the claim in a line
    paper_effect: str  # the paper's words and numbers, with the section
    paper_says: str  # "lower" or "higher": the variant's side of the baseline in the paper
    metric: str  # what each run measures
    paper_scale: Scale  # the data, net, recipe and epochs of the paper's measurement
    paper_value: float | None = None  # the paper's effect in the metric's units (ratios as ratios)
    of_interest: float | None = None  # where the paper gives no size: the smallest effect of interest
    units: str = "points"
    digits: int = 1  # decimals of the effect when shown
    design: str = "paired"  # one of stats.DESIGNS
    baseline_label: str = ""
    variant_label: str = ""

    def __post_init__(self):
        if self.paper_says not in ("lower", "higher"):
            raise ValueError(f"claim {self.key!r}: paper_says must be 'lower' or 'higher', got {self.paper_says!r}")
        if self.design not in DESIGNS:
            raise ValueError(f"claim {self.key!r}: design must be one of {DESIGNS}, got {self.design!r}")
        if self.units not in UNITS:
            raise ValueError(f"claim {self.key!r}: units must be one of {tuple(UNITS)}, got {self.units!r}")
        if (self.paper_value is None) == (self.of_interest is None):
            raise ValueError(f"claim {self.key!r}: state the paper's value, or, where the paper gives no size, the "
                             "smallest effect of interest (one of them)")
        if not isinstance(self.paper_scale, Scale):
            raise ValueError(f"claim {self.key!r}: paper_scale must be a stats.Scale, got {self.paper_scale!r}")

    @property
    def target(self) -> float:
        """The effect the claim is about: the paper's value, else the smallest effect of interest."""
        return self.paper_value if self.paper_value is not None else self.of_interest

    @property
    def log_scale(self) -> bool:
        return self.units == "ratio"

    def filled(self, **values) -> dict:
        """The metric and labels with their ``{fields}`` filled in from ``values``."""
        texts = {name: getattr(self, name) for name in ("metric", "baseline_label", "variant_label")}
        try:
            out = {name: text.format(**values) for name, text in texts.items()}
        except (KeyError, IndexError) as e:
            raise ValueError(f"claim {self.key!r}: give the field {e} of its metric or labels "
                             f"({' | '.join(t for t in texts.values() if '{' in t)})") from None
        unused = [v for v in values if not any(f"{{{v}" in t for t in texts.values())]
        if unused:
            raise ValueError(f"claim {self.key!r}: its metric and labels have no field {unused[0]!r}")
        return out


#: The paper's scales. ImageNet: "roughly 1.2 million training images" (§2), the net of §3.5 and
#: the recipe of §5, "roughly 90 cycles". CIFAR-10's LRN pair: cuda-convnet's layers-conv-local
#: nets (the book's ``cifar-lrn-pair``) on all 50,000 images by the 13% net's recipe of 160 epochs
#: (cuda-convnet's published methodology; the paper's 11% net trained longer, which is not LRN alone).
#: Figure 1: a four-layer net (the book's ``cifar-fig1``), each net's fastest learning rate, no
#: regularisation, until 25% training error.
IMAGENET = Scale(data="ImageNet", images=1_200_000, net="AlexNet", recipe="the paper's §5 recipe", epochs=90)
CIFAR_13PCT = Scale(data="CIFAR-10", images=50_000, net="cifar-lrn-pair", recipe="cuda-convnet-13pct", epochs=160)
CIFAR_FIG1 = Scale(data="CIFAR-10", images=50_000, net="cifar-fig1",
                   recipe="Figure 1's recipe (each net's fastest learning rate, no regularisation)")
HE_30 = Scale(data="ImageNet", images=1_280_000, net="He et al.'s 30-layer plain net", recipe="He et al.'s §4 recipe")
HE_14 = Scale(data="ImageNet", images=1_280_000, net="He et al.'s 14-layer model", recipe="He et al.'s §4 recipe")
POOLING_LABELS = {"baseline_label": "z=2, s=2 (non-overlapping)", "variant_label": "z=3, s=2 (overlapping)"}
#: overfitting claims: held-out error first (the gap comes second, in the record's details), compared
#: after both nets converged or at matched training error; the chapter says which ({when})
HELD_OUT = "val top-1 error (centre crop), {when}"

_DEFINITIONS = [
    Definition(
        key="relu_speedup", chapter="02_relu_tanh", claim="ReLU reaches 25% training error faster than tanh",
        paper_effect="six times faster to 25% training error on CIFAR-10 (Figure 1: ~6 vs ~35 epochs)",
        paper_says="lower", paper_value=1 / 6, units="ratio", digits=3, paper_scale=CIFAR_FIG1,
        metric="epochs to 25% training error, ReLU / tanh (a ratio), on all 50,000 images",
        baseline_label="tanh, lr {tanh_lr:g}", variant_label="ReLU, lr {relu_lr:g}"),
    Definition(
        key="two_towers", chapter="03_multiple_gpus", claim="two towers beat one tower of half the kernels",
        paper_effect="-1.7 top-1 and -1.2 top-5 on ILSVRC (§3.2)", paper_says="lower", paper_value=-0.017,
        paper_scale=IMAGENET, metric="final val top-1 error: two towers minus one",
        baseline_label="one tower (footnote control)", variant_label="two towers"),
    Definition(
        key="lrn_cifar", chapter="04_lrn", claim="LRN lowers CIFAR-10 test error",
        paper_effect="CIFAR-10, four-layer CNN: 13% -> 11% test error (§3.3)", paper_says="lower", paper_value=-0.02,
        paper_scale=CIFAR_13PCT, metric="top-1 test error (fraction), with LRN minus without, paired by seed",
        baseline_label="layers-conv-local-13pct style, no LRN",
        variant_label="with 2 LRN layers (size 9, alpha 1e-3/9, beta 0.75, k 1)"),
    Definition(
        key="overlapping_pooling_error", chapter="05_overlapping_pooling", claim="overlapping pooling: test error",
        paper_effect="-0.4% top-1, -0.3% top-5 on ILSVRC (§3.4)", paper_says="lower", paper_value=-0.004, digits=2,
        paper_scale=IMAGENET, metric="top-1 test error (fraction), overlapping minus not, {when}",
        **POOLING_LABELS),
    Definition(
        key="overlapping_pooling_gap", chapter="05_overlapping_pooling", claim="overlapping pooling: train-test gap",
        paper_effect="models with overlapping pooling 'slightly more difficult to overfit' (§3.4)",
        paper_says="lower", of_interest=-0.005, digits=2, paper_scale=IMAGENET,
        metric="test error minus training error (fraction), {when}", **POOLING_LABELS),
    Definition(
        key="augmentation_crops_flips", chapter="06_augmentation", claim="random crops and flips reduce overfitting",
        paper_effect="without crops and flips the network suffers from substantial overfitting (§4.1)",
        paper_says="lower", of_interest=-0.01, paper_scale=IMAGENET, metric=HELD_OUT, baseline_label="none",
        variant_label="crops + flips"),
    Definition(
        key="pca_colour", chapter="06_augmentation", claim="PCA colour augmentation lowers top-1 error",
        paper_effect="reduces top-1 error by over 1% (§4.1)", paper_says="lower", paper_value=-0.01,
        paper_scale=IMAGENET, metric="val top-1 error (centre crop)", baseline_label="crops + flips",
        variant_label="crops + flips + PCA"),
    Definition(
        key="ten_crop", chapter="06_augmentation", claim="ten-crop testing lowers top-1 error",
        paper_effect="39.0 -> 37.5 top-1 on ILSVRC-2010 (a footnote to §6's text, beside Table 1)",
        paper_says="lower", paper_value=-0.015, paper_scale=IMAGENET, design="paired by image",
        metric="val top-1 error of the same models: ten crops minus centre crop, per image (right 0, wrong 1)",
        baseline_label="centre crop", variant_label="ten crops"),
    Definition(
        key="dropout_overfitting", chapter="07_dropout", claim="dropout reduces overfitting",
        paper_effect="without dropout, the network exhibits substantial overfitting (§4.2)", paper_says="lower",
        of_interest=-0.01, paper_scale=IMAGENET, metric=HELD_OUT, baseline_label="no dropout",
        variant_label="dropout 0.5 on fc6, fc7"),
    Definition(
        key="dropout_iterations", chapter="07_dropout", claim="dropout roughly doubles the iterations to converge",
        paper_effect="roughly doubles the number of iterations required to converge (§4.2)", paper_says="higher",
        paper_value=2.0, units="ratio", digits=2, paper_scale=IMAGENET,
        metric="epochs until the training loss (eval mode) first falls to {threshold}: dropout / no dropout",
        baseline_label="no dropout", variant_label="dropout 0.5"),
    Definition(
        key="tower_colour_specialisation", chapter="10_kernels",
        claim="conv1 towers specialise: one colour-agnostic, one colour-specific",
        paper_effect="Figure 3, §6.1: the 48 kernels on GPU 1 are largely colour-agnostic, the 48 on GPU 2 largely "
                     "colour-specific, in every run (modulo a renumbering of the GPUs)",
        paper_says="higher", of_interest=0.02, units="", digits=3, paper_scale=IMAGENET,
        metric="per run: the towers' gap in mean chroma of what training added to conv1, minus the median gap of "
               "random splits of the same kernels (what towers that do not specialise give)",
        baseline_label="random splits (median)", variant_label="the towers"),
    Definition(
        key="fc7_neighbours", chapter="10_kernels",
        claim="fc7 neighbours share the query's class more often than pixel neighbours",
        paper_effect="Figure 4 (right), §6.1: the training images nearest in fc7 space to a test image show the "
                     "same object, though they are generally not close in L2 in pixel space",
        paper_says="higher", of_interest=0.05, design="paired by image", paper_scale=IMAGENET,
        metric="per query: share of the {k} nearest training images (Euclidean) that have the query's class",
        baseline_label="pixel space", variant_label="fc7 space, trained network"),
    Definition(
        key="he_vs_xavier", chapter="11_prelu_he",
        claim="a 30-layer plain ReLU net stalls with Xavier init and learns with He init",
        paper_effect="30-layer net: He converges, Xavier completely stalls (He et al. 2015, Figure 3)",
        paper_says="lower", of_interest=-0.10, paper_scale=HE_30,
        metric="training top-1 error, last epoch: He minus Xavier",
        baseline_label="Xavier (std sqrt(1/n))", variant_label="He (std sqrt(2/n))"),
    Definition(
        key="prelu_vs_relu", chapter="11_prelu_he", claim="PReLU (channel-wise) beats ReLU",
        paper_effect="top-1 33.82 -> 32.64 (channel-wise), 32.71 (channel-shared); 14-layer model, ImageNet, 10-view",
        paper_says="lower", paper_value=-0.0118, paper_scale=HE_14,
        metric="test top-1 error, last epoch: PReLU minus ReLU", baseline_label="ReLU",
        variant_label="PReLU, channel-wise"),
]
#: Every claim the book tests, by key, in the book's order.
REGISTRY: dict[str, Definition] = {d.key: d for d in _DEFINITIONS}
#: How chapter 9 names the chapters that test claims.
CHAPTERS = {"02_relu_tanh": "2. ReLU vs tanh", "03_multiple_gpus": "3. Multiple GPUs", "04_lrn": "4. LRN",
            "05_overlapping_pooling": "5. Overlapping pooling", "06_augmentation": "6. Data augmentation",
            "07_dropout": "7. Dropout", "10_kernels": "10. Kernels", "11_prelu_he": "11. PReLU and He init"}


def definition(key: str) -> Definition:
    """The claim ``key`` of :data:`REGISTRY`."""
    if key not in REGISTRY:
        raise KeyError(f"no claim named {key!r}; the claims are {', '.join(REGISTRY)}")
    return REGISTRY[key]


# ------------------------------------------------------------------------- the record
@dataclass
class Claim:
    """One claim of the paper as the book measured it, with its verdict.

    ``baseline`` and ``variant`` hold one value of ``metric`` per seed (or per run); the effect
    is variant − baseline (a ratio with ``log_scale``), judged by ``stats.compare`` with the
    design, direction, target, regime and limit recorded here, so :meth:`rejudge` recomputes
    the verdict from the record. ``runs`` is the runs' ``stats.Scale`` (as a dict), from which
    ``regime`` follows. Anything a claim records beyond these goes in ``details``, stored beside
    them in the same JSON object. ``procedure`` is the ``stats.VERSION`` that judged it;
    ``p_adjusted`` a p-value adjusted over a family of claims, by whoever judges the family.
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
    effect_se: float | None = None  # the standard error of the effect (of its log, for a ratio)
    paper_says: str = ""
    paper_value: float | None = None
    target: float | None = None  # the paper's value, else the smallest effect of interest
    design: str = ""  # one of stats.DESIGNS
    log_scale: bool = False
    limit: float | None = None  # what each run was allowed, where a run may never reach the level
    runs: dict | None = None  # the runs' stats.Scale
    regime: str = ""  # how the runs differ from the paper's regime ("" when comparable)
    comparison: dict | None = None  # stats.Comparison: the interval, p, detectable effect, seeds needed
    source: str = "chapter"  # one of SOURCES
    measures: str = ""  # the registry key of the claim measured, when the record's key differs
    procedure: int | None = None
    p_adjusted: float | None = None
    details: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
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
        if self.source not in SOURCES:
            raise ValueError(f"claim {self.key!r}: source must be one of {SOURCES}, got {self.source!r}")
        clash = set(self.details) & {f.name for f in fields(self)}
        if clash:
            raise ValueError(f"claim {self.key!r}: details may not reuse the field names {sorted(clash)}")

    @property
    def claim_key(self) -> str:
        """The key of the claim this record measures, in :data:`REGISTRY`."""
        return self.measures or self.key

    @property
    def n(self) -> int:
        """How many runs the effect rests on."""
        if self.comparison:
            return self.comparison["n"]
        return len(self.variant or []) or len(self.meta.get("seeds", []))

    def rejudge(self) -> Comparison:
        """The one procedure run again on the recorded per-run values."""
        spec = definition(self.claim_key)
        return compare(self.baseline, self.variant, self.paper_says, design=self.design,
                       regime=Regime(not self.regime, self.regime), log_scale=self.log_scale, target=self.target,
                       target_is_paper=spec.paper_value is not None, limit=self.limit)

    def summary(self) -> str:
        """'−8.2 [−26.2, +9.8] points (paired, n=3); paper −2.0; detectable ... -> inconclusive', in
        the claim's units (see :data:`UNITS`), recomputed from the per-run values."""
        if self.baseline is None:
            return f"{self.verdict}: {self.details.get('why', 'no per-run values')}"
        spec = REGISTRY[self.claim_key]
        factor, unit = UNITS[spec.units]
        return self.rejudge().summary(scale=factor, digits=spec.digits, unit=unit)

    def to_json(self) -> dict:
        """One flat JSON object: the fields, then the details, then the run's metadata. Fields
        that do not apply (no per-run values, no interval, defaults of later fields) are left out,
        so a record is written back as it was read."""
        blob = {k: v for k, v in asdict(self).items() if k not in ("details", "meta")}
        if self.baseline is None:
            for k in ("baseline_label", "variant_label", "baseline", "variant", "effect_se"):
                blob.pop(k)
        if self.comparison is None:
            for k in ("paper_says", "paper_value", "target", "design", "log_scale", "regime", "comparison"):
                blob.pop(k)
        for k, default in (("source", "chapter"), ("measures", ""), ("procedure", None), ("p_adjusted", None),
                           ("limit", None), ("runs", None)):
            if blob[k] == default:
                blob.pop(k)
        return {**blob, **self.details, "meta": self.meta}

    @classmethod
    def from_json(cls, blob: dict) -> "Claim":
        names = {f.name for f in fields(cls)} - {"details"}
        known = {k: v for k, v in blob.items() if k in names}
        return cls(**known, details={k: v for k, v in blob.items() if k not in names})


def _finite(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value


def as_record(comparison: Comparison) -> dict:
    """A comparison as a record stores it (a claim's own, or a second reading in its details):
    plain JSON, NaN (no interval) as None."""
    return {k: _finite(v) for k, v in comparison.to_json().items()}


def _plain(values) -> list:
    """Per-run values (or, paired by image, per seed a list of per-image values) as plain floats."""
    return [_plain(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") and getattr(v, "ndim", 0)
            else float(v) for v in values]


def judge(key: str, baseline, variant, *, runs: Scale, scale: str = "", limit=None, details: dict | None = None,
          **fields) -> Claim:
    """The claim ``key`` judged by the one procedure (``stats.compare``) from per-run values.

    ``runs`` (a ``stats.Scale``) says what the runs were; the regime follows from it and the
    paper's scale by ``stats.regime``. ``scale`` adds what ``runs`` does not say (seeds, test
    set, learning rates). ``limit``: what each run was allowed, where a run that never reached
    the level is ``inf``. ``fields`` fill in the ``{fields}`` of the claim's metric and labels;
    ``details`` are stored beside the verdict.
    """
    spec = definition(key)
    texts = spec.filled(**fields)
    if not isinstance(runs, Scale):
        raise ValueError(f"claim {key!r}: runs must be a stats.Scale (what the runs were), got {runs!r}")
    regime_ = regime(runs, spec.paper_scale)
    result = compare(baseline, variant, spec.paper_says, design=spec.design, regime=regime_,
                     log_scale=spec.log_scale, target=spec.target, target_is_paper=spec.paper_value is not None,
                     limit=limit)
    described = runs.describe() + (f"; {scale}" if scale else "")
    return Claim(key=key, claim=spec.claim, chapter=spec.chapter, paper_effect=spec.paper_effect,
                 verdict=result.verdict, scale=described, baseline=_plain(baseline),
                 variant=_plain(variant), effect=_finite(result.effect),
                 effect_se=_finite(result.standard_error), paper_says=spec.paper_says, paper_value=spec.paper_value,
                 target=spec.target, design=spec.design, log_scale=spec.log_scale,
                 limit=None if limit is None else float(limit), runs=asdict(runs), regime=regime_.note,
                 comparison=as_record(result), procedure=VERSION,
                 details=details or {}, **texts)


def untestable(key: str, *, scale: str, why: str, details: dict | None = None) -> Claim:
    """The claim ``key`` recorded as "cannot be tested here", saying ``why`` (no runs to judge)."""
    spec = definition(key)
    if not why:
        raise ValueError(f"claim {key!r}: say why it cannot be tested here")
    return Claim(key=key, claim=spec.claim, chapter=spec.chapter, paper_effect=spec.paper_effect, metric=spec.metric,
                 verdict="cannot be tested here", scale=scale, procedure=VERSION,
                 details={"why": why, **(details or {})})


def record(claim: Claim, mode: str, seeds, seconds: float | None = None) -> None:
    """Save a chapter's measured claim to ``<results>/claims/<key>.json`` for chapter 9.

    Recorded results are only written when asked (``ALEXNET_RECORD=1``, which
    ``make chapters`` sets) and never in smoke mode, so running a chapter never overwrites
    what the book shows by accident. It prints where the claim went and returns nothing, so
    a notebook cell ending in it shows no path of the machine it ran on.
    """
    if not isinstance(claim, Claim):
        raise TypeError(f"claims.record takes a Claim, got {type(claim).__name__}")
    key = claim.key
    if mode == "smoke" or os.environ.get("ALEXNET_RECORD", "") not in ("1", "true", "yes"):
        print(f"claim '{key}' not recorded (mode {mode}; set ALEXNET_RECORD=1 outside smoke mode to record it)")
        return
    path = results_dir() / "claims" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"mode": mode, "device": device_description(), "seeds": list(seeds), "commit": git_commit(),
            "torch": torch.__version__, "seconds": seconds, "recorded": time.strftime("%Y-%m-%d")}
    path.write_text(json.dumps(replace(claim, meta=meta).to_json(), indent=1, default=str))
    print(f"claim '{key}' recorded in {display_path(path)}")


def load(folder=None) -> dict:
    """Every recorded claim, by key, as :class:`Claim`, from ``folder`` (default: the results'
    ``claims/``)."""
    folder = results_dir() / "claims" if folder is None else Path(folder)
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return {p.stem: Claim.from_json(json.loads(p.read_text())) for p in paths}
