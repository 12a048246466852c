"""The CIFAR-10 experiment loop: the library's path against a naive DataLoader(ImageFolder) + PIL loop.

Both train the same four-layer net (CifarNet "fig1", §3.1) with the same work per step: random
horizontal flips, mean subtraction, forward, backward, SGD step, batch 128.
  library: decoded once into a uint8 tensor (cached), batches sliced and flipped as tensors;
  naive:   torchvision ImageFolder + PIL transforms + DataLoader, decoding PNGs every epoch.
Targets: the library's loop at >= 40% of this machine's fp32 matmul peak, and >= 2x the naive
loop end to end.

    python bench/bench_cifar_loop.py [--steps 30] [--rounds 3] [--workers 2] [--channels-last]
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms as TV

from _common import count_flops, header, matmul_gflops

from alexnet_lib.data import find_dataset, load_dataset
from alexnet_lib.model import CifarNet
from alexnet_lib.transforms import Augment, channel_mean


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args()
    header("CIFAR-10 training loop, four-layer net, batch %d" % args.batch)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format

    train = load_dataset("cifar10", "train", progress=False)
    mean = channel_mean(train.images)
    augment = Augment(crop=32, mean=mean, flip=True, pca=None, random_crop=False)
    torch.manual_seed(0)
    model = CifarNet("fig1").to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x.contiguous(memory_format=fmt)), y).backward()
        opt.step()

    gen = torch.Generator().manual_seed(0)

    def library_loop(n):
        perm = torch.randperm(len(train), generator=gen)
        for i in range(n):
            idx = perm[i * args.batch : (i + 1) * args.batch]
            step(augment.train(train.images[idx], gen), train.labels[idx])

    folder = find_dataset("cifar10").path / "train"
    naive_set = torchvision.datasets.ImageFolder(
        str(folder), transform=TV.Compose([TV.RandomHorizontalFlip(), TV.PILToTensor(), TV.Lambda(lambda t: t.float() - mean)])
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

    def net_only(n):
        for _ in range(n):
            step(x0, train.labels[: args.batch])

    loops = {"library": library_loop, "naive": naive_loop, "net step alone": net_only}
    for fn in loops.values():
        fn(3)  # warm up (and start the workers)
    times = {k: [] for k in loops}
    for _ in range(args.rounds):
        for name, fn in loops.items():
            t = time.perf_counter()
            fn(args.steps)
            times[name].append((time.perf_counter() - t) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    peak = matmul_gflops()
    for name, t in med.items():
        gf = step_flops / t / 1e9
        print(f"{name:>15}: {args.batch / t:8.0f} img/s, {gf:6.1f} GFLOP/s = {100 * gf / peak:4.1f}% of matmul peak")
    print(f"fp32 2048x2048 matmul: {peak:.1f} GFLOP/s; {step_flops / args.batch / 1e6:.1f} MFLOP per image per step")
    print(f"library / naive end to end: {med['naive'] / med['library']:.2f}x (target >= 2x); "
          f"library at {100 * step_flops / med['library'] / 1e9 / peak:.0f}% of peak (target >= 40%)")


if __name__ == "__main__":
    main()
