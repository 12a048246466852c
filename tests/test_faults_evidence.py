"""Mistakes that used to give a wrong result with exit code 0 (issue 23), made as a user makes them:
each is now refused with a short message naming the file or option and the fix, or gives the
right result, and loses nothing."""

import json
import shutil

import pytest
import torch

from alexnet_lib.checkpoint import checkpoint_paths
from alexnet_lib.storage import save_atomically

from .helpers import TINY_RUN, readable_error, run_cli, snapshot


@pytest.fixture(scope="module")
def finished(data):
    """A finished one-epoch run, made once; tests work on copies of it."""
    base, env = data
    proc = run_cli("train", *TINY_RUN, "--epochs", "1", "--out", base / "finished", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return base / "finished"


@pytest.fixture
def run(tmp_path, finished):
    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"


def test_evaluate_refuses_data_whose_classes_were_renamed(tmp_path, data, run):
    base, env = data
    renamed = tmp_path / "renamed"
    shutil.copytree(base / "root", renamed)
    for split in ("train", "test"):  # the user renamed a class folder in both splits
        (renamed / "cifar10" / split / "dog").rename(renamed / "cifar10" / split / "wolf")
    proc = run_cli("evaluate", "--checkpoint", run, env={**env, "ALEXNET_DATA": str(renamed)})
    readable_error(proc, "CheckpointError", "was trained on classes", "'dog'", "'wolf'", "ALEXNET_DATA")
    same = run_cli("evaluate", "--checkpoint", run, env=env)  # the data it was trained on: evaluated
    assert same.returncode == 0, same.stderr[-2000:]
    assert 0 <= json.loads(same.stdout.splitlines()[-1])["centre_crop"]["top1"] <= 1


def test_a_run_moved_elsewhere_resumes_writing_its_own_log(tmp_path, data, run):
    _, env = data
    moved = tmp_path / "elsewhere" / "run"
    shutil.move(run, moved)  # the run folder moved (another copy of the project, another disk)
    proc = run_cli("train", "--out", moved, "--resume", "--epochs", "2", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads((moved / "log.json").read_text())["epochs"]) == 2  # the run's own log, updated
    assert not run.exists()  # nothing written where the run used to be


@pytest.mark.parametrize("options, words", [
    (["--out", ""], ["--out is empty"]),
    (["--out", "x", "--device", "meta"], ["--device meta", "cpu or cuda"]),
    (["--out", "x", "--seed", str(2**64)], ["--seed", "0 to 2**63 - 1"]),
])
def test_options_that_cannot_make_a_run_are_refused(tmp_path, data, options, words):
    _, env = data
    proc = run_cli("train", *TINY_RUN, *options, env=env, cwd=tmp_path)
    readable_error(proc, *words, code=2)
    assert list(tmp_path.iterdir()) == []  # nothing was made in the current folder


def test_a_log_option_naming_some_other_file_blames_that_option(tmp_path, data):
    _, env = data
    notes = tmp_path / "notes.json"
    notes.write_text('{"my": "notes"}')
    proc = run_cli("train", *TINY_RUN, "--out", tmp_path / "new", "--log", notes, env=env)
    readable_error(proc, "RunFolderError", f"--log {notes} is an existing file that is not a training log",
                   "Choose another --log")
    assert notes.read_text() == '{"my": "notes"}'


def test_a_smoke_run_is_never_continued_in_another_mode(run, data):
    _, env = data
    before = snapshot(run)
    proc = run_cli("train", "--out", run, "--resume", "--epochs", "2", "--mode", "quick", env=env)
    readable_error(proc, "ResumeMismatchError", "mode: the checkpoint has 'smoke', this run 'quick'", max_lines=6)
    assert snapshot(run) == before


def test_a_checkpoint_without_its_random_state_is_named(run, data):
    _, env = data
    newest = checkpoint_paths(run)[0]
    state = torch.load(newest, weights_only=True)
    del state["rng"]
    save_atomically(state, newest, what="checkpoint")
    proc = run_cli("train", "--out", run, "--resume", "--epochs", "2", env=env)
    readable_error(proc, "CheckpointError", "random state lacks", "cannot continue the run exactly")


def test_another_runs_checkpoint_in_a_run_folder_is_named_with_the_log(tmp_path, data, run):
    _, env = data
    other = run_cli("train", *TINY_RUN, "--epochs", "1", "--seed", "1", "--out", tmp_path / "other", env=env)
    assert other.returncode == 0, other.stderr[-2000:]
    for old in checkpoint_paths(run):  # the user copied the other run's checkpoint into this folder
        old.unlink()
    stranger = checkpoint_paths(tmp_path / "other")[0]
    shutil.copy(stranger, run / stranger.name)
    before = snapshot(run)
    proc = run_cli("train", "--out", run, "--resume", "--epochs", "2", env=env)
    readable_error(proc, "RunFolderError", "log.json holds a log of 1 epoch(s)", f"{stranger.name} is of another run",
                   "--seed 1", "Move the other run's file")
    assert snapshot(run) == before
