"""The command line, for runs that do not belong in a notebook.

    python -m alexnet_lib train --dataset imagenette --model alexnet --epochs 30 --out runs/imagenette
    python -m alexnet_lib train --out runs/imagenette --resume   # continue after a stop, exactly
    python -m alexnet_lib evaluate --checkpoint runs/imagenette --ten-crop
    torchrun --nproc_per_node=2 -m alexnet_lib train ...   # DistributedDataParallel, one process per GPU

``--out DIR`` holds one run: its checkpoints (the last two), ``log.json`` and a lock while a
process trains there. ``--log FILE`` writes the log there instead (e.g. ``book/results/``, for
a chapter to plot), updated every epoch, with the conv1 kernels beside it (``FILE.conv1.pt``).

A new run refuses a folder that holds another (``--overwrite`` replaces it); ``--resume`` keeps
the run's settings, takes the options left out from it, and refuses options that contradict
it, except ``--lr``, which is applied from the next step (the paper lowered its rate by hand).
Errors are one or two lines that say what to do (``--debug`` adds the traceback); exit codes:
1 an error, 2 a bad option, 130 stopped by Ctrl-C (after saving a checkpoint at the next step).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from .batches import distributed_setup
from .checkpoint import (
    LOG_NAME,
    CheckpointError,
    ResumeMismatchError,
    RunFolderError,
    check_log_is_this_run,
    checkpoint_paths,
    earlier_run_files,
    load_checkpoint,
    load_latest_checkpoint,
    read_training_log,
)
from .data import load_dataset
from .evaluate import evaluate
from .identity import data_identity
from .model import AlexNet
from .options import (
    EXIT_ERROR,
    EXIT_USAGE,
    OptionError,
    apply_recipe,
    build_parser,
    check_device,
    check_options,
    config_from_args,
    explicit_options,
    take_settings_of_run,
)
from .recipes import build_model, config_from_dict, paper_data
from .storage import FolderLock, remove_stale_temporaries, save_atomically, shown
from .train import TrainConfig, Trainer, TrainingStopped
from .transforms import Augment
from .util import command_line, display_path, get_mode, git_commit, write_json_atomic


def build_data(args):
    """(train, val, augment) the command line ``args`` describe (see ``recipes.paper_data``)."""
    if args.model != "alexnet" and args.dataset != "cifar10":
        raise OptionError(f"--model {args.model} is a 32x32 CIFAR-10 net; use --dataset cifar10 (or --model alexnet)")
    return paper_data(
        args.dataset,
        args.input_size,
        args.limit,
        args.mean,
        pca=not args.no_pca,
        flip=not args.no_flip,
        scale=getattr(args, "scale", 1.0),
        crop=args.crop,
        on_corrupt=getattr(args, "on_corrupt", "error"),
        download=True if getattr(args, "download", False) else None,
        random_crop=not getattr(args, "no_random_crop", False),
    )


def save_run_artifacts(model, out: Path, log: Path | None) -> None:
    if isinstance(model, AlexNet):
        kernels = {f"tower{t}": tower.conv1.weight.detach().cpu() for t, tower in enumerate(model.towers)}
        save_atomically(kernels, out / "conv1.pt", what="the conv1 kernels")
        if log is not None:
            save_atomically(kernels, log.with_suffix(".conv1.pt"), what="the conv1 kernels")


def _writable(folder: Path, what: str) -> None:
    """OptionError unless a file can be made in ``folder``, or in its nearest existing parent
    (which a run would create ``folder`` in)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OptionError(f"{what}: {shown(folder)} is a file, not a folder. Choose another path.")
    probe = folder / f".probe-{os.getpid()}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise OptionError(f"{what}: cannot write in {shown(folder)} ({e.strerror}). "
                          "Choose a writable place.") from None


def check_output_file(path: str | None, option: str) -> None:
    """OptionError unless ``path`` can be written as a file."""
    if path is not None and Path(path).is_dir():
        raise OptionError(f"{option} {path} is a folder; {option} names a file, e.g. {Path(path) / 'run.json'}")
    if path is not None:
        _writable(Path(path).parent, f"{option} {path}")


def check_out_folder(out: Path) -> None:
    """OptionError unless ``out`` is (or can be made) a folder this process can write in."""
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {out} is a file; --out names the folder for the run's checkpoints and log")
    _writable(out, f"--out {out}")


def prepare_run(args, explicit: set, out: Path, rank: int):
    """For ``--resume``: the checkpoint to continue from (or None), with the run's settings
    taken into ``args``. For a new run: the files of an earlier run to delete (``--overwrite``);
    RunFolderError if there are any and no ``--overwrite``. Returns (checkpoint, files)."""
    log = Path(args.log) if args.log else out / "log.json"
    if args.resume:
        state, path = load_latest_checkpoint(out)
        if state is not None:
            saved = state.get("config", {}).get("meta", {}).get("cli_args")
            if saved is None:
                raise RunFolderError(f"{shown(path)} was written by the library's Trainer, not by this command; "
                                     "resume it in Python: Trainer(...).fit(resume=True)")
            differ = take_settings_of_run(args, explicit, saved, out)
            if "log" not in explicit:  # where the run has written its log, wherever this command runs
                args.log = stored_log_path(state["config"], out) or args.log
            if differ:
                raise ResumeMismatchError(
                    f"--resume: these options differ from the run in {shown(out)}:\n"
                    + "".join(f"  - {d}\n" for d in differ)
                    + "Leave them out (the run's are used) or give the run's values; start a new run with another "
                    "--out. Only --lr may change on resume (it is applied from the next step)."
                )
            if rank == 0:
                check_log_is_this_run(Path(args.log) if args.log else log, state["history"], path)
            return (state, path), []
    files, what = earlier_run_files(out, log) if rank == 0 else ([], "")
    if files == [log] and args.log and not args.overwrite and read_training_log(log) is None:
        raise RunFolderError(f"--log {args.log} is an existing file that is not a training log; a new run would "
                             "overwrite it. Choose another --log, or move that file away.")
    if files and not args.overwrite:
        hint = "it holds no checkpoint to resume from" if args.resume else "--resume continues it"
        raise RunFolderError(
            f"{shown(out)} already holds a run ({what}); a new run would overwrite it. {hint.capitalize()}; "
            "--overwrite replaces it; or choose another --out" + (" and --log" if args.log else "") + "."
        )
    return None, files


def stored_log_path(config: dict, out: Path) -> str | None:
    """The log of the run whose checkpoint holds ``config`` (a TrainConfig as a dict), now that the run
    is in ``out``: a log inside the run folder moves with the folder; one outside stays where it is."""
    log, folder = config.get("log_path"), config.get("checkpoint_dir")
    if not (log and folder and os.path.isabs(log) and os.path.isabs(folder)):
        return None
    inside = Path(log).is_relative_to(folder)
    return str(out / Path(log).relative_to(folder)) if inside else log


# ------------------------------------------------------------------------ commands
def cmd_train(args, explicit: set) -> int:
    if not args.out.strip():
        raise OptionError("--out is empty; it names the folder for the run's checkpoints and log "
                          "(e.g. --out runs/my-run)")
    out = Path(args.out)
    check_out_folder(out)
    check_output_file(args.log, "--log")
    check_device(args.device)
    rank, world, dist_device = distributed_setup()  # (0, 1, None) unless started by torchrun
    with FolderLock(out) if rank == 0 else nullcontext():
        if rank == 0:  # the leftovers of writes killed before their rename (log, kernels)
            remove_stale_temporaries(out)
            if args.log:
                remove_stale_temporaries(Path(args.log).parent, f".{Path(args.log).stem}*.tmp-*")
        checkpoint, replaced = prepare_run(args, explicit, out, rank)
        check_output_file(args.log, "--log")  # the run's own, when --resume took it from the run
        apply_recipe(args, explicit)
        check_options(args, explicit)
        mode = get_mode(args.mode)
        os.environ["ALEXNET_MODE"] = mode  # the data are looked up in this mode too
        config = make_config(args, out, mode, rank, world, dist_device)
        config.validate()
        train, val, augment = build_data(args)
        torch.manual_seed(args.seed)  # the seed decides the initial weights too
        model = build_model(config_from_args(args, len(train.classes)))
        config.meta["augment"] = {"crop": augment.crop, "flip": augment.flip, "pca": augment.pca is not None,
                                  "random_crop": augment.random_crop, "mean": args.mean}
        trainer = Trainer(model, train, val, augment, config)
        for f in replaced:  # --overwrite: only now that everything else has been checked
            f.unlink(missing_ok=True)
        if checkpoint is not None:
            if checkpoint[0]["epoch"] >= args.epochs:
                raise OptionError(f"--epochs {args.epochs}: the run in {shown(out)} has already trained "
                                  f"{checkpoint[0]['epoch']} epochs; give a larger --epochs to train on")
            trainer.resume(checkpoint)
            if rank == 0:
                lr = trainer.history.meta["resumes"][-1].get("changes", {}).get("lr")
                print(f"resumed from {shown(checkpoint[1])}" + (f"; learning rate {lr[0]:g} -> {lr[1]:g}"
                                                                       if lr else ""))
        elif args.resume and rank == 0:
            print(f"no checkpoint in {shown(out)}; starting from scratch")
        # the conv1 kernels (small) are saved after every epoch, next to the log
        trainer.on_epoch_end = lambda t: save_run_artifacts(t.model, out, Path(args.log) if args.log else None)
        with stop_on_signals(trainer, world):
            trainer.fit()
    if rank == 0:
        last = trainer.history.epochs[-1] if trainer.history.epochs else {}
        print(write_json_line(last))
    return 0


def make_config(args, out: Path, mode: str, rank: int, world: int, dist_device) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, optimizer=args.optimizer, schedule=args.schedule,
        milestones=tuple(args.milestones), plateau_patience=args.patience, seed=args.seed,
        eval_every=args.eval_every,
        device=args.device or (str(dist_device) if dist_device else None), checkpoint_dir=str(out.resolve()),
        checkpoint_every_steps=args.checkpoint_every, log_path=str(Path(args.log or out / LOG_NAME).resolve()),
        progress=not args.no_progress, mode=mode, label=f"{args.model} on {args.dataset}", workers=args.workers,
        channels_last=args.channels_last, amp=args.amp, compile=args.compile,
        stop_at_train_error=args.stop_at_train_error, rank=rank, world_size=world, recipe=args.recipe or "",
        meta={"cli_args": {k: (display_path(v) if k in ("out", "log") and v else v) for k, v in vars(args).items()}},
    )


def write_json_line(record: dict) -> str:
    return json.dumps(record, default=str)


@contextmanager
def stop_on_signals(trainer: Trainer, world: int):
    """Ctrl-C (or SIGTERM) asks the trainer to stop at the next step, after a checkpoint; a second
    one stops at once. Under torchrun the processes could not agree on a step: left as it is."""
    if world > 1 or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def ask_to_stop(signum, frame):
        trainer.stop_requested = True
        print("\nstopping after this step, with a checkpoint (again: stop at once)", file=sys.stderr, flush=True)
        for s, handler in previous.items():
            signal.signal(s, handler)

    for s in previous:
        signal.signal(s, ask_to_stop)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def cmd_evaluate(args, explicit: set) -> int:
    path = Path(args.checkpoint)
    check_output_file(args.save, "--save")
    check_device(args.device)
    if not path.exists():
        raise OptionError(f"--checkpoint {path} does not exist; give a run folder (the --out of a training run) "
                          "or one of its ckpt-e*-s*.pt files")
    if path.is_dir():
        state, found = load_latest_checkpoint(path)
        if state is None:
            raise CheckpointError(f"no checkpoint in {path}: a run folder holds ckpt-e*-s*.pt files")
    else:
        state, found = load_checkpoint(path), path
    model, val, augment = _model_and_data(state, found)
    device = torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    result = {
        "checkpoint": display_path(found),
        "epoch": state["epoch"],
        "step_in_epoch": state["step_in_epoch"],
        "val": repr(val),
        "centre_crop": evaluate(model, val, augment, device=device, progress=True),
    }
    if args.ten_crop:
        result["ten_crop"] = evaluate(model, val, augment, ten_crop=True, device=device, progress=True)
    if args.save:
        meta = {"device": str(device), "commit": git_commit(), "command": command_line(),
                "run_meta": state["history"]["meta"]}
        write_json_atomic({**result, "meta": meta}, Path(args.save))
    print(write_json_line({k: v for k, v in result.items() if k != "val"}))
    return 0


def _model_and_data(state, found: Path):
    """(model with the checkpoint's weights, val data, augment) of a checkpoint, rebuilt from the
    plain data it holds: the model's config, the test-time pipeline and the validation split (the
    command line's own options for a run of this command). The validation data must be the data
    the run validated on: same classes, in the same order, and the same images."""
    if not isinstance(state, dict) or not {"model", "config", "epoch", "history"} <= set(state):
        held = ", ".join(map(str, list(state)[:5])) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{shown(found)} is not a training checkpoint (it holds {held}). Give a run "
                              "folder or one of its ckpt-e*-s*.pt files.")
    described = (state.get("model_description") or {}).get("config")
    if described is None:
        raise CheckpointError(f"{shown(found)} holds a model without a config (not a net of this library): "
                              "evaluate it in Python with alexnet_lib.evaluate.evaluate.")
    config = config_from_dict(described)
    saved = state["config"].get("meta", {}).get("cli_args")
    spec = (state.get("evaluation") or {}).get("val")
    if saved is not None:
        defaults = vars(build_parser().commands["train"].parse_args(["--out", "-"]))
        _, val, augment = build_data(argparse.Namespace(**{**defaults, **saved}))
    elif spec is not None:
        augment = Augment(**state["evaluation"]["augment"])
        size = None if spec["name"] == "cifar10" and spec["size"] == 32 else spec["size"]
        val = load_dataset(spec["name"], spec["split"], size=size)
    else:
        raise CheckpointError(f"{shown(found)} was saved by the library's Trainer without the name of its "
                              "validation data (it was built in memory): evaluate it in Python, with the model and "
                              "data it was trained with (alexnet_lib.evaluate.evaluate).")
    _check_same_val_data(state, val, found)
    model = build_model(config)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise CheckpointError(f"{shown(found)}: its weights do not fit its own model description ({first}). "
                              "The checkpoint is damaged or was edited; evaluate another one.") from None
    return model, val, augment


def _check_same_val_data(state: dict, val, found: Path) -> None:
    """CheckpointError unless ``val`` has the classes (names and order) and images the run validated on."""
    spec = (state.get("evaluation") or {}).get("val") or {}
    theirs, ours = spec.get("classes"), [str(c) for c in getattr(val, "classes", [])]
    if theirs is not None and theirs != ours:
        first = next((i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b), min(len(theirs), len(ours)))
        raise CheckpointError(
            f"{shown(found)} was trained on classes {theirs[first:first + 3]}... where these data have "
            f"{ours[first:first + 3]}... (class {first}); its predictions would be scored against the wrong labels. "
            "Point ALEXNET_DATA at the data the run used.")
    ident = (state.get("data") or {}).get("val")
    if ident is not None and ident != data_identity(val) and len(val) == ident.get("items"):
        raise CheckpointError(f"{shown(found)} validated on other images or labels than these "
                              f"({len(val)} items either way). Point ALEXNET_DATA at the data the run used.")


# ----------------------------------------------------------------------- errors
def stopped_message(argv: list, out: Path | None, e: BaseException) -> str:
    """What a stop by Ctrl-C says: where the newest checkpoint is and the command that resumes."""
    path = getattr(e, "checkpoint", None) or (checkpoint_paths(out)[0] if out and checkpoint_paths(out) else None)
    if path is None:
        return "stopped (Ctrl-C) before the first checkpoint: nothing was saved."
    resume = [a for a in argv if a != "--overwrite"] + ([] if "--resume" in argv else ["--resume"])
    return (f"stopped (Ctrl-C); the newest checkpoint is {shown(path)}. To continue:\n"
            f"  python -m alexnet_lib {shlex.join(resume)}")


def main(argv=None) -> int:
    if argv is None:  # a program of its own: warnings in one line each, without Python's source line
        warnings.formatwarning = lambda message, category, *_, **__: f"{category.__name__}: {message}\n"
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_options(parser, argv, args)
    try:
        return {"train": cmd_train, "evaluate": cmd_evaluate}[args.command](args, explicit)
    except KeyboardInterrupt as e:  # TrainingStopped (a checkpoint at the step), or Ctrl-C elsewhere
        if args.debug and not isinstance(e, TrainingStopped):
            raise
        out = Path(args.out) if args.command == "train" else None
        print(stopped_message(argv, out, e), file=sys.stderr)
        return 128 + signal.SIGINT
    except (ValueError, OSError, RuntimeError) as e:  # the library's errors say what to do; a bug keeps its traceback
        if args.debug:
            raise
        hint = "" if isinstance(e, OptionError) else "\n(--debug shows where it happened)"
        if isinstance(e, torch.OutOfMemoryError):
            hint = "\nLower --batch-size, or --width, or add --amp." + hint
        print(f"{type(e).__name__}: {e}{hint}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, OptionError) else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
