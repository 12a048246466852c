"""The command line, for runs that do not belong in a notebook.

    python -m alexnet_lib train --dataset imagenette --model alexnet --epochs 30 --out runs/imagenette
    python -m alexnet_lib train ... --resume          # continue after a stop, exactly
    python -m alexnet_lib evaluate --checkpoint runs/imagenette --ten-crop
    torchrun --nproc_per_node=2 -m alexnet_lib train ...   # DistributedDataParallel, one process per GPU

``--out DIR`` holds the checkpoints (the last two) and ``log.json``; ``--log FILE`` writes
the log there instead (e.g. ``book/results/``, for a chapter to plot), updated every epoch,
with the conv1 kernels beside it (``FILE.conv1.pt``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, load_latest_checkpoint
from .evaluate import evaluate
from .experiments import MODES, get_mode
from .layers import ACTIVATIONS, LRN_ALPHA_CONVENTIONS, POOLINGS
from .model import INITS, AlexNet
from .recipes import MEANS, MODELS, paper_data
from .recipes import build_model as build_model_by_name
from .train import OPTIMIZERS, SCHEDULES, TrainConfig, Trainer, distributed_setup
from .util import command_line, display_path, git_commit, write_json_atomic


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m alexnet_lib", description="Train and evaluate the book's models.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model; checkpoints every epoch, --resume continues")
    _add_model_arguments(t.add_argument_group("model"))
    _add_data_arguments(t.add_argument_group("data"))
    _add_training_arguments(t.add_argument_group("training (§5)"))
    _add_run_arguments(t.add_argument_group("the run: where it goes, how it runs"))

    e = sub.add_parser("evaluate", help="top-1/top-5 error of a checkpoint, centre crop or ten crops")
    e.add_argument("--checkpoint", required=True, help="a checkpoint file, or a run folder (its newest checkpoint)")
    e.add_argument("--ten-crop", action="store_true", help="also evaluate with ten crops (§4.1)")
    e.add_argument("--save", help="write the result as JSON here (e.g. book/results/<name>.eval.json)")
    e.add_argument("--device")
    return p


def _add_model_arguments(g) -> None:
    g.add_argument("--model", default="alexnet", choices=MODELS)
    g.add_argument("--width", type=float, default=1.0)
    g.add_argument("--input-size", type=int, default=224)
    g.add_argument("--towers", type=int, default=2)
    g.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    g.add_argument("--no-lrn", action="store_true")
    g.add_argument("--lrn-convention", choices=LRN_ALPHA_CONVENTIONS, default="cuda-convnet")
    g.add_argument("--pooling", choices=tuple(POOLINGS), default="overlapping")
    g.add_argument("--dropout", type=float, default=0.5)
    g.add_argument("--init", choices=INITS, default="paper")


def _add_data_arguments(g) -> None:
    g.add_argument("--dataset", required=True, choices=("cifar10", "imagenette", "imagenet"))
    g.add_argument("--mean", choices=MEANS, default="pixel", help="per-pixel mean image (paper) or per-channel mean")
    g.add_argument("--no-pca", action="store_true", help="switch off PCA colour augmentation")
    g.add_argument("--scale", type=float, default=1.0,
                   help="divide mean-subtracted pixels by this (1: the paper's raw 0..255 units; "
                   "~64 gives unit variance, for kaiming/xavier init)")
    g.add_argument("--no-flip", action="store_true")
    g.add_argument("--crop", type=int,
                   help="training crop (default: the model's input size; 32 for CIFAR nets: no crop)")
    g.add_argument("--limit", type=int, help="use a fixed class-balanced subset of about this many training images")


def _add_training_arguments(g) -> None:
    g.add_argument("--epochs", type=int, default=90)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--lr", type=float, default=0.01)
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight-decay", type=float, default=5e-4)
    g.add_argument("--optimizer", choices=OPTIMIZERS, default="paper")
    g.add_argument("--schedule", choices=SCHEDULES, default="plateau")
    g.add_argument("--milestones", type=int, nargs="*", default=[])
    g.add_argument("--patience", type=int, default=2, help="epochs without val improvement before lr/10")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--stop-at-train-error", type=float, metavar="E",
                   help="end the run after the first epoch whose training top-1 error is at most E (Figure 1: 0.25)")


def _add_run_arguments(g) -> None:
    g.add_argument("--mode", choices=MODES,
                   help="run mode (default: $ALEXNET_MODE, else full on a GPU, quick on a CPU)")
    g.add_argument("--out", required=True, help="folder for checkpoints and log.json")
    g.add_argument("--log", help="write the JSON log here instead of OUT/log.json (e.g. book/results/<name>.json)")
    g.add_argument("--resume", action="store_true", help="continue from the newest good checkpoint in --out")
    g.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N steps (0: per epoch only)")
    g.add_argument("--save-conv1", action="store_true",
                   help="save the conv1 kernels (small) next to the log after each run")
    g.add_argument("--device")
    g.add_argument("--workers", type=int, default=4, help="DataLoader workers for ILSVRC-2012")
    g.add_argument("--channels-last", action="store_true",
                   help="NHWC memory layout (faster for the CIFAR nets on a CPU)")
    g.add_argument("--amp", action="store_true", help="bf16 autocast (on a GPU: about twice the throughput)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (on a GPU; first epoch slower)")
    g.add_argument("--no-progress", action="store_true")


def build_model(args, num_classes: int):
    """The model the command line ``args`` describe (see ``recipes.build_model``)."""
    return build_model_by_name(
        args.model,
        num_classes,
        towers=args.towers,
        activation=args.activation,
        lrn=not args.no_lrn,
        lrn_convention=args.lrn_convention,
        pooling=args.pooling,
        dropout=args.dropout,
        init=args.init,
        width=args.width,
        input_size=args.input_size,
    )


def build_data(args):
    """(train, val, augment) the command line ``args`` describe (see ``recipes.paper_data``)."""
    if args.model != "alexnet" and args.dataset != "cifar10":
        raise SystemExit(f"--model {args.model} is a 32x32 CIFAR-10 net; use --dataset cifar10")
    return paper_data(
        args.dataset,
        args.input_size,
        args.limit,
        args.mean,
        pca=not args.no_pca,
        flip=not args.no_flip,
        scale=getattr(args, "scale", 1.0),
        crop=args.crop,
    )


def save_run_artifacts(model, out: Path, log: Path | None) -> None:
    if isinstance(model, AlexNet):
        kernels = {f"tower{t}": tower.conv1.weight.detach().cpu() for t, tower in enumerate(model.towers)}
        torch.save(kernels, out / "conv1.pt")
        if log is not None:
            torch.save(kernels, log.with_suffix(".conv1.pt"))


def cmd_train(args) -> int:
    mode = get_mode(args.mode)
    out = Path(args.out)
    rank, world, dist_device = distributed_setup()  # (0, 1, None) unless started by torchrun
    train, val, augment = build_data(args)
    num_classes = len(train.classes)
    torch.manual_seed(args.seed)  # the seed decides the initial weights too
    model = build_model(args, num_classes)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        optimizer=args.optimizer,
        schedule=args.schedule,
        milestones=tuple(args.milestones),
        plateau_patience=args.patience,
        seed=args.seed,
        device=args.device or (str(dist_device) if dist_device else None),
        checkpoint_dir=str(out),
        checkpoint_every_steps=args.checkpoint_every,
        log_path=args.log or str(out / "log.json"),
        progress=not args.no_progress,
        mode=mode,
        label=f"{args.model} on {args.dataset}",
        workers=args.workers,
        channels_last=args.channels_last,
        amp=args.amp,
        compile=args.compile,
        stop_at_train_error=args.stop_at_train_error,
        rank=rank,
        world_size=world,
        meta={
            "cli_args": {k: (display_path(v) if k in ("out", "log") and v else v) for k, v in vars(args).items()},
            "augment": {"crop": augment.crop, "flip": augment.flip, "pca": augment.pca is not None, "mean": args.mean},
        },
    )
    trainer = Trainer(model, train, val, augment, config)
    if args.resume:
        path = trainer.resume()
        if rank == 0:
            print(f"resumed from {display_path(path)}" if path else f"no checkpoint in {out}; starting from scratch")
    # the conv1 kernels (small) are saved after every epoch, next to the log
    trainer.on_epoch_end = lambda t: save_run_artifacts(t.model, out, Path(args.log) if args.log else None)
    trainer.fit()
    if rank != 0:
        return 0
    last = trainer.history.epochs[-1] if trainer.history.epochs else {}
    print(json.dumps({k: v for k, v in last.items()}, default=str))
    return 0


def cmd_evaluate(args) -> int:
    path = Path(args.checkpoint)
    if path.is_dir():
        state, found = load_latest_checkpoint(path)
        if state is None:
            raise SystemExit(f"no readable checkpoint in {path}")
    else:
        state = load_checkpoint(path)
    cli_args = argparse.Namespace(**state["config"]["meta"]["cli_args"])
    train, val, augment = build_data(cli_args)
    model = build_model(cli_args, len(train.classes))
    model.load_state_dict(state["model"])
    device = torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    shown = display_path(found if path.is_dir() else path)
    result = {
        "checkpoint": shown,
        "epoch": state["epoch"],
        "step_in_epoch": state["step_in_epoch"],
        "val": repr(val),
        "centre_crop": evaluate(model, val, augment, device=device, progress=True),
    }
    if args.ten_crop:
        result["ten_crop"] = evaluate(model, val, augment, ten_crop=True, device=device, progress=True)
    if args.save:
        meta = {
            "device": str(device),
            "commit": git_commit(),
            "command": command_line(),
            "run_meta": state["history"]["meta"],
        }
        write_json_atomic({**result, "meta": meta}, Path(args.save))
    print(json.dumps({k: v for k, v in result.items() if k != "val"}))
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return {"train": cmd_train, "evaluate": cmd_evaluate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
