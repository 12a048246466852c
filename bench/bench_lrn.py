"""LRN: alexnet_lib's local_response_norm against torch.nn.LocalResponseNorm, forward and backward.

Targets (each a ratio measured in this run, at the conv1 and conv2 shapes of AlexNet):
  * >= 6x faster than torch.nn.LocalResponseNorm (forward + backward);
  * at most 3 passes over memory each way: the kernel reads x and writes y forward, reads x
    and the gradient and writes dx backward (counted in its code, not measured); the time of
    each is printed in passes of a copy too (a copy reads and writes: 2 passes), which says how
    much of it is arithmetic rather than memory;
  * both LRN layers <= 5% of an AlexNet train step;
  * equal to the formula: within rtol 1e-5, atol 1e-6 of it in float64 (torch.nn's LRN in
    float64, which tests/test_layers.py checks against the formula written out).
Our Python path (ALEXNET_LRN_KERNEL=0, what runs where the kernel cannot be built) is timed too.

    python bench/bench_lrn.py [--batch 32] [--repeats 7] [--channels-last] [--device cpu|cuda]
"""

import argparse
import os
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from _common import add_malloc_flag, apply_malloc, header, interleaved, trainer_step

from alexnet_lib import lrn_cpu
from alexnet_lib.layers import LocalResponseNorm, local_response_norm
from alexnet_lib.model import AlexNet

SPEED_UP, PASSES, SHARE = 6.0, 3.0, 5.0  # the targets


def met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


@contextmanager
def python_path():
    """Our LRN with the fused kernel turned off, as where it cannot be built."""
    old = os.environ.get(lrn_cpu.ENV_VAR)
    os.environ[lrn_cpu.ENV_VAR] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ[lrn_cpu.ENV_VAR]
        else:
            os.environ[lrn_cpu.ENV_VAR] = old


def timed_pair(fn, x, kernel_off=False):
    """(forward, backward) closures of fn on x: the forward pass alone, and the backward pass
    alone through a graph built once."""
    g = torch.randn_like(x)
    if kernel_off:
        with python_path():
            y = fn(x)
    else:
        y = fn(x)

    def forward():
        if kernel_off:
            with python_path():
                fn(x)
        else:
            fn(x)

    return forward, lambda: torch.autograd.grad(y, x, g, retain_graph=True)


def formula_error(out, x) -> float:
    """max |out - formula| / (1e-6 + 1e-5 |formula|): at most 1 is 'equal' (rtol 1e-5, atol 1e-6)."""
    ref = F.local_response_norm(x.detach().double(), 5, alpha=1e-4, beta=0.75, k=2.0)
    return ((out.detach().double() - ref).abs() / (1e-6 + 1e-5 * ref.abs())).max().item()


def bench_shape(name, shape, args) -> float:
    """Time one shape; print its line; return our fwd+bwd speed-up over torch.nn."""
    dev = args.device
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    ours = LocalResponseNorm(5, 1e-4, 0.75, 2.0, "cuda-convnet")
    theirs = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    x = (torch.randn(shape, device=dev) * 20).relu().contiguous(memory_format=fmt).requires_grad_(True)
    contenders = {}
    contenders["ours fwd"], contenders["ours bwd"] = timed_pair(ours, x)
    contenders["python fwd"], contenders["python bwd"] = timed_pair(ours, x, kernel_off=True)
    contenders["torch fwd"], contenders["torch bwd"] = timed_pair(theirs, x)
    contenders["copy"] = lambda: x.detach().clone(memory_format=fmt)
    t = interleaved(contenders, repeats=args.repeats, device=dev)
    ms = {k: v * 1e3 for k, v in t.items()}
    ours_t, python_t, torch_t = (ms[f"{k} fwd"] + ms[f"{k} bwd"] for k in ("ours", "python", "torch"))
    speed_up = torch_t / ours_t
    err_ours, err_torch = formula_error(ours(x), x), formula_error(theirs(x), x)
    pass_ms = ms["copy"] / 2
    kernel = dev == "cpu" and lrn_cpu.available()
    print(f"{name} {tuple(shape)}: ours {ms['ours fwd']:.1f} + {ms['ours bwd']:.1f} ms (fwd + bwd), Python path "
          f"{python_t:.1f} ms, torch.nn {torch_t:.1f} ms; speed-up {speed_up:.2f}x over torch.nn "
          f"({torch_t / python_t:.2f}x for the Python path)")
    print(f"    in time, passes of a copy ({pass_ms:.1f} ms each): forward {ms['ours fwd'] / pass_ms:.1f}, "
          f"backward {ms['ours bwd'] / pass_ms:.1f}; error / tolerance vs the formula: ours {err_ours:.2f}, "
          f"torch.nn {err_torch:.2f}")
    passes = "forward 2, backward 3 (the kernel's loads and stores)" if kernel else "about a dozen (Python path)"
    print(f"    targets: >= {SPEED_UP:g}x: {met(speed_up >= SPEED_UP)}; <= {PASSES:g} passes over memory each way: "
          f"{met(kernel)}, {passes}; equal to the formula: {met(err_ours <= 1)}")
    return speed_up


def step_share(args) -> float:
    """Both LRN layers (fwd + bwd, conv1 and conv2 shapes, two towers) as % of a train step."""
    dev, b = args.device, args.batch
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = AlexNet(num_classes=1000).to(dev).to(memory_format=fmt)
    x = torch.randn(b, 3, 224, 224, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (b,), device=dev)
    step = trainer_step(model, x, y)
    acts = [(torch.randn(b, c, s, s, device=dev) * 20).relu().contiguous(memory_format=fmt).requires_grad_(True)
            for c, s in ((96, 55), (256, 27))]
    grads = [torch.randn_like(a) for a in acts]

    def both_lrn():  # forward, and backward into a new gradient (as in the step: nothing accumulates)
        for a, g in zip(acts, grads):
            torch.autograd.grad(local_response_norm(a, groups=2), a, g)

    t = interleaved({"step": step, "lrn": both_lrn}, repeats=args.repeats, device=dev)
    share = 100 * t["lrn"] / t["step"]
    print(f"AlexNet train step at batch {b}: {t['step'] * 1e3:.0f} ms; both LRN layers fwd+bwd {t['lrn'] * 1e3:.1f} ms "
          f"= {share:.1f}% of the step (target <= {SHARE:g}%: {met(share <= SHARE)})")
    return share


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels-last", action="store_true", help="NHWC tensors (and net) instead of NCHW")
    add_malloc_flag(p)
    args = p.parse_args()
    malloc = apply_malloc(args)
    layout = "channels_last" if args.channels_last else "NCHW"
    header(f"LRN forward + backward, batch {args.batch}, {layout}, {args.device}", malloc=malloc)
    print(f"our LRN here: {lrn_cpu.status() if args.device == 'cpu' else 'Python path (not a CPU)'}")
    for name, shape in [("conv1", (args.batch, 96, 55, 55)), ("conv2", (args.batch, 256, 27, 27))]:
        bench_shape(name, shape, args)
    step_share(args)


if __name__ == "__main__":
    main()
