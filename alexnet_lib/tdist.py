"""Student's t and the noncentral t, by hand, so the library needs no statistics package; the
power of the t test, the runs it needs, and Holm's adjustment for many claims.

The t CDF comes from the regularised incomplete beta function (a continued fraction), its
quantiles by bisection; the noncentral t's CDF by integrating the normal over the chi
distribution; :func:`power` and :func:`detectable_nc` are the two-sided t test's power and the
effect it finds at 80% power, :func:`seeds_needed` the runs a design needs to find an effect,
and :func:`holm` adjusts a family's p-values. ``stats`` uses them for every claim.
"""

from __future__ import annotations

import math

CONFIDENCE = 0.95
POWER = 0.80
#: The designs of a comparison: pairs of runs, two independent arms, runs against one constant,
#: and the same models scored two ways on the same images (pairs of images within each seed).
DESIGNS = ("paired", "welch", "one-sample", "paired by image")
#: The most seeds :func:`seeds_needed` searches; beyond it, it says "more than".
MAX_SEEDS = 100_000


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


def to_float(value) -> float:
    """``value`` as a float; NaN for what is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def positive(name: str, value, hint: str = "") -> float:
    """``value`` as a float if it is a positive finite number, else a ValueError naming it."""
    number = to_float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive finite number{hint}, got {value!r}")
    return number


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for 0 <= x <= 1."""
    a, b = positive("a", a), positive("b", b)
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
    number = to_float(t)
    if math.isnan(number):
        raise ValueError(f"t must be a number (not NaN), got {t!r}")
    t = number
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, by bisection (to 1e-12)."""
    df = _check_df(df)
    if not 0.0 < to_float(p) < 1.0:
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
    return positive("df (the degrees of freedom)", df, " (for the normal distribution, a large df such as 1e6)")


def normal_cdf(z: float) -> float:
    """P(Z <= z) for the standard normal."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def nct_cdf(t: float, df: float, nc: float) -> float:
    """P(T <= t) for the noncentral t with ``df`` degrees of freedom (at least 1) and
    noncentrality ``nc``: T = (Z + nc) / sqrt(V / df), so P(T <= t) is the mean over W = sqrt(V),
    chi-distributed, of P(Z <= t W / sqrt(df) - nc), by Simpson's rule over W's bulk (±12
    around its mode), to about 1e-9."""
    df = _check_df(df)
    if df < 1:
        raise ValueError(f"the noncentral t here needs df >= 1, got {df}")
    for name, value in (("t", t), ("nc", nc)):
        if not math.isfinite(to_float(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    centre = math.sqrt(df - 1.0)
    # integrate over u = sqrt(w): w^(df-1) dw = 2 u^(2 df - 1) du is smooth at 0 for every df >= 1
    lo, hi, steps = math.sqrt(max(0.0, centre - 12.0)), math.sqrt(centre + 12.0), 1200
    log_norm = (df / 2.0 - 1.0) * math.log(2.0) + math.lgamma(df / 2.0)
    scale, h, total = t / math.sqrt(df), (hi - lo) / steps, 0.0
    for i in range(steps + 1):
        u = lo + i * h
        w = u * u
        density = 2.0 * math.exp((2.0 * df - 1.0) * math.log(u) - w * w / 2.0 - log_norm) if u > 0 else 0.0
        weight = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += weight * density * normal_cdf(scale * w - nc)
    return min(1.0, max(0.0, total * h / 3.0))


def power(nc: float, df: float) -> float:
    """The power of the two-sided t test at level 1 − CONFIDENCE when the true effect is ``nc``
    standard errors from zero."""
    crit = t_quantile(0.5 + CONFIDENCE / 2, df)
    return 1.0 - nct_cdf(crit, df, nc) + nct_cdf(-crit, df, nc)


def detectable_nc(df: float) -> float:
    """The noncentrality (the effect in standard errors) that the two-sided test finds with
    :data:`POWER`, by bisection to 1e-6."""
    lo, hi = 0.0, 4.0
    while power(hi, df) < POWER:
        lo, hi = hi, 2.0 * hi
    while hi - lo > 1e-6:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if power(mid, df) < POWER else (lo, mid)
    return hi


def seeds_needed(effect: float, sd: float, design: str = "paired", sd_variant: float | None = None) -> int | None:
    """The fewest runs per arm for which the design detects ``effect`` at :data:`POWER`, if the
    runs spread as they did: ``sd`` is the SD of the paired differences (paired, one-sample) or
    of the baseline arm (Welch, with ``sd_variant`` the variant's); for pairs of images, the
    pairs needed. None: more than :data:`MAX_SEEDS`."""
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}, got {design!r}")
    effect, sd = abs(to_float(effect)), to_float(sd)
    other = sd if sd_variant is None else to_float(sd_variant)
    if not (math.isfinite(effect) and effect > 0 and math.isfinite(sd) and sd >= 0 and math.isfinite(other)):
        raise ValueError(f"seeds_needed needs a finite non-zero effect and SDs, got {effect}, {sd}, {other}")

    def enough(n: int) -> bool:
        if design == "welch":
            var = sd * sd + other * other
            df = var * var * (n - 1) / (sd**4 + other**4) if var > 0 else n - 1.0
            se = math.sqrt(var / n)
        else:
            df, se = n - 1.0, sd / math.sqrt(n)
        return se == 0 or power(effect / se, df) >= POWER

    return smallest(enough, 2)


def smallest(enough, start: int = 1) -> int | None:
    """The smallest n >= ``start`` with ``enough(n)`` (which must stay true once true), by
    doubling and bisection; None if even :data:`MAX_SEEDS` is not enough."""
    if not enough(MAX_SEEDS):
        return None
    lo, hi = start - 1, start
    while not enough(hi):
        lo, hi = hi, min(2 * hi, MAX_SEEDS)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if not enough(mid) else (lo, mid)
    return hi


def holm(pvalues) -> list:
    """Holm's step-down adjustment: sort the m p-values, multiply the i-th smallest (from 0) by
    m − i, carry the running maximum, cap at 1. A claim holds over the family at 5% when its
    adjusted p is below 0.05."""
    ps = [to_float(p) for p in pvalues]
    for i, p in enumerate(ps):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value {i} is {pvalues[i]!r}: p-values are numbers between 0 and 1")
    m, adjusted, running = len(ps), [0.0] * len(ps), 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: ps[j])):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted
