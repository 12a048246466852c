"""Stop and resume exactly, atomic checkpoints, and what happens when a run goes wrong."""

import json
import os
import shlex
import signal
import subprocess
import sys

import pytest
import torch

from alexnet_lib import train as T
from alexnet_lib.checkpoint import ResumeMismatchError
from alexnet_lib.small_nets import CifarNet
from alexnet_lib.storage import shown
from alexnet_lib.util import ModeError, get_mode

from .helpers import cli_env, make_cifar_like, make_trainer, snapshot, tiny_augment, tiny_data


def final_state(folder):
    state, path = T.load_latest_checkpoint(folder)
    return state


def cli(out, env, *extra):
    return [sys.executable, "-m", "alexnet_lib", "train", "--dataset", "cifar10", "--model", "cifar-fig1",
            "--batch-size", "2", "--epochs", "3", "--checkpoint-every", "1", "--out", str(out),
            "--no-progress", "--mode", "smoke", "--schedule", "constant", "--lr", "0.0001", *extra]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """(data root, environment, folder of a three-epoch run that never stopped), made once."""
    base = tmp_path_factory.mktemp("whole")
    make_cifar_like(base / "root", per_class=20)
    env = cli_env(base / "root", base / "cache")
    subprocess.run(cli(base / "whole", env), env=env, check=True, capture_output=True, timeout=300)
    return base, env, base / "whole"


# The CLI, with the process signalling itself just before a chosen step: a deterministic point in
# the middle of epoch 2 on any machine, however fast (polling for a checkpoint could miss it).
SIGNALLING_CLI = """
import os, signal, sys
from pathlib import Path
import alexnet_lib
from alexnet_lib import train
step, (at, name) = train.Trainer.train_step, os.environ["SIGNAL_AT_STEP"].split(":")
def signalling_step(self, x, y):
    if self.global_step == int(at):
        os.kill(os.getpid(), getattr(signal, name))
    return step(self, x, y)
train.Trainer.train_step = signalling_step
sys.argv[0] = str(Path(alexnet_lib.__file__).with_name("__main__.py"))  # as python -m alexnet_lib
from alexnet_lib.cli import main
sys.exit(main(sys.argv[1:]))
"""
MID_EPOCH_2 = 27  # 40 images in batches of 2: epoch 2 is steps 20-39


def signalling_cli(out, env, signal_name):
    """The run of cli(out, env), signalled with SIGKILL or SIGINT just before step MID_EPOCH_2."""
    args = cli(out, env)[3:]  # after: python -m alexnet_lib
    return subprocess.Popen([sys.executable, "-c", SIGNALLING_CLI, *args],
                            env={**env, "SIGNAL_AT_STEP": f"{MID_EPOCH_2}:{signal_name}"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_same_run(whole_dir, out):
    a, b = final_state(whole_dir), final_state(out)
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    whole_log = json.loads((whole_dir / "log.json").read_text())["epochs"]
    resumed_log = json.loads((out / "log.json").read_text())["epochs"]
    assert [r["epoch"] for r in resumed_log] == [1, 2, 3]
    assert [r["train_loss"] for r in resumed_log] == [r["train_loss"] for r in whole_log]


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path, whole):
    _, env, whole_dir = whole
    out = tmp_path / "killed"
    proc = signalling_cli(out, env, "SIGKILL")
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert T.checkpoint_paths(out)[0].name == f"ckpt-e0001-s{MID_EPOCH_2 - 20:07d}.pt"  # the step before the kill
    log = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in log["epochs"]] == [1]

    # killed, it never released its lock file: the lock is the kernel's, so it is gone with the process
    subprocess.run(cli(out, env, "--resume"), env=env, check=True, capture_output=True, timeout=300)
    assert_same_run(whole_dir, out)


def test_ctrl_c_saves_the_partial_epoch_and_the_printed_command_resumes_bitwise(tmp_path, whole):
    _, env, whole_dir = whole
    out = tmp_path / "stopped"
    proc = signalling_cli(out, env, "SIGINT")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    newest = T.checkpoint_paths(out)[0]
    assert newest.name.startswith("ckpt-e0001-s") and newest.name != "ckpt-e0001-s0000000.pt"  # mid epoch 2
    assert f"the newest checkpoint is {shown(newest)}" in err
    command = shlex.split(err.strip().splitlines()[-1])  # "  python -m alexnet_lib train ... --resume"
    assert command[:3] == ["python", "-m", "alexnet_lib"] and command[-1] == "--resume"
    subprocess.run([sys.executable, *command[1:]], env=env, check=True, capture_output=True, timeout=300)
    assert_same_run(whole_dir, out)


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


def tiny_trainer(folder, **config):
    """make_trainer's run with any TrainConfig option (make_trainer fixes batch size and lr)."""
    torch.manual_seed(0)
    data = tiny_data()
    settings = dict(epochs=2, batch_size=16, lr=0.01, progress=False, device="cpu", checkpoint_dir=str(folder / "ckpt"),
                    log_path=str(folder / "log.json"))
    return T.Trainer(CifarNet("fig1", width=0.25), data, data.subset(torch.arange(32)), tiny_augment(data),
                     T.TrainConfig(**{**settings, **config}))


def test_resume_refuses_other_settings_and_applies_a_new_lr_as_if_changed_by_hand(tmp_path):
    tiny_trainer(tmp_path / "a", epochs=1).fit()
    saved = {p: p.read_bytes() for p in T.checkpoint_paths(tmp_path / "a" / "ckpt")}
    with pytest.raises(ResumeMismatchError, match=r"momentum: the checkpoint has 0\.9, this run 0\.5(.|\n)*"
                       r"seed: the checkpoint has 0, this run 3(.|\n)*Only the learning rate may change"):
        tiny_trainer(tmp_path / "a", momentum=0.5, seed=3).fit(resume=True)
    assert {p: p.read_bytes() for p in T.checkpoint_paths(tmp_path / "a" / "ckpt")} == saved

    # the paper's procedure: lower the rate by hand after an epoch, in one uninterrupted run
    by_hand = tiny_trainer(tmp_path / "b")
    by_hand.on_epoch_end = lambda t: [g.__setitem__("lr", 0.001) for g in t.optimizer.param_groups]
    by_hand.fit()
    resumed = tiny_trainer(tmp_path / "a", lr=0.001)
    resumed.fit(resume=True)
    for (name, p), q in zip(by_hand.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    assert resumed.history.column("lr") == by_hand.history.column("lr") == [0.01, 0.001]
    assert resumed.history.meta["resumes"][-1]["changes"] == {"lr": [0.01, 0.001], "epochs": [1, 2]}


def test_a_new_run_refuses_a_folder_that_holds_another_runs_checkpoints(tmp_path):
    tiny_trainer(tmp_path, epochs=1).fit()
    before = snapshot(tmp_path)
    with pytest.raises(T.RunFolderError, match=r"holds the checkpoints of another run.*ckpt-e0001.*resume"):
        tiny_trainer(tmp_path, epochs=1, seed=1).fit()
    assert snapshot(tmp_path) == before
