"""AlexNet training throughput: the book's two-tower net (with LRN) against torchvision's alexnet.

One train step = the trainer's own step (forward, backward, the paper's update rule), same batch,
same input size. Reports img/s and
achieved GFLOP/s, each net counted with its own FLOPs (PyTorch's FlopCounterMode over a whole
step), beside the fp32 matmul peak of this machine.
Target: our achieved GFLOP/s >= 1.0x torchvision's.

    python bench/bench_train.py [--batch 32] [--repeats 5] [--device cpu|cuda] [--bf16] [--channels-last] [--compile]
                                [--tower-convs auto|grouped|split] [--breakdown]

On a GPU, ``--bf16 --channels-last`` is the fast setting (target: >= 10k img/s on one H100 at
the batch you train with); ``--compile`` adds torch.compile (fused LRN and elementwise work).
``--breakdown`` adds where each net's step spends its time, operator by operator (torch.profiler).
"""

import argparse

import torch
import torchvision
from _common import (
    add_malloc_flag,
    apply_malloc,
    count_flops,
    header,
    interleaved,
    matmul_gflops,
    op_breakdown,
    trainer_step,
)

from alexnet_lib.lrn import cpu as lrn_cpu
from alexnet_lib.model import AlexNet

TARGET = 1.0  # our achieved GFLOP/s over torchvision's


def alexnet_forward_flops_by_hand() -> int:
    """2 x the multiply-adds of one image's forward pass through the paper's net (§3.5, Figure 2)."""
    def conv(cin, cout, size, k, groups=1):
        return cout * size * size * (cin // groups) * k * k
    macs = (conv(3, 96, 55, 11) + conv(96, 256, 27, 5, 2) + conv(256, 384, 13, 3) + conv(384, 384, 13, 3, 2)
            + conv(384, 256, 13, 3, 2) + 9216 * 4096 + 4096 * 4096 + 4096 * 1000)
    return 2 * macs


def forward_flops(model) -> float:
    x = torch.randn(2, 3, 224, 224, device=next(model.parameters()).device)
    with torch.no_grad():
        return count_flops(lambda: model(x)) / 2


def make_step(model, batch, size, device, bf16, channels_last, compile_=False):
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    step = trainer_step(model, x, y, amp=bf16)
    net = torch.compile(model) if compile_ else model
    return (lambda: step(net)), step  # the step, and the same step uncompiled (for counting FLOPs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile both nets")
    p.add_argument("--tower-convs", choices=("auto", "grouped", "split"), default="auto",
                   help="our net's conv2/4/5: one grouped convolution, one per tower, or auto (split on a GPU)")
    p.add_argument("--breakdown", action="store_true", help="also print each step's time by operator")
    add_malloc_flag(p)
    args = p.parse_args()
    malloc = apply_malloc(args)
    header(f"AlexNet train step, batch {args.batch}, 224x224, {args.device}"
           + (", bf16 autocast" if args.bf16 else "") + (", channels_last" if args.channels_last else "")
           + (", torch.compile" if args.compile else "")
           + f", our tower convolutions: {args.tower_convs}", malloc=malloc)
    if args.device == "cpu":
        print(f"our LRN: {lrn_cpu.status()}")
    torch.manual_seed(0)
    nets = {
        "ours (two towers, LRN)": AlexNet(num_classes=1000, dropout=0.5, tower_convs=args.tower_convs),
        "torchvision alexnet": torchvision.models.alexnet(num_classes=1000),
    }
    made = {name: make_step(m, args.batch, 224, args.device, args.bf16, args.channels_last, args.compile)
            for name, m in nets.items()}
    steps = {name: step for name, (step, _) in made.items()}
    flops = {name: count_flops(eager) for name, (_, eager) in made.items()}
    print(f"our net's forward pass: {forward_flops(nets['ours (two towers, LRN)']) / 1e9:.3f} GFLOP per image counted, "
          f"{alexnet_forward_flops_by_hand() / 1e9:.3f} by hand")
    times = interleaved(steps, repeats=args.repeats, device=args.device)
    peak = matmul_gflops(device=args.device)
    if args.bf16:
        bf16_peak = matmul_gflops(n=8192 if args.device != "cpu" else 2048, device=args.device, dtype=torch.bfloat16)
    rates = {}
    for name in nets:
        rates[name] = flops[name] / times[name] / 1e9
        print(f"{name:>24}: {args.batch / times[name]:8.1f} img/s, "
              f"{flops[name] / args.batch / 1e9:.2f} GFLOP per image per step, {rates[name]:.1f} GFLOP/s "
              f"({100 * rates[name] / peak:.0f}% of matmul peak)")
    print(f"fp32 2048x2048 matmul: {peak:.1f} GFLOP/s"
          + (f"; bf16 matmul: {bf16_peak:.1f} GFLOP/s" if args.bf16 else ""))
    ours, theirs = rates["ours (two towers, LRN)"], rates["torchvision alexnet"]
    ratio = ours / theirs
    print(f"ratio of achieved GFLOP/s, ours / torchvision: {ratio:.2f}x "
          f"(target >= {TARGET:g}x: {'met' if ratio >= TARGET else 'NOT MET'})")
    if args.breakdown:
        op_breakdown(steps)


if __name__ == "__main__":
    main()
