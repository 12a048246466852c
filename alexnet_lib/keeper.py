"""The run keeper: what a training run leaves on disk, kept apart from the loop that trains.

:class:`RunKeeper` holds one run's folder: it locks it while a process trains there, refuses a
folder that holds another run, saves and finds checkpoints, checks that a resumed run is the
same run (:func:`checkpoint.resume_differences`, by the resume rules on ``TrainConfig``'s
fields), notes each resume in the log, and writes the log. ``train.Trainer`` asks it to do
these things and knows nothing of files.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch

from .batches import all_ranks, barrier
from .checkpoint import (
    FORMAT,
    History,
    RunFolderError,
    checkpoint_paths,
    load_latest_checkpoint,
    mismatch_error,
    resume_differences,
    save_checkpoint,
)
from .storage import FolderLock, shown, write_json_safely
from .util import command_line, git_commit


class RunKeeper:
    """The files of one run: checkpoints in ``config.checkpoint_dir`` (none without one) and the
    log at ``config.log_path``. Under torchrun every process has one; only rank 0 writes."""

    def __init__(self, config, rank: int = 0, world: int = 1):
        self.folder = Path(config.checkpoint_dir) if config.checkpoint_dir else None
        self.log_path = Path(config.log_path) if config.log_path else None
        self.keep, self.rank, self.world = config.keep_checkpoints, rank, world
        self.is_main = rank == 0

    def lock(self):
        """Hold the run folder while training (one process at a time trains in a folder)."""
        return FolderLock(self.folder) if self.folder and self.is_main else nullcontext()

    def newest(self) -> Path | None:
        held = checkpoint_paths(self.folder) if self.folder else []
        return held[0] if held else None

    def refuse_another_run(self) -> None:
        """RunFolderError if the folder holds the checkpoints of a run that was not resumed."""
        held = checkpoint_paths(self.folder) if self.folder and self.is_main else []
        if held:
            raise RunFolderError(
                f"{shown(self.folder)} holds the checkpoints of another run (the newest {held[0].name}); "
                "training a new run there would mix the two. Resume it (fit(resume=True); command line: --resume), "
                "or train into another folder."
            )

    def load_newest(self):
        """(state, path) of the newest readable checkpoint, or (None, None)."""
        if not self.folder:
            raise ValueError("resume needs config.checkpoint_dir (the folder the run saved its checkpoints to)")
        return load_latest_checkpoint(self.folder, map_location="cpu")

    def save(self, state: dict, epoch: int, step_in_epoch: int) -> Path | None:
        """Write ``state`` (one process's) as the checkpoint of (epoch, step); the random states and
        partial sums of every process go in with it, one entry per rank."""
        if not self.folder:
            return None
        state = {**state, "format": FORMAT, "rng": all_ranks(state["rng"], self.world),
                 "partial": all_ranks(state["partial"], self.world)}
        path = save_checkpoint(state, self.folder, epoch, step_in_epoch, self.keep) if self.is_main else None
        barrier(self.world)
        return path

    def check_same_run(self, state: dict, config, model, identity: dict) -> dict:
        """The changes (may-change settings) between the checkpoint and this run; ResumeMismatchError
        naming each setting that may not change but did."""
        differ, changes = resume_differences(state, config, model, identity)
        if differ:
            raise mismatch_error(self.folder or "memory", differ)
        return changes

    def resumed_history(self, saved: dict, at_epoch: int, epochs: int, changes: dict) -> History:
        """The checkpoint's log with this resume noted: when, by what command, which changes."""
        resume = {
            "at_epoch": at_epoch,
            "command": command_line(),
            "commit": git_commit(),
            "epochs": epochs,
            "cpu_threads": torch.get_num_threads(),
            **({"changes": changes} if changes else {}),
        }
        meta = {**saved["meta"], "resumed": True, "resumes": saved["meta"].get("resumes", []) + [resume]}
        return History(meta, list(saved["epochs"]))

    def write_log(self, history: History) -> None:
        if self.log_path and self.is_main:
            write_json_safely(history.to_json(), self.log_path, what="the log")
