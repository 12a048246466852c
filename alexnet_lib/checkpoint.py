"""What a run leaves on disk: checkpoints, the random state inside them, and the log.

A checkpoint is one file per save, ``ckpt-e<epoch>-s<step>.pt``, written atomically; the
newest that loads is the one a run resumes from. Every random state of the process goes in
with it (:func:`rng_state`), so a resumed run continues bit for bit. The log is a
:class:`History`: the run's metadata and one record per epoch, saved as JSON.
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .util import atomic_save


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read."""


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
            return torch.load(path, map_location=map_location, weights_only=False), path
        except Exception as e:
            warnings.warn(
                f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); falling back to the previous one",
                stacklevel=2,
            )
    if paths:
        raise CheckpointError(
            f"no readable checkpoint in {d}: {', '.join(p.name for p in paths)} are all damaged. "
            "Move them away to start from scratch, or restore a copy."
        )
    return None, None


def load_checkpoint(path, map_location="cpu") -> dict:
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(e).__name__}: {e}. It is damaged or not a checkpoint."
        ) from e


def rng_state(aug_gen: torch.Generator) -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "augment": aug_gen.get_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, aug_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    aug_gen.set_state(state["augment"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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


def save_checkpoint(state: dict, directory, epoch: int, step_in_epoch: int, keep: int) -> Path:
    """Write ``state`` as the checkpoint of (epoch, step) in ``directory`` and delete all
    but the newest ``keep`` checkpoints there."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"ckpt-e{epoch:04d}-s{step_in_epoch:07d}.pt"
    atomic_save(state, path)
    for old in checkpoint_paths(d)[keep:]:
        old.unlink(missing_ok=True)
    return path
