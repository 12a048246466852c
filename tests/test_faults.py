"""Everyday mistakes at the command line, made as a user makes them: each must stop with a short
message that names the option or file and the fix, and lose nothing (the earlier run's files
stay byte for byte as they were), or work as documented."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from alexnet_lib.checkpoint import checkpoint_paths, load_latest_checkpoint
from alexnet_lib.storage import shown

from .helpers import (
    TINY_RUN,
    cli_command,
    cli_env,
    dead_pid,
    make_cifar_like,
    readable_error,
    run_cli,
    run_cli_together,
    snapshot,
)


@pytest.fixture(scope="module")
def earlier_run(data):
    """A finished two-epoch run, made once; tests work on copies of it."""
    base, env = data
    proc = run_cli("train", *TINY_RUN, "--epochs", "2", "--out", base / "earlier", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base / "earlier"


@pytest.fixture
def run(tmp_path, earlier_run):
    folder = tmp_path / "run"
    shutil.copytree(earlier_run, folder)
    return folder


def log_of(folder):
    return json.loads((folder / "log.json").read_text())


# ----------------------------------------------------------------- 1. an --out that holds a run
def test_a_new_run_refuses_an_out_or_log_that_holds_another_run(tmp_path, run, data):
    _, env = data
    before = snapshot(run)
    into_out, into_log = run_cli_together([
        ["train", *TINY_RUN, "--epochs", "1", "--out", run],
        ["train", *TINY_RUN, "--epochs", "1", "--out", tmp_path / "other", "--log", run / "log.json"],
    ], env)
    readable_error(into_out, "RunFolderError", shown(run), "2 checkpoint(s)", "--resume", "--overwrite")
    readable_error(into_log, "RunFolderError", shown(run / "log.json"), "a log of 2 epoch(s)", "--overwrite")
    assert snapshot(run) == before
    assert not (tmp_path / "other").exists()  # nothing left behind by the refused run


def test_overwrite_replaces_the_run_and_cleans_up_killed_writes(run, data):
    base, env = data
    pid = dead_pid()
    stale_log = run / f".log.json.tmp-{pid}"  # a log write killed before its rename
    stale_cache = base / "cache" / f".cifar10-train-native-all-0123456789ab.pt.tmp-{pid}"
    stale_log.write_bytes(b"half a log")
    stale_cache.write_bytes(b"half a cache file")
    proc = run_cli("train", *TINY_RUN, "--epochs", "1", "--out", run, "--overwrite", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the earlier run's ckpt-e0002 would have outlived the new run's ckpt-e0001 and been resumed
    assert [p.name for p in checkpoint_paths(run)] == ["ckpt-e0001-s0000000.pt"]
    log = log_of(run)
    assert [r["epoch"] for r in log["epochs"]] == [1] and "--overwrite" in log["meta"]["command"]
    assert not stale_log.exists() and not stale_cache.exists()
    assert not (run / ".lock").exists()


# ------------------------------------------------------- 2. two processes, and 9. Ctrl-C
def test_a_second_process_in_the_same_folder_stops_at_once_naming_the_first(tmp_path, data):
    _, env = data
    out = tmp_path / "run"
    first = subprocess.Popen(cli_command("train", *TINY_RUN, "--batch-size", "2", "--epochs", "1000", "--out", out),
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and f"pid {first.pid}" not in _read(out / ".lock"):
            time.sleep(0.02)
        second = run_cli("train", *TINY_RUN, "--epochs", "1000", "--out", out, "--resume", env=env)
        readable_error(second, "FolderInUseError", f"pid {first.pid}", shown(out), "another folder (--out)")
        while time.time() < deadline and not checkpoint_paths(out):
            time.sleep(0.02)
        first.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "stopped (Ctrl-C); the newest checkpoint is" in err
    newest = checkpoint_paths(out)[0]
    assert str(newest.name) in err and f"--out {out} --resume" in err
    command = json.loads((out / "log.json").read_text())["meta"]["command"]
    assert "--epochs 1000" in command and "--resume" not in command  # the first process's log, untouched
    assert not (out / ".lock").exists()


def _read(path):
    try:
        return path.read_text()
    except OSError:
        return ""


# ------------------------------------------------------------ 3. resume with other settings
def test_resume_refuses_other_settings_naming_each_with_both_values(tmp_path, run, data):
    base, env = data
    before = snapshot(run)
    moved = tmp_path / "root"  # the same data elsewhere, with one training image edited
    shutil.copytree(base / "root", moved)
    image = moved / "cifar10" / "train" / "cat" / "0.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(image)
    twin = tmp_path / "twin"  # the same run again: the two commands run at once, one per folder
    shutil.copytree(run, twin)
    options, other_data = run_cli_together([
        ["train", "--out", run, "--resume", "--epochs", "3", "--activation", "tanh", "--batch-size", "8",
         "--seed", "1", "--limit", "10", "--pooling", "non-overlapping"],
        ["train", "--out", twin, "--resume", "--epochs", "3"],
    ], {**env, "ALEXNET_DATA": str(moved)})
    readable_error(options, "ResumeMismatchError", "--activation: the run in", "'relu', this command 'tanh'",
                   "--batch-size", "4, this command 8", "--seed", "--limit", "None, this command 10",
                   "--pooling", "Only --lr may change", max_lines=10)
    readable_error(other_data, "ResumeMismatchError", "train data", "with other images or labels", max_lines=5)
    assert snapshot(run) == before and snapshot(twin) == before


# ----------------------------------------------------- 4. the README's recovery from a NaN loss
def test_lower_lr_and_resume_recovers_from_a_nan_loss(run, data):
    _, env = data
    checkpoints = {p.name: p.read_bytes() for p in checkpoint_paths(run)}
    epochs = log_of(run)["epochs"]
    nan = run_cli("train", "--out", run, "--resume", "--epochs", "3", "--lr", "1e6", env=env)
    readable_error(nan, "TrainingDivergedError", "the loss became", "at epoch 3", "ckpt-e0002-s0000000.pt",
                   "a lower --lr and --resume")
    assert {p.name: p.read_bytes() for p in checkpoint_paths(run)} == checkpoints  # the NaN state never saved
    assert log_of(run)["epochs"] == epochs
    lower = run_cli("train", "--out", run, "--resume", "--epochs", "3", "--lr", "0.001", env=env)
    assert lower.returncode == 0, lower.stderr[-3000:]
    assert "learning rate 0.01 -> 0.001" in lower.stdout
    log = log_of(run)
    assert [r["lr"] for r in log["epochs"]] == [0.01, 0.01, 0.001]
    assert log["meta"]["resumes"][-1]["changes"]["lr"] == [0.01, 0.001]
    state, _ = load_latest_checkpoint(run)
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == [0.001, 0.001]  # in the optimiser itself
    assert state["config"]["lr"] == 0.001 and torch.isfinite(state["model"]["classifier.weight"]).all()


# ------------------------------------------------------------ 5. splits with other classes
def test_a_split_with_another_class_folder_is_refused_before_training(tmp_path):
    make_cifar_like(tmp_path / "root", per_class=2)
    extra = tmp_path / "root" / "cifar10" / "test" / "horse"
    extra.mkdir()
    Image.new("RGB", (32, 32)).save(extra / "0.png")
    proc = run_cli("train", *TINY_RUN, "--out", tmp_path / "run", env=cli_env(tmp_path / "root", tmp_path / "cache"))
    readable_error(proc, "DatasetLayoutError", "only in test/: horse", "same class folders")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------- 8. options the model ignores; 10. bad values
@pytest.fixture
def cli_here(data, monkeypatch, capsys):
    """``python -m alexnet_lib ARGS`` run in this process (``alexnet_lib.cli.main``, which is all that
    ``python -m`` runs), for errors that come before any training: (exit code, stderr)."""
    from alexnet_lib.cli import main

    _, env = data
    for key in ("ALEXNET_DATA", "ALEXNET_CACHE", "TQDM_DISABLE"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("ALEXNET_MODE", "smoke")  # restored afterwards (a run sets it)

    def run_and_read(*args, env_extra=None):
        for key, value in (env_extra or {}).items():
            monkeypatch.setenv(key, str(value))
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run_and_read


def test_options_that_cannot_work_are_refused_up_front(tmp_path, data, cli_here):
    _, env = data
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    ignored = ["--dropout", "0.3", "--towers", "1", "--init", "kaiming", "--input-size", "64"]
    cases = {
        "ignored": (ignored, ["--dropout (they have no dropout)", "--towers", "--init", "--input-size", "Leave these"]),
        "crop": (["--crop", "40"], ["--crop (a CIFAR net's crop must be between 8 and 32", "got 40"]),
        "pool rounding": (["--pool-rounding", "round"], ["--pool-rounding: invalid choice: 'round'"]),
        "milestones": (["--milestones", "3"], ["--milestones (--schedule constant does not use them, --sch"]),
        "scale": (["--scale", "0"], ["--scale: got 0; it must be a positive number"]),
        "lr": (["--lr", "nan"], ["--lr: got nan"]),
        "limit": (["--limit", "0"], ["--limit: got 0; it must be a whole number, at least 1"]),
        "epochs": (["--epochs", "0"], ["--epochs: got 0"]),
        "out": (["--out", afile], ["--out", "is a file"]),
        "log": (["--log", tmp_path], ["--log", "is a folder", "run.json"]),
        "log under a file": (["--log", afile / "log.json"], ["--log", "is a file, not a folder"]),
    }
    for i, (extra, words) in enumerate(cases.values()):
        readable_error(cli_here("train", *TINY_RUN, "--out", tmp_path / f"run{i}", *extra), *words, code=2)
    readable_error(cli_here("train", "--model", "alexnet", "--dataset", "cifar10", "--out", tmp_path / "alexnet"),
                   "--model alexnet needs images of at least 67x67", "--model cifar-fig1", code=2)
    # and the same through `python -m alexnet_lib`, the way a user meets it
    proc = run_cli("train", *TINY_RUN, "--out", tmp_path / "run", *ignored, env=env)
    readable_error(proc, *cases["ignored"][1], code=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no refused run left a folder


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_device_cuda_without_a_gpu_and_debug_shows_the_traceback(tmp_path, cli_here):
    from alexnet_lib.options import OptionError

    readable_error(cli_here("train", *TINY_RUN, "--out", tmp_path / "run", "--device", "cuda"),
                   "--device cuda: no CUDA GPU is visible", "Leave --device out", code=2)
    with pytest.raises(OptionError, match="no CUDA GPU"):  # --debug: the exception itself, with its traceback
        cli_here("train", *TINY_RUN, "--out", tmp_path / "run", "--device", "cuda", "--debug")


# ------------------------------------------------------------------------ 10. more faults
def test_cache_that_is_a_file_is_named_before_any_work(tmp_path, cli_here):
    cache = tmp_path / "cache"
    cache.write_text("a file")
    proc = cli_here("train", *TINY_RUN, "--out", tmp_path / "run", env_extra={"ALEXNET_CACHE": cache})
    readable_error(proc, "CacheFolderError", f"ALEXNET_CACHE={shown(cache)} is a file", "Point ALEXNET_CACHE at a")
    assert cache.read_text() == "a file" and not (tmp_path / "run").exists()


def _limit_file_size(size):
    """For a child process: writes beyond ``size`` bytes fail as on a full disk (EFBIG, not a kill)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


def test_a_disk_that_fills_up_during_a_checkpoint_is_named_and_loses_nothing(run, data):
    _, env = data
    checkpoints = {p.name: p.read_bytes() for p in checkpoint_paths(run)}
    size = min(len(b) for b in checkpoints.values()) // 2  # room for the log, not for a checkpoint
    proc = run_cli("train", "--out", run, "--resume", "--epochs", "3", env=env, preexec_fn=_limit_file_size(size))
    readable_error(proc, "NoSpaceError", "no space left on the device", "ckpt-e0003-s0000000.pt",
                   "ckpt-e0002-s0000000.pt, is intact", "--resume")
    assert {p.name: p.read_bytes() for p in checkpoint_paths(run)} == checkpoints
    assert not list(run.glob(".*.tmp-*"))  # the partial file was removed


def test_a_cache_folder_that_cannot_be_written_is_a_warning(tmp_path, data):
    base, _ = data
    code = ("from alexnet_lib.data import load_dataset; d = load_dataset('cifar10', 'train', progress=False); "
            "print(len(d), d.info['from_cache'])")
    proc = subprocess.run([sys.executable, "-c", code], env=cli_env(base / "root", tmp_path / "cache"),
                          capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size(1000))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["16", "False"]
    assert "cannot write the cache file" in proc.stderr and "going on without it" in proc.stderr
    assert not list((tmp_path / "cache").iterdir())  # no partial cache file left


def test_evaluate_a_file_that_is_no_checkpoint_and_a_checkpoint_of_the_library_trainer(tmp_path, data, cli_here):
    from alexnet_lib.recipes import paper_data
    from alexnet_lib.small_nets import CifarNet
    from alexnet_lib.train import TrainConfig, Trainer

    _, env = data
    kernels = tmp_path / "conv1.pt"
    torch.save({"tower0": torch.zeros(2, 3, 11, 11)}, kernels)
    readable_error(cli_here("evaluate", "--checkpoint", kernels), "CheckpointError",
                   f"{shown(kernels)} is not a training checkpoint", "tower0")
    # a run made in Python with the library's Trainer, not with the command line
    train, val, augment = paper_data("cifar10", pca=False)
    config = TrainConfig(epochs=1, batch_size=4, progress=False, checkpoint_dir=str(tmp_path / "lib"))
    last = Trainer(CifarNet("fig1", width=0.25, num_classes=2), train, val, augment, config).fit().epochs[-1]
    proc = run_cli("evaluate", "--checkpoint", tmp_path / "lib", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])["centre_crop"]
    assert result["top1"] == last["val_top1"] and result["loss"] == pytest.approx(last["val_loss"], rel=1e-6)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything: permissions cannot be shown")
def test_a_class_folder_that_cannot_be_read_is_named(tmp_path):
    make_cifar_like(tmp_path / "root", per_class=2)
    locked = tmp_path / "root" / "cifar10" / "train" / "dog"
    locked.chmod(0)
    try:
        proc = run_cli("train", *TINY_RUN, "--out", tmp_path / "run", env=cli_env(tmp_path / "root", tmp_path / "c"))
    finally:
        locked.chmod(0o755)
    readable_error(proc, "UnreadableDataError", str(locked), "chmod -R u+rX")


# ----------------------------------------------------------- 11. advice the command line can follow
def test_a_corrupt_image_stops_the_run_or_is_skipped_with_on_corrupt_skip(tmp_path):
    make_cifar_like(tmp_path / "root", per_class=4)
    bad = tmp_path / "root" / "cifar10" / "train" / "cat" / "0.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    env = cli_env(tmp_path / "root", tmp_path / "cache")
    stops, skips = run_cli_together([
        ["train", *TINY_RUN, "--epochs", "1", "--out", tmp_path / "a"],
        ["train", *TINY_RUN, "--epochs", "1", "--out", tmp_path / "b", "--on-corrupt", "skip"]], env)
    readable_error(stops, "CorruptImageError", str(bad), "--on-corrupt skip")
    assert skips.returncode == 0, skips.stderr[-3000:]
    assert "skipped 1 corrupt image" in skips.stderr and str(bad) in skips.stderr
