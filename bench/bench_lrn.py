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

On a machine with a CUDA device a GPU part follows, for the Triton kernels of alexnet_lib.lrn_gpu,
named with the GPU, at batch 128 (--gpu-batch), in float32 and bfloat16, NCHW and channels_last:
  * >= 5x faster than torch.nn.LocalResponseNorm (forward + backward), conv1 and conv2 shapes;
  * the same passes over memory as on the CPU (counted), and the time in passes of a copy;
  * both LRN layers <= 8% of a float32 AlexNet train step (NCHW);
  * equal to the formula: float32 as above; bfloat16 within one rounding (2^-8) of it.
Without a CUDA device it says so in one line. --gpu-only skips the CPU part.

    python bench/bench_lrn.py [--batch 32] [--repeats 7] [--channels-last] [--device cpu|cuda]
                              [--gpu-batch 128] [--gpu-only]
"""

import argparse
import os
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from _common import add_malloc_flag, apply_malloc, header, interleaved, trainer_step

from alexnet_lib.layers import LocalResponseNorm
from alexnet_lib.lrn import cpu as lrn_cpu
from alexnet_lib.lrn import gpu as lrn_gpu
from alexnet_lib.lrn import local_response_norm
from alexnet_lib.model import AlexNet

SPEED_UP, PASSES, SHARE = 6.0, 3.0, 5.0  # the targets
GPU_SPEED_UP, GPU_SHARE = 5.0, 8.0  # the GPU's
#: Tolerance (rtol, atol) against the formula: float32's, and for bfloat16 one rounding (2^-8 of
#: the value at most) and float32's arithmetic before it (the 2%, as in tests/test_layers.py).
TOLERANCES = {torch.float32: (1e-5, 1e-6), torch.bfloat16: (1.02 * 2.0**-8, 1e-6)}


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
    """max |out - formula| / (atol + rtol |formula|), the tolerance of out's dtype (float32: rtol
    1e-5, atol 1e-6; bfloat16: one rounding): at most 1 is 'equal'."""
    rtol, atol = TOLERANCES.get(out.dtype, TOLERANCES[torch.float32])
    ref = F.local_response_norm(x.detach().double(), 5, alpha=1e-4, beta=0.75, k=2.0)
    return ((out.detach().double() - ref).abs() / (atol + rtol * ref.abs())).max().item()


def kernel_in_use(dev) -> bool:
    """Whether our LRN runs a fused kernel on ``dev`` (the C++ one on a CPU, Triton on CUDA)."""
    if torch.device(dev).type == "cuda":
        return lrn_gpu.available()
    return torch.device(dev).type == "cpu" and lrn_cpu.available()


def describe(dev) -> str:
    kind = torch.device(dev).type
    return lrn_cpu.status() if kind == "cpu" else lrn_gpu.status() if kind == "cuda" else "Python path"


def bench_shape(name, shape, dev, fmt, repeats, dtype=torch.float32, target=SPEED_UP) -> float:
    """Time one shape; print its lines; return our fwd+bwd speed-up over torch.nn."""
    ours = LocalResponseNorm(5, 1e-4, 0.75, 2.0, "cuda-convnet")
    theirs = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    x = (torch.randn(shape, device=dev) * 20).relu().to(dtype).contiguous(memory_format=fmt).requires_grad_(True)
    contenders = {}
    contenders["ours fwd"], contenders["ours bwd"] = timed_pair(ours, x)
    contenders["python fwd"], contenders["python bwd"] = timed_pair(ours, x, kernel_off=True)
    contenders["torch fwd"], contenders["torch bwd"] = timed_pair(theirs, x)
    contenders["copy"] = lambda: x.detach().clone(memory_format=fmt)
    t = interleaved(contenders, repeats=repeats, device=dev)
    ms = {k: v * 1e3 for k, v in t.items()}
    ours_t, python_t, torch_t = (ms[f"{k} fwd"] + ms[f"{k} bwd"] for k in ("ours", "python", "torch"))
    speed_up = torch_t / ours_t
    err_ours, err_torch = formula_error(ours(x), x), formula_error(theirs(x), x)
    pass_ms = ms["copy"] / 2
    kernel = kernel_in_use(dev)
    print(f"{name} {tuple(shape)}{'' if dtype == torch.float32 else f' {dtype}'}: ours {ms['ours fwd']:.2f} + "
          f"{ms['ours bwd']:.2f} ms (fwd + bwd), Python path {python_t:.2f} ms, torch.nn {torch_t:.2f} ms; "
          f"speed-up {speed_up:.2f}x over torch.nn ({torch_t / python_t:.2f}x for the Python path)")
    print(f"    in time, passes of a copy ({pass_ms:.3f} ms each): forward {ms['ours fwd'] / pass_ms:.1f}, "
          f"backward {ms['ours bwd'] / pass_ms:.1f}; error / tolerance vs the formula: ours {err_ours:.2f}, "
          f"torch.nn {err_torch:.2f}")
    passes = "forward 2, backward 3 (the kernel's loads and stores)" if kernel else "about a dozen (Python path)"
    print(f"    targets: >= {target:g}x: {met(speed_up >= target)}; <= {PASSES:g} passes over memory each way: "
          f"{met(kernel)}, {passes}; equal to the formula: {met(err_ours <= 1)}")
    return speed_up


def step_share(dev, b, fmt, repeats, target=SHARE) -> float:
    """Both LRN layers (fwd + bwd, conv1 and conv2 shapes, two towers) as % of a float32 train step."""
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

    t = interleaved({"step": step, "lrn": both_lrn}, repeats=repeats, device=dev)
    share = 100 * t["lrn"] / t["step"]
    print(f"AlexNet train step at batch {b}: {t['step'] * 1e3:.0f} ms; both LRN layers fwd+bwd {t['lrn'] * 1e3:.1f} ms "
          f"= {share:.1f}% of the step (target <= {target:g}%: {met(share <= target)})")
    return share


def gpu_part(args) -> None:
    """The Triton kernels on this machine's GPU: every dtype and layout at AlexNet's shapes, then
    their share of a float32 train step; one line where there is no CUDA device."""
    if not torch.cuda.is_available():
        print("GPU part: not measured (no CUDA device)")
        return
    b = args.gpu_batch
    print(f"# GPU part: {torch.cuda.get_device_name()}, batch {b}; our LRN here: {lrn_gpu.status()}")
    speed_ups = []
    for dtype in (torch.float32, torch.bfloat16):
        for layout, fmt in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
            print(f"## {str(dtype).removeprefix('torch.')}, {layout}")
            for name, shape in [("conv1", (b, 96, 55, 55)), ("conv2", (b, 256, 27, 27))]:
                speed_ups.append(bench_shape(name, shape, "cuda", fmt, args.repeats, dtype, GPU_SPEED_UP))
    print(f"speed-up over torch.nn on {torch.cuda.get_device_name()}: lowest {min(speed_ups):.2f}x of "
          f"{len(speed_ups)} (target >= {GPU_SPEED_UP:g}x: {met(min(speed_ups) >= GPU_SPEED_UP)})")
    step_share("cuda", b, torch.contiguous_format, args.repeats, GPU_SHARE)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels-last", action="store_true", help="NHWC tensors (and net) instead of NCHW")
    p.add_argument("--gpu-batch", type=int, default=128, help="the batch of the GPU part")
    p.add_argument("--gpu-only", action="store_true", help="the GPU part alone (skip the part on --device)")
    add_malloc_flag(p)
    args = p.parse_args()
    malloc = apply_malloc(args)
    layout = "channels_last" if args.channels_last else "NCHW"
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.gpu_only:
        header("LRN forward + backward, GPU part only", malloc=malloc)
    else:
        header(f"LRN forward + backward, batch {args.batch}, {layout}, {args.device}", malloc=malloc)
        print(f"our LRN here: {describe(args.device)}")
        for name, shape in [("conv1", (args.batch, 96, 55, 55)), ("conv2", (args.batch, 256, 27, 27))]:
            bench_shape(name, shape, args.device, fmt, args.repeats)
        step_share(args.device, args.batch, fmt, args.repeats)
    gpu_part(args)


if __name__ == "__main__":
    main()
