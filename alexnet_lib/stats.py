"""The one verdict procedure of the book: an effect, its 95% t interval, and what it means.

Every claim of the paper is judged the same way, fixed before the runs it judges:

1. **The effect** is variant − baseline, in the claim's metric. Where the arms are paired
   (the same seeds, initialisations and data order; or the same models evaluated two ways)
   the effect is the mean of the per-pair differences; otherwise it is the difference of the
   means, with Welch's standard error and degrees of freedom. A ratio claim ("six times
   faster") is judged on the logarithm of the ratio and reported as a ratio.
2. **The interval** is the 95% confidence interval from Student's t distribution with those
   degrees of freedom (not a flat two standard errors: with 3 seeds, t is 4.30, not 2).
3. **The verdict:**

   - *replicates*: the interval excludes zero in the paper's direction, and the runs are in a
     regime comparable to the paper's;
   - *direction only*: the same, but the regime differs (the note says how), so only the sign
     carries over;
   - *not detected*: the interval includes zero. Beside it goes the smallest effect the design
     could detect at 80% power, to compare with the paper's effect;
   - *contradicted*: the interval excludes zero in the opposite direction;
   - *cannot be tested here*: too few runs for an interval, or not run at this scale.

Student's t is computed here (its CDF from the regularised incomplete beta function, and its
quantiles by bisection), so the library needs no statistics package.

Bad input is refused by name, never judged: a value that is not a finite number (a NaN from a
run that diverged) names its arm and position, and an empty arm, arms of unequal length in a
paired design and degrees of freedom that are not a positive number are errors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

VERDICTS = ("replicates", "direction only", "not detected", "contradicted", "cannot be tested here")
DESIGNS = ("paired", "welch")
CONFIDENCE = 0.95
POWER = 0.80
#: The version of these rules. Every claim record stores the version that judged it; raise it
#: whenever the procedure changes, and record the claims again.
VERSION = 1


# ------------------------------------------------------------------ Student's t, by hand
def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _float(value) -> float:
    """``value`` as a float; NaN for what is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _positive(name: str, value, hint: str = "") -> float:
    """``value`` as a float if it is a positive finite number, else a ValueError naming it."""
    number = _float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive finite number{hint}, got {value!r}")
    return number


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for 0 <= x <= 1."""
    a, b = _positive("a", a), _positive("b", b)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df may be fractional, as Welch's is)."""
    df = _check_df(df)
    number = _float(t)
    if math.isnan(number):
        raise ValueError(f"t must be a number (not NaN), got {t!r}")
    t = number
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, by bisection (to 1e-12)."""
    df = _check_df(df)
    if not 0.0 < _float(p) < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    p = float(p)
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def _check_df(df) -> float:
    return _positive("df (the degrees of freedom)", df, " (for the normal distribution, a large df such as 1e6)")


# ----------------------------------------------------------------------- the procedure
@dataclass(frozen=True)
class Regime:
    """Whether the runs are in a regime comparable to the paper's, and how they differ if not."""

    comparable: bool
    note: str


@dataclass(frozen=True)
class Comparison:
    """The judged effect of one claim; every number in the claim's units (ratios as ratios)."""

    design: str  # "paired" or "welch"
    paper_says: str  # "lower" or "higher": the variant's side of the baseline in the paper
    n: int  # pairs (paired) or the smaller arm (welch)
    effect: float  # variant − baseline (a ratio variant / baseline when log_scale)
    standard_error: float
    df: float
    ci_low: float
    ci_high: float
    detectable: float  # the smallest effect the design detects with 80% power (same units)
    log_scale: bool
    verdict: str
    regime_note: str

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
        """'−2.1 [−3.9, −0.3] points (paired, n=3) -> replicates'."""
        f = (lambda v: f"{v:.{digits}f}x") if self.log_scale else (lambda v: f"{v * scale:+.{digits}f}")
        text = f"{f(self.effect)} [{f(self.ci_low)}, {f(self.ci_high)}]{unit} ({self.design}, n={self.n})"
        if self.verdict == "not detected":
            text += f"; detectable at 80% power: {f(self.detectable)}{unit}"
        return f"{text} -> {self.verdict}"


def _mean_sd(values: list) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan"))


def _arm(name: str, values) -> list[float]:
    """The values of one arm as floats; a ValueError names the arm, and the position of a value that is
    not a finite number."""
    try:
        if isinstance(values, (str, bytes)):
            raise TypeError
        values = list(values)
    except TypeError:
        raise ValueError(f"{name} must be a list of numbers, one per run, got {values!r}") from None
    numbers = []
    for i, v in enumerate(values):
        try:
            number = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{i}] is {v!r}, not a number: each value is one run's result") from None
        if not math.isfinite(number):
            raise ValueError(f"{name}[{i}] is {number}: every value must be a finite number. Leave out the run that "
                             "gave it (it diverged, or was not measured), or run it again.")
        numbers.append(number)
    if not numbers:
        raise ValueError(f"{name} is empty: each arm needs the values of its runs (one per run)")
    return numbers


def _estimate(baseline: list, variant: list, paired: bool) -> tuple[float, float, float, int]:
    """(effect, standard error, degrees of freedom, n) of variant − baseline."""
    if paired:
        mean, sd = _mean_sd([v - b for b, v in zip(baseline, variant)])
        n = len(baseline)
        return mean, sd / math.sqrt(n), n - 1, n
    (ma, sa), (mb, sb) = _mean_sd(baseline), _mean_sd(variant)
    na, nb = len(baseline), len(variant)
    va, vb = (sa * sa / na if na > 1 else 0.0), (sb * sb / nb if nb > 1 else 0.0)
    se = math.sqrt(va + vb)
    # Welch–Satterthwaite; an arm without spread (one value, or a constant) adds no degrees of freedom
    parts = [(v, n) for v, n in ((va, na), (vb, nb)) if v > 0]
    df = (se**4 / sum(v * v / (n - 1) for v, n in parts)) if parts else float("nan")
    return mb - ma, se, df, min(na, nb)


def compare(baseline, variant, paper_says: str, paired: bool = False, regime: Regime | None = None,
            log_scale: bool = False) -> Comparison:
    """Judge a claim from per-run values of the two arms (see the module docstring).

    ``paper_says`` is ``"lower"`` or ``"higher"``: where the paper puts the variant. ``paired``
    pairs the i-th baseline with the i-th variant value. ``regime`` says whether the runs are
    comparable to the paper's (default: comparable). With ``log_scale`` the values must be
    positive and the effect, interval and detectable effect are ratios variant / baseline.
    """
    if paper_says not in ("lower", "higher"):
        raise ValueError(f"paper_says must be 'lower' or 'higher', got {paper_says!r}")
    for flag, value in (("paired", paired), ("log_scale", log_scale)):
        if isinstance(value, str) or value not in (True, False, None):
            raise ValueError(f"{flag} must be True or False, got {value!r}")
    if regime is not None and not isinstance(regime, Regime):
        raise ValueError(f"regime must be a Regime(comparable, note) or None, got {regime!r}")
    regime = regime or Regime(True, "")
    baseline, variant = _arm("baseline", baseline), _arm("variant", variant)
    if paired and len(baseline) != len(variant):
        raise ValueError(f"a paired design needs as many baseline as variant values, got {len(baseline)} and "
                         f"{len(variant)}: pair each baseline run with its variant (same seed), or pass paired=False")
    if log_scale:
        for name, arm in (("baseline", baseline), ("variant", variant)):
            if min(arm) <= 0:
                raise ValueError(f"log_scale needs positive values (a ratio claim: epochs, iterations, ...); "
                                 f"{name}[{arm.index(min(arm))}] is {min(arm)}")
        baseline, variant = [math.log(x) for x in baseline], [math.log(x) for x in variant]
    effect, se, df, n = _estimate(baseline, variant, paired)
    design = "paired" if paired else "welch"
    if not (df > 0 and se > 0):  # no spread to build an interval from
        nan = float("nan")
        return Comparison(design, paper_says, n, _back(effect, log_scale), nan, nan, nan, nan, nan, log_scale,
                          "cannot be tested here", f"too few runs with spread for an interval (n={n})")
    half = t_quantile(0.5 + CONFIDENCE / 2, df) * se
    detectable = (t_quantile(0.5 + CONFIDENCE / 2, df) + t_quantile(POWER, df)) * se
    low, high = effect - half, effect + half
    toward = high < 0 if paper_says == "lower" else low > 0
    against = low > 0 if paper_says == "lower" else high < 0
    verdict = ("replicates" if regime.comparable else "direction only") if toward else (
        "contradicted" if against else "not detected")
    signed_detectable = -detectable if paper_says == "lower" else detectable
    return Comparison(design, paper_says, n, _back(effect, log_scale), se, df, _back(low, log_scale),
                      _back(high, log_scale), _back(signed_detectable, log_scale), log_scale, verdict, regime.note)


def _back(value: float, log_scale: bool) -> float:
    return math.exp(value) if log_scale else value
