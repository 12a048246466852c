"""Figure 1 in full mode: the four-layer CIFAR-10 net with ReLUs against the same net with tanh,
on all 50,000 training images, each trained until its training error reaches 25% (§3.1).

Each run is the library's CLI run of book/results/relu_tanh/README.md (no regularisation,
batch 128, lr 0.001 for ReLU and 0.03 for tanh, the winners of chapter 2's sweep) with
``--stop-at-train-error 0.25``. Prints, per seed, the epochs each net needed and the ratio
(the paper: "six times faster"), their spread over seeds, and the wall time of one Figure 1
(one ReLU and one tanh run, data loading included). Target on one H100: <= 3 min.

    python bench/bench_figure1.py [--seeds 0 1 2] [--device cuda] [--amp] [--channels-last]
                                  [--log-dir DIR] [--max-epochs 150] [--limit N]
"""

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import torch
from _common import header

from alexnet_lib.checkpoint import History
from alexnet_lib.cli import main as cli
from alexnet_lib.util import PROJECT_ROOT

LRS = {"relu": 0.001, "tanh": 0.03}


def run(act, seed, args, out_root) -> dict:
    log = Path(args.log_dir or out_root) / f"{act}_seed{seed}.json"
    out = Path(out_root) / f"{act}_s{seed}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run each time: no checkpoints of an earlier one
    argv = ["train", "--dataset", "cifar10", "--model", "cifar-fig1", "--activation", act, "--no-pca", "--no-flip",
            "--weight-decay", "0", "--schedule", "constant", "--lr", str(LRS[act]), "--epochs", str(args.max_epochs),
            "--seed", str(seed), "--mode", "full", "--stop-at-train-error", str(args.target),
            "--out", str(out), "--log", str(log), "--no-progress"]
    argv += ["--device", args.device] if args.device else []
    argv += ["--limit", str(args.limit)] if args.limit else []
    argv += ["--amp"] if args.amp else []
    argv += ["--channels-last"] if args.channels_last else []
    t = time.perf_counter()
    cli(argv)
    seconds = time.perf_counter() - t
    errors = History.load(log).column("train_top1")
    reached = next((i + 1 for i, e in enumerate(errors) if e <= args.target), None)
    return {"act": act, "seed": seed, "epochs": reached, "ran": len(errors), "seconds": seconds,
            "last_error": errors[-1]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--target", type=float, default=0.25)
    p.add_argument("--max-epochs", type=int, default=150)
    p.add_argument("--limit", type=int, help="a class-balanced subset (for a short test; Figure 1 uses all 50,000)")
    p.add_argument("--device")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--log-dir", help="keep the JSON logs here (default: beside the checkpoints, in runs/bench_figure1)")
    args = p.parse_args()
    header(f"Figure 1, full mode: ReLU vs tanh to {args.target:.0%} training error, seeds {args.seeds}"
           + (", bf16 autocast" if args.amp else "") + (", channels_last" if args.channels_last else ""))
    if not torch.cuda.is_available() and not args.limit:
        print("no GPU: on a 2-core CPU one Figure 1 takes hours (the recorded CPU pair trained for 75 + 155 min); "
              "--limit N runs a class-balanced subset for a shorter check", flush=True)
    rows = []
    out_root = PROJECT_ROOT / "runs" / "bench_figure1"
    for seed in args.seeds:
        for act in ("relu", "tanh"):
            r = run(act, seed, args, out_root)
            rows.append(r)
            reached = f"{r['epochs']} epochs to" if r["epochs"] else "did not reach"
            print(f"{act:>4} seed {seed}: {reached} {args.target:.0%} "
                  f"({r['ran']} run, last error {r['last_error']:.3f}), {r['seconds']:.1f} s", flush=True)
    ratios, pairs = [], []
    for seed in args.seeds:
        relu, tanh = (next(r for r in rows if r["act"] == a and r["seed"] == seed) for a in ("relu", "tanh"))
        pairs.append(relu["seconds"] + tanh["seconds"])
        if relu["epochs"] and tanh["epochs"]:
            ratios.append(tanh["epochs"] / relu["epochs"])
    print(f"one Figure 1 (a ReLU and a tanh run, data loading included): median {statistics.median(pairs):.1f} s "
          f"over {len(pairs)} seeds (target on one H100: <= 180 s); all runs: {sum(pairs):.1f} s")
    if ratios:
        spread = f" ± {statistics.stdev(ratios):.2f} (sd)" if len(ratios) > 1 else ""
        print(f"epochs to {args.target:.0%}, tanh / ReLU: {statistics.mean(ratios):.2f}{spread} "
              f"over {len(ratios)} seeds "
              f"({', '.join(f'{r:.1f}' for r in ratios)}; the paper: about 6)")
    print(json.dumps({"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "runs": rows}))


if __name__ == "__main__":
    main()
