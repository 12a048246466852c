"""What a run leaves on disk: checkpoints, the random state inside them, and the log.

A checkpoint is one file per save, ``ckpt-e<epoch>-s<step>.pt``, written atomically; the
newest that loads is the one a run resumes from. Every random state of the process goes in
with it (:func:`rng_state`), so a resumed run continues bit for bit. The log is a
:class:`History`: the run's metadata and one record per epoch, saved as JSON.

A run folder holds one run. A new run refuses a folder (or a log file) that holds another
(:func:`earlier_run_files`, :class:`RunFolderError`), and a resumed run must have the settings
of its checkpoint (:func:`resume_differences`, :class:`ResumeMismatchError`): the same model,
the same data, the same training rule; only the learning rate and how the run is carried out
(epochs, device, ...) may change, and the log's resume history records each change.
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .storage import NoSpaceError, save_atomically, shown
from .util import command_line, display_path, git_commit


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read."""


class RunFolderError(RuntimeError):
    """A folder or a log file holds another run, which a new run would overwrite."""


class ResumeMismatchError(ValueError):
    """A resumed run's settings differ from those of its checkpoint."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint file that holds code (a pickled object), or one of an older format that did."""


#: The checkpoint format: 2 holds tensors and plain data only, loaded with ``weights_only=True``.
FORMAT = 2


LOG_NAME = "log.json"


def checkpoint_paths(directory) -> list[Path]:
    """Checkpoints in a folder, newest first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(d.glob("ckpt-e*-s*.pt"), reverse=True)


def load_latest_checkpoint(directory, map_location="cpu"):
    """The newest checkpoint that loads, and its path; (None, None) if there is none.

    An unreadable checkpoint is named in a warning and the previous one is used. If every
    checkpoint is unreadable, that is an error: starting from scratch would lose the run.
    Leftover temporary files of a save that was killed before its rename are removed.
    """
    d = Path(directory)
    for stale in d.glob(".ckpt-*.tmp-*") if d.is_dir() else []:
        stale.unlink(missing_ok=True)
    paths = checkpoint_paths(d)
    for path in paths:
        try:
            return read_checkpoint(path, map_location), path
        except UnsafeCheckpointError:
            raise
        except Exception as e:
            warnings.warn(
                f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); falling back to the previous one",
                stacklevel=2,
            )
    if paths:
        raise CheckpointError(
            f"no readable checkpoint in {d}: {', '.join(p.name for p in paths)} are all damaged. "
            "Restore a copy, or move them away (or pass --overwrite) to start from scratch."
        )
    return None, None


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint file's contents: CheckpointError if it cannot be read, UnsafeCheckpointError if
    it holds code (a pickled object) or was written in an older format."""
    try:
        return read_checkpoint(path, map_location)
    except UnsafeCheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(e).__name__}: {e}. It is damaged or not a checkpoint."
        ) from e


def read_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint as data only (``weights_only=True``: tensors, numbers, strings, lists and
    dicts), so that opening a file from someone else runs no code of theirs. A file that holds
    anything else is refused before it is unpickled, naming what it holds."""
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint at all: torch.load below names the problem
        unsafe = []
    if unsafe:
        ours = any(g.startswith("alexnet_lib.") for g in unsafe)
        if ours:
            raise UnsafeCheckpointError(
                f"{shown(path)} was written by an older version of alexnet_lib (before checkpoint format "
                f"{FORMAT}), which pickled the model itself; it is not loaded, since unpickling runs code. Resume or "
                "evaluate it with the version that wrote it (its log names the commit), or train the run again."
            )
        raise UnsafeCheckpointError(
            f"{shown(path)} holds code, not only data ({', '.join(unsafe[:3])}{', ...' if len(unsafe) > 3 else ''}); "
            "it is not loaded, since unpickling it would run that code. Use checkpoints written by this library."
        )
    state = torch.load(path, map_location=map_location, weights_only=True)
    if isinstance(state, dict) and "format" not in state and "evaluation" in state:
        raise UnsafeCheckpointError(
            f"{shown(path)} was written by an older version of alexnet_lib (before checkpoint format {FORMAT}). "
            "Resume or evaluate it with the version that wrote it (its log names the commit), or train the run again."
        )
    return state


def rng_state(aug_gen: torch.Generator) -> dict:
    """Every random state of the process, as tensors and numbers (loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "augment": aug_gen.get_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, aug_gen: torch.Generator) -> None:
    missing = {"torch", "augment", "numpy", "python"} - set(state or {})
    if missing:
        raise CheckpointError(f"the checkpoint's random state lacks {', '.join(sorted(missing))}: it cannot continue "
                              "the run exactly. Start the run again, or resume from an intact checkpoint.")
    torch.set_rng_state(state["torch"])
    aug_gen.set_state(state["augment"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class EpochTotals:
    """The running sums of one epoch in one process: the loss summed over images, top-1 and
    top-5 hits, images seen and seconds spent."""

    loss: float = 0.0
    top1: int = 0
    top5: int = 0
    n: int = 0
    seconds: float = 0.0

    def add_sums(self, sums: torch.Tensor) -> None:
        """Add (loss sum, top-1 hits, top-5 hits), summed on the device since the last read."""
        loss, top1, top5 = sums.tolist()
        self.loss += loss
        self.top1 += int(top1)
        self.top5 += int(top5)

    def record(self) -> dict:
        """The epoch's training metrics as the log records them."""
        return {
            "train_loss": self.loss / self.n,
            "train_top1": 1 - self.top1 / self.n,
            "train_top5": 1 - self.top5 / self.n,
            "train_seconds": self.seconds,
        }


@dataclass
class History:
    """Per-epoch records (dicts) and the run's metadata, as written to the JSON log."""

    meta: dict
    epochs: list

    def column(self, key: str) -> list:
        return [r.get(key) for r in self.epochs]

    def to_json(self) -> dict:
        return {"meta": self.meta, "epochs": self.epochs}

    @classmethod
    def load(cls, path) -> "History":
        with open(path) as fh:
            blob = json.load(fh)
        return cls(blob["meta"], blob["epochs"])


def run_meta(config, device: torch.device, kept_freed_memory: bool, train, val, model: nn.Module) -> dict:
    """What the log says about a run: where, with what, the command, the data, the model, the
    configuration (a TrainConfig; its ``meta`` merged in)."""
    return {
        "label": config.label,
        "mode": config.mode,
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "cpu_threads": torch.get_num_threads(),
        "malloc_keeps_freed_memory": kept_freed_memory,
        "world_size": config.world_size,
        "torch": str(torch.__version__),
        "commit": git_commit(),
        "seed": config.seed,
        "command": command_line(),
        "train": repr(train),
        "val": repr(val) if val is not None else None,
        "model": type(model).__name__,
        "config": {
            k: (display_path(v) if k in ("checkpoint_dir", "log_path") and v else v)
            for k, v in asdict(config).items()
            if k != "meta"
        },
        **config.meta,
    }


def save_checkpoint(state: dict, directory, epoch: int, step_in_epoch: int, keep: int) -> Path:
    """Write ``state`` as the checkpoint of (epoch, step) in ``directory`` and delete all
    but the newest ``keep`` checkpoints there."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"ckpt-e{epoch:04d}-s{step_in_epoch:07d}.pt"
    try:
        save_atomically(state, path, what="checkpoint")
    except NoSpaceError as e:
        held = checkpoint_paths(d)
        if held:
            e.args = (f"{e} The run's newest checkpoint, {held[0].name}, is intact: resume from it (--resume) "
                      "once there is room.",)
        raise
    for old in checkpoint_paths(d)[keep:]:
        old.unlink(missing_ok=True)
    return path


# --------------------------------------------------------------- one run per folder
def read_training_log(path) -> dict | None:
    """The training log at ``path`` as {"meta": ..., "epochs": [...]}, or None for a file that is not one."""
    try:
        blob = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(blob, dict) and isinstance(blob.get("meta"), dict) and isinstance(blob.get("epochs"), list)
    return blob if ok else None


def _log_summary(path: Path) -> str:
    blob = read_training_log(path)
    if blob is None:
        return "a file that is not a training log"
    return f"a log of {len(blob['epochs'])} epoch(s) of `{blob['meta'].get('command', '?')}`"


def earlier_run_files(folder, log=None) -> tuple[list[Path], str]:
    """The files of an earlier run that a new run in ``folder`` (logging to ``log``, default
    folder/log.json) would overwrite or delete, and a description of them for a message."""
    folder = Path(folder)
    log = Path(log) if log else folder / LOG_NAME
    ckpts = checkpoint_paths(folder)
    files = ckpts + [p for p in (folder / LOG_NAME, folder / "conv1.pt", log) if p.is_file()]
    files = list(dict.fromkeys(files))
    parts = [f"{len(ckpts)} checkpoint(s), the newest {ckpts[0].name}"] if ckpts else []
    parts += [f"{shown(p)}: {_log_summary(p)}" for p in dict.fromkeys((folder / LOG_NAME, log)) if p.is_file()]
    return files, "; ".join(parts)


def check_log_is_this_run(log, history: dict, checkpoint=None) -> None:
    """RunFolderError if the log file ``log`` holds another run than the checkpoint's ``history``
    (their common epochs differ): resuming would overwrite it. The message names both, since either
    may be the stranger (a checkpoint copied into the folder, or a log)."""
    log = Path(log)
    if not log.is_file():
        return
    try:
        logged = json.loads(log.read_text())["epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        logged = None
    ours = json.loads(json.dumps(history["epochs"], default=str))
    n = min(len(ours), len(logged or []))
    if logged is None or logged[:n] != ours[:n]:
        theirs = f"`{history.get('meta', {}).get('command', '?')}`, {len(ours)} epoch(s)"
        where = f"the checkpoint {shown(checkpoint)}" if checkpoint else "the checkpoint"
        raise RunFolderError(
            f"{shown(log)} holds {_log_summary(log)}, but {where} is of another run ({theirs}); resuming "
            "would mix the two. Move the other run's file (the log or the checkpoint) away, or choose another --log."
        )


# ------------------------------------------------------------ resuming the same run
#: What a resumed run may do with a training setting, read from ``TrainConfig``'s field metadata
#: (``metadata={"resume": ...}``): "same" (it decides every step: must match the checkpoint),
#: "may change" (how long or how the run is carried out: each change goes into the log's resume
#: history) or absent (where the run is written, what it prints: never compared).
RESUME_RULES = ("same", "may change")


def resume_rules(config) -> dict:
    """{rule: [field names]} of a dataclass config whose fields carry ``metadata["resume"]``."""
    rules = {rule: [] for rule in RESUME_RULES}
    for f in fields(config):
        rule = f.metadata.get("resume")
        if rule is not None:
            rules[rule].append(f.name)
    return rules


def _same(a, b) -> bool:
    norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
    return norm(a) == norm(b)


def _describe_data(ident: dict) -> str:
    shape = "x".join(map(str, ident.get("shape", [])))
    return f"{ident['items']} items{' of ' + shape if shape else ''} in {ident['classes']} classes"


def model_description(model: nn.Module) -> dict:
    """How a checkpoint names its model, as plain data: the model's config where it has one
    (``{"family": ..., **its fields}``, enough to build it again), and every parameter's shape."""
    config = getattr(model, "config", None)
    family = getattr(config, "family", None)
    return {
        "config": {"family": family, **asdict(config)} if family else None,
        "shapes": {name: list(p.shape) for name, p in model.state_dict().items()},
    }


def _model_differences(saved: dict | None, model: nn.Module) -> list[str]:
    if not saved:
        return []
    ours = model_description(model)
    if saved.get("config") and ours["config"]:
        a, b = saved["config"], ours["config"]
        keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
        return [f"model {k}: the checkpoint's is {a.get(k)!r}, this run's {b.get(k)!r}" for k in keys]
    a, b = saved.get("shapes", {}), ours["shapes"]
    if a == b:
        return []
    first = next((k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)))
    return [f"model: the checkpoint's {first} has shape {a.get(first)}, this run's {b.get(first)}"]


def resume_differences(state: dict, config, model: nn.Module, data: dict) -> tuple[list[str], dict]:
    """(what differs and may not, what differs and may) between a checkpoint ``state`` and the run
    that resumes it: its config (a dataclass whose fields carry resume rules, see
    :func:`resume_rules`), its model and its ``data`` ({"train": identity, ...})."""
    saved, ours, rules = state.get("config", {}), asdict(config), resume_rules(config)
    differ = [f"{k}: the checkpoint has {saved[k]!r}, this run {ours[k]!r}"
              for k in rules["same"] if k in saved and not _same(saved[k], ours[k])]
    for split, ident in (state.get("data") or {}).items():
        if ident is not None and data.get(split) is not None and ident != data[split]:
            same_size = ident["items"] == data[split]["items"] and ident.get("shape") == data[split].get("shape")
            differ.append(f"{split} data: the checkpoint's were {_describe_data(ident)}, this run's are "
                          f"{_describe_data(data[split])}" + (" with other images or labels" if same_size else ""))
    differ += _model_differences(state.get("model_description"), model)
    changes = {k: [saved[k], ours[k]] for k in rules["may change"] if k in saved and not _same(saved[k], ours[k])}
    return differ, changes


def mismatch_error(folder, differ: list[str]) -> ResumeMismatchError:
    return ResumeMismatchError(
        f"cannot resume the run in {shown(folder)}: its checkpoint was made with other settings:\n"
        + "".join(f"  - {d}\n" for d in differ)
        + "Resume with the checkpoint's settings, or start a new run in another folder. Only the learning rate "
        "may change on resume (it is applied from the next step and recorded in the log), and how the run is "
        "carried out (epochs, device, ...)."
    )


def evaluation_spec(augment, val) -> dict:
    """What evaluating a checkpoint takes besides its model: the test-time pipeline (the
    augmentation's settings and tensors: mean image, crop, scale) and which validation split the
    run used, as plain data."""
    images, info = getattr(val, "images", None), getattr(val, "info", None) or {}
    loaded = "from_cache" in info and isinstance(images, torch.Tensor)  # by data.load_dataset, not made in memory
    val_spec = None
    if loaded:
        val_spec = {"name": val.name, "split": val.split, "size": int(images.shape[-1]), "items": len(val),
                    "classes": [str(c) for c in getattr(val, "classes", [])]}
    return {"augment": asdict(augment) if augment is not None else None, "val": val_spec}
