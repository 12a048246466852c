"""Stop and resume exactly, atomic checkpoints, and what happens when a run goes wrong."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from alexnet_lib import train as T
from alexnet_lib.experiments import ModeError, get_mode

from .helpers import cli_env, make_cifar_like, make_trainer


def final_state(folder):
    state, path = T.load_latest_checkpoint(folder)
    return state


def cli(out, env, *extra):
    return [sys.executable, "-m", "alexnet_lib", "train", "--dataset", "cifar10", "--model", "cifar-fig1",
            "--batch-size", "2", "--epochs", "3", "--checkpoint-every", "1", "--out", str(out),
            "--no-progress", "--mode", "smoke", "--schedule", "constant", "--lr", "0.0001", *extra]


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path):
    make_cifar_like(tmp_path / "root", per_class=20)
    env = cli_env(tmp_path / "root", tmp_path / "cache")
    subprocess.run(cli(tmp_path / "whole", env), env=env, check=True, capture_output=True, timeout=300)

    out = tmp_path / "killed"
    proc = subprocess.Popen(cli(out, env), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        # mid epoch 2
        ckpts = sorted(p.name for p in out.glob("ckpt-e0001-s*.pt") if not p.name.endswith("s0000000.pt"))
        if ckpts:
            proc.send_signal(signal.SIGKILL)
            killed_at = ckpts[-1]
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-epoch"
    assert killed_at is not None
    log = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in log["epochs"]] == [1]

    subprocess.run(cli(out, env, "--resume"), env=env, check=True, capture_output=True, timeout=300)
    a, b = final_state(tmp_path / "whole"), final_state(out)
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    whole_log = json.loads((tmp_path / "whole" / "log.json").read_text())["epochs"]
    resumed_log = json.loads((out / "log.json").read_text())["epochs"]
    assert [r["epoch"] for r in resumed_log] == [1, 2, 3]
    assert [r["train_loss"] for r in resumed_log] == [r["train_loss"] for r in whole_log]


def test_kill_between_write_and_rename_resumes_from_previous(tmp_path, monkeypatch):
    whole = make_trainer(tmp_path / "a", epochs=2)
    whole.fit()

    crashing = make_trainer(tmp_path / "b", epochs=2)
    real_replace = os.replace
    calls = {"n": 0}

    def replace_dies_on_second_checkpoint(src, dst):
        if str(dst).endswith(".pt"):
            calls["n"] += 1
            if calls["n"] == 2:  # the end-of-epoch-2 save: written, fsynced, never renamed
                raise KeyboardInterrupt("killed between write and rename")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_dies_on_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        crashing.fit()
    monkeypatch.setattr(os, "replace", real_replace)
    folder = tmp_path / "b" / "ckpt"
    assert [p.name for p in T.checkpoint_paths(folder)] == ["ckpt-e0001-s0000000.pt"]
    assert list(folder.glob(".ckpt-*.tmp-*")), "the interrupted save left its temporary file"

    resumed = make_trainer(tmp_path / "b", epochs=2)
    assert resumed.resume().name == "ckpt-e0001-s0000000.pt"
    assert not list(folder.glob(".ckpt-*.tmp-*"))  # cleaned up
    resumed.fit()
    for p, q in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(p, q)


def test_corrupt_latest_checkpoint_is_named_and_previous_used(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2)
    trainer.fit()
    folder = tmp_path / "ckpt"
    newest, previous = T.checkpoint_paths(folder)
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match=newest.name + r".*unreadable.*previous"):
        state, path = T.load_latest_checkpoint(folder)
    assert path == previous and state["epoch"] == 1
    previous.write_bytes(b"garbage")
    with pytest.raises(T.CheckpointError, match=r"no readable checkpoint.*all damaged"):
        with pytest.warns(UserWarning):
            T.load_latest_checkpoint(folder)
    with pytest.raises(T.CheckpointError, match="ckpt-e0001"):
        T.load_checkpoint(previous)


def test_nan_keeps_the_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.fit()
    good = T.checkpoint_paths(tmp_path / "ckpt")[0]
    before = good.read_bytes()
    later = make_trainer(tmp_path, epochs=3)
    later.resume()
    with torch.no_grad():
        later.model.classifier.bias.fill_(float("inf"))
    with pytest.raises(T.TrainingDivergedError, match=r"epoch 2, step 1.*last good checkpoint is .*ckpt-e0001"):
        later.fit()
    assert T.checkpoint_paths(tmp_path / "ckpt") == [good] and good.read_bytes() == before


def test_unknown_mode_lists_valid_modes(monkeypatch):
    monkeypatch.setenv("ALEXNET_MODE", "fast")
    with pytest.raises(ModeError, match=r"'fast'.*'smoke', 'quick', 'full'"):
        get_mode()
    monkeypatch.setenv("ALEXNET_MODE", "Quick ")
    assert get_mode() == "quick"
