"""alexnet_lib.recorded: the runs at the paper's scale read back, on logs written here by hand."""

import json

import pytest

from alexnet_lib import claims, recorded
from alexnet_lib.stats import Regime

from .helpers import EXPECTED_CLAIMS


def write_log(folder, arm, seed, val_errors, device="cpu", threads=1):
    epochs = [{"epoch": i + 1, "train_top1": v + 0.05, "val_top1": v, "train_seconds": 60.0, "val_seconds": 6.0}
              for i, v in enumerate(val_errors)]
    meta = {"seed": seed, "device": device, "cpu_threads": threads, "commit": "abc1234"}
    (folder / f"{arm}_s{seed}.json").write_text(json.dumps({"meta": meta, "epochs": epochs}))


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_RESULTS", str(tmp_path))
    folder = tmp_path / recorded.FOLDER
    folder.mkdir()
    return folder


def test_every_arm_has_a_train_command_and_every_comparison_two_arms_of_one_recipe():
    for arm, (group, argv) in recorded.ARMS.items():
        assert group in ("cifar", "imagenette") and "--epochs" in argv and "--seed" not in argv, arm
    for name, c in recorded.COMPARISONS.items():
        base, var = recorded.ARMS[c.baseline][1], recorded.ARMS[c.variant][1]
        # the same recipe but for the one change: the shorter command is contained in the longer
        shorter, longer = sorted((base, var), key=len)
        assert all(shorter.count(x) <= longer.count(x) for x in shorter), name
        assert recorded.planned_epochs(c.baseline) == recorded.planned_epochs(c.variant), name
    names = recorded.run_names()
    assert len(names) == len(set(names)) == sum(len(recorded.SEEDS_OF.get(a, recorded.SEEDS)) for a in recorded.ARMS)


def test_progress_counts_epochs_and_pairs_finished_in_both_arms(results):
    planned = recorded.planned_epochs("lrn_cifar_without")
    write_log(results, "lrn_cifar_without", 0, [0.5] * planned)
    write_log(results, "lrn_cifar_with", 0, [0.4] * planned)
    write_log(results, "lrn_cifar_without", 1, [0.5] * planned)
    write_log(results, "lrn_cifar_with", 1, [0.4] * 7)  # seed 1 not finished in this arm
    # a log of another arm whose name starts the same must not be read as this arm's
    write_log(results, "lrn_cifar_withx", 0, [0.1])
    p = recorded.progress_of(recorded.COMPARISONS["lrn_cifar"])
    assert p["epochs"] == {"lrn_cifar_without": {0: planned, 1: planned}, "lrn_cifar_with": {0: planned, 1: 7}}
    assert p["finished_pairs"] == [0] and p["devices"] == ["cpu (1 thread)"]
    assert p["train_hours"] == pytest.approx((3 * planned + 7) * 66 / 3600)
    rows = recorded.runs_rows(recorded.COMPARISONS["lrn_cifar"], labels=("without", "with"))
    assert [(r["net"], r["seed"], r["epochs"]) for r in rows] == [
        ("without", 0, f"{planned} of {planned}"), ("without", 1, f"{planned} of {planned}"),
        ("with", 0, f"{planned} of {planned}"), ("with", 1, f"7 of {planned}")]
    assert rows[-1]["test error now"] == "40.0%"


def test_a_comparison_is_judged_only_with_two_finished_pairs_and_then_on_final_errors(results):
    planned = recorded.planned_epochs("lrn_cifar_without")
    finals = {0: (0.15, 0.12), 1: (0.16, 0.12)}
    write_log(results, "lrn_cifar_without", 0, [0.5] * (planned - 1) + [finals[0][0]])
    write_log(results, "lrn_cifar_with", 0, [0.5] * (planned - 1) + [finals[0][1]])
    assert recorded.judge_full_scale("lrn_cifar", Regime(True, "")) is None  # one pair: no interval
    write_log(results, "lrn_cifar_without", 1, [0.5] * (planned - 1) + [finals[1][0]])
    write_log(results, "lrn_cifar_with", 1, [0.5] * (planned - 1) + [finals[1][1]])
    claim = recorded.judge_full_scale("lrn_cifar", Regime(True, ""))
    # paired differences -0.03 and -0.04: mean -0.035, by hand
    assert claim.key == "lrn_cifar_full" and claim.paired
    assert (claim.claim_key, claim.source, claim.paper_value) == ("lrn_cifar", "paper scale", -0.02)
    assert claim.effect == pytest.approx(-0.035)
    assert claim.baseline == [0.15, 0.16] and claim.variant == [0.12, 0.12]


def test_every_claim_of_the_book_has_a_row_with_a_measurement_or_a_reason(results):
    assert claims.load() == {}  # the recorded claims of the book (ALEXNET_RESULTS points elsewhere: none)
    keys = list(EXPECTED_CLAIMS)
    fake = {k: claims.Claim(key=k, claim=k, chapter="x", paper_effect="p", metric="m", verdict="not detected",
                            scale="s") for k in keys}
    rows = recorded.status_rows(fake)
    assert {r["claim"] for r in rows} == set(keys)
    assert all(r["so far"] and r["so far"] != "no full-scale design yet" for r in rows)
