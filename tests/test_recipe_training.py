"""cuda-convnet's recipe inside the trainer (``TrainConfig(recipe=...)``), on a schedule shortened to
three epochs: a hold-out epoch, a folded-in epoch, a ÷10 epoch. Each expectation is written out
from REFERENCE §2, not read back from the recipe module."""

import pytest
import torch

from alexnet_lib import cuda_convnet
from alexnet_lib.checkpoint import load_latest_checkpoint
from alexnet_lib.small_nets import CifarNet
from alexnet_lib.train import TrainConfig, Trainer
from alexnet_lib.transforms import Augment

from .helpers import cli_env, make_cifar_like, readable_error, run_cli, tiny_data

SHORT = (cuda_convnet.Phase(1, "without-holdout", 1.0), cuda_convnet.Phase(1, "all", 1.0),
         cuda_convnet.Phase(1, "all", 0.1))


@pytest.fixture
def short_schedule(monkeypatch):
    monkeypatch.setitem(cuda_convnet.SCHEDULES, "13pct", SHORT)


def trainer(tmp_path, epochs=3, folder="ckpt"):
    torch.manual_seed(0)
    data = tiny_data(100)  # 100 images of 10 classes: a hold-out of 20 (a fifth, 2 a class)
    model = CifarNet("lrn-pair", lrn=True, width=0.25, input_size=24, init="cuda-convnet")
    augment = Augment(crop=24, mean=data.images.float().mean(0), pca=None)
    config = TrainConfig(epochs=epochs, batch_size=16, lr=0.001, recipe="cuda-convnet-13pct", progress=False,
                         device="cpu", schedule="constant", checkpoint_dir=str(tmp_path / folder),
                         log_path=str(tmp_path / folder / "log.json"))
    return Trainer(model, data, data.subset(torch.arange(30)), augment, config)


def test_the_recipe_holds_out_a_fifth_then_folds_it_in_and_divides_eps_w(tmp_path, short_schedule):
    t = trainer(tmp_path)
    groups = {(g["layer"], g["kind"]): g for g in t.optimizer.param_groups}
    assert groups[("conv1", "weight")]["weight_decay"] == 0.0 and groups[("conv2", "weight")]["weight_decay"] == 0.0
    assert groups[("local3", "weight")]["weight_decay"] == 0.004 and groups[("fc10", "weight")]["weight_decay"] == 0.004
    assert groups[("conv1", "bias")]["lr"] == 0.002  # epsB = 2 epsW
    held = t.holdout[1]
    assert len(held) == 20 and torch.bincount(t.train_data.labels[held], minlength=10).tolist() == [2] * 10
    history = t.fit()
    e1, e2, e3 = history.epochs
    # 80 images in whole batches of 16, then all 100 (an epoch drops its last, partial batch)
    assert [e["steps"] for e in history.epochs] == [80 // 16, 100 // 16, 100 // 16]
    assert [e["lr"] for e in history.epochs] == pytest.approx([0.001, 0.001, 0.0001])
    assert groups[("conv1", "bias")]["lr"] == pytest.approx(0.002)  # the ÷10 steps name epsW only
    assert "holdout_top1" in e1 and "holdout_top1" not in e2  # the hold-out is measured while held out
    assert "val_multiview_top1" in e3 and "val_multiview_top1" not in e2  # nine crops after the last epoch
    assert 0.0 <= e3["val_multiview_top1"] <= 1.0


def test_a_recipe_run_resumes_bit_for_bit_across_the_fold_in(tmp_path, short_schedule):
    whole = trainer(tmp_path, folder="whole")
    whole.fit()
    first = trainer(tmp_path, epochs=1, folder="parts")
    first.fit()
    rest = trainer(tmp_path, epochs=3, folder="parts")
    rest.fit(resume=True)
    a, _ = load_latest_checkpoint(tmp_path / "whole")
    b, _ = load_latest_checkpoint(tmp_path / "parts")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_the_command_line_refuses_what_the_recipe_decides(tmp_path):
    make_cifar_like(tmp_path / "root", per_class=4)
    env = cli_env(tmp_path / "root", tmp_path / "cache")
    base = ["train", "--dataset", "cifar10", "--recipe", "cuda-convnet-13pct", "--mode", "smoke", "--no-progress"]
    other = run_cli(*base, "--model", "cifar-fig1", "--out", tmp_path / "a", env=env)
    readable_error(other, "OptionError", "cuda-convnet's recipe for --model cifar-lrn-pair", code=2)
    decided = run_cli(*base, "--model", "cifar-lrn-pair", "--weight-decay", "0.01", "--out", tmp_path / "b", env=env)
    readable_error(decided, "OptionError", "--weight-decay (each layer has its own weight cost)", code=2)
