"""The verdict procedure against printed tables (Student's t, power) and examples worked by hand."""

import math

import pytest

from alexnet_lib.stats import MARGIN, Regime, Scale, compare, regime
from alexnet_lib.tdist import betainc, detectable_nc, holm, nct_cdf, normal_cdf, power, seeds_needed, t_cdf, t_quantile

# Student's t quantiles as printed in the usual tables (3 decimals).
T_TABLE = {  # df: (t_0.80, t_0.95, t_0.975)
    1: (1.376, 6.314, 12.706), 2: (1.061, 2.920, 4.303), 3: (0.978, 2.353, 3.182), 4: (0.941, 2.132, 2.776),
    5: (0.920, 2.015, 2.571), 10: (0.879, 1.812, 2.228), 30: (0.854, 1.697, 2.042),
}


@pytest.mark.parametrize("df", sorted(T_TABLE))
def test_t_quantiles_match_the_printed_table(df):
    for p, printed in zip((0.80, 0.95, 0.975), T_TABLE[df]):
        assert t_quantile(p, df) == pytest.approx(printed, abs=6e-4), (p, df)  # the table rounds to 5e-4
        assert t_quantile(1 - p, df) == pytest.approx(-printed, abs=6e-4)


def test_t_cdf_closed_forms():
    # df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/pi; df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2))
    for t in (-3.0, -0.5, 0.0, 0.7, 4.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
    # I_x(1, 1) = x, I_x(a, 1) = x^a
    assert betainc(1, 1, 0.3) == pytest.approx(0.3, abs=1e-14) and betainc(2.5, 1, 0.4) == pytest.approx(0.4**2.5)


def test_paired_example_by_hand():
    """Ten crops against the centre crop on the same three models: differences -2.0, -1.0, -3.4
    points. Mean -2.1333, sd 1.2055, se 0.6960, t(0.975, 2) = 4.303: CI [-5.128, 0.862]."""
    centre, ten = [40.0, 35.0, 38.4], [38.0, 34.0, 35.0]
    c = compare(centre, ten, "lower", design="paired")
    assert c.design == "paired" and c.n == 3 and c.df == 2
    assert c.effect == pytest.approx(-2.1333, abs=1e-4) and c.standard_error == pytest.approx(0.6960, abs=1e-4)
    assert (c.ci_low, c.ci_high) == (pytest.approx(-5.128, abs=2e-3), pytest.approx(0.862, abs=2e-3))
    assert c.p_value == pytest.approx(2 * (1 - t_cdf(2.1333 / 0.6960, 2)), abs=1e-3)
    # no target: the design cannot say whether it could have seen one
    assert c.verdict == "inconclusive" and c.target is None and c.seeds_needed is None
    # at 80% power it detects detectable_nc(2) = 5.65 standard errors (the noncentral t; the
    # normal shortcut t(0.975) + t(0.80) = 5.364 is too small with 2 degrees of freedom):
    assert c.detectable == pytest.approx(-detectable_nc(2) * 0.6960, abs=2e-3)
    # the paper's -1.5 points is far below the detectable -3.9: inconclusive, not "not detected"
    judged = compare(centre, ten, "lower", design="paired", target=-1.5)
    assert judged.verdict == "inconclusive" and judged.seeds_needed > 3
    # the same numbers unpaired (Welch) spread far wider: pairing is what the design gives
    assert compare(centre, ten, "lower").standard_error > 1.5 * c.standard_error


def test_welch_example_by_hand():
    """a = 1, 2, 3 and b = 4, 5, 6, 7: effect 3.5; se^2 = 1/3 + (5/3)/4 = 0.75;
    df = 0.5625 / (0.0555556 + 0.0578704) = 4.95918; t(0.975, 4.959) lies between the table's
    2.571 (df 5) and 2.776 (df 4), next to 2.571: the half-width is t x 0.8660."""
    c = compare([1, 2, 3], [4, 5, 6, 7], "higher")
    assert c.effect == pytest.approx(3.5) and c.standard_error == pytest.approx(math.sqrt(0.75))
    assert c.df == pytest.approx(4.95918, abs=1e-5)
    t = (c.ci_high - c.effect) / c.standard_error
    assert 2.571 < t < 2.59 and c.effect - c.ci_low == pytest.approx(c.ci_high - c.effect)
    assert c.verdict == "replicates"


def test_the_verdict_vocabulary():
    lower, higher = [10.0, 10.5, 9.5, 10.2], [12.0, 12.4, 11.8, 12.1]  # variant - baseline: about -2
    assert compare(higher, lower, "lower", target=-2.0).verdict == "replicates"
    far = Regime(False, "far from the paper's scale")
    assert compare(higher, lower, "lower", regime=far, target=-2.0).verdict == "direction only"
    assert compare(lower, higher, "lower", target=-2.0).verdict == "contradicted"
    same = [10.1, 10.4, 9.6, 10.1]
    # the design detects about 0.6 at 80% power: it could have seen -2.0, not -0.1
    assert compare(lower, same, "lower", target=-2.0).verdict == "not detected"
    assert compare(lower, same, "lower", target=-0.1).verdict == "inconclusive"
    assert compare(lower, same, "lower").verdict == "inconclusive"  # no target
    assert compare([1.0], [2.0], "higher", design="paired").verdict == "cannot be tested here"


def test_the_margin_decides_whether_a_comparable_effect_is_the_papers_size():
    """Paired differences -2.0, -2.2, -1.8, -2.1 (mean -2.025): the paper's -2.0 lies in the
    interval. Against a paper value of -0.5, the effect is 4x the paper's (above MARGIN's 2x):
    direction only, larger; against -8, a quarter: smaller. Ratios use their logs."""
    assert MARGIN == (0.5, 2.0)
    base, var = [10.0, 10.0, 10.0, 10.0], [8.0, 7.8, 8.2, 7.9]
    assert compare(base, var, "lower", design="paired", target=-2.0).size == "like the paper's"
    big = compare(base, var, "lower", design="paired", target=-0.5)
    assert (big.verdict, big.size) == ("direction only", "larger than the paper's")
    small = compare(base, var, "lower", design="paired", target=-8.0)
    assert (small.verdict, small.size) == ("direction only", "smaller than the paper's")
    # outside the interval but within the margin: -3.5 is 1.73x -2.025
    assert compare(base, var, "lower", design="paired", target=-3.5).verdict == "replicates"
    # a smallest effect of interest has no paper size: significance in a comparable regime is enough
    sesoi = compare(base, var, "lower", design="paired", target=-0.5, target_is_paper=False)
    assert (sesoi.verdict, sesoi.size) == ("replicates", "")
    # ratio: ReLU / tanh of 1/7.7 against the paper's 1/6: log ratio 2.04 / 1.79 = 1.14, inside
    ratio = compare([38.5, 39.0, 38.0], [5.0, 5.0, 5.0], "lower", design="paired", log_scale=True, target=1 / 6)
    assert ratio.ci_high < 1 / 6 and (ratio.verdict, ratio.size) == ("replicates", "like the paper's")


def test_a_ratio_claim_is_judged_on_the_log_and_reported_as_a_ratio():
    """Epochs to a level, paired by seed: tanh 30, 36, 33 against ReLU 5, 6, 6: ReLU / tanh 1/6, 1/6,
    1/5.5; log ratios -1.7918, -1.7918, -1.7047: mean -1.7627, sd 0.0503, se 0.0290,
    CI exp(-1.7627 ± 4.303 x 0.0290): ReLU takes 0.172x the epochs (tanh 5.83x ReLU's)."""
    c = compare([30, 36, 33], [5, 6, 6], "lower", design="paired", log_scale=True)
    assert c.effect == pytest.approx(math.exp(-1.7627), rel=1e-3)  # the geometric mean ratio
    assert c.ci_low == pytest.approx(math.exp(-1.7627 - 4.303 * 0.02903), rel=2e-3)
    assert c.ci_high == pytest.approx(math.exp(-1.7627 + 4.303 * 0.02903), rel=2e-3)
    assert c.verdict == "replicates" and c.ci_high < 1
    assert compare([30, 36, 33], [5, 6, 6], "lower", design="paired", log_scale=True, target=0.5).size \
        == "larger than the paper's"  # log(1/5.83) / log(0.5) = 2.54
    with pytest.raises(ValueError, match="positive"):
        compare([0, 1], [1, 2], "lower", log_scale=True)


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="paper_says"):
        compare([1, 2], [3, 4], "smaller")
    with pytest.raises(ValueError, match="as many baseline as variant"):
        compare([1, 2, 3], [3, 4], "lower", design="paired")


@pytest.mark.parametrize("baseline, variant, words", [
    ([0.31, float("nan"), 0.30], [0.25, 0.26, 0.24], r"baseline\[1\] is nan: every value must be a finite number"),
    ([0.31, 0.29, 0.30], [0.25, 0.26, float("inf")], r"variant\[2\] is inf: every value must be a finite number"),
    ([0.31, 0.29], [0.25, -float("inf")], r"variant\[1\] is -inf"),
    ([0.31, None], [0.25, 0.26], r"baseline\[1\] is None, not a number"),
    (["0.3", "high"], [0.25, 0.26], r"baseline\[1\] is 'high', not a number"),
    ("0.3", [0.25, 0.26], r"baseline must be a list of numbers, one per run, got '0.3'"),
    (0.3, [0.25, 0.26], r"baseline must be a list of numbers"),
    ([], [], r"baseline is empty"),
    ([0.31, 0.29], [], r"variant is empty"),
])
def test_values_that_are_not_finite_numbers_are_named_not_judged(baseline, variant, words):
    """A run that diverged gives NaN; before, it was judged 'cannot be tested here' and never named."""
    with pytest.raises(ValueError, match=words):
        compare(baseline, variant, "lower")
    paired = isinstance(baseline, list) and len(baseline) == len(variant)  # the paired design checks them too
    with pytest.raises(ValueError, match=words):
        compare(baseline, variant, "lower", design="paired" if paired else "welch")


def test_a_paired_design_with_arms_of_unequal_length_says_how_to_pair():
    with pytest.raises(ValueError, match=r"got 3 and 2: pair each baseline run with its variant.*design='welch'"):
        compare([0.3, 0.31, 0.29], [0.25, 0.26], "lower", design="paired")
    # unpaired, unequal arms are Welch's design (by hand: a = 1, 2, 3 and b = 4, 5: effect 4.5 - 2 = 2.5)
    assert compare([1, 2, 3], [4, 5], "higher").effect == pytest.approx(2.5)


def test_a_ratio_claim_names_the_value_that_is_not_positive():
    with pytest.raises(ValueError, match=r"positive values.*variant\[2\] is 0.0"):
        compare([30, 36, 33], [5, 6, 0], "lower", design="paired", log_scale=True)


@pytest.mark.parametrize("df", [float("nan"), 0, -3, float("inf"), "four", None])
def test_degrees_of_freedom_that_are_not_a_positive_number_are_named(df):
    """t_quantile(df=nan) used to blame x, a variable the caller never gave."""
    words = r"df \(the degrees of freedom\) must be a positive finite number.*got"
    with pytest.raises(ValueError, match=words):
        t_quantile(0.975, df)
    with pytest.raises(ValueError, match=words):
        t_cdf(1.0, df)


def test_t_and_p_that_are_not_numbers_are_named():
    with pytest.raises(ValueError, match=r"t must be a number \(not NaN\), got nan"):
        t_cdf(float("nan"), 3)
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\), got nan"):
        t_quantile(float("nan"), 3)
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\), got 'most'"):
        t_quantile("most", 3)
    # large degrees of freedom approach the normal distribution: z(0.975) = 1.95996
    assert t_quantile(0.975, 1e6) == pytest.approx(1.95996, abs=1e-4)


def test_flags_and_regime_of_the_wrong_kind_are_named():
    with pytest.raises(ValueError, match=r"design must be one of .*got 'no'"):
        compare([1, 2], [3, 4], "lower", design="no")
    with pytest.raises(ValueError, match=r"log_scale must be True or False, got 'yes'"):
        compare([1, 2], [3, 4], "lower", log_scale="yes")
    with pytest.raises(ValueError, match=r"regime must be a Regime\(comparable, note\)"):
        compare([1, 2], [3, 4], "lower", regime="far")


# ------------------------------------------------------------------ power, against the tables
def test_the_noncentral_t_reduces_to_closed_forms():
    # with no noncentrality it is Student's t (df 1: the Cauchy distribution, df 2: closed form)
    for t in (-3.0, -0.5, 0.0, 0.7, 4.0):
        assert nct_cdf(t, 1, 0.0) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-9)
        assert nct_cdf(t, 2, 0.0) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-9)
    # with very many degrees of freedom, T = Z + nc: P(T <= t) = Phi(t - nc) = erfc((nc - t)/sqrt 2)/2
    for t, nc in ((0.0, 1.0), (2.5, 2.8), (-1.0, 0.5)):
        assert nct_cdf(t, 1e7, nc) == pytest.approx(0.5 * math.erfc((nc - t) / math.sqrt(2)), abs=1e-4)


# Sample sizes for 80% power of the two-sided t test at alpha 0.05, as G*Power prints them
# (Faul et al. 2007): one-sample (or paired) d = 0.5 needs 34 (actual power 0.8078), d = 0.8
# needs 15 (0.8213); two independent groups of n each: d = 0.2 needs 394, d = 0.5 64 (0.8015),
# d = 0.8 26 (0.8075). Cohen's (1988) Table 2.4.1 prints 393, 64, 26 (its 393 from an approximation).
@pytest.mark.parametrize("design, d, n, actual", [
    ("paired", 0.5, 34, 0.8078), ("paired", 0.8, 15, 0.8213),
    ("welch", 0.2, 394, None), ("welch", 0.5, 64, 0.8015), ("welch", 0.8, 26, 0.8075),
])
def test_seeds_needed_and_power_match_the_printed_tables(design, d, n, actual):
    assert seeds_needed(d, 1.0, design) == n
    if actual is not None:
        df, nc = (n - 1, d * math.sqrt(n)) if design == "paired" else (2 * n - 2, d * math.sqrt(n / 2))
        assert power(nc, df) == pytest.approx(actual, abs=1e-4)


def test_the_detectable_effect_is_found_at_exactly_80_percent_power():
    for df in (1, 2, 4, 9, 33.5, 1e4):
        assert power(detectable_nc(df), df) == pytest.approx(0.80, abs=1e-6)
    # for a normal test it is z(0.975) + z(0.80) = 1.959964 + 0.841621 = 2.801585
    assert detectable_nc(1e7) == pytest.approx(2.801585, abs=1e-3)
    assert normal_cdf(1.959964) == pytest.approx(0.975, abs=1e-6)


def test_holm_by_hand():
    """p = 0.01, 0.04, 0.03, 0.005: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03,
    0.06, 0.04; the running maximum makes the last 0.06."""
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([]) == []
    with pytest.raises(ValueError, match=r"p-value 1 is nan"):
        holm([0.1, float("nan")])


# --------------------------------------------------------------------------- edge cases
def test_a_welch_arm_of_one_run_is_refused_and_a_constant_is_a_one_sample_call():
    with pytest.raises(ValueError, match="the baseline arm has one run: its variance is unknown, not zero.*one-sample"):
        compare([0.222], [0.358, 0.381, 0.341], "higher")
    # one-sample by hand: 0.358, 0.381, 0.341 against 0.222: differences 0.136, 0.159, 0.119, mean
    # 0.138, sd 0.020075, se 0.011590; t(0.975, 2) = 4.303: [0.0881, 0.1879]
    c = compare([0.222], [0.358, 0.381, 0.341], "higher", design="one-sample", target=0.05, target_is_paper=False)
    assert (c.design, c.n, c.df) == ("one-sample", 3, 2)
    assert c.effect == pytest.approx(0.138) and c.standard_error == pytest.approx(0.011590, abs=1e-6)
    assert c.ci_low == pytest.approx(0.0881, abs=2e-4) and c.verdict == "replicates"
    with pytest.raises(ValueError, match=r"one constant: give baseline=\[value\], got 3 values"):
        compare([0.2, 0.2, 0.2], [0.3, 0.4, 0.35], "higher", design="one-sample")


def test_paired_differences_without_spread_go_to_the_sign_test():
    """Epochs to a level 8, 8, 8 against 16, 16, 16: every difference is +8. No t interval; the
    exact sign test's p is 2 x 0.5^3 = 0.25 and 6 pairs are the fewest that can give p < 0.05
    (2 x 0.5^6 = 0.031). With 6 such pairs, the effect is significant."""
    c = compare([8, 8, 8], [16, 16, 16], "higher", design="paired", target=8.0)
    assert c.effect == 8 and math.isnan(c.ci_low) and c.p_value == pytest.approx(0.25)
    assert c.verdict == "inconclusive" and c.seeds_needed == 6 and "sign test" in c.note
    six = compare([8] * 6, [16] * 6, "higher", design="paired", target=8.0)
    assert six.p_value == pytest.approx(0.03125) and six.verdict == "replicates"
    # two constant Welch arms: the permutation test, p = 2 / C(6, 3) = 0.1; 4 runs each give 2/70
    w = compare([8, 8, 8], [16, 16, 16], "higher", target=8.0)
    assert w.p_value == pytest.approx(0.1) and w.seeds_needed == 4 and w.verdict == "inconclusive"


def test_identical_runs_are_not_judged_by_float_rounding():
    base = [0.1, 0.2, 0.3]
    rounded = [b + 1e-16 * (i + 1) for i, b in enumerate(base)]  # what float noise looks like
    c = compare(base, rounded, "lower", design="paired", target=-0.01)
    assert c.effect == 0 and c.p_value == 1 and c.verdict == "inconclusive"  # 3 pairs: the sign test cannot tell
    six = compare(base * 2, rounded * 2, "lower", design="paired", target=-0.01)
    assert six.effect == 0 and six.verdict == "not detected"  # 6 identical pairs could have shown any shift


def test_a_run_that_never_reached_the_level_counts_at_the_limit_as_a_bound():
    tanh, relu = [30.0, float("inf"), 33.0], [5.0, 6.0, 6.0]
    with pytest.raises(ValueError, match=r"baseline\[1\] is inf.*pass limit="):
        compare(tanh, relu, "lower", design="paired", log_scale=True)
    # tanh (the baseline) never reached it in 40 epochs: its true value is above 40, so the true
    # ratio is smaller still: the verdict in the paper's direction stands, as a bound
    c = compare(tanh, relu, "lower", design="paired", log_scale=True, target=1 / 6, limit=40)
    assert c.verdict == "direction only" and "baseline[1] never reached" in c.note and "at least" in c.note
    assert c.effect == pytest.approx(math.exp((math.log(5 / 30) + math.log(6 / 40) + math.log(6 / 33)) / 3))
    # ReLU (the variant) never reached it: the bound makes ReLU look faster than it is
    v = compare([30.0, 36.0, 33.0], [5.0, float("inf"), 6.0], "lower", design="paired", log_scale=True,
                target=1 / 6, limit=12)
    assert v.verdict == "inconclusive" and "leans the way of the verdict" in v.note


# ------------------------------------------------------------------------- the regime
PAPER_CIFAR = Scale(data="CIFAR-10", images=50_000, net="layers-conv-local-13pct", recipe="cuda-convnet 13%",
                    epochs=160)


def test_the_regime_comes_from_the_design():
    assert regime(PAPER_CIFAR, PAPER_CIFAR) == Regime(True, "")
    ours = Scale(data="CIFAR-10", images=2_500, net="layers-conv-local-13pct", recipe="the book's quick recipe",
                 epochs=8)
    r = regime(ours, PAPER_CIFAR)
    assert not r.comparable
    for words in ("2,500 of the 50,000 training images", "the book's quick recipe, not cuda-convnet 13%",
                  "8 of the paper's 160 epochs"):
        assert words in r.note
    other = Scale(data="Imagenette", images=9_469, net="AlexNet", recipe="§5", epochs=90, width=0.25)
    paper = Scale(data="ImageNet", images=1_281_167, net="AlexNet", recipe="§5", epochs=90)
    assert regime(other, paper).note.startswith("Imagenette, not ImageNet; width 0.25, not 1")
    with pytest.raises(ValueError, match="Scale.images must be a positive whole number"):
        Scale(data="CIFAR-10", images=0, net="n", recipe="r")
    with pytest.raises(ValueError, match="runs must be a stats.Scale"):
        regime("CIFAR-10", PAPER_CIFAR)


def test_a_target_on_the_wrong_side_is_refused():
    with pytest.raises(ValueError, match="not on the paper's side"):
        compare([1, 2], [3, 4], "lower", target=0.5)
    with pytest.raises(ValueError, match="not on the paper's side"):
        compare([1, 2], [3, 4], "lower", log_scale=True, target=2.0)


def test_a_design_paired_by_image_averages_each_images_seeds_first():
    """Two seeds score the same five images, right (0) or wrong (1), centre crop and ten crops.
    Differences seed 0: 0, -1, 0, 0, -1; seed 1: 0, 0, -1, 0, 0. Averaged per image: 0, -0.5,
    -0.5, 0, -0.5: mean -0.3, sd sqrt(0.075) = 0.273861, se 0.122474, df 4; t(0.975, 4) = 2.776:
    [-0.640, 0.040]. The seeds' own noise: the per-image variance over seeds is 0, 0.5, 0.5, 0,
    0.5 (mean 0.3), more than the 0.075 * 2 it explains, so the images add nothing of their own:
    with s seeds the per-image variance is 0.3 / s, and -0.015 (the paper's) is detectable once
    sqrt(0.3 / (5 s)) <= 0.015 / detectable_nc(4)."""
    centre = [[0, 1, 1, 0, 1], [1, 0, 1, 0, 0]]
    ten = [[0, 0, 1, 0, 0], [1, 0, 0, 0, 0]]
    c = compare(centre, ten, "lower", design="paired by image", target=-0.015)
    assert (c.design, c.n, c.df) == ("paired by image", 5, 4)
    assert c.effect == pytest.approx(-0.3) and c.standard_error == pytest.approx(0.122474, abs=1e-6)
    assert (c.ci_low, c.ci_high) == (pytest.approx(-0.640, abs=1e-3), pytest.approx(0.040, abs=1e-3))
    assert c.verdict == "inconclusive"
    assert c.seeds_needed == math.ceil(0.3 / 5 / (0.015 / detectable_nc(4)) ** 2)
    with pytest.raises(ValueError, match="seed 1: 5 baseline and 4 variant images"):
        compare(centre, [ten[0], ten[1][:4]], "lower", design="paired by image")
    with pytest.raises(ValueError, match=r"baseline\[0\]\[2\] is nan"):
        compare([[0, 1, float("nan")]], [[0, 0, 0]], "lower", design="paired by image")
    # a difference the images alone make too noisy is never detectable, whatever the seeds
    noisy = compare([[0, 1, 0, 1]] * 3, [[1, 0, 1, 0]] * 3, "lower", design="paired by image", target=-0.015)
    assert noisy.seeds_needed is None
