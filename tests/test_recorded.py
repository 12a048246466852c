"""alexnet_lib.recorded: the runs at the paper's scale read back, on logs written here by hand."""

import json

import pytest

from alexnet_lib import claims, recorded
from alexnet_lib.util import results_dir

from .helpers import EXPECTED_CLAIMS


def write_log(folder, arm, seed, val_errors, device="cpu", threads=1, mode="full", limit=None, options=None,
              name=None):
    """A log as tools/full_scale.py's call of the CLI writes it: ``options`` (default: the arm's own
    and --seed) in the command, then --mode and the folders; ``mode`` and ``cli_args.limit``."""
    epochs = [{"epoch": i + 1, "train_top1": v + 0.05, "val_top1": v, "train_seconds": 60.0, "val_seconds": 6.0}
              for i, v in enumerate(val_errors)]
    if epochs and epochs[-1]["epoch"] == recorded.planned_epochs(arm) and "--recipe" in recorded.ARMS[arm][1]:
        epochs[-1]["val_multiview_top1"] = epochs[-1]["val_top1"]  # a recipe's run ends with its nine-crop test
    options = recorded.ARMS[arm][1] + ["--seed", str(seed)] if options is None else options
    command = f"python -m alexnet_lib train {' '.join(options)} --mode {mode} --out runs/x --log x.json --no-progress"
    meta = {"seed": seed, "device": device, "cpu_threads": threads, "commit": "abc1234", "mode": mode,
            "command": command, "cli_args": {"limit": limit, "mode": mode}}
    path = folder / (name or f"{arm}_s{seed}.json")
    path.write_text(json.dumps({"meta": meta, "epochs": epochs}))
    return path


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
    write_log(results, "lrn_cifar_with", 0, [0.1], name="lrn_cifar_withx_s0.json")
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
    assert recorded.judge_full_scale("lrn_cifar") is None  # one pair: no interval
    write_log(results, "lrn_cifar_without", 1, [0.5] * (planned - 1) + [finals[1][0]])
    write_log(results, "lrn_cifar_with", 1, [0.5] * (planned - 1) + [finals[1][1]])
    claim = recorded.judge_full_scale("lrn_cifar")
    # paired differences -0.03 and -0.04: mean -0.035, by hand
    assert claim.key == "lrn_cifar_full" and claim.design == "paired"
    # cuda-convnet's nets and recipe on all of CIFAR-10 for 160 epochs: the paper's regime, by the rule
    assert claim.regime == "" and claim.runs["recipe"] == "cuda-convnet-13pct"
    assert (claim.claim_key, claim.source, claim.paper_value) == ("lrn_cifar", "paper scale", -0.02)
    assert claim.effect == pytest.approx(-0.035)
    assert claim.baseline == [0.15, 0.16] and claim.variant == [0.12, 0.12]
    # the nets in words, as every other record of the claim names them; the arms by their run names
    assert "no LRN" in claim.baseline_label and "LRN layers" in claim.variant_label
    assert (claim.details["baseline_arm"], claim.details["variant_arm"]) == ("lrn_cifar_without", "lrn_cifar_with")


def test_every_claim_of_the_book_has_a_row_with_a_measurement_or_a_reason(results):
    assert claims.load() == {}  # the recorded claims of the book (ALEXNET_RESULTS points elsewhere: none)
    keys = list(EXPECTED_CLAIMS)
    fake = {k: claims.Claim(key=k, claim=k, chapter="x", paper_effect="p", metric="m", verdict="not detected",
                            scale="s") for k in keys}
    rows = recorded.status_rows(fake)
    assert {r["claim"] for r in rows} == set(keys)
    assert all(r["so far"] and r["so far"] != "no full-scale design yet" for r in rows)


def with_value(options, option, value):
    """The options with ``option``'s value replaced."""
    i = options.index(option) + 1
    return options[:i] + [value] + options[i + 1:]


ARM = "pool_cifar_overlapping"  # the variant of the CIFAR-10 pooling comparison
OPTIONS = recorded.ARMS[ARM][1]
PLANNED = recorded.planned_epochs(ARM)
LR = OPTIONS[OPTIONS.index("--lr") + 1]


@pytest.mark.parametrize("made, why", [
    # what tools/full_scale.py --tiny runs: one epoch on 300 images in smoke mode
    (dict(mode="smoke", limit=300, options=with_value(OPTIONS, "--epochs", "1") + ["--seed", "0"]),
     ["made in smoke mode, not full", "trained on --limit 300 images, not all the images",
      f"another definition of the run: its command has `--epochs 1` where the run's has `--epochs {PLANNED}`"]),
    (dict(limit=1000), ["trained on --limit 1000 images, not all the images"]),
    # an earlier definition of the arm: another learning rate
    (dict(options=with_value(OPTIONS, "--lr", "0.123") + ["--seed", "0"]),
     [f"another definition of the run: its command has `--lr 0.123` where the run's has `--lr {LR}`"]),
    (dict(options=OPTIONS), ["another definition of the run: its command has `--mode full` where the run's has "
                             "`--seed 0`"]),
])
def test_a_log_counts_only_when_made_in_full_mode_on_all_images_by_the_arms_own_options(results, made, why):
    for seed in (0, 1):
        write_log(results, "pool_cifar_nonoverlapping", seed, [0.15] * PLANNED)
    write_log(results, ARM, 1, [0.12] * PLANNED)
    path = write_log(results, ARM, 0, [0.12] * PLANNED, **made)
    assert set(recorded.arm_logs(ARM)) == {1}
    (log,) = recorded.not_counted(ARM)
    assert log.kind == "other" and log.problem == "not this run: " + "; ".join(why) and log.path == path
    comparison = recorded.COMPARISONS["overlapping_pooling_cifar"]
    p = recorded.progress_of(comparison)
    assert p["finished_pairs"] == [1] and p["not_counted"] == [log.describe()]
    assert "1 log not counted (tools/full_scale.py --list says why)" in recorded.describe_progress(comparison)
    rows = recorded.runs_rows(comparison)
    assert {r["seed"]: r["epochs"] for r in rows if r["net"] == "variant"} == {
        0: f"not counted: {log.problem}", 1: f"{PLANNED} of {PLANNED}"}
    assert recorded.judge_full_scale("overlapping_pooling_cifar") is None  # one pair counts


def test_an_older_log_without_provenance_is_unknown_and_not_counted(results):
    old = {"meta": {"seed": 0, "device": "cpu", "commit": "abc1234"}, "epochs": [{"epoch": 1, "val_top1": 0.5}]}
    (results / "pool_cifar_overlapping_s0.json").write_text(json.dumps(old))
    assert recorded.arm_logs("pool_cifar_overlapping") == {}
    (log,) = recorded.not_counted("pool_cifar_overlapping")
    assert log.kind == "unknown" and log.problem.startswith("provenance unknown") and "not judged" in log.problem


@pytest.mark.parametrize("text, damage", [
    # cut off after its 24th character: the value expected at column 25 is missing
    ('{"meta": {}, "epochs": [', "is not valid JSON (Expecting value at line 1, column 25)"),
    ("[1, 2]", "holds a list, not a training log (an object with meta and epochs)"),
    ('{"epochs": []}', "lacks meta: it is not a whole training log"),
    ('{"meta": {}, "epochs": {}}', "has a meta that is not an object, or epochs that are not a list of epoch records"),
    ('{"meta": {}, "epochs": [{"epoch": 1}]}', "none of its 1 epoch records has a test error (val_top1)"),
    (b"\xff\xfe", "is not text"),
])
def test_a_damaged_log_is_named_with_what_is_wrong_and_never_raises(results, text, damage):
    path = results / "pool_cifar_overlapping_s1.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert recorded.arm_logs("pool_cifar_overlapping") == {}
    (log,) = recorded.not_counted("pool_cifar_overlapping")
    assert (log.kind, log.seed, log.problem) == ("damaged", 1, f"damaged: the file {damage}")
    assert log.describe().endswith(f"{path.name}: damaged: the file {damage}")
    progress = recorded.progress_of(recorded.COMPARISONS["overlapping_pooling_cifar"])
    assert progress["epochs"][ARM] == {} and progress["not_counted"] == [log.describe()]


def test_a_run_before_its_first_test_scoring_is_in_progress_not_damaged(results):
    # the test set is scored every 4 epochs: after 3 epochs a run has no test error yet
    path = write_log(results, ARM, 0, [0.5] * 3)
    blob = json.loads(path.read_text())
    blob["meta"]["config"] = {"eval_every": 4}
    for e in blob["epochs"]:
        del e["val_top1"]
    path.write_text(json.dumps(blob))
    assert list(recorded.arm_logs(ARM)) == [0] and recorded.not_counted(ARM) == []
    (row,) = [r for r in recorded.runs_rows(recorded.COMPARISONS["overlapping_pooling_cifar"]) if r["seed"] == 0]
    assert row["epochs"] == f"3 of {PLANNED}" and row["test error now"] == ""
    # four epochs and still none: damaged
    blob["epochs"].append({"epoch": 4, "train_top1": 0.5})
    path.write_text(json.dumps(blob))
    (log,) = recorded.not_counted(ARM)
    assert log.problem == "damaged: the file none of its 4 epoch records has a test error (val_top1)"


def test_logs_set_aside_and_evaluations_are_not_read_as_runs(results):
    write_log(results, "lrn_cifar_with", 0, [0.3] * 3, name="lrn_cifar_with_s0.lost-1.json")
    write_log(results, "lrn_cifar_with", 0, [0.3] * 3, name="lrn_cifar_with_s0.eval.json")
    write_log(results, "lrn_cifar_with", 2, [0.3] * 3)
    assert list(recorded.arm_logs("lrn_cifar_with")) == [2] and recorded.not_counted("lrn_cifar_with") == []


def test_superseded_runs_are_listed_apart_labelled_and_never_counted(results):
    (results / recorded.SUPERSEDED).mkdir()
    write_log(results / recorded.SUPERSEDED, "lrn_cifar_with", 0, [0.5, 0.3, 0.25])
    (results / recorded.SUPERSEDED / "broken.json").write_text("{")  # left out, not raised
    assert recorded.arm_logs("lrn_cifar_with") == {} and recorded.not_counted("lrn_cifar_with") == []
    assert list(recorded.superseded_logs()) == ["lrn_cifar_with_s0"]
    (row,) = recorded.superseded_rows()
    assert row["run"] == "lrn_cifar_with_s0" and row["test error now"] == "25.0%"
    assert row["superseded"] == recorded.SUPERSEDED_WHY["lrn_cifar_with_s0"]
    assert recorded.describe_progress(recorded.COMPARISONS["lrn_cifar"]) == (
        "not started; superseded, kept apart: lrn_cifar_with_s0 (an earlier definition of the arms)")


def test_the_books_60_epoch_lrn_pair_is_kept_superseded_with_a_readme_that_says_why(monkeypatch):
    monkeypatch.delenv("ALEXNET_RESULTS", raising=False)
    logs = recorded.superseded_logs()
    assert set(logs) == {"lrn_cifar_without_s0", "lrn_cifar_with_s0"}
    readme = (results_dir() / recorded.FOLDER / recorded.SUPERSEDED / "README.md").read_text()
    for run, h in logs.items():
        assert f"`{run}.json`" in readme and run in recorded.SUPERSEDED_WHY
        # the recipe made up for the book: lr 0.0003, 60 epochs; not read as a run of today's arms
        assert "--lr 0.0003" in h.meta["command"] and "--epochs 60" in h.meta["command"]
        arm = recorded.arm_of(run)
        assert all(c.epochs != h.epochs for c in recorded.arm_logs(arm).values())
