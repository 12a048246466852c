"""LRN: alexnet_lib.layers.LocalResponseNorm against torch.nn.LocalResponseNorm (forward + backward).

Target: >= 3x faster at the conv1 and conv2 shapes of AlexNet, equal to 1e-5, and LRN <= 10% of
an AlexNet train step.

    python bench/bench_lrn.py [--batch 32] [--device cpu|cuda]
"""

import argparse

import torch
from _common import add_malloc_flag, apply_malloc, header, interleaved, trainer_step

from alexnet_lib.layers import LocalResponseNorm
from alexnet_lib.model import AlexNet


def fwd_bwd(layer, x):
    def run():
        x.grad = None
        layer(x).sum().backward()
    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="cpu")
    add_malloc_flag(p)
    args = p.parse_args()
    dev = args.device
    malloc = apply_malloc(args)
    header(f"LRN forward + backward, batch {args.batch}, {dev}", malloc=malloc)
    ours = LocalResponseNorm(5, 1e-4, 0.75, 2.0, "cuda-convnet")
    theirs = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    for name, shape in [("conv1", (args.batch, 96, 55, 55)), ("conv2", (args.batch, 256, 27, 27))]:
        x = (torch.randn(shape, device=dev) * 20).relu().requires_grad_(True)
        diff = (ours(x) - theirs(x)).abs().max().item()
        t = interleaved({"ours": fwd_bwd(ours, x), "torch": fwd_bwd(theirs, x)}, repeats=args.repeats, device=dev)
        print(f"{name} {tuple(shape)}: ours {t['ours'] * 1e3:.1f} ms, torch.nn {t['torch'] * 1e3:.1f} ms, "
              f"speed-up {t['torch'] / t['ours']:.2f}x, max |diff| {diff:.2e} (<= 1e-5: {diff <= 1e-5})")

    # LRN's share of a full AlexNet train step (both LRN layers, forward + backward)
    model = AlexNet(num_classes=1000).to(dev)
    x, y = torch.randn(args.batch, 3, 224, 224, device=dev), torch.randint(0, 1000, (args.batch,), device=dev)
    step = trainer_step(model, x, y)

    a1 = (torch.randn(args.batch, 96, 55, 55, device=dev) * 20).relu().requires_grad_(True)
    a2 = (torch.randn(args.batch, 256, 27, 27, device=dev) * 20).relu().requires_grad_(True)
    lrn2 = LocalResponseNorm(5, 1e-4, 0.75, 2.0, groups=2)

    def both_lrn():
        fwd_bwd(lrn2, a1)()
        fwd_bwd(lrn2, a2)()

    t = interleaved({"step": step, "lrn": both_lrn}, repeats=max(3, args.repeats // 2), device=dev)
    print(f"AlexNet train step at batch {args.batch}: {t['step'] * 1e3:.0f} ms; both LRN layers fwd+bwd "
          f"{t['lrn'] * 1e3:.1f} ms = {100 * t['lrn'] / t['step']:.1f}% of the step (target <= 10%)")


if __name__ == "__main__":
    main()
