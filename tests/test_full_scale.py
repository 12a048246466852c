"""tools/full_scale.py as a user meets it: the runs at the paper's scale, tried tiny (one epoch on
300 images), and the logs, checkpoints and folders a call may find in its way."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alexnet_lib import recorded
from alexnet_lib.util import display_path as shown

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "full_scale.py"
sys.path.insert(0, str(ROOT / "tools"))
import full_scale  # noqa: E402

RUN = "pool_cifar_overlapping_s0"
SPEC = {s.name: s for s in full_scale.specs()}[RUN]


def with_value(argv, option, value):
    """The options with ``option``'s value replaced."""
    i = argv.index(option) + 1
    return argv[:i] + [value] + argv[i + 1:]


def files_under(folder: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def meta(argv, mode="full", limit=None, commit="abc1234"):
    """The meta of a log (or of a checkpoint's history) that the CLI writes for ``train <argv>``."""
    return {"seed": 0, "device": "cpu", "cpu_threads": 1, "commit": commit, "mode": mode,
            "command": f"python -m alexnet_lib train {' '.join(argv)} --mode {mode} --out runs/x --log x.json",
            "cli_args": {"limit": limit, "mode": mode}}


def epochs(n):
    return [{"epoch": i + 1, "train_top1": 0.6, "val_top1": 0.5, "train_seconds": 100.0} for i in range(n)]


def full_scale_log(results: Path, n: int, argv=None) -> Path:
    """A log of RUN made at full scale (by the arm's options and --seed 0), ``n`` epochs long."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{RUN}.json"
    path.write_text(json.dumps({"meta": meta(argv or SPEC.argv), "epochs": epochs(n)}))
    return path


def checkpoint(runs: Path, n: int, argv=None, **made) -> Path:
    """A checkpoint of RUN after epoch ``n``, as far as a call reads it: its history."""
    folder = runs / RUN
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt-e{n:04d}-s0000000.pt"
    torch.save({"history": {"meta": meta(argv or SPEC.argv, **made), "epochs": epochs(n)}}, path)
    return path


def call(capsys, *argv):
    """tools/full_scale.py run in this process: (exit code, stdout, stderr)."""
    code = full_scale.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A --tiny call with no folders named, in a clean environment: (its process, its temporary folder)."""
    tmp = tmp_path_factory.mktemp("tiny")
    (tmp / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp / "tmp"), ALEXNET_RUNS=str(tmp / "root"))
    before = files_under(full_scale.RESULTS)
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--only", RUN, "--jobs", "1"],
                          capture_output=True, text=True, timeout=600, cwd=tmp, env=env)
    assert files_under(full_scale.RESULTS) == before, "--tiny wrote into the book's full-scale folder"
    assert not (tmp / "root").exists(), "--tiny wrote into the runs root"
    (folder,) = (tmp / "tmp").glob("full_scale-tiny-*")
    return proc, folder


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


def test_tiny_writes_only_in_a_temporary_folder_and_a_second_call_skips_what_is_done(tiny, capsys):
    proc, folder = tiny  # (the fixture checked that nothing was written in the project or the runs root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"--tiny: in a temporary folder, {folder}\n")
    log = json.loads((folder / "results" / f"{RUN}.json").read_text())
    assert len(log["epochs"]) == 1 and log["meta"]["cli_args"]["pool_rounding"] == "ceil"
    assert log["meta"]["mode"] == "smoke" and log["meta"]["cli_args"]["limit"] == 300
    assert 0 <= log["epochs"][0]["val_top1"] <= 1
    (calls,) = json.loads((folder / "results" / "calls.json").read_text())
    assert calls["runs"][RUN]["train_exit"] == 0 and calls["wall_seconds"] > 0
    named = ["--results", folder / "results", "--runs", folder / "runs"]
    code, listed, _ = call(capsys, "--list", "--tiny", "--group", "cifar", *named)
    assert code == 0 and listed.count("done") == 1
    assert f"{RUN:32} cifar       done  [smoke mode, --limit 300, cpu (" in listed
    code, again, _ = call(capsys, "--tiny", "--only", RUN, *named)
    assert code == 0 and "started" not in again
    assert len(json.loads((folder / "results" / "calls.json").read_text())) == 2


def test_a_real_call_never_resumes_counts_or_judges_a_tiny_run(tiny, tmp_path, capsys, monkeypatch):
    results, runs = tmp_path / recorded.FOLDER, tmp_path / "runs"
    shutil.copytree(tiny[1] / "results", results)
    shutil.copytree(tiny[1] / "runs", runs)
    log, kept = results / f"{RUN}.json", files_under(tmp_path)
    code, out, _ = call(capsys, "--only", RUN, "--results", results, "--runs", runs)
    assert code == 1 and "started" not in out
    assert (f"{RUN}: left alone: {shown(log)}: not this run: made in smoke mode, not full; trained on --limit 300 "
            "images, not all the images; another definition of the run: its command has `--epochs 1`") in out
    assert "Move it away to start this run; until then it is left alone." in out
    assert files_under(runs) == {p: v for p, v in kept.items() if runs in p.parents}  # no checkpoint added
    monkeypatch.setenv("ALEXNET_RESULTS", str(tmp_path))  # the chapters read these logs: not counted
    assert recorded.arm_logs("pool_cifar_overlapping") == {}
    assert "1 log not counted" in recorded.describe_progress(recorded.COMPARISONS["overlapping_pooling_cifar"])
    # without its log, its checkpoint is still not resumed
    log.rename(tmp_path / "tiny.json")
    code, out, _ = call(capsys, "--only", RUN, "--results", results, "--runs", runs)
    assert code == 1 and "started" not in out
    assert f"{RUN}: left alone: {shown(runs / RUN / 'ckpt-e0001-s0000000.pt')} is not this run: made in smoke" in out
    assert f"To start this run, move {shown(runs / RUN)} away" in out


def test_a_run_whose_checkpoints_are_gone_starts_again_and_its_old_log_is_kept(tmp_path, capsys):
    results, runs = tmp_path / "results", tmp_path / "runs"
    log = full_scale_log(results, 3)
    (results / f"{RUN}.lost-1.json").write_text("an earlier one")
    args = full_scale.parse(["--only", RUN, "--results", str(results), "--runs", str(runs)])
    assert full_scale.list_runs(args) is None
    listed = capsys.readouterr().out
    assert (f"{RUN:32} cifar       3/60 epochs logged, but its checkpoints are gone: a call starts it again  "
            "[full mode, all images, cpu (1 thread), commit abc1234]") in listed
    old = log.read_bytes()
    evaluations, queue, report = full_scale.plan(args)
    assert evaluations == [] and [s.name for s in queue] == [RUN]
    assert capsys.readouterr().out == (f"{RUN}: its checkpoints are gone from {shown(runs / RUN)} (its log had 3 of 60 "
                                       f"epochs): starting it again; the old log is kept as {RUN}.lost-2.json\n")
    assert not log.exists() and (results / f"{RUN}.lost-2.json").read_bytes() == old
    assert report[RUN]["restarted"] == f"checkpoints gone; old log kept as {RUN}.lost-2.json"
    command = full_scale.train_command(SPEC, args)
    assert "--resume" not in command and "--limit" not in command and command[command.index("--mode") + 1] == "full"


def test_a_run_with_its_own_checkpoint_resumes_and_list_shows_how_it_was_made(tmp_path, capsys):
    results, runs = tmp_path / "results", tmp_path / "runs"
    full_scale_log(results, 3)
    checkpoint(runs, 3)
    args = full_scale.parse(["--only", RUN, "--results", str(results), "--runs", str(runs)])
    full_scale.list_runs(args)
    assert f"{RUN:32} cifar       3/60 epochs  [full mode, all images, cpu (1 thread), commit abc1234]" in (
        capsys.readouterr().out)
    assert [s.name for s in full_scale.plan(args)[1]] == [RUN]
    assert full_scale.train_command(SPEC, args)[-1] == "--resume"


@pytest.mark.parametrize("made, why", [
    (dict(argv=full_scale.run_argv(SPEC, full_scale.parse(["--tiny"])), mode="smoke", limit=300),
     "is not this run: made in smoke mode, not full; trained on --limit 300 images, not all the images"),
    (dict(argv=with_value(SPEC.argv, "--lr", "0.123")),
     "is not this run: another definition of the run: its command has `--lr 0.123`"),
])
def test_a_checkpoint_made_otherwise_is_never_resumed(tmp_path, capsys, made, why):
    results, runs = tmp_path / "results", tmp_path / "runs"
    full_scale_log(results, 3)
    path = checkpoint(runs, 3, **made)
    code, out, _ = call(capsys, "--only", RUN, "--results", results, "--runs", runs)
    assert code == 1 and f"{RUN}: left alone: {shown(path)} {why}" in out and "started" not in out


@pytest.mark.parametrize("text, damage", [
    ('{"meta": {', "is not valid JSON (Expecting property name enclosed in double quotes at line 1, column 11)"),
    ("[]", "holds a list, not a training log"),
    ('{"meta": {}}', "lacks epochs: it is not a whole training log"),
])
def test_a_damaged_log_is_named_with_what_is_wrong_not_shown_as_not_started(tmp_path, capsys, text, damage):
    results, runs = tmp_path / "results", tmp_path / "runs"
    results.mkdir()
    (results / f"{RUN}.json").write_text(text)
    args = ["--only", RUN, "--results", results, "--runs", runs]
    what = f"{shown(results / RUN)}.json: damaged: the file {damage}"
    code, out, err = call(capsys, "--list", *args)
    assert code == 0 and f"{RUN:32} cifar       LEFT ALONE: {what}" in out
    code, out, err = call(capsys, *args)
    assert code == 1 and f"{RUN}: left alone: {what}" in out
    assert "Repair it or move it away; until then this run is left alone." in out
    assert "Traceback" not in out + err and not runs.exists()


def test_an_older_log_without_provenance_is_listed_as_unknown_and_left_alone(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / f"{RUN}.json").write_text(json.dumps({"meta": {"seed": 0, "device": "cpu"}, "epochs": epochs(4)}))
    code, out, _ = call(capsys, "--list", "--only", RUN, "--results", results, "--runs", tmp_path / "runs")
    assert f"{RUN:32} cifar       LEFT ALONE: {shown(results / RUN)}.json: provenance unknown" in out
    assert "Move it into superseded/ (saying why in its README) or away" in out


@pytest.mark.parametrize("calls, damage", [("[{", "is damaged (Expecting property name enclosed in double quotes)"),
                                           ("{}", "is not a list of calls")])
def test_a_damaged_calls_json_is_reported_before_any_run_starts(tmp_path, capsys, calls, damage):
    results, runs = tmp_path / "results", tmp_path / "runs"
    results.mkdir()
    (results / "calls.json").write_text(calls)
    code, out, err = call(capsys, "--tiny", "--only", RUN, "--results", results, "--runs", runs)
    assert out == f"logs in {shown(results)}, run folders in {shown(runs)}\n"  # and nothing started
    assert code == 2 and not runs.exists() and (results / "calls.json").read_text() == calls
    assert err == (f"full_scale.py: {shown(results / 'calls.json')} {damage}; no run was started, so that this call "
                   "is not left unrecorded.\nRepair it, or move it away (a new one is begun).\n")


@pytest.mark.parametrize("minutes", ["nan", "inf", "-5", "0"])
def test_minutes_must_be_a_positive_finite_number(capsys, minutes):
    with pytest.raises(SystemExit) as stop:
        full_scale.parse(["--minutes", minutes])
    assert stop.value.code == 2
    assert f"error: --minutes {minutes}: give a positive number of minutes, after which every run is stopped" in (
        capsys.readouterr().err)


def test_tiny_refuses_the_full_scale_folders(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ALEXNET_RUNS", str(tmp_path / "root"))
    code, _, err = call(capsys, "--tiny", "--results", full_scale.RESULTS)
    assert code == 2 and "--tiny --results book/results/full_scale: that folder holds the full-scale runs" in err
    code, _, err = call(capsys, "--tiny", "--results", tmp_path / "r", "--runs", tmp_path / "root" / "full_scale")
    assert code == 2 and "that folder holds the full-scale runs, and --tiny makes smoke runs of 300 images" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "root").exists()


def test_run_folders_live_in_the_runs_root_outside_the_project(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_RUNS", str(tmp_path / "mine"))
    assert full_scale.parse([]).runs == tmp_path / "mine" / "full_scale"
    monkeypatch.delenv("ALEXNET_RUNS")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert full_scale.parse([]).runs == tmp_path / "xdg" / "alexnet_lib" / "runs" / "full_scale"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for xdg in ("", "relative/cache"):  # unset, or relative (which the XDG rule says to ignore)
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert full_scale.parse([]).runs == tmp_path / "home" / ".cache" / "alexnet_lib" / "runs" / "full_scale"


def test_checkpoints_left_in_the_projects_old_runs_folder_are_pointed_at_not_restarted(tmp_path, capsys,
                                                                                          monkeypatch):
    monkeypatch.setenv("ALEXNET_RUNS", str(tmp_path / "root"))
    monkeypatch.setattr(full_scale, "OLD_RUNS", tmp_path / "project" / "runs" / "full_scale")
    log = full_scale_log(tmp_path / "results", 3)
    checkpoint(full_scale.OLD_RUNS, 3)
    args = full_scale.parse(["--only", RUN, "--results", str(tmp_path / "results")])
    assert full_scale.plan(args)[1] == [] and log.exists()
    said = capsys.readouterr().out
    assert (f"{RUN}: left alone: its checkpoints are in {shown(full_scale.OLD_RUNS / RUN)}, where run folders were "
            f"kept before: move that folder into {shown(tmp_path / 'root' / 'full_scale')} to resume it") in said


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
