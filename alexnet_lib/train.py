"""Training as in §5: the configuration, one step, one epoch, and the fit, on one screen.

"We used an equal learning rate for all layers ... The heuristic which we followed was
to divide the learning rate by 10 when the validation error rate stopped improving with
the current learning rate." The update rule itself is in ``optim``; what the run leaves on
disk (checkpoints, the log, resuming) is kept by ``keeper.RunKeeper``.

The trainer works on uint8 batches and augments them as tensors (``transforms.Augment``).
Every epoch's data order and augmentation are drawn from generators seeded by
(seed, epoch), and every random state is saved with the checkpoint, so a run that is
killed and resumed ends with the same weights, bit for bit, as one that never stopped.
A resumed run must have its checkpoint's settings (the fields of :class:`TrainConfig` marked
``resume="same"``; the learning rate may change, as the paper's was lowered by hand), and a
stop asked for (``Trainer.stop_requested``, Ctrl-C at the command line) saves a checkpoint at
the next step boundary.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import cuda_convnet
from .batches import all_ranks, epoch_batches, epoch_seed, iterate_batches, on_device
from .checkpoint import (
    CheckpointError,
    EpochTotals,
    History,
    ResumeMismatchError,
    evaluation_spec,
    model_description,
    rng_state,
    run_meta,
    set_rng_state,
)
from .data import ImageTensors
from .evaluate import evaluate, topk_hits
from .identity import data_identity
from .keeper import RunKeeper
from .optim import OPTIMIZERS, PaperSGD, make_optimizer, set_learning_rate
from .storage import shown
from .util import check_choice, default_device, keep_freed_memory, progress

SCHEDULES = ("plateau", "step", "constant")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingStopped(KeyboardInterrupt):
    """A stop was asked for (``Trainer.stop_requested``); ``checkpoint`` is where the run can resume."""

    def __init__(self, message: str, checkpoint: Path | None):
        super().__init__(message)
        self.checkpoint = checkpoint


# ----------------------------------------------------------------------- configuration
#: Resume rules, read by ``checkpoint.resume_differences``: a resumed run must have the same value
#: ("same": it decides every step), may change it ("may change": recorded in the log), or neither is
#: asked (no metadata: where the run is written and what it prints).
_SAME, _MAY_CHANGE = {"resume": "same"}, {"resume": "may change"}


@dataclass
class TrainConfig:
    """Everything that decides a training run. Defaults are the paper's (§5)."""

    epochs: int = field(default=90, metadata=_MAY_CHANGE)
    batch_size: int = field(default=128, metadata=_SAME)
    lr: float = field(default=0.01, metadata=_MAY_CHANGE)
    momentum: float = field(default=0.9, metadata=_SAME)
    weight_decay: float = field(default=5e-4, metadata=_SAME)
    optimizer: str = field(default="paper", metadata=_SAME)  # "paper" (§5 rule) or "sgd" (torch.optim.SGD)
    # "plateau" (÷10 when val error stalls), "step" (÷10 at milestones), "constant"
    schedule: str = field(default="plateau", metadata=_SAME)
    milestones: tuple = field(default=(), metadata=_SAME)  # epochs at which "step" divides lr by 10
    plateau_patience: int = field(default=2, metadata=_SAME)  # epochs without improvement before ÷10
    # "plateau" divides lr at most this often: three times in the paper (§5)
    max_lr_drops: int = field(default=3, metadata=_SAME)
    seed: int = field(default=0, metadata=_SAME)
    eval_every: int = field(default=1, metadata=_SAME)
    mode: str = field(default="", metadata=_SAME)  # smoke, quick or full: a run never changes its size
    # "cuda-convnet-13pct" / "-11pct": cuda-convnet's CIFAR-10 recipe (module cuda_convnet) instead of
    # §5's: per-layer rates and weight costs (lr is epsW, epsB = 2 lr), the schedule's phases (a
    # hold-out folded back in, two ÷10 steps) and the nine-crop test after the last epoch
    recipe: str = field(default="", metadata=_SAME)
    # how long and how the run is carried out
    # end the run after the first epoch whose training top-1 error is at most this
    stop_at_train_error: float | None = field(default=None, metadata=_MAY_CHANGE)
    device: str | None = field(default=None, metadata=_MAY_CHANGE)
    checkpoint_every_steps: int = field(default=0, metadata=_MAY_CHANGE)  # 0: once per epoch only
    keep_checkpoints: int = field(default=2, metadata=_MAY_CHANGE)
    workers: int = field(default=0, metadata=_MAY_CHANGE)  # DataLoader workers, for streamed datasets only
    # NHWC weights and batches: faster for plain conv nets on a CPU (bench/bench_cifar_loop.py)
    channels_last: bool = field(default=False, metadata=_MAY_CHANGE)
    # bf16 autocast for the forward pass (on a GPU; weights and optimiser stay fp32)
    amp: bool = field(default=False, metadata=_MAY_CHANGE)
    # torch.compile the model (helps on a GPU; measure before using it on a CPU)
    compile: bool = field(default=False, metadata=_MAY_CHANGE)
    # on a CPU: reuse freed buffers instead of page-faulting fresh ones (util.keep_freed_memory())
    keep_freed_memory: bool = field(default=True, metadata=_MAY_CHANGE)
    # where the run is written and what it prints (never compared on resume)
    checkpoint_dir: str | None = None
    log_path: str | None = None
    rank: int = 0  # this process under torchrun (0 alone)
    world_size: int = 1  # processes under torchrun; batch_size is the global batch
    progress: bool = True
    label: str = ""
    meta: dict = field(default_factory=dict)

    def validate(self) -> None:
        check_choice("recipe", self.recipe, cuda_convnet.RECIPES)
        last = cuda_convnet.total_epochs(cuda_convnet.recipe_schedule(self.recipe)) if self.recipe else None
        if last is not None and self.epochs > last:
            raise ValueError(f"recipe {self.recipe} lasts {last} epochs; got epochs={self.epochs}")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size} (the paper uses 128)")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr} (the paper starts at 0.01)")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.stop_at_train_error is not None and not 0 <= self.stop_at_train_error <= 1:
            raise ValueError(
                f"stop_at_train_error is an error rate in [0, 1], got {self.stop_at_train_error} (Figure 1 uses 0.25)"
            )


# --------------------------------------------------------------------------- one step
def sgd_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, amp: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of SGD on a ready batch: forward (bf16 autocast with ``amp``), cross-entropy
    in fp32, backward, update. Returns the loss and the logits, detached. The trainer and the
    bench scripts both time this function."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = net(x)
    loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach()


# --------------------------------------------------------------------------- the loop
class Trainer:
    """Trains a model on uint8 ImageTensors with batched tensor augmentation.

    >>> trainer = Trainer(model, train_data, val_data, augment, TrainConfig(epochs=10))
    >>> history = trainer.fit()            # or trainer.fit(resume=True)

    Read top to bottom: :meth:`fit` runs epochs, :meth:`train_epoch` runs steps,
    :meth:`train_step` is one step, :meth:`end_epoch` evaluates, schedules and saves.
    """

    def __init__(
        self, model: nn.Module, train_data: ImageTensors, val_data: ImageTensors | None, augment, config: TrainConfig
    ):
        config.validate()
        self.config, self.rank, self.world = config, config.rank, config.world_size
        self.is_main = self.rank == 0
        self.device = torch.device(config.device) if config.device else default_device()
        self.kept_freed_memory = self.device.type == "cpu" and config.keep_freed_memory and keep_freed_memory()
        self.model = model.to(self.device)
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self._wrap(self.model)
        self.train_data, self.val_data, self.augment = train_data, val_data, augment
        # On a GPU the decoded uint8 images move there once, so a batch is gathered where it is used.
        self._train_source = on_device(train_data, self.device, labels=True)
        self._val_source = on_device(val_data, self.device, labels=False)
        # How often the running metrics come back from the device: every step on a CPU (no cost),
        # every 50 steps on a GPU (each read waits for the GPU to finish its queue).
        self.sync_every = 1 if self.device.type == "cpu" else 50
        self.optimizer = self._make_optimizer(model)
        self.scheduler = self._make_scheduler()
        # cuda-convnet's recipe holds out one of its five training batches first: a class-balanced fifth
        self.holdout = (cuda_convnet.holdout_split(train_data.labels, cuda_convnet.holdout_size(train_data))
                        if config.recipe else None)
        self.held_out = train_data.subset(self.holdout[1]) if config.recipe else None  # its images, scored
        self.aug_gen = torch.Generator()
        self.keeper = RunKeeper(config, self.rank, self.world)
        self.identity = {"train": data_identity(train_data), "val": data_identity(val_data)}
        self.history = History(run_meta(config, self.device, self.kept_freed_memory, train_data, val_data, model), [])
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.totals = EpochTotals()
        self.on_epoch_end = None  # called with the trainer after each epoch's log and checkpoint
        self.stop_requested = False  # set (by a signal handler) to stop at the next step, with a checkpoint
        self.stopped_early = False  # the run reached stop_at_train_error
        self.resumed_from = None  # the checkpoint resume() loaded

    # ------------------------------------------------------------------- the fit
    def fit(self, resume: bool = False) -> History:
        """Train to ``config.epochs`` (from the newest checkpoint with ``resume``). One process at a
        time may train in ``checkpoint_dir``, and a new run refuses a folder that holds another."""
        c = self.config
        with self.keeper.lock():
            if resume:
                self.resume()
            if self.resumed_from is None and self.global_step == 0:
                self.keeper.refuse_another_run()
            while self.epoch < c.epochs:
                self.train_epoch()
                self.end_epoch()
                target = c.stop_at_train_error
                if target is not None and self.history.epochs[-1]["train_top1"] <= target:
                    self.stopped_early = True
                    break
                if self.stop_requested:
                    raise self._stopped(self.keeper.newest())
        return self.history

    def train_epoch(self) -> None:
        """The steps of one epoch from ``step_in_epoch`` on (a resumed epoch continues where it
        stopped), checkpointing every ``checkpoint_every_steps`` steps if asked."""
        c = self.config
        images = self._epoch_images()  # which training images this epoch draws from (None: all)
        batches = epoch_batches(len(self.train_data) if images is None else len(images), c.batch_size, c.seed,
                                self.epoch, self.rank, self.world)
        batches = batches if images is None else [images[b] for b in batches]
        if self.step_in_epoch == 0:  # each process draws its own dropout masks and augmentation
            torch.manual_seed(epoch_seed(c.seed, self.epoch, 1 + 16 * self.rank))
            self.aug_gen.manual_seed(epoch_seed(c.seed, self.epoch, 2 + 16 * self.rank))
            self.totals = EpochTotals()
        self.steps_in_epoch = len(batches)
        self.net.train()
        bar = progress(None, c.progress and self.is_main, total=len(batches), initial=self.step_in_epoch,
                       desc=f"epoch {self.epoch + 1}/{c.epochs}", leave=False)
        t0 = time.perf_counter()
        # loss sum, top-1 hits, top-5 hits since the last read, summed where the model runs
        sums, pending = torch.zeros(3, dtype=torch.float64, device=self.device), 0
        for xb, yb in iterate_batches(self._train_source, batches[self.step_in_epoch:], c.workers):
            loss, logits, y = self.train_step(xb, yb)
            sums += torch.cat([(loss.double() * len(y)).view(1), topk_hits(logits, y).double()])
            pending, self.totals.n = pending + 1, self.totals.n + len(y)
            self.step_in_epoch, self.global_step = self.step_in_epoch + 1, self.global_step + 1
            checkpoint_now = self.step_in_epoch < len(batches) and bool(
                self.stop_requested  # a stop saves the partial epoch at this step boundary
                or (c.checkpoint_every_steps and self.step_in_epoch % c.checkpoint_every_steps == 0))
            if pending >= self.sync_every or checkpoint_now:
                self._read_sums(sums, pending)
                pending = 0
                bar.set_postfix(loss=f"{self.totals.loss / self.totals.n:.3f}",
                                err=f"{1 - self.totals.top1 / self.totals.n:.3f}", refresh=False)
            bar.update(1)
            if checkpoint_now:
                self.totals.seconds, t0 = self.totals.seconds + time.perf_counter() - t0, time.perf_counter()
                path = self.save_checkpoint()
                if self.stop_requested:
                    bar.close()
                    raise self._stopped(path)
        self._read_sums(sums, pending)
        bar.close()
        self.totals.seconds += time.perf_counter() - t0

    def train_step(self, x: torch.Tensor, y: torch.Tensor):
        """Augment a uint8 batch and take one step (:func:`sgd_step`); (loss, logits, labels)."""
        x = self.augment.train(x.to(self.device, non_blocking=True), self.aug_gen)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(self.device, non_blocking=True)
        loss, logits = sgd_step(self.net, self.optimizer, x, y, self.config.amp)
        return loss, logits, y

    def end_epoch(self) -> None:
        """The epoch's record (training metrics, validation, learning rate), the schedule's step,
        then the checkpoint and the log."""
        c = self.config
        record = {"epoch": self.epoch + 1, "steps": self.steps_in_epoch, "lr": self.optimizer.param_groups[0]["lr"],
                  **self._epoch_totals().record()}
        if self.val_data is not None and ((self.epoch + 1) % c.eval_every == 0 or self.epoch + 1 == c.epochs):
            t = time.perf_counter()
            # every process evaluates the same (synchronised) model, so the schedule stays in step
            val = evaluate(self.model, self._val_source, self.augment, batch_size=max(256, c.batch_size),
                           device=self.device)
            record.update({f"val_{k}": v for k, v in val.items()}, val_seconds=time.perf_counter() - t)
        record.update(self._recipe_measures(record))
        if c.schedule == "plateau" and "val_top1" in record and not c.recipe:
            self.scheduler.step(record["val_top1"])
        elif c.schedule == "step" or c.recipe:
            self.scheduler.step()
        self.history.epochs.append(record)
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.save_checkpoint()
        self.keeper.write_log(self.history)
        if self.on_epoch_end is not None and self.is_main:
            self.on_epoch_end(self)

    # ------------------------------------------------------------- the helpers
    def _wrap(self, model: nn.Module) -> nn.Module:
        """What one process runs: the model, in DistributedDataParallel under torchrun, compiled if asked."""
        net = model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel  # only under torchrun

            net = DistributedDataParallel(model, device_ids=[self.device] if self.device.type == "cuda" else None)
        return torch.compile(net) if self.config.compile else net

    def _make_optimizer(self, model: nn.Module):
        c = self.config
        if not c.recipe:
            return make_optimizer(model, c.optimizer, c.lr, c.momentum, c.weight_decay)
        groups = cuda_convnet.parameter_groups(model, eps_w=c.lr, eps_b=2 * c.lr, momentum=c.momentum)  # epsB = 2 epsW
        return PaperSGD(groups, lr=c.lr, momentum=c.momentum, weight_decay=0.0)

    def _make_scheduler(self):
        c = self.config
        if c.recipe:
            return cuda_convnet.make_scheduler(self.optimizer, cuda_convnet.recipe_schedule(c.recipe))
        if c.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(  # min_lr: at most max_lr_drops divisions
                self.optimizer, mode="min", factor=0.1, patience=c.plateau_patience, min_lr=c.lr * 0.1**c.max_lr_drops)
        if c.schedule == "step":
            return torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(c.milestones), gamma=0.1)
        return None

    def _epoch_images(self) -> torch.Tensor | None:
        """The training images of this epoch: all (None), or those outside the hold-out while the
        recipe's schedule holds it out (it is folded back in later: a planned change of the data)."""
        c = self.config
        if c.recipe and cuda_convnet.uses_holdout_at(cuda_convnet.recipe_schedule(c.recipe), self.epoch):
            return self.holdout[0]
        return None

    def _recipe_measures(self, record: dict) -> dict:
        """cuda-convnet's recipe: the hold-out's error while held out, the nine-crop test at the end."""
        if not self.config.recipe or self.val_data is None:
            return {}
        return cuda_convnet.recipe_measures(self.config.recipe, self.epoch, "val_top1" in record, self.model,
                                            self.held_out, self.val_data, self.augment, self.device)

    def _read_sums(self, sums: torch.Tensor, steps: int) -> None:
        """Add the metrics summed on the device since the last read to the epoch's totals; stop
        with TrainingDivergedError if the loss of any of those steps was not finite."""
        if steps == 0:
            return
        loss = sums[0].item()
        if not math.isfinite(loss):
            raise self._diverged(loss, steps)
        self.totals.add_sums(sums)
        sums.zero_()

    def _epoch_totals(self) -> EpochTotals:
        """The epoch's totals over every process's share of each batch (this process's alone)."""
        totals = replace(self.totals)
        if self.world > 1:
            parts = all_ranks({k: getattr(totals, k) for k in ("loss", "top1", "top5", "n")}, self.world)
            for k in ("loss", "top1", "top5", "n"):
                setattr(totals, k, sum(p[k] for p in parts))
        return totals

    def _diverged(self, loss: float, steps: int) -> TrainingDivergedError:
        latest = self.keeper.newest()
        where = (f"step {self.step_in_epoch}" if steps == 1
                 else f"one of steps {self.step_in_epoch - steps + 1}-{self.step_in_epoch}")
        return TrainingDivergedError(
            f"the loss became {loss} at epoch {self.epoch + 1}, {where} "
            f"(global step {self.global_step}). Likely causes: a learning rate too high for this init "
            f"(lr={self.optimizer.param_groups[0]['lr']:g}; the paper uses 0.01), or an init whose activations "
            "blow up. Nothing was saved after the failure"
            + (f"; the last good checkpoint is {latest}" if latest else "")
            + ". Lower the learning rate and resume (command line: the same command with a lower --lr and --resume;"
            " a different init needs a new run)."
        )

    def _stopped(self, path: Path | None) -> TrainingStopped:
        where = f"after epoch {self.epoch}" + (f", step {self.step_in_epoch}" if self.step_in_epoch else "")
        saved = f"; the run resumes from {shown(path)}" if path else "; nothing was saved (no checkpoint_dir)"
        return TrainingStopped(f"stopped as asked {where}{saved}", path)

    # ------------------------------------------------- checkpoints, through the keeper
    def state_dict(self) -> dict:
        """The run as tensors and plain data: weights, optimiser, schedule, position, random state, log,
        settings, the data's identity, the model's description and what evaluating it takes."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "partial": asdict(self.totals),
            "rng": rng_state(self.aug_gen),
            "history": self.history.to_json(),
            "config": asdict(self.config),
            "data": self.identity,  # what resume compares
            "model_description": model_description(self.model),  # what resume compares; how evaluate builds it
            "evaluation": evaluation_spec(self.augment, self.val_data),
        }

    def save_checkpoint(self) -> Path | None:
        return self.keeper.save(self.state_dict(), self.epoch, self.step_in_epoch)

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``: the same run, or ResumeMismatchError naming each setting that
        differs; a new learning rate (``config.lr``) is applied to the optimiser."""
        missing = [k for k in ("model", "optimizer", "epoch", "step_in_epoch", "global_step", "rng", "partial",
                               "history", "config") if k not in state]
        if missing:
            what = "random state" if missing == ["rng"] else "state"
            raise CheckpointError(f"the checkpoint's {what} lacks {', '.join(missing)}: it cannot continue the run "
                                  "exactly. Resume from an intact checkpoint, or start the run again.")
        changes = self.keeper.check_same_run(state, self.config, self.model, self.identity)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step_in_epoch, self.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        rng, partial = state.get("rng"), state.get("partial")
        if isinstance(rng, list):  # saved by the keeper: one entry per rank
            if len(rng) != self.world:
                raise CheckpointError(f"this checkpoint was saved by {len(rng)} processes; "
                                      f"resume it with {len(rng)} (torchrun --nproc_per_node)")
            rng, partial = rng[self.rank], partial[self.rank]
        self.totals = EpochTotals(**partial)
        set_rng_state(rng, self.aug_gen)
        if "lr" in changes and self.config.recipe:
            raise ResumeMismatchError(f"the run in {shown(self.config.checkpoint_dir)} follows {self.config.recipe}, "
                                      "whose rates are fixed by its schedule; resume it without a new lr")
        if "lr" in changes:  # asked for explicitly: the paper's lr was lowered by hand (§5)
            changes["lr"][0] = self.optimizer.param_groups[0]["lr"]  # the rate it had reached
            set_learning_rate(self.optimizer, self.scheduler, self.config.lr)
        self.history = self.keeper.resumed_history(state["history"], self.epoch, self.config.epochs, changes)

    def resume(self, checkpoint: tuple | None = None) -> Path | None:
        """Continue from the newest readable checkpoint in ``checkpoint_dir``, if any (or from
        ``checkpoint``, a (state, path) pair already loaded)."""
        state, path = checkpoint or self.keeper.load_newest()
        if state is None:
            return None
        self.load_state_dict(state)
        self.resumed_from = path
        self.keeper.write_log(self.history)  # the log matches the checkpoint again, even if a kill came between
        return path

    def write_log(self) -> None:
        self.keeper.write_log(self.history)
