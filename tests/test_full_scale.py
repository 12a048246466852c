"""tools/full_scale.py: the runs at the paper's scale, tried tiny (one epoch on 300 images)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from alexnet_lib import recorded

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "full_scale.py"
sys.path.insert(0, str(ROOT / "tools"))
import full_scale  # noqa: E402


def test_every_comparison_has_its_seeds_and_one_change_from_its_baseline():
    runs = {s.name: s for s in full_scale.specs()}
    assert len(runs) == len(full_scale.specs()), "two runs share a name"
    for seed in recorded.SEEDS:
        base = runs[f"alexnet_s{seed}"].argv
        # each Imagenette arm is the baseline's command plus the options of its one change
        changes = {"one_tower": ["--towers", "1"], "nonoverlapping": ["--pooling", "non-overlapping"],
                   "no_crops_flips": ["--no-random-crop", "--no-flip"], "no_pca": ["--no-pca"],
                   "no_dropout": ["--dropout", "0"]}
        for arm, extra in changes.items():
            argv = runs[f"{arm}_s{seed}"].argv
            assert sorted(argv) == sorted(base + extra), arm
        without, with_ = runs[f"lrn_cifar_without_s{seed}"].argv, runs[f"lrn_cifar_with_s{seed}"].argv
        assert sorted(without) == sorted(with_ + ["--no-lrn"])
        # cuda-convnet's 13pct / 11pct runs: 24x24 crops with flips
        assert "--crop" in with_ and with_[with_.index("--crop") + 1] == "24" and "--no-flip" not in with_
    # the first seeds of every comparison come first: a stopped call has pairs, not one arm
    first = [s.name for s in full_scale.specs()][:4]
    assert first == ["lrn_cifar_without_s0", "lrn_cifar_with_s0", "pool_cifar_nonoverlapping_s0",
                     "pool_cifar_overlapping_s0"]


def test_a_tiny_call_trains_logs_and_a_second_call_skips_what_is_done(tmp_path):
    folders = ["--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs")]
    call = [sys.executable, str(SCRIPT), "--tiny", "--only", "pool_cifar_overlapping_s0", "--jobs", "1", *folders]
    proc = subprocess.run(call, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = json.loads((tmp_path / "results" / "pool_cifar_overlapping_s0.json").read_text())
    assert len(log["epochs"]) == 1 and log["meta"]["cli_args"]["pool_rounding"] == "ceil"
    assert 0 <= log["epochs"][0]["val_top1"] <= 1
    (calls,) = json.loads((tmp_path / "results" / "calls.json").read_text())
    assert calls["runs"]["pool_cifar_overlapping_s0"]["train_exit"] == 0 and calls["wall_seconds"] > 0
    listed = subprocess.run([sys.executable, str(SCRIPT), "--list", "--tiny", "--group", "cifar", *folders],
                            capture_output=True, text=True, check=True).stdout
    assert "pool_cifar_overlapping_s0" in listed and listed.count("done") == 1
    again = subprocess.run(call, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0 and "started" not in again.stdout
    assert len(json.loads((tmp_path / "results" / "calls.json").read_text())) == 2


def test_a_run_with_a_checkpoint_is_resumed_and_unknown_names_are_refused(tmp_path, capsys):
    args = full_scale.parse(["--runs", str(tmp_path), "--results", str(tmp_path)])
    spec = full_scale.specs()[0]
    assert "--resume" not in full_scale.train_command(spec, args)
    (tmp_path / spec.name).mkdir()
    (tmp_path / spec.name / "ckpt-e0003-s000300.pt").write_bytes(b"")
    assert full_scale.train_command(spec, args)[-1] == "--resume"
    with pytest.raises(SystemExit):
        full_scale.parse(["--only", "lrn_cifar_s0"])
    assert "no run named lrn_cifar_s0" in capsys.readouterr().err
