"""The claims registry and its records: every claim of the book defined once, judged by the one
procedure, recorded and read back; every recorded claim recomputes to its verdict."""

import dataclasses
import json
import math

import pytest

from alexnet_lib import claims
from alexnet_lib.stats import VERDICTS, VERSION, Scale, compare, regime
from alexnet_lib.tdist import power

from .helpers import EXPECTED_CLAIMS as EXPECTED
from .helpers import ROOT

CLAIM_FILES = sorted((ROOT / "book" / "results" / "claims").glob("*.json"))
QUICK = Scale(data="CIFAR-10", images=2_500, net="cifar-lrn-pair", recipe="the book's quick recipe", epochs=8)


def test_the_registry_holds_the_books_claims_with_the_papers_values():
    assert list(claims.REGISTRY) == list(EXPECTED)
    for key, (chapter, paper_value) in EXPECTED.items():
        spec = claims.REGISTRY[key]
        assert spec.chapter == chapter and (ROOT / "book" / f"{chapter}.ipynb").exists(), key
        assert spec.paper_value == pytest.approx(paper_value) if paper_value is not None else spec.paper_value is None
        assert chapter in claims.CHAPTERS, key


def test_every_recorded_claim_is_a_claim_of_the_registry_with_its_design():
    keys = {p.stem for p in CLAIM_FILES}
    assert set(EXPECTED) <= keys, f"not recorded: {sorted(set(EXPECTED) - keys)}"
    for path in CLAIM_FILES:
        blob = json.loads(path.read_text())
        record = claims.Claim.from_json(blob)
        assert record.claim_key in claims.REGISTRY, path.name
        spec = claims.REGISTRY[record.claim_key]
        assert (record.claim, record.paper_effect) == (spec.claim, spec.paper_effect), path.name
        assert record.procedure == VERSION, f"{path.name}: judged by procedure {record.procedure}; record it again"
        if record.comparison:  # judged: the registry's design, target and regime rule are the ones that judged it
            assert record.paper_says == spec.paper_says and record.paper_value == spec.paper_value, path.name
            assert record.design == spec.design and record.log_scale == spec.log_scale, path.name
            assert record.target == spec.target, path.name
            assert record.regime == regime(Scale(**record.runs), spec.paper_scale).note, path.name


@pytest.mark.parametrize("path", CLAIM_FILES, ids=lambda p: p.stem)
def test_each_recorded_claim_recomputes_to_its_verdict_and_is_written_back_as_read(path):
    blob = json.loads(path.read_text())
    claim = claims.Claim.from_json(blob)
    assert json.loads(json.dumps(claim.to_json())) == blob  # reading and writing a record changes nothing
    assert claim.verdict in VERDICTS, f"{path.name}: {claim.verdict!r} is not a verdict of the one procedure"
    if claim.verdict == "cannot be tested here" and not claim.baseline:
        assert claim.details.get("why"), f"{path.name}: a claim that cannot be tested says why"
        return
    assert claim.baseline and claim.variant, f"{path.name}: no per-run values"
    assert claim.paper_says in ("lower", "higher") and claim.design, f"{path.name}: no design"
    assert claim.comparison, f"{path.name}: no interval"
    assert claim.regime or claim.verdict in ("replicates", "not detected", "contradicted", "cannot be tested here")
    again = claim.rejudge()
    assert again.verdict == claim.verdict, f"{path.name}: recorded {claim.verdict!r}, recomputed {again.verdict!r}"
    for key in ("design", "n", "size", "seeds_needed", "target", "note", "regime_note"):
        assert claim.comparison[key] == getattr(again, key), (path.name, key)
    for key in ("effect", "ci_low", "ci_high", "detectable", "df", "p_value"):
        recorded, recomputed = claim.comparison[key], getattr(again, key)
        if recorded is None:
            assert math.isnan(recomputed), (path.name, key)
        else:
            assert recomputed == pytest.approx(recorded, rel=1e-9, abs=1e-12), (path.name, key)


def test_judge_fills_the_record_from_the_registry_and_the_runs():
    # LRN: errors without 0.60, 0.70, 0.80 and with 0.55, 0.64, 0.76: paired differences
    # -0.05, -0.06, -0.04, mean -0.05, sd 0.01, se 0.01/sqrt(3); t(0.975, 2) = 4.302653
    claim = claims.judge("lrn_cifar", [0.60, 0.70, 0.80], [0.55, 0.64, 0.76], runs=QUICK, scale="3 seeds",
                         details={"note": 1})
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert claim.effect == pytest.approx(-0.05)
    assert (claim.comparison["ci_low"], claim.comparison["ci_high"]) == pytest.approx((-0.05 - half, -0.05 + half))
    # the regime follows from the runs' scale: 2,500 images, another recipe, 8 epochs
    assert claim.verdict == "direction only" and "2,500 of the 50,000 training images" in claim.regime
    assert claim.scale == QUICK.describe() + "; 3 seeds" and claim.runs["images"] == 2_500
    assert (claim.paper_value, claim.design, claim.chapter, claim.procedure) == (-0.02, "paired", "04_lrn", VERSION)
    assert claim.target == -0.02 and claim.comparison["size"] == "larger than the paper's"  # -5 is 2.5x -2
    assert claim.details == {"note": 1} and claim.to_json()["note"] == 1
    # detectable: 5.653 standard errors (the noncentral t, df 2) x 0.01 / sqrt(3) = 3.3 points; seeds needed:
    # n = 4 gives power 0.755 to a difference of 2 sds (noncentrality 4, df 3), n = 5 gives 0.909
    assert power(2 * math.sqrt(4), 3) == pytest.approx(0.755, abs=1e-3)
    assert power(2 * math.sqrt(5), 4) == pytest.approx(0.909, abs=1e-3)
    assert claim.summary() == "-5.0 [-7.5, -2.5] points (paired, n=3); paper -2.0; detectable -3.3; seeds needed 5 " \
                              "-> direction only (larger than the paper's)"
    # at the paper's scale by the paper's recipe the regime is comparable, but 2.5x is not the paper's size
    paper = claims.judge("lrn_cifar", [0.60, 0.70, 0.80], [0.55, 0.64, 0.76], runs=claims.CIFAR_13PCT)
    assert paper.regime == "" and paper.verdict == "direction only"
    assert claims.judge("lrn_cifar", [0.13, 0.14, 0.12], [0.11, 0.118, 0.102], runs=claims.CIFAR_13PCT).verdict \
        == "replicates"
    with pytest.raises(ValueError, match="runs must be a stats.Scale"):
        claims.judge("lrn_cifar", [0.6, 0.7], [0.5, 0.6], runs="CIFAR-10")


def test_a_comparison_is_stored_as_plain_json_with_no_interval_as_none():
    # a second reading kept in a claim's details: the same fields as the claim's own comparison
    two = claims.judge("lrn_cifar", [0.60, 0.70, 0.80], [0.55, 0.64, 0.76], runs=QUICK)
    reading = compare([0.60, 0.70, 0.80], [0.55, 0.64, 0.76], "lower", design="paired",
                      regime=regime(QUICK, claims.CIFAR_13PCT), target=-0.02)
    assert claims.as_record(reading) == two.comparison
    lost = claims.as_record(dataclasses.replace(reading, ci_low=math.nan, ci_high=math.nan))
    assert lost["ci_low"] is None and lost["ci_high"] is None and lost["effect"] == pytest.approx(-0.05)
    json.dumps(lost, allow_nan=False)


def test_every_claim_states_its_target_on_the_papers_side_before_its_runs():
    for key, spec in claims.REGISTRY.items():
        target = math.log(spec.target) if spec.log_scale else spec.target
        assert (target < 0) == (spec.paper_says == "lower") and target != 0, key
        assert (spec.paper_value is None) != (spec.of_interest is None), key
    base = dict(key="k", chapter="04_lrn", claim="c", paper_effect="p", metric="m", paper_says="lower",
                paper_scale=claims.CIFAR_13PCT)
    with pytest.raises(ValueError, match="the smallest effect of interest"):
        claims.Definition(**base)
    with pytest.raises(ValueError, match="paper_scale must be a stats.Scale"):
        claims.Definition(**{**base, "paper_scale": "ImageNet"}, paper_value=-0.01)


def test_judge_fills_in_the_fields_of_metric_and_labels_and_refuses_missing_or_unknown_ones():
    claim = claims.judge("dropout_iterations", [10, 12, 11], [20, 25, 21], runs=QUICK, threshold=1.8)
    assert claim.metric == "epochs until the training loss (eval mode) first falls to 1.8: dropout / no dropout"
    assert claim.log_scale and claim.effect == pytest.approx((2.0 * 25 / 12 * 21 / 11) ** (1 / 3))
    with pytest.raises(ValueError, match="dropout_iterations.*threshold"):
        claims.judge("dropout_iterations", [10, 12], [20, 25], runs=QUICK)
    with pytest.raises(ValueError, match="no field 'epochs'"):
        claims.judge("dropout_iterations", [10, 12], [20, 25], runs=QUICK, threshold=1.8, epochs=3)
    claim = claims.judge("relu_speedup", [30, 36], [5, 6], runs=QUICK, tanh_lr=0.03, relu_lr=0.001)
    assert (claim.baseline_label, claim.variant_label) == ("tanh, lr 0.03", "ReLU, lr 0.001")
    with pytest.raises(KeyError, match="no claim named 'lrn'"):
        claims.judge("lrn", [1, 2], [1, 2], runs=QUICK)


def test_a_claim_that_cannot_be_tested_says_why():
    claim = claims.untestable("two_towers", scale="not run", why="six runs of 90 epochs")
    assert claim.verdict == "cannot be tested here" and claim.effect is None and claim.baseline is None
    assert claim.summary() == "cannot be tested here: six runs of 90 epochs"
    assert "paper_value" not in claim.to_json() and claim.to_json()["why"] == "six runs of 90 epochs"
    with pytest.raises(ValueError, match="say why"):
        claims.untestable("two_towers", scale="not run", why="")


def test_records_are_written_only_when_asked_and_read_back(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALEXNET_RESULTS", str(tmp_path))
    claim = claims.judge("pca_colour", [0.5, 0.6, 0.55], [0.49, 0.58, 0.55], runs=QUICK)
    monkeypatch.delenv("ALEXNET_RECORD", raising=False)
    claims.record(claim, "quick", [0, 1, 2])
    assert claims.load() == {} and "not recorded" in capsys.readouterr().out
    monkeypatch.setenv("ALEXNET_RECORD", "1")
    claims.record(claim, "smoke", [0, 1, 2])
    assert claims.load() == {}  # never in smoke mode
    claims.record(claim, "quick", [0, 1, 2], seconds=12.0)
    assert "claim 'pca_colour' recorded in" in capsys.readouterr().out
    back = claims.load()["pca_colour"]
    assert back.meta["seeds"] == [0, 1, 2] and back.meta["mode"] == "quick" and back.meta["seconds"] == 12.0
    assert (back.variant, back.verdict, back.procedure) == (claim.variant, claim.verdict, VERSION)
    with pytest.raises(TypeError, match="takes a Claim"):
        claims.record({"key": "pca_colour"}, "quick", [0])


def test_a_record_refuses_what_it_cannot_hold():
    base = dict(key="k", claim="c", chapter="x", paper_effect="p", metric="m", scale="s")
    with pytest.raises(ValueError, match="unknown verdict"):
        claims.Claim(**base, verdict="does not replicate at this scale")
    with pytest.raises(ValueError, match="source"):
        claims.Claim(**base, verdict="not detected", source="a blog")
    with pytest.raises(ValueError, match="reuse the field names"):
        claims.Claim(**base, verdict="not detected", details={"effect": 1})
    with pytest.raises(ValueError, match="both baseline and variant"):
        claims.Claim(**base, verdict="not detected", baseline=[1.0])


def test_a_definition_refuses_a_direction_design_or_units_it_does_not_know():
    base = dict(key="k", chapter="04_lrn", claim="c", paper_effect="p", metric="m", paper_value=-0.01,
                paper_scale=claims.CIFAR_13PCT)
    with pytest.raises(ValueError, match="paper_says must be 'lower' or 'higher'"):
        claims.Definition(**base, paper_says="smaller")
    with pytest.raises(ValueError, match="design must be one of"):
        claims.Definition(**base, paper_says="lower", design="bootstrap")
    with pytest.raises(ValueError, match="units must be one of"):
        claims.Definition(**base, paper_says="lower", units="percent")
    assert claims.Definition(**{**base, "paper_value": 2.0}, paper_says="higher", units="ratio").log_scale


def test_records_of_an_older_procedure_are_judged_again_from_their_values_or_named(tmp_path, monkeypatch, capsys):
    import sys
    from dataclasses import replace

    sys.path.insert(0, str(ROOT / "tools"))
    import rejudge_claims

    monkeypatch.setenv("ALEXNET_RESULTS", str(tmp_path))
    (tmp_path / "claims").mkdir()
    fresh = claims.judge("lrn_cifar", [0.60, 0.70, 0.80], [0.55, 0.64, 0.76], runs=QUICK)
    # recorded by procedure 1, when this design's verdict was "direction only" by another rule
    old = replace(fresh, procedure=1, verdict="replicates", comparison={**fresh.comparison, "verdict": "replicates"})
    (tmp_path / "claims" / "lrn_cifar.json").write_text(json.dumps(old.to_json()))
    stale = replace(claims.judge("pca_colour", [0.5, 0.6, 0.55], [0.49, 0.58, 0.55], runs=QUICK), procedure=1,
                    runs=None)
    (tmp_path / "claims" / "pca_colour.json").write_text(json.dumps(stale.to_json()))
    assert rejudge_claims.main([]) == 0
    out = capsys.readouterr().out
    assert "lrn_cifar.json: replicates -> direction only" in out
    assert "pca_colour.json: no per-run values and runs scale to judge again: run chapter 06_augmentation" in out
    back = claims.load()
    assert back["lrn_cifar"].procedure == VERSION and back["lrn_cifar"].verdict == "direction only"
    assert back["lrn_cifar"].baseline == fresh.baseline and "rejudged" in back["lrn_cifar"].meta
    assert back["pca_colour"].procedure == 1  # left alone
