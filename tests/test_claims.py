"""Every recorded claim (book/results/claims) is judged by the one procedure, and its verdict can
be recomputed from the per-run values it carries."""

import json
import math

import pytest

from alexnet_lib.experiments import Claim
from alexnet_lib.stats import VERDICTS

from .helpers import ROOT

CLAIM_FILES = sorted((ROOT / "book" / "results" / "claims").glob("*.json"))


@pytest.mark.parametrize("path", CLAIM_FILES, ids=lambda p: p.stem)
def test_each_recorded_claim_recomputes_to_its_verdict(path):
    claim = Claim.from_json(json.loads(path.read_text()))
    assert claim.verdict in VERDICTS, f"{path.name}: {claim.verdict!r} is not a verdict of the one procedure"
    if claim.verdict == "cannot be tested here" and not claim.baseline:
        assert claim.details.get("why"), f"{path.name}: a claim that cannot be tested says why"
        return
    assert claim.baseline and claim.variant, f"{path.name}: no per-run values"
    assert claim.paper_says in ("lower", "higher") and claim.paired is not None, f"{path.name}: no design"
    assert claim.comparison, f"{path.name}: no interval"
    assert claim.regime or claim.verdict in ("replicates", "not detected", "contradicted", "cannot be tested here")
    again = claim.rejudge()
    assert again.verdict == claim.verdict, f"{path.name}: recorded {claim.verdict!r}, recomputed {again.verdict!r}"
    for key in ("effect", "ci_low", "ci_high", "detectable", "df"):
        recorded, recomputed = claim.comparison[key], getattr(again, key)
        if recorded is None:
            assert math.isnan(recomputed), (path.name, key)
        else:
            assert recomputed == pytest.approx(recorded, rel=1e-9, abs=1e-12), (path.name, key)


def test_every_claim_of_the_book_is_recorded():
    keys = {p.stem for p in CLAIM_FILES}
    expected = {"relu_speedup", "two_towers", "lrn_cifar", "overlapping_pooling_error", "overlapping_pooling_gap",
                "augmentation_crops_flips", "pca_colour", "ten_crop", "dropout_overfitting", "dropout_iterations",
                "tower_colour_specialisation", "fc7_neighbours", "he_vs_xavier", "prelu_vs_relu"}
    assert expected <= keys, f"not recorded: {sorted(expected - keys)}"
