"""The one verdict procedure of the book: an effect, its 95% t interval, and what it means.

Every claim of the paper is judged the same way, by rules fixed here before the runs they judge
(this is version 2 of the rules: :data:`VERSION`).

1. **The effect** is variant − baseline, in the claim's metric. Where the arms are paired (the
   same seeds, initialisations and data order; or the same models evaluated two ways) it is the
   mean of the per-pair differences; otherwise the difference of the means, with Welch's
   standard error and degrees of freedom. A constant reference (a value with no runs behind it,
   such as a pixel-space baseline) is a *one-sample* design: the runs' mean minus the constant.
   An arm of one run in a Welch design is refused: its variance is unknown, not zero. A ratio
   claim ("six times faster") is judged on the logarithm of the ratio and reported as a ratio.
   The same models scored two ways on the same images (ten crops against the centre crop) are
   *paired by image*: each image's difference is averaged over the seeds (which all score the
   same images), and the effect is the mean over images with the images' standard error (for
   right/wrong, the paired-proportion SE behind McNemar's test). Its seeds needed shrink only
   the seeds' share of the noise; the images' own share stays.
2. **The interval** is the 95% confidence interval from Student's t distribution with those
   degrees of freedom (with 3 seeds, t is 4.30, not 2), and **p** is the two-sided t test's.
3. **The target.** Every claim states, before its runs, the effect it is about: the paper's own
   value, or, where the paper gives no size ("substantial overfitting"), the smallest effect of
   interest. **The detectable effect** is the smallest effect the design finds at 80% power,
   from the noncentral t distribution; **the seeds needed** are how many runs per arm the same
   spread would need for the target to be detectable.
4. **The regime** comes from the design, never from the results (:func:`regime`): the runs are
   *comparable* to the paper's when they use the paper's data, all of it, the paper's net at its
   width, the paper's recipe and at least its epochs; anything else is a smaller regime.
5. **The verdict:**

   - *replicates*: the interval excludes zero in the paper's direction, the regime is
     comparable, and the effect is the paper's size: the paper's value lies inside the
     interval, or the effect is within :data:`MARGIN` (half to twice) of it;
   - *direction only*: the interval excludes zero in the paper's direction, but the regime is
     smaller or the size is not the paper's; the comparison says whether the effect is
     smaller or larger than the paper's;
   - *not detected*: the interval includes zero, and the design could have seen the target
     (the detectable effect is no larger than the target);
   - *inconclusive*: the interval includes zero, and the design could not have seen the
     target (the detectable effect is larger), or no target was given;
   - *contradicted*: the interval excludes zero in the opposite direction;
   - *cannot be tested here*: no runs at this scale, or too few for an interval.

Edge cases: **no spread** (differences all equal, such as 8, 8, 8 epochs, or two constant Welch
arms) gives no t interval, so an exact test decides (the sign test, or the permutation test);
differences within :data:`TOLERANCE` of the values' size are rounding and count as zero. **A run
that never reached a level** is ``inf``; with ``limit`` it counts at the limit, a bound, and a
verdict survives only where the bound cannot have made it.

Many claims: Holm's method over chapter 9's family (``tdist.holm``). Bad input is refused by name.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from . import tdist
from .tdist import CONFIDENCE, DESIGNS, MAX_SEEDS, detectable_nc, seeds_needed, smallest, t_cdf, t_quantile

VERDICTS = ("replicates", "direction only", "inconclusive", "not detected", "contradicted",
            "cannot be tested here")
#: "The paper's size": an effect between half and twice the paper's (on the log scale for ratios).
MARGIN = (0.5, 2.0)
#: Differences smaller than this share of the values' size are rounding, not effects.
TOLERANCE = 1e-9
#: The version of these rules. Every claim record stores the version that judged it; raise it
#: whenever the procedure changes, and record the claims again.
VERSION = 2


# ----------------------------------------------------------------------- the regime
@dataclass(frozen=True)
class Regime:
    """Whether the runs are in a regime comparable to the paper's, and how they differ if not."""

    comparable: bool
    note: str


@dataclass(frozen=True)
class Scale:
    """What a set of runs was, or what the paper's was: the data set, how many of its training
    images, the net and its width, the recipe, and the epochs (None: each run until a level)."""

    data: str
    images: int
    net: str
    recipe: str
    epochs: float | None = None
    width: float = 1.0

    def __post_init__(self):
        for name in ("data", "net", "recipe"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"Scale.{name} must be a non-empty string, got {getattr(self, name)!r}")
        if isinstance(self.images, bool) or not isinstance(self.images, int) or self.images < 1:
            raise ValueError(f"Scale.images must be a positive whole number, got {self.images!r}")
        if self.epochs is not None:
            tdist.positive("Scale.epochs", self.epochs)
        tdist.positive("Scale.width", self.width)

    def describe(self) -> str:
        """'CIFAR-10, 2,500 training images, layers-conv-local-13pct, ..., 8 epochs'."""
        width = f" at width {self.width:g}" if self.width != 1 else ""
        epochs = f"{self.epochs:g} epochs" if self.epochs else "until the level"
        return f"{self.data}, {self.images:,} training images, {self.net}{width}, {self.recipe}, {epochs}"


def regime(runs: Scale, paper: Scale) -> Regime:
    """The rule: comparable when the runs use the paper's data, all of it, the paper's net at its
    width, the paper's recipe and at least its epochs. The note lists every difference."""
    for name, value in (("runs", runs), ("paper", paper)):
        if not isinstance(value, Scale):
            raise ValueError(f"{name} must be a stats.Scale, got {value!r}")
    differences = []
    if runs.data != paper.data:
        differences.append(f"{runs.data}, not {paper.data}")
    elif runs.images < paper.images:
        differences.append(f"{runs.images:,} of the {paper.images:,} training images")
    if runs.net != paper.net:
        differences.append(f"{runs.net}, not {paper.net}")
    if runs.width != paper.width:
        differences.append(f"width {runs.width:g}, not {paper.width:g}")
    if runs.recipe != paper.recipe:
        differences.append(f"{runs.recipe}, not {paper.recipe}")
    if paper.epochs and (runs.epochs or 0) < paper.epochs:
        differences.append(f"{runs.epochs or 0:g} of the paper's {paper.epochs:g} epochs")
    if not differences:
        return Regime(True, "")
    return Regime(False, "; ".join(differences) + ": a smaller regime than the paper's")


# ----------------------------------------------------------------------- the procedure
@dataclass(frozen=True)
class Comparison:
    """The judged effect of one claim; every number in the claim's units (ratios as ratios)."""

    design: str  # one of DESIGNS
    paper_says: str  # "lower" or "higher": the variant's side of the baseline in the paper
    n: int  # pairs (paired), runs (one-sample) or the smaller arm (welch)
    effect: float  # variant − baseline (a ratio variant / baseline when log_scale)
    standard_error: float  # of the effect (on the log scale for ratios)
    df: float
    ci_low: float
    ci_high: float
    p_value: float  # two-sided
    detectable: float  # the smallest effect found at 80% power, in the paper's direction
    target: float | None  # the paper's effect, or the smallest effect of interest
    target_is_paper: bool
    seeds_needed: int | None  # runs per arm to detect the target at this spread (None: > MAX_SEEDS)
    size: str  # "like the paper's", "smaller than the paper's", "larger than the paper's", ""
    log_scale: bool
    verdict: str
    regime_note: str
    note: str  # how an edge case was handled (no spread, runs that never reached the level)

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
        """'−2.1 [−3.9, −0.3] points (paired, n=3); paper −2.0; detectable −3.7; seeds needed 4 ->
        replicates': the seeds needed are per arm, to detect the target at 80% power."""
        f = (lambda v: f"{v:.{digits}f}x") if self.log_scale else (lambda v: f"{v * scale:+.{digits}f}")
        interval = f" [{f(self.ci_low)}, {f(self.ci_high)}]" if math.isfinite(self.ci_low) else ""
        text = f"{f(self.effect)}{interval}{unit} ({self.design}, n={self.n})"
        if self.target is not None:
            text += f"; {'paper' if self.target_is_paper else 'of interest'} {f(self.target)}"
        if math.isfinite(self.detectable):
            text += f"; detectable {f(self.detectable)}"
        if self.target is not None and math.isfinite(self.ci_low):
            text += f"; seeds needed {self.seeds_needed or f'> {MAX_SEEDS:,}'}"
        return f"{text} -> {self.verdict}" + (f" ({self.size})" if self.size else "")


def _mean_sd(values: list) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan"))


def _arm(name: str, values, limit: float | None) -> tuple[list, list]:
    """The values of one arm as floats, and the positions of runs that never reached the level
    (``inf``, counted at ``limit``). A ValueError names the arm, and the position of a bad value."""
    try:
        if isinstance(values, (str, bytes)):
            raise TypeError
        values = list(values)
    except TypeError:
        raise ValueError(f"{name} must be a list of numbers, one per run, got {values!r}") from None
    numbers, censored = [], []
    for i, v in enumerate(values):
        try:
            number = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{i}] is {v!r}, not a number: each value is one run's result") from None
        if number == math.inf and limit is not None:
            numbers.append(limit)
            censored.append(i)
            continue
        if not math.isfinite(number):
            hint = (" A run that never reached the level is inf: pass limit= (what each run was allowed) "
                    "to count it there." if number == math.inf else "")
            raise ValueError(f"{name}[{i}] is {number}: every value must be a finite number. Leave out the run that "
                             f"gave it (it diverged, or was not measured), or run it again.{hint}")
        numbers.append(number)
    if not numbers:
        raise ValueError(f"{name} is empty: each arm needs the values of its runs (one per run)")
    return numbers, censored


@dataclass(frozen=True)
class _Estimate:
    effect: float
    se: float
    df: float
    n: int
    sds: tuple  # the SDs seeds_needed takes: (of the differences,) or (baseline, variant)
    no_spread: bool


def _estimate(baseline: list, variant: list, design: str) -> _Estimate:
    """The effect variant − baseline with its standard error and degrees of freedom. Differences
    and SDs within TOLERANCE of the values' size are rounding, and count as zero."""
    size = max([abs(v) for v in baseline + variant] + [1.0]) * TOLERANCE
    if design == "welch":
        (ma, sa), (mb, sb) = _mean_sd(baseline), _mean_sd(variant)
        sa, sb = (0.0 if s <= size else s for s in (sa, sb))
        na, nb = len(baseline), len(variant)
        va, vb = sa * sa / na, sb * sb / nb
        se = math.sqrt(va + vb)
        # Welch–Satterthwaite; an arm without spread adds no degrees of freedom
        parts = [(v, n) for v, n in ((va, na), (vb, nb)) if v > 0]
        df = se**4 / sum(v * v / (n - 1) for v, n in parts) if parts else float("nan")
        effect = 0.0 if abs(mb - ma) <= size else mb - ma
        return _Estimate(effect, se, df, min(na, nb), (sa, sb), se == 0)
    reference = baseline * len(variant) if design == "one-sample" else baseline
    diffs = [0.0 if abs(v - b) <= size else v - b for b, v in zip(reference, variant)]
    mean, sd = _mean_sd(diffs)
    n = len(diffs)
    if n < 2:
        return _Estimate(mean, float("nan"), float("nan"), n, (sd,), False)
    sd = 0.0 if sd <= size else sd
    return _Estimate(mean, sd / math.sqrt(n), n - 1.0, n, (sd,), sd == 0)


def _estimate_by_image(baseline: list, variant: list) -> _Estimate:
    """Pairs of images: every seed scores the same images, so their effects are correlated
    through the images. Each image's difference is averaged over the seeds first; the effect is
    the mean over images, with the images' standard error and N − 1 degrees of freedom."""
    size = max([abs(v) for arm in (baseline, variant) for seed in arm for v in seed] + [1.0]) * TOLERANCE
    per_seed = [[0.0 if abs(y - x) <= size else y - x for x, y in zip(b, v)] for b, v in zip(baseline, variant)]
    per_image = [sum(ds) / len(ds) for ds in zip(*per_seed)]
    mean, sd = _mean_sd(per_image)
    n = len(per_image)
    sd = 0.0 if not sd > size else sd
    # the variance of one seed's difference on one image, around that image's mean (0 with one seed)
    within = (sum(_mean_sd(list(ds))[1] ** 2 for ds in zip(*per_seed)) / n) if len(per_seed) > 1 else 0.0
    return _Estimate(mean, sd / math.sqrt(n), n - 1.0, n, (sd, within, len(per_seed)), sd == 0)


def _seeds_by_image(goal: float, est: _Estimate) -> int | None:
    """The seeds (scoring the same images) for which the design detects ``goal`` at 80% power: the
    per-image variance is the images' own (which no seed removes) plus the seeds' noise, which
    shrinks as 1 / seeds. None: more than MAX_SEEDS, or no number of seeds would do."""
    sd, within, seeds = est.sds
    images = max(0.0, sd * sd - within / seeds)
    needed = detectable_nc(est.df)

    def enough(s: int) -> bool:
        return abs(goal) >= needed * math.sqrt((images + within / s) / est.n)

    return smallest(enough)


def _image_arms(baseline, variant) -> tuple:
    """Per seed, per image values of both arms, checked: as many seeds and, seed by seed, as many
    images in each; every value a finite number."""
    arms = []
    for name, sets in (("baseline", baseline), ("variant", variant)):
        if isinstance(sets, (str, bytes)) or not hasattr(sets, "__len__") or not len(sets):
            raise ValueError(f"{name} must be one list of per-image values per seed (paired by image), got {sets!r}")
        arms.append([_arm(f"{name}[{s}]", values, None)[0] for s, values in enumerate(sets)])
    images = len(arms[0][0])
    for s, (b, v) in enumerate(zip(*arms)):
        if len(b) != images or len(v) != images:
            raise ValueError(f"seed {s}: {len(b)} baseline and {len(v)} variant images, seed 0 {images}; pairs by "
                             "image need the same images in every seed, in the same order, scored both ways")
    if len(arms[0]) != len(arms[1]):
        raise ValueError(f"{len(arms[0])} baseline and {len(arms[1])} variant seeds: give both scorings of every seed")
    return arms


def _exact(est: _Estimate, design: str, baseline: list, variant: list) -> tuple:
    """No spread: (p, the smallest p these runs could give, runs per arm for p < 0.05, note) of
    the exact test: the sign test for differences that are all equal, the permutation test for
    two constant arms."""
    alpha = 1.0 - CONFIDENCE
    if design == "welch":
        na, nb = len(baseline), len(variant)
        best = 2.0 / math.comb(na + nb, na)
        needed = next(n for n in range(2, 100) if 2.0 / math.comb(2 * n, n) < alpha)
        test = f"the permutation test of two constant arms ({na} and {nb} runs)"
    else:
        best = min(1.0, 2.0 * 0.5**est.n)
        needed = next(n for n in range(1, 100) if 2.0 * 0.5**n < alpha)
        test = f"the sign test ({est.n} differences, all {est.effect:+.6g})"
    p = 1.0 if est.effect == 0 else min(1.0, best)
    note = (f"no spread between runs, so no t interval: {test} gives p = {p:.3g}; "
            f"{needed} runs per arm could give p < {alpha:g}")
    return p, best, needed, note


def _size(effect: float, low: float, high: float, target: float | None, target_is_paper: bool) -> str:
    """How the effect compares with the paper's (on the log scale for ratios)."""
    if target is None or not target_is_paper:
        return ""
    if low <= target <= high:
        return "like the paper's"
    ratio = effect / target
    if MARGIN[0] <= ratio <= MARGIN[1]:
        return "like the paper's"
    return "smaller than the paper's" if ratio < MARGIN[0] else "larger than the paper's"


def _censoring(verdict: str, size: str, censored: dict, paper_says: str) -> tuple:
    """(verdict, size, note) once runs that never reached the level count at the limit, a bound:
    a bound on the baseline can only shrink an effect in the paper's direction (if it says lower),
    so a verdict survives only where the bound leans against it."""
    runs = [f"{arm}[{i}]" for arm, where in censored.items() for i in where]
    if not runs:
        return verdict, size, ""
    toward = -1 if paper_says == "lower" else 1
    lean = 0 if all(censored.values()) else (-1 if censored["baseline"] else 1)  # sign of true − measured
    note = f"{', '.join(runs)} never reached the level and count at the limit, so the effect is a bound"
    if verdict in ("replicates", "direction only") and lean == toward:
        return "direction only", size if size == "larger than the paper's" else "", note + " (at least this)"
    if verdict == "contradicted" and lean == -toward:
        return verdict, size, note
    return "inconclusive", "", note + ", and it leans the way of the verdict"


def _check_arguments(paper_says, design, regime, log_scale, target_is_paper, limit) -> None:
    if paper_says not in ("lower", "higher"):
        raise ValueError(f"paper_says must be 'lower' or 'higher', got {paper_says!r}")
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    for flag, value in (("log_scale", log_scale), ("target_is_paper", target_is_paper)):
        if isinstance(value, str) or value not in (True, False):
            raise ValueError(f"{flag} must be True or False, got {value!r}")
    if regime is not None and not isinstance(regime, Regime):
        raise ValueError(f"regime must be a Regime(comparable, note) (see stats.regime) or None, got {regime!r}")
    if limit is not None:
        tdist.positive("limit (what each run was allowed, such as its epochs)", limit)


def _working_scale(name: str, values: list, log_scale: bool) -> list:
    if not log_scale:
        return values
    if min(values) <= 0:
        raise ValueError(f"log_scale needs positive values (a ratio claim: epochs, iterations, ...); "
                         f"{name}[{values.index(min(values))}] is {min(values)}")
    return [math.log(x) for x in values]


def _target(target, paper_says: str, log_scale: bool) -> float | None:
    """The target on the working scale (the log of a ratio), checked to lie on the paper's side."""
    if target is None:
        return None
    value = tdist.to_float(target)
    if not math.isfinite(value) or (log_scale and value <= 0):
        raise ValueError(f"target must be a finite number{' above 0 (a ratio)' if log_scale else ''}, got {target!r}")
    value = math.log(value) if log_scale else value
    if value == 0 or (value < 0) != (paper_says == "lower"):
        raise ValueError(f"target {target!r} is not on the paper's side ({paper_says}): it is the effect the paper "
                         "reports, or the smallest effect of interest, in the paper's direction")
    return value


def compare(baseline, variant, paper_says: str, design: str = "welch", regime: Regime | None = None,
            log_scale: bool = False, target=None, target_is_paper: bool = True, limit=None) -> Comparison:
    """Judge a claim from per-run values of the two arms (see the module docstring).

    ``paper_says`` is ``"lower"`` or ``"higher"``: where the paper puts the variant. ``design``:
    ``"paired"`` pairs the i-th baseline with the i-th variant value, ``"one-sample"`` takes one
    constant baseline, ``"welch"`` two independent arms of at least two runs. ``regime``: see
    :func:`regime` (default: comparable). ``target``: the paper's effect (``target_is_paper``)
    or the smallest effect of interest, in the claim's units (a ratio with ``log_scale``).
    ``limit``: what each run was allowed, where a run that never reached the level is ``inf``.
    """
    _check_arguments(paper_says, design, regime, log_scale, target_is_paper, limit)
    regime = regime or Regime(True, "")
    if design == "paired by image":
        if log_scale or limit is not None:
            raise ValueError("a design paired by image takes per-image values, without log_scale or limit")
        (baseline, variant), cens_b, cens_v = _image_arms(baseline, variant), [], []
        est = _estimate_by_image(baseline, variant)
    else:
        (baseline, cens_b), (variant, cens_v) = _arm("baseline", baseline, limit), _arm("variant", variant, limit)
        _check_design(baseline, variant, design)
        baseline = _working_scale("baseline", baseline, log_scale)
        variant = _working_scale("variant", variant, log_scale)
        est = _estimate(baseline, variant, design)
    goal = _target(target, paper_says, log_scale)
    nan, alpha, toward_sign = float("nan"), 1.0 - CONFIDENCE, (-1 if paper_says == "lower" else 1)
    back = (lambda v: math.exp(v)) if log_scale else (lambda v: v)
    if est.n < 2:
        return Comparison(design, paper_says, est.n, back(est.effect), nan, nan, nan, nan, nan, nan,
                          target, target_is_paper, None, "", log_scale, "cannot be tested here", regime.note,
                          f"too few runs for an interval (n={est.n})")
    if est.no_spread:
        p, best, seeds, note = _exact(est, design, baseline, variant)
        low = high = detectable = nan
        null = "not detected" if best < alpha and goal is not None else "inconclusive"
    else:
        crit = t_quantile(0.5 + CONFIDENCE / 2, est.df)
        low, high = est.effect - crit * est.se, est.effect + crit * est.se
        p = min(1.0, 2.0 * (1.0 - t_cdf(abs(est.effect) / est.se, est.df)))
        detectable = toward_sign * detectable_nc(est.df) * est.se
        if goal is None:
            seeds = None
        elif design == "paired by image":
            seeds = _seeds_by_image(goal, est)
        else:
            seeds = seeds_needed(goal, est.sds[0], design, est.sds[-1])
        null = "not detected" if goal is not None and abs(detectable) <= abs(goal) else "inconclusive"
        note = ""
    significant = p < alpha
    toward, against = significant and est.effect * toward_sign > 0, significant and est.effect * toward_sign < 0
    size = _size(est.effect, low, high, goal, target_is_paper) if toward else ""
    verdict = ("replicates" if regime.comparable and size in ("", "like the paper's") else "direction only") \
        if toward else ("contradicted" if against else null)
    verdict, size, bound = _censoring(verdict, size, {"baseline": cens_b, "variant": cens_v}, paper_says)
    return Comparison(design, paper_says, est.n, back(est.effect), est.se, est.df, back(low), back(high), p,
                      back(detectable), target, target_is_paper, seeds, size, log_scale, verdict, regime.note,
                      "; ".join(x for x in (note, bound) if x))


def _check_design(baseline: list, variant: list, design: str) -> None:
    if design == "paired" and len(baseline) != len(variant):
        raise ValueError(f"a paired design needs as many baseline as variant values, got {len(baseline)} and "
                         f"{len(variant)}: pair each baseline run with its variant (same seed), or use design='welch'")
    if design == "one-sample" and len(baseline) != 1:
        raise ValueError(f"a one-sample design compares the runs with one constant: give baseline=[value], "
                         f"got {len(baseline)} values")
    if design == "welch":
        for name, arm in (("baseline", baseline), ("variant", variant)):
            if len(arm) < 2:
                raise ValueError(f"the {name} arm has one run: its variance is unknown, not zero, so Welch's "
                                 "design cannot use it. Run more seeds, or, for a constant reference (a value "
                                 "that no run varies, such as a pixel-space baseline), use design='one-sample'")
