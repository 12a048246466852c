"""The command line, run as a user would: python -m alexnet_lib train / evaluate / --resume."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from .helpers import cli_env, make_cifar_like


def run(args, env):
    proc = subprocess.run([sys.executable, "-m", "alexnet_lib", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_train_resume_evaluate(tmp_path):
    make_cifar_like(tmp_path / "root")
    env = cli_env(tmp_path / "root", tmp_path / "cache")
    out = tmp_path / "run"
    common = ["train", "--dataset", "cifar10", "--model", "cifar-fig1", "--batch-size", "8", "--out", str(out),
              "--no-pca", "--schedule", "constant", "--no-progress", "--mode", "smoke"]
    run(common + ["--epochs", "1"], env)
    log = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in log["epochs"]] == [1]
    assert log["meta"]["command"].startswith("python -m alexnet_lib train")
    assert log["meta"]["mode"] == "smoke" and log["meta"]["seed"] == 0
    proc = run(common + ["--epochs", "2", "--resume"], env)
    assert "resumed from" in proc.stdout
    log = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in log["epochs"]] == [1, 2]
    proc = run(["evaluate", "--checkpoint", str(out), "--save", str(tmp_path / "eval.json")], env)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # 2 classes: top-5 always right
    assert 0 <= result["centre_crop"]["top1"] <= 1 and result["centre_crop"]["top5"] == 0.0
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["epoch"] == 2 and saved["centre_crop"] == result["centre_crop"] and "ten_crop" not in saved


def test_log_elsewhere_and_conv1_kernels_of_alexnet(tmp_path):
    root = tmp_path / "root"
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for name in ("n01", "n02"):
            folder = root / "imagenette" / split / name
            folder.mkdir(parents=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(folder / f"{i}.JPEG")
    env = cli_env(root, tmp_path / "cache")
    log = tmp_path / "results" / "small.json"
    run(["train", "--dataset", "imagenette", "--model", "alexnet", "--width", "0.1", "--input-size", "70",
         "--epochs", "1", "--batch-size", "4", "--out", str(tmp_path / "run"), "--log", str(log), "--no-progress"], env)
    assert [r["epoch"] for r in json.loads(log.read_text())["epochs"]] == [1]
    import torch

    kernels = torch.load(log.with_suffix(".conv1.pt"))
    # width 0.1: round(96 * 0.1 / 2) = 5 kernels of 3x11x11 per tower
    assert kernels["tower0"].shape == kernels["tower1"].shape == (5, 3, 11, 11)


def test_unknown_option_value_lists_choices(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "alexnet_lib", "train", "--dataset", "mnist", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "invalid choice: 'mnist'" in proc.stderr and "cifar10" in proc.stderr


def test_cifar_nets_train_on_24x24_crops_and_no_random_crop_trains_on_the_centre(tmp_path):
    make_cifar_like(tmp_path / "root")
    env = cli_env(tmp_path / "root", tmp_path / "cache")
    logs = {}
    for name, extra in (("random", []), ("centre", ["--no-random-crop"])):
        run(["train", "--dataset", "cifar10", "--model", "cifar-lrn-pair", "--crop", "24", "--pool-rounding", "ceil",
             "--batch-size", "8", "--epochs", "1", "--no-pca", "--schedule", "constant", "--no-progress",
             "--mode", "smoke", "--out", str(tmp_path / name), *extra], env)
        logs[name] = json.loads((tmp_path / name / "log.json").read_text())["meta"]
    assert logs["random"]["augment"]["crop"] == 24 and logs["random"]["augment"]["random_crop"] is True
    assert logs["centre"]["augment"]["random_crop"] is False
    assert logs["random"]["cli_args"]["pool_rounding"] == "ceil"
