"""One epoch of cuda-convnet's LRN pair (§3.3) on a CPU: seconds per 50,000 images, before and now.

Each step is what the trainer does for the full-scale CIFAR-10 runs: gather a batch of 128 uint8
images, augment it (random 24x24 crops and flips, mean image subtracted: ``transforms.Augment``),
and take the trainer's own step (``train.sgd_step``) on the ``lrn-pair`` CifarNet with
cuda-convnet's init and per-layer rates (``cuda_convnet``), with and without LRN. The contenders,
timed in turn (A, B, C, A, B, C, ...) in one process:

  before:                the code paths this bench replaced: LocallyConnected2d as F.unfold + einsum
                         (autograd through both), crops by a gather of single values, every
                         convolution a plain nn.Conv2d; NCHW;
  library, NCHW:         the library as it is, in the layout the runs used (TrainConfig default);
  library, channels_last: the same with TrainConfig(channels_last=True) (--channels-last).

An epoch's seconds are extrapolated from ``--steps`` timed steps after warm-up (50,000 / 128
steps an epoch); each round times every contender once, and the speed-ups are the medians of the
per-round ratios, so load that comes and goes (the machine is shared) hits both sides of a ratio.
GFLOP/s count a step's FLOPs as bench/_common.py does (PyTorch's FlopCounterMode: convolutions,
matrix products; LRN, pooling and ReLU are not counted), on the "before" step, whose plain
convolutions it knows: every code path computes the same maths, so each is given those FLOPs (an
FFT convolution does fewer operations, and then shows more GFLOP/s than it executes). Beside them,
a 2048x2048 fp32 matmul at the same thread count, timed in the same rounds. The images are random uint8 (the speed does
not depend on them); ``--real`` uses CIFAR-10's training set instead.

    python bench/bench_cifar_epoch.py [--threads 1 2] [--steps 8] [--rounds 5] [--real] [--profile]
"""

import argparse
import contextlib
import copy
import os
import statistics
import time

import torch
import torch.nn.functional as F
from _common import add_malloc_flag, apply_malloc, count_flops, header, op_breakdown
from torch import nn

from alexnet_lib import cuda_convnet, transforms
from alexnet_lib.layers import LocallyConnected2d
from alexnet_lib.lrn import cpu as lrn_cpu
from alexnet_lib.optim import PaperSGD
from alexnet_lib.small_nets import CifarNet
from alexnet_lib.train import sgd_step
from alexnet_lib.transforms import Augment, mean_image

BATCH, EPOCH_IMAGES = 128, 50_000


class UnfoldLocallyConnected(LocallyConnected2d):
    """The layer as it was computed before: F.unfold's columns, einsum, autograd through both."""

    def forward(self, x):
        cols = F.unfold(x, self.kernel_size, padding=self.padding)  # N, fan_in, L
        out = torch.einsum("nfl,lfo->nol", cols, self.weight)
        return out.reshape(x.shape[0], self.out_channels, self.output_size, self.output_size) + self.bias


def gather_crop_at(x, top, left, size):
    """Crops as they were taken before: one gather of single values, indexed on all four dimensions."""
    n, c = x.shape[:2]
    ar = torch.arange(size)
    rows, cols = (top[:, None] + ar)[:, None, :, None], (left[:, None] + ar)[:, None, None, :]
    return x[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]


@contextlib.contextmanager
def earlier_crops(enabled: bool):
    saved = transforms.crop_at
    if enabled:
        transforms.crop_at = gather_crop_at
    try:
        yield
    finally:
        transforms.crop_at = saved


def as_before(net):
    """A copy of ``net`` computed as before (same weights): locally connected layers as F.unfold +
    einsum, and any convolution of a subclass of nn.Conv2d as a plain nn.Conv2d."""
    net = copy.deepcopy(net)
    for i, m in enumerate(net.features):
        if isinstance(m, LocallyConnected2d):
            old = UnfoldLocallyConnected(m.in_channels, m.out_channels, m.input_size, m.kernel_size, m.padding)
        elif isinstance(m, nn.Conv2d) and type(m) is not nn.Conv2d:
            old = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding)
        else:
            continue
        old.load_state_dict(m.state_dict())
        net.features[i] = old
    return net


def contender(net, images, labels, augment, before: bool, channels_last: bool, seed: int = 0):
    """A function running n training steps as the trainer does, and the (x, y) of one step for
    counting FLOPs."""
    net = as_before(net) if before else copy.deepcopy(net)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = PaperSGD(cuda_convnet.parameter_groups(net), lr=cuda_convnet.EPS_W, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)

    def step(xb, yb):
        x = augment.train(xb, gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        sgd_step(net, optimizer, x, yb)

    def run(n: int):
        order = torch.randperm(len(images), generator=gen)[: n * BATCH].split(BATCH)
        with earlier_crops(before):
            for idx in order:
                step(images[idx], labels[idx])

    return run, lambda: step(images[:BATCH], labels[:BATCH])


def load_images(real: bool):
    if real:
        from alexnet_lib.data import load_dataset

        train = load_dataset("cifar10", "train", progress=False)
        return train.images, train.labels, "CIFAR-10's training set"
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (EPOCH_IMAGES, 3, 32, 32), dtype=torch.uint8, generator=g)
    return images, torch.randint(0, 10, (EPOCH_IMAGES,), generator=g), "random uint8 images"


def matmul_round(n: int = 2048, repeats: int = 3):
    """A contender that multiplies two n×n fp32 matrices ``repeats`` times, and its FLOPs per call."""
    a, b = torch.randn(n, n), torch.randn(n, n)

    def run(_steps):
        for _ in range(repeats):
            a @ b

    return run, repeats * 2 * n**3


def time_rounds(runs: dict, steps: int, rounds: int, warmup: int) -> dict:
    """Seconds per step of every contender in every round, the contenders in turn within a round
    (the matmul among them, so that its peak is measured under the same load)."""
    for run in runs.values():
        run(warmup)
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            t = time.perf_counter()
            run(steps)
            times[name].append((time.perf_counter() - t) / steps)
    return times


def report(threads: int, times: dict, flops: dict, steps: int) -> None:
    matmul = times.pop("matmul")
    peak = statistics.median(flops["matmul"] / (t * steps) for t in matmul) / 1e9
    print(f"\n{threads} thread(s): fp32 2048x2048 matmul {peak:.1f} GFLOP/s (median of the rounds); "
          f"load average {load()}")
    print(f"{'net':<12}{'code path':<26}{'ms/step':>9}{'s/epoch':>9}{'GFLOP/s':>9}{'of matmul':>11}"
          f"{'speed-up over before (median, range)':>40}")
    for (lrn, path), ts in times.items():
        med = statistics.median(ts)
        ratios = [b / t for b, t in zip(times[lrn, "before"], ts)]
        gf = flops[lrn] / med / 1e9
        print(f"{lrn:<12}{path:<26}{med * 1e3:9.1f}{med * EPOCH_IMAGES / BATCH:9.1f}{gf:9.1f}{gf / peak:10.0%} "
              f"{statistics.median(ratios):>22.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=8, help="timed steps per contender per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--real", action="store_true", help="CIFAR-10's training images instead of random ones")
    p.add_argument("--profile", action="store_true", help="also print where each step's time goes, by operator")
    add_malloc_flag(p)
    args = p.parse_args()
    malloc = apply_malloc(args)
    torch.set_num_threads(args.threads[0])
    header(f"one epoch of cuda-convnet's LRN pair, 24x24 crops, batch {BATCH}", malloc)
    images, labels, what = load_images(args.real)
    augment = Augment(crop=24, mean=mean_image(images), flip=True, pca=None, random_crop=True)
    print(f"data: {what}; LRN: {lrn_cpu.status()}; load average at the start {load()}")
    paths = {"before": (True, False), "library, NCHW": (False, False), "library, channels_last": (False, True)}
    for threads in args.threads:
        torch.set_num_threads(threads)
        runs, flops = {}, {}
        for lrn in (False, True):
            torch.manual_seed(0)
            net = cuda_convnet.init_cuda_convnet(CifarNet("lrn-pair", lrn=lrn, input_size=24, pool_rounding="ceil"))
            for path, (before, channels_last) in paths.items():
                key = ("with LRN" if lrn else "without LRN", path)
                runs[key], one_step = contender(net, images, labels, augment, before, channels_last)
                if before:  # the direct computation's FLOPs: the same maths for every code path
                    flops[key[0]] = count_flops(one_step)
        runs["matmul"], flops["matmul"] = matmul_round()
        times = time_rounds(runs, args.steps, args.rounds, args.warmup)
        report(threads, times, flops, args.steps)
        runs.pop("matmul")
        if args.profile:
            op_breakdown({f"{k[0]}, {k[1]}": (lambda r=r: r(1)) for k, r in runs.items() if k[0] == "with LRN"})


if __name__ == "__main__":
    main()
