"""Shared timing for the bench scripts: warm up, interleave the contenders, repeat, report medians.

The machines are shared and noisy, so each script prints ratios measured in one run, not
absolute times to compare across runs.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import torch


def machine() -> str:
    dev = f"cuda ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "cpu"
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), device {dev}")


def add_malloc_flag(parser) -> None:
    parser.add_argument("--glibc-malloc-default", action="store_true",
                        help="leave malloc as it is (default: alexnet_lib.util.keep_freed_memory(), "
                        "as the trainer does on a CPU)")


def apply_malloc(args) -> str:
    """Apply the allocator setting of ``args`` (see add_malloc_flag) to this process; describe it."""
    if args.glibc_malloc_default:
        return "malloc: glibc default (blocks over 32 MB are fresh mmaps, page-faulted on first touch)"
    from alexnet_lib.util import keep_freed_memory

    if not keep_freed_memory():
        return "malloc: default (not glibc)"
    return "malloc: keeps freed memory (alexnet_lib.util.keep_freed_memory)"


def trainer_step(model, x, y, amp: bool = False, lr: float = 1e-4):
    """A closure that runs the trainer's own step (``alexnet_lib.train.sgd_step``: forward,
    fp32 cross-entropy, backward, the paper's update rule) on the fixed batch (x, y)."""
    from alexnet_lib.optim import make_optimizer
    from alexnet_lib.train import sgd_step

    optimizer = make_optimizer(model, "paper", lr=lr, momentum=0.9, weight_decay=5e-4)
    return lambda net=model: sgd_step(net, optimizer, x, y, amp)


def header(title: str, malloc: str = "") -> None:
    print(f"# {title}")
    print(machine() + (f"; {malloc}" if malloc else ""))
    print("rerun: python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]))


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def interleaved(contenders: dict, repeats: int = 7, warmup: int = 2, device="cpu") -> dict:
    """Median seconds per call of each contender, calling them in turn, ``repeats`` rounds."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
        sync(device)
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            sync(device)
            t = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def matmul_gflops(n: int = 2048, repeats: int = 5, device="cpu", dtype=torch.float32) -> float:
    """Achieved GFLOP/s of an n×n matmul (fp32 by default): the machine's practical peak."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    med = interleaved({"mm": lambda: a @ b}, repeats=repeats, device=device)["mm"]
    return 2 * n**3 / med / 1e9


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                         _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """A convolution's backward: its input gradient and its weight gradient each cost what the
    forward pass costs. PyTorch's own formula counts a grouped convolution as if it were dense
    (it ignores groups), which over-counts the towers' conv2/4/5 by their group count."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def count_flops(fn) -> int:
    """FLOPs of everything ``fn`` runs, counted by PyTorch's FlopCounterMode (with the
    backward of a convolution counted right for grouped convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {torch.ops.aten.convolution_backward: _conv_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return counter.get_total_flops()


def op_breakdown(steps: dict, repeats: int = 3, rows: int = 12) -> None:
    """Print where each step's time goes: self CPU time per operator, averaged over ``repeats``
    steps under torch.profiler (which adds some overhead), the largest ``rows`` of any step."""
    from collections import Counter

    from torch.profiler import ProfilerActivity, profile

    per = {}
    for name, step in steps.items():
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                step()
        per[name] = Counter({e.key: e.self_cpu_time_total / repeats / 1e3 for e in prof.key_averages()})
    shown = []
    for counts in per.values():
        shown += [op for op, _ in counts.most_common(rows) if op not in shown]
    names = list(per)
    print(f"{'self CPU ms per step, by operator':<48}" + "".join(f"{n[:22]:>24}" for n in names))
    for op in sorted(shown, key=lambda o: -per[names[0]][o]):
        print(f"{op[:48]:<48}" + "".join(f"{per[n][op]:>24.1f}" for n in names))
    print(f"{'all operators':<48}" + "".join(f"{sum(per[n].values()):>24.1f}" for n in names))
