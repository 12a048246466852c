"""torchrun + DistributedDataParallel on 2 CPU processes (gloo, loopback) equals one process."""

import subprocess
import sys

import torch

from alexnet_lib.batches import epoch_batches
from alexnet_lib.checkpoint import load_latest_checkpoint

from .helpers import cli_env, close_relative, make_cifar_like


def test_rank_batches_make_up_the_global_batch():
    single = epoch_batches(40, 8, seed=3, epoch=2)
    ranks = [epoch_batches(40, 8, seed=3, epoch=2, rank=r, world=2) for r in range(2)]
    assert len(single) == 5 and all(len(r) == 5 for r in ranks)
    for j, batch in enumerate(single):
        assert sorted(torch.cat([ranks[0][j], ranks[1][j]]).tolist()) == sorted(batch.tolist())
    assert epoch_batches(40, 8, 3, 2)[0].tolist() != epoch_batches(40, 8, 3, 3)[0].tolist()  # reshuffled each epoch


def test_torchrun_two_processes_equal_one_process(tmp_path):
    make_cifar_like(tmp_path / "root", per_class=16)
    env = cli_env(tmp_path / "root", tmp_path / "cache", OMP_NUM_THREADS="1")
    # No random augmentation and no dropout (the fig1 net has none): the only randomness is the
    # data order, which the ranks share. Global batch 8 = 2 processes x 4.
    args = ["-m", "alexnet_lib", "train", "--dataset", "cifar10", "--model", "cifar-fig1", "--batch-size", "8",
            "--epochs", "2", "--no-pca", "--no-flip", "--schedule", "constant", "--lr", "0.0005", "--no-progress",
            "--mode", "smoke"]
    subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], env=env, check=True, capture_output=True,
                   timeout=300)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*torchrun, *args, "--out", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, _ = load_latest_checkpoint(tmp_path / "one")
    two, _ = load_latest_checkpoint(tmp_path / "two")
    assert one["global_step"] == two["global_step"] == 8  # 32 images / 8, two epochs
    assert two["config"]["world_size"] == 2
    # The two processes' gradients are averaged by an all-reduce, which sums in another order than
    # one process does: each weight may differ by a few float32 ulps of the tensor's largest
    # values per step, 8 steps here. Relative to each tensor's scale, 1e-5 covers that everywhere.
    for k, v in one["model"].items():
        assert close_relative(two["model"][k], v, rel=1e-5), k
    assert any((one["model"][k] - v).abs().max() > 0 for k, v in load_init(tmp_path).items())
    # rank 0 logs the metrics of the whole global batch, not of its own half
    import json

    log1 = json.loads((tmp_path / "one" / "log.json").read_text())["epochs"]
    log2 = json.loads((tmp_path / "two" / "log.json").read_text())["epochs"]
    assert [r["train_top1"] for r in log1] == [r["train_top1"] for r in log2]
    for a, b in zip(log1, log2):
        assert abs(a["train_loss"] - b["train_loss"]) <= 1e-5 * abs(a["train_loss"]) and a["val_top1"] == b["val_top1"]


def load_init(tmp_path):
    """The weights before training (same seed): to prove training moved them."""
    from alexnet_lib.small_nets import CifarNet

    torch.manual_seed(0)
    return CifarNet("fig1", num_classes=2).state_dict()
