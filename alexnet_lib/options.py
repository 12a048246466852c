"""The command line's options: their types and ranges, which ones each model uses, and which
ones a resumed run takes from its checkpoint.

* :func:`build_parser`: every option of ``python -m alexnet_lib train`` and ``evaluate``, each
  number checked as it is read (a learning rate of ``nan`` or 0 epochs never reach a run);
* :func:`explicit_options`: the options given on the command line, whatever their value;
* :func:`check_options`: :class:`OptionError` for an option the chosen model, dataset or
  schedule would ignore, or cannot use; :func:`check_device` for a device that is not there;
* :func:`take_settings_of_run`: a resumed run's options, filled in from its checkpoint.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import replace
from pathlib import Path

import torch

from .cuda_convnet import RECIPES, recipe_schedule, total_epochs
from .layers import ACTIVATIONS, POOLINGS
from .lrn.reference import LRN_ALPHA_CONVENTIONS
from .model import INITS
from .optim import OPTIMIZERS
from .recipes import MEANS, MODELS, model_config
from .storage import shown
from .train import SCHEDULES
from .util import MODES, project_root

EXIT_ERROR, EXIT_USAGE = 1, 2
DATASETS = ("cifar10", "imagenette", "imagenet")
MODEL_OPTIONS = ("model", "width", "input_size", "towers", "activation", "no_lrn", "lrn_convention", "pooling",
                 "pool_rounding", "dropout", "init")
DATA_OPTIONS = ("dataset", "mean", "no_pca", "scale", "no_flip", "no_random_crop", "crop", "limit")
TRAINING_OPTIONS = ("batch_size", "momentum", "weight_decay", "optimizer", "schedule", "milestones", "patience", "seed",
                    "recipe", "eval_every")
#: the options cuda-convnet's recipe (--recipe) decides itself, and why
RECIPE_DECIDES = {
    "weight_decay": "each layer has its own weight cost", "optimizer": "it is cuda-convnet's update rule (paper)",
    "schedule": "its phases are its schedule", "milestones": "its phases are its schedule",
    "patience": "its phases are its schedule", "init": "each layer has its own initW",
    "stop_at_train_error": "it trains its whole schedule",
}
#: what a resumed run takes from its checkpoint when left out; the first three groups may not change
KEPT_ON_RESUME = MODEL_OPTIONS + DATA_OPTIONS + TRAINING_OPTIONS + (
    "lr", "epochs", "stop_at_train_error", "log", "mode", "checkpoint_every", "save_conv1", "channels_last", "amp",
    "compile", "on_corrupt")
#: options the CIFAR nets do not have, and why
CIFAR_NETS_IGNORE = {
    "towers": "they are one-tower nets", "dropout": "they have no dropout", "init": "they keep PyTorch's default init",
    "input_size": "they take the --crop size (default 32) as their input",
    "lrn_convention": "their LRN keeps cuda-convnet's settings",
    "save_conv1": "their conv1 kernels are not saved, only AlexNet's",
}


class OptionError(ValueError):
    """A command-line option that cannot work: its value, or its combination with others."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in two lines instead of the whole usage."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists every option)\n")


def _number(kind, test, words: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; it must be {words}") from None
        if not (math.isfinite(value) and test(value)):
            raise argparse.ArgumentTypeError(f"got {text}; it must be {words}")
        return value

    parse.__name__ = words
    return parse


positive_int = _number(int, lambda v: v >= 1, "a whole number, at least 1")
natural = _number(int, lambda v: v >= 0, "a whole number, at least 0")
seed_number = _number(int, lambda v: 0 <= v < 2**63, "a whole number from 0 to 2**63 - 1 (PyTorch's seed range)")
positive = _number(float, lambda v: v > 0, "a positive number")
non_negative = _number(float, lambda v: v >= 0, "a number, at least 0")
below_one = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
error_rate = _number(float, lambda v: 0 <= v <= 1, "an error rate in [0, 1]")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m alexnet_lib", description="Train and evaluate the book's models.", allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model; checkpoints every epoch, --resume continues", allow_abbrev=False)
    _add_model_arguments(t.add_argument_group("model"))
    _add_data_arguments(t.add_argument_group("data"))
    _add_training_arguments(t.add_argument_group("training (§5)"))
    _add_run_arguments(t.add_argument_group("the run: where it goes, how it runs"))

    e = sub.add_parser("evaluate", help="top-1/top-5 error of a checkpoint, centre crop or ten crops",
                       allow_abbrev=False)
    e.add_argument("--checkpoint", required=True, help="a checkpoint file, or a run folder (its newest checkpoint)")
    e.add_argument("--ten-crop", action="store_true", help="also evaluate with ten crops (§4.1)")
    e.add_argument("--save", help="write the result as JSON here (e.g. book/results/<name>.eval.json)")
    e.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: a GPU if there is one)")
    e.add_argument("--debug", action="store_true", help="show the traceback of an error")
    p.commands = {"train": t, "evaluate": e}
    return p


def _add_model_arguments(g) -> None:
    g.add_argument("--model", default="alexnet", choices=MODELS)
    g.add_argument("--width", type=positive, default=1.0, help="channel multiplier (1: the paper's net)")
    g.add_argument("--input-size", type=positive_int, default=224, help="AlexNet's input (224, or 227 as in Caffe)")
    g.add_argument("--towers", type=int, default=2, choices=(1, 2))
    g.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    g.add_argument("--no-lrn", action="store_true")
    g.add_argument("--lrn-convention", choices=LRN_ALPHA_CONVENTIONS, default="cuda-convnet")
    g.add_argument("--pooling", choices=tuple(POOLINGS), default="overlapping",
                   help="the max poolings' windows: 3/2 (the paper) or 2/2; cifar-fig1's average poolings stay 3/2")
    g.add_argument("--pool-rounding", choices=("floor", "ceil"), default="floor",
                   help="CIFAR nets: ceil keeps a last partial pooling window, as cuda-convnet does")
    g.add_argument("--dropout", type=below_one, default=0.5)
    g.add_argument("--init", choices=INITS, default="paper")


def _add_data_arguments(g) -> None:
    g.add_argument("--dataset", choices=DATASETS, help="required, except with --resume (the run's)")
    g.add_argument("--mean", choices=MEANS, default="pixel", help="per-pixel mean image (paper) or per-channel mean")
    g.add_argument("--no-pca", action="store_true", help="switch off PCA colour augmentation")
    g.add_argument("--scale", type=positive, default=1.0,
                   help="divide mean-subtracted pixels by this (1: the paper's raw 0..255 units; "
                   "~64 gives unit variance, for kaiming/xavier init)")
    g.add_argument("--no-flip", action="store_true")
    g.add_argument("--no-random-crop", action="store_true",
                   help="train on the centre crop, not random crops (with --no-flip: no translations, §4.1)")
    g.add_argument("--crop", type=positive_int,
                   help="training crop: the model's input (AlexNet: --input-size; CIFAR nets: 32), the default")
    g.add_argument("--limit", type=positive_int,
                   help="use a fixed class-balanced subset of about this many training images")
    g.add_argument("--on-corrupt", choices=("error", "skip"), default="error",
                   help="an image that cannot be decoded stops the run (error), or is left out with a warning (skip)")
    g.add_argument("--download", action="store_true", help="download the dataset if no data root holds it")


def _add_training_arguments(g) -> None:
    g.add_argument("--epochs", type=positive_int, default=90)
    g.add_argument("--batch-size", type=positive_int, default=128)
    g.add_argument("--lr", type=positive, default=0.01, help="learning rate; may change on --resume (applied)")
    g.add_argument("--momentum", type=below_one, default=0.9)
    g.add_argument("--weight-decay", type=non_negative, default=5e-4)
    g.add_argument("--optimizer", choices=OPTIMIZERS, default="paper")
    g.add_argument("--schedule", choices=SCHEDULES, default="plateau")
    g.add_argument("--milestones", type=positive_int, nargs="*", default=[], help="epochs of lr/10 (--schedule step)")
    g.add_argument("--patience", type=natural, default=2, help="epochs without val improvement before lr/10 (plateau)")
    g.add_argument("--seed", type=seed_number, default=0)
    g.add_argument("--eval-every", type=positive_int, default=1,
                   help="evaluate on the validation set every N epochs (and after the last); plateau needs 1")
    g.add_argument("--recipe", choices=[r for r in RECIPES if r], default="",
                   help="cuda-convnet's CIFAR-10 recipe for --model cifar-lrn-pair: per-layer init, rates (--lr is "
                   "epsW, default 0.001) and weight costs, a hold-out folded back in, two lr/10 steps, the nine-crop "
                   "test; sets --epochs (160 or 470), --crop 24 and --no-pca unless given")
    g.add_argument("--stop-at-train-error", type=error_rate, metavar="E",
                   help="end the run after the first epoch whose training top-1 error is at most E (Figure 1: 0.25)")


def _add_run_arguments(g) -> None:
    g.add_argument("--mode", choices=MODES,
                   help="run mode (default: $ALEXNET_MODE, else full on a GPU, quick on a CPU)")
    g.add_argument("--out", required=True, help="folder for this run's checkpoints and log.json")
    g.add_argument("--log", help="write the JSON log here instead of OUT/log.json (e.g. book/results/<name>.json)")
    run = g.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    run.add_argument("--overwrite", action="store_true", help="replace the run that --out (or --log) holds")
    g.add_argument("--checkpoint-every", type=natural, default=0, help="also checkpoint every N steps (0: per epoch)")
    g.add_argument("--save-conv1", action="store_true", help="AlexNet's conv1 kernels go next to the log (always)")
    g.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: a GPU if there is one)")
    g.add_argument("--workers", type=natural, default=4, help="DataLoader workers for ILSVRC-2012")
    g.add_argument("--channels-last", action="store_true",
                   help="NHWC memory layout (faster for the CIFAR nets on a CPU)")
    g.add_argument("--amp", action="store_true", help="bf16 autocast (on a GPU: about twice the throughput)")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (on a GPU; first epoch slower)")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--debug", action="store_true", help="show the traceback of an error")


def explicit_options(parser, argv: list, args) -> set:
    """The options given on the command line (whatever their value), as argparse dests."""
    unset = object()
    probe = argparse.Namespace(**{k: unset for k in vars(args)})
    parser.commands[args.command].parse_known_args(argv[argv.index(args.command) + 1:], namespace=probe)
    return {k for k, v in vars(probe).items() if v is not unset}


def apply_recipe(args, explicit: set) -> None:
    """``--recipe``: its own --lr (epsW 0.001), --epochs, --crop 24 and no PCA, where not given;
    OptionError for an option it decides itself, or a model it is not for."""
    if not getattr(args, "recipe", ""):
        return
    if args.model != "cifar-lrn-pair":
        raise OptionError(f"--recipe {args.recipe} is cuda-convnet's recipe for --model cifar-lrn-pair, "
                          f"not --model {args.model}")
    decided = {k: why for k, why in RECIPE_DECIDES.items() if k in explicit}
    if decided:
        raise OptionError(f"--recipe {args.recipe} decides these itself: "
                          + "; ".join(f"--{k.replace('_', '-')} ({why})" for k, why in decided.items())
                          + ". Leave them out.")
    defaults = {"lr": 0.001, "epochs": total_epochs(recipe_schedule(args.recipe)), "crop": 24, "no_pca": True,
                "schedule": "constant", "weight_decay": 0.0}
    for k, v in defaults.items():
        if k not in explicit:
            setattr(args, k, v)


def config_from_args(args, num_classes: int):
    """The model config the command line ``args`` describe (see ``recipes.model_config``). A CIFAR
    net takes the training crop (``--crop``, default 32) as its input size."""
    cifar_net = args.model != "alexnet"
    config = model_config(
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
        input_size=(getattr(args, "crop", None) or 32) if cifar_net else args.input_size,
        pool_rounding=getattr(args, "pool_rounding", "floor"),
    )
    return replace(config, init="cuda-convnet") if getattr(args, "recipe", "") else config


# ------------------------------------------------------------ checks before a run
def check_options(args, explicit: set) -> None:
    """OptionError for options the chosen model, dataset or schedule would ignore or cannot use."""
    if args.dataset is None:
        raise OptionError(f"--dataset is required for a new run: one of {', '.join(DATASETS)}")
    if args.model == "alexnet" and args.dataset == "cifar10":
        raise OptionError("--model alexnet needs images of at least 67x67 (224 in the paper) and CIFAR-10's are "
                          "32x32: use --model cifar-fig1 or cifar-lrn-pair, or --dataset imagenette")
    cifar_net = args.model != "alexnet"
    ignored = {k: why for k, why in CIFAR_NETS_IGNORE.items() if cifar_net and k in explicit}
    if args.model == "cifar-fig1" and "no_lrn" in explicit:
        ignored["no_lrn"] = "it has no LRN layers, cifar-lrn-pair has"
    if "milestones" in explicit and args.schedule != "step":
        ignored["milestones"] = f"--schedule {args.schedule} does not use them, --schedule step does"
    if getattr(args, "eval_every", 1) > 1 and args.schedule == "plateau":
        ignored["eval_every"] = "--schedule plateau divides the rate by the validation error of every epoch"
    if "patience" in explicit and args.schedule != "plateau":
        ignored["patience"] = f"--schedule {args.schedule} does not use it, --schedule plateau does"
    if not cifar_net and "pool_rounding" in explicit:
        ignored["pool_rounding"] = "AlexNet's poolings need no partial window (55 -> 27 -> 13 -> 6 either way)"
    if cifar_net and args.crop is not None and not 8 <= args.crop <= 32:
        ignored["crop"] = f"a CIFAR net's crop must be between 8 and 32 (the images are 32x32), got {args.crop}"
    if not cifar_net and args.crop is not None and args.crop != args.input_size:
        ignored["crop"] = (f"{args.model} takes {args.input_size}x{args.input_size} inputs; leave --crop out"
                           " and set --input-size to change the crop")
    if ignored:
        raise OptionError(f"--model {args.model} with --dataset {args.dataset} would ignore or reject: "
                          + "; ".join(f"--{k.replace('_', '-')} ({why})" for k, why in ignored.items())
                          + ". Leave these options out.")
    try:  # every check of the model's own options, without building its weights
        config_from_args(args, num_classes=10)
    except ValueError as e:
        raise OptionError(str(e)) from None


def check_device(name: str | None) -> None:
    if name is None:
        return
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionError(f"--device {name} is not a device; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise OptionError(f"--device {name}: the runs train on cpu or cuda (cuda:N), not on {device.type}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"--device {name}: no CUDA GPU is visible here (torch {torch.__version__}, "
                          f"CUDA build: {torch.version.cuda or 'none'}). Leave --device out to use the CPU.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise OptionError(f"--device {name}: there are {torch.cuda.device_count()} GPUs (cuda:0 ...)")


def _stored_path(stored: str | None) -> str | None:
    """A path as the log stores it (``util.display_path``) made usable again."""
    if not stored or stored.startswith("~") or os.path.isabs(stored):
        return os.path.expanduser(stored) if stored else stored
    return str(project_root() / stored)


def take_settings_of_run(args, explicit: set, saved: dict, folder: Path) -> list:
    """Fill the options left out from the run's ``saved`` command-line options; return the
    explicit ones that contradict the run (the learning rate may change)."""
    differ = []
    for k in KEPT_ON_RESUME:
        if k not in saved:
            continue
        value = _stored_path(saved[k]) if k == "log" else saved[k]
        if k not in explicit:
            setattr(args, k, value)
        elif k in MODEL_OPTIONS + DATA_OPTIONS + TRAINING_OPTIONS and getattr(args, k) != value:
            differ.append(f"--{k.replace('_', '-')}: the run in {shown(folder)} has {value!r}, "
                          f"this command {getattr(args, k)!r}")
    return differ


