"""The CIFAR-10 experiment loop: the library's path against a naive DataLoader(ImageFolder) + PIL loop.

Both train the same four-layer net (CifarNet "fig1", §3.1) with the same work per step: random
horizontal flips, mean subtraction, forward, backward, SGD step, batch 128.
  library: decoded once into a uint8 tensor (cached), batches sliced and flipped as tensors, the
           net and its batches in channels_last (NHWC) memory layout (TrainConfig(channels_last=True));
  naive:   torchvision ImageFolder + PIL transforms + DataLoader, decoding PNGs every epoch, NCHW.
The net step alone is timed in both layouts, so the layout's share of the gain is visible.
Targets: the library's loop at >= 40% of this machine's fp32 matmul peak, and >= 2x the naive
loop end to end.

    python bench/bench_cifar_loop.py [--steps 30] [--rounds 3] [--workers 2] [--nchw]
"""

import argparse
import copy
import statistics
import time

import torch
import torchvision
from _common import add_malloc_flag, apply_malloc, count_flops, header, matmul_gflops
from torchvision import transforms as TV

from alexnet_lib.data import find_dataset, load_dataset
from alexnet_lib.optim import make_optimizer
from alexnet_lib.small_nets import CifarNet
from alexnet_lib.train import sgd_step
from alexnet_lib.transforms import Augment, channel_mean


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--nchw", action="store_true", help="the library path in NCHW too (no channels_last)")
    add_malloc_flag(p)
    args = p.parse_args()
    malloc = apply_malloc(args)
    header("CIFAR-10 training loop, four-layer net, batch %d" % args.batch, malloc=malloc)
    train = load_dataset("cifar10", "train", progress=False)
    mean = channel_mean(train.images)
    augment = Augment(crop=32, mean=mean, flip=True, pca=None, random_crop=False)
    torch.manual_seed(0)
    nets = {"NCHW": CifarNet("fig1")}
    nets["NHWC"] = copy.deepcopy(nets["NCHW"]).to(memory_format=torch.channels_last)
    opts = {k: make_optimizer(m, "paper", lr=1e-3, momentum=0.9, weight_decay=5e-4) for k, m in nets.items()}
    fmts = {"NCHW": torch.contiguous_format, "NHWC": torch.channels_last}
    ours = "NCHW" if args.nchw else "NHWC"

    def step(x, y, layout="NCHW"):  # the trainer's own step
        sgd_step(nets[layout], opts[layout], x.contiguous(memory_format=fmts[layout]), y)

    gen = torch.Generator().manual_seed(0)

    def library_loop(n):
        perm = torch.randperm(len(train), generator=gen)
        for i in range(n):
            idx = perm[i * args.batch : (i + 1) * args.batch]
            step(augment.train(train.images[idx], gen), train.labels[idx], ours)

    folder = find_dataset("cifar10").path / "train"
    naive_set = torchvision.datasets.ImageFolder(
        str(folder),
        transform=TV.Compose([TV.RandomHorizontalFlip(), TV.PILToTensor(), TV.Lambda(lambda t: t.float() - mean)]),
    )
    loader = torch.utils.data.DataLoader(naive_set, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                         persistent_workers=args.workers > 0)

    def naive_loop(n):
        for i, (x, y) in enumerate(loader):
            step(x, y)
            if i + 1 == n:
                break

    x0 = augment.train(train.images[: args.batch], gen)
    step_flops = count_flops(lambda: step(x0, train.labels[: args.batch]))

    def net_only(layout):
        def run(n):
            for _ in range(n):
                step(x0, train.labels[: args.batch], layout)
        return run

    loops = {f"library ({ours})": library_loop, "naive (NCHW)": naive_loop,
             "net step alone, NCHW": net_only("NCHW"), "net step alone, NHWC": net_only("NHWC")}
    for fn in loops.values():
        fn(3)  # warm up (and start the workers)
    times = {k: [] for k in loops}
    for _ in range(args.rounds):
        for name, fn in loops.items():
            t = time.perf_counter()
            fn(args.steps)
            times[name].append((time.perf_counter() - t) / args.steps)
            if fn is naive_loop:
                time.sleep(1.0)  # let the DataLoader workers finish prefetching before the next timing
    med = {k: statistics.median(v) for k, v in times.items()}
    peak = matmul_gflops()
    for name, t in med.items():
        gf = step_flops / t / 1e9
        print(f"{name:>21}: {args.batch / t:8.0f} img/s, {gf:6.1f} GFLOP/s = {100 * gf / peak:4.1f}% of matmul peak")
    print(f"fp32 2048x2048 matmul: {peak:.1f} GFLOP/s; {step_flops / args.batch / 1e6:.1f} MFLOP per image per step")
    lib, naive = med[f"library ({ours})"], med["naive (NCHW)"]
    print(f"library / naive end to end: {naive / lib:.2f}x (target >= 2x); "
          f"library at {100 * step_flops / lib / 1e9 / peak:.0f}% of peak (target >= 40%)")


if __name__ == "__main__":
    main()
