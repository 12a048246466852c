"""The verdict procedure against a printed t table and examples worked by hand."""

import math

import pytest

from alexnet_lib.stats import Regime, betainc, compare, t_cdf, t_quantile

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
    c = compare(centre, ten, "lower", paired=True)
    assert c.design == "paired" and c.n == 3 and c.df == 2
    assert c.effect == pytest.approx(-2.1333, abs=1e-4) and c.standard_error == pytest.approx(0.6960, abs=1e-4)
    assert (c.ci_low, c.ci_high) == (pytest.approx(-5.128, abs=2e-3), pytest.approx(0.862, abs=2e-3))
    assert c.verdict == "not detected"
    # at 80% power the design detects (4.303 + 1.061) x 0.6960 = 3.733 points (in the paper's direction)
    assert c.detectable == pytest.approx(-3.733, abs=2e-3)
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
    lower, higher = [10.0, 10.5, 9.5, 10.2], [12.0, 12.4, 11.8, 12.1]
    assert compare(higher, lower, "lower").verdict == "replicates"
    far = Regime(False, "far from the paper's scale")
    assert compare(higher, lower, "lower", regime=far).verdict == "direction only"
    assert compare(lower, higher, "lower").verdict == "contradicted"
    assert compare(lower, [10.1, 10.4, 9.6, 10.1], "lower").verdict == "not detected"
    assert compare([1.0], [2.0], "higher").verdict == "cannot be tested here"


def test_a_ratio_claim_is_judged_on_the_log_and_reported_as_a_ratio():
    """Epochs to a level, paired by seed: tanh 30, 36, 33 against ReLU 5, 6, 6: ReLU / tanh 1/6, 1/6,
    1/5.5; log ratios -1.7918, -1.7918, -1.7047: mean -1.7627, sd 0.0503, se 0.0290,
    CI exp(-1.7627 ± 4.303 x 0.0290): ReLU takes 0.172x the epochs (tanh 5.83x ReLU's)."""
    c = compare([30, 36, 33], [5, 6, 6], "lower", paired=True, log_scale=True)
    assert c.effect == pytest.approx(math.exp(-1.7627), rel=1e-3)  # the geometric mean ratio
    assert c.ci_low == pytest.approx(math.exp(-1.7627 - 4.303 * 0.02903), rel=2e-3)
    assert c.ci_high == pytest.approx(math.exp(-1.7627 + 4.303 * 0.02903), rel=2e-3)
    assert c.verdict == "replicates" and c.ci_high < 1
    with pytest.raises(ValueError, match="positive"):
        compare([0, 1], [1, 2], "lower", log_scale=True)


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="paper_says"):
        compare([1, 2], [3, 4], "smaller")
    with pytest.raises(ValueError, match="as many baseline as variant"):
        compare([1, 2, 3], [3, 4], "lower", paired=True)


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
        compare(baseline, variant, "lower", paired=paired)


def test_a_paired_design_with_arms_of_unequal_length_says_how_to_pair():
    with pytest.raises(ValueError, match=r"got 3 and 2: pair each baseline run with its variant.*paired=False"):
        compare([0.3, 0.31, 0.29], [0.25, 0.26], "lower", paired=True)
    # unpaired, unequal arms are Welch's design (by hand: a = 1, 2, 3 and b = 4, 5: effect 4.5 - 2 = 2.5)
    assert compare([1, 2, 3], [4, 5], "higher").effect == pytest.approx(2.5)


def test_a_ratio_claim_names_the_value_that_is_not_positive():
    with pytest.raises(ValueError, match=r"positive values.*variant\[2\] is 0.0"):
        compare([30, 36, 33], [5, 6, 0], "lower", paired=True, log_scale=True)


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
    with pytest.raises(ValueError, match=r"paired must be True or False, got 'no'"):
        compare([1, 2], [3, 4], "lower", paired="no")
    with pytest.raises(ValueError, match=r"regime must be a Regime\(comparable, note\) or None"):
        compare([1, 2], [3, 4], "lower", regime="far")
