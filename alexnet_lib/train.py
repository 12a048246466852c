"""Training as in §5: the paper's update rule, its schedule, and checkpoints that resume exactly.

    v_{i+1} := 0.9 · v_i − 0.0005 · ε · w_i − ε · ⟨∂L/∂w | w_i⟩_{D_i}
    w_{i+1} := w_i + v_{i+1}

"We used an equal learning rate for all layers ... The heuristic which we followed was
to divide the learning rate by 10 when the validation error rate stopped improving with
the current learning rate."

The trainer works on uint8 batches and augments them as tensors (``transforms.Augment``).
Every epoch's data order and augmentation are drawn from generators seeded by
(seed, epoch), and every random state is saved with the checkpoint, so a run that is
killed and resumed ends with the same weights, bit for bit, as one that never stopped.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import PROJECT_ROOT, ImageTensors, atomic_save, display_path
from .evaluate import evaluate, topk_hits
from .experiments import progress as progress_bar
from .layers import PReLU, check_choice

OPTIMIZERS = ("paper", "sgd")
SCHEDULES = ("plateau", "step", "constant")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read."""


# ---------------------------------------------------------------------- the update rule
class PaperSGD(torch.optim.Optimizer):
    """The update rule of §5, literally: v ← m·v − wd·ε·w − ε·g;  w ← w + v.

    ``torch.optim.SGD(momentum=m, weight_decay=wd)`` keeps b ← m·b + g + wd·w and steps
    w ← w − ε·b. While ε is constant the two are the same (v = −ε·b). When ε changes,
    torch's carried momentum is rescaled by ε_new/ε_old at once; the paper's is not.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4):
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr} (the paper starts at 0.01)")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum} (the paper uses 0.9)")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay} (the paper uses 5e-4)")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, m, wd = group["lr"], group["momentum"], group["weight_decay"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if "velocity" not in self.state[p]:
                    self.state[p]["velocity"] = torch.zeros_like(p)
            vs = [self.state[p]["velocity"] for p in params]
            # The rule above, one fused kernel per line for all the layers at once.
            torch._foreach_mul_(vs, m)
            if wd:
                torch._foreach_add_(vs, params, alpha=-wd * lr)
            torch._foreach_add_(vs, [p.grad for p in params], alpha=-lr)
            torch._foreach_add_(params, vs)
        return loss


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights only: not on biases (as in cuda-convnet and Caffe), and
    never on PReLU coefficients (He et al. 2015, §2.1)."""
    no_decay_ids = {id(m.weight) for m in model.modules() if isinstance(m, PReLU)}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if id(p) in no_decay_ids or name.endswith("bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_optimizer(model: nn.Module, name: str, lr: float, momentum: float, weight_decay: float):
    check_choice("optimizer", name, OPTIMIZERS)
    if lr <= 0:
        raise ValueError(f"learning rate must be positive, got {lr} (the paper starts at 0.01)")
    groups = parameter_groups(model, weight_decay)
    if name == "paper":
        return PaperSGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


# ----------------------------------------------------------------------- configuration
@dataclass
class TrainConfig:
    """Everything that decides a training run. Defaults are the paper's (§5)."""

    epochs: int = 90
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: str = "paper"  # "paper" (§5 rule) or "sgd" (torch.optim.SGD)
    schedule: str = "plateau"  # "plateau" (÷10 when val error stalls), "step", "constant"
    milestones: tuple = ()  # epochs at which "step" divides lr by 10
    plateau_patience: int = 2  # epochs without improvement before ÷10
    seed: int = 0
    device: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every_steps: int = 0  # 0: once per epoch only
    keep_checkpoints: int = 2
    log_path: str | None = None
    eval_every: int = 1
    workers: int = 0  # DataLoader workers, for streamed datasets only
    channels_last: bool = False  # NHWC weights and batches: faster for plain conv nets on a CPU (bench/bench_cifar_loop.py)
    amp: bool = False  # bf16 autocast for the forward pass (on a GPU; weights and optimiser stay fp32)
    compile: bool = False  # torch.compile the model (helps on a GPU; measure before using it on a CPU)
    stop_at_train_error: float | None = None  # end the run after the first epoch whose training top-1 error is at most this
    keep_freed_memory: bool = True  # on a CPU: reuse freed buffers instead of page-faulting fresh ones (keep_freed_memory())
    rank: int = 0  # this process under torchrun (0 alone)
    world_size: int = 1  # processes under torchrun; batch_size is the global batch
    progress: bool = True
    mode: str = ""
    label: str = ""
    meta: dict = field(default_factory=dict)

    def validate(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size} (the paper uses 128)")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr} (the paper starts at 0.01)")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.stop_at_train_error is not None and not 0 <= self.stop_at_train_error <= 1:
            raise ValueError(f"stop_at_train_error is an error rate in [0, 1], got {self.stop_at_train_error} (Figure 1 uses 0.25)")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_FREED_MEMORY_KEPT = False


def keep_freed_memory() -> bool:
    """Have the C library keep freed memory for reuse instead of handing it back to the OS.

    A train step on a CPU allocates and frees activation buffers of tens of MB (conv1's maps
    of a batch of 32 are 37 MB). glibc's malloc serves every block above 32 MB with a fresh
    ``mmap`` and returns it on free, so each new buffer costs a page fault per 4 KB page on
    first touch: at AlexNet's sizes, batch 32, that was 30% of a step (bench/bench_train.py
    with and without --glibc-malloc-default measures it). With ``mmap`` switched off and the
    heap never trimmed below 1 GB, freed buffers are reused. Process-wide and permanent;
    glibc (Linux) only. Returns whether it is in effect.
    """
    global _FREED_MEMORY_KEPT
    if _FREED_MEMORY_KEPT:
        return True
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_mmap_max, m_trim_threshold = -4, -1  # from glibc's malloc.h
        _FREED_MEMORY_KEPT = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError):  # not glibc (musl, another libc)
        return False
    return _FREED_MEMORY_KEPT


def git_commit() -> str:
    """The project's commit, for logs: ``git rev-parse`` or, in a copy of the tree without its
    git folder (a tree sent to another machine), ``$ALEXNET_COMMIT``."""
    if os.environ.get("ALEXNET_COMMIT"):
        return os.environ["ALEXNET_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def command_line() -> str:
    """How this process was started, without the machine's paths: 'python -m alexnet_lib ...'."""
    argv = sys.argv or [""]
    argv = argv[:1] + [display_path(a) if os.path.isabs(a) else a for a in argv[1:]]
    if Path(argv[0]).name == "__main__.py" and Path(argv[0]).parent.name == "alexnet_lib":
        return "python -m alexnet_lib " + " ".join(argv[1:])
    if "ipykernel" in argv[0]:
        return "(a notebook)"
    return " ".join([Path(argv[0]).name, *argv[1:]])


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A distinct seed for each (run seed, epoch, stream) triple."""
    return (seed * 1_000_003 + epoch * 7_919 + stream) % (2**63)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[torch.Tensor]:
    """The index batches of one epoch for one process: drawn from (seed, epoch) alone.

    ``batch_size`` is the global batch. PyTorch's DistributedSampler shuffles with
    (seed + epoch) and gives rank r every world-th index; taken in runs of
    batch_size / world, the ranks' j-th batches together are exactly the j-th global batch
    of a single process (world = 1). The last incomplete batch is dropped.
    """
    if n < batch_size:
        raise ValueError(f"the training set has {n} images, fewer than one batch of {batch_size}; lower batch_size")
    if batch_size % world:
        raise ValueError(f"the global batch {batch_size} must divide evenly among {world} processes")
    sampler = torch.utils.data.DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    local = batch_size // world
    indices = torch.tensor(list(sampler), dtype=torch.int64)
    return list(indices[: (n // batch_size) * local].split(local))


def distributed_setup():
    """(rank, world size, device) under torchrun; (0, 1, None) in a plain process.

    torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address. The backend is
    nccl on GPUs (one per process) and gloo on CPUs.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def _on_device(data, device: torch.device, labels: bool):
    """``data`` with its uint8 images (and labels) on ``device`` if that is a GPU with room
    for them (at most a third of its free memory); otherwise ``data`` itself."""
    if data is None or device.type != "cuda" or not isinstance(data, ImageTensors):
        return data
    free, _ = torch.cuda.mem_get_info(device)
    if data.images.numel() > free / 3:
        return data
    return replace(data, images=data.images.to(device), labels=data.labels.to(device) if labels else data.labels)


def iterate_batches(data, batches, workers: int = 0):
    """(uint8 images, labels) for each index batch: sliced from an in-memory
    ImageTensors, or read by a DataLoader from a streamed dataset (ILSVRC-2012)."""
    if isinstance(data, ImageTensors):
        for idx in batches:
            idx = idx.to(data.images.device, non_blocking=True)
            yield data.images[idx], data.labels[idx]
        return
    loader = torch.utils.data.DataLoader(
        data, batch_sampler=[b.tolist() for b in batches], num_workers=workers,
        pin_memory=torch.cuda.is_available(), persistent_workers=False,
    )
    for x, y in loader:
        keep = y >= 0  # a streamed corrupt image comes back with label -1 when skipped
        yield x[keep], y[keep]


# ------------------------------------------------------------------------- checkpoints
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
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}. It is damaged or not a checkpoint.") from e


def _rng_state(aug_gen: torch.Generator) -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "augment": aug_gen.get_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, aug_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    aug_gen.set_state(state["augment"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- the loop
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


def write_json_atomic(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Trainer:
    """Trains a model on uint8 ImageTensors with batched tensor augmentation.

    >>> trainer = Trainer(model, train_data, val_data, augment, TrainConfig(epochs=10))
    >>> history = trainer.fit()            # or trainer.fit(resume=True)
    """

    def __init__(self, model: nn.Module, train_data: ImageTensors, val_data: ImageTensors | None, augment, config: TrainConfig):
        config.validate()
        self.config = config
        self.rank, self.world = config.rank, config.world_size
        self.is_main = self.rank == 0
        self.device = torch.device(config.device) if config.device else default_device()
        self.kept_freed_memory = self.device.type == "cpu" and config.keep_freed_memory and keep_freed_memory()
        self.model = model.to(self.device)
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        # What one process runs: the model itself, or DistributedDataParallel around it.
        self.net = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        if config.compile:
            self.net = torch.compile(self.net)
        self.train_data, self.val_data, self.augment = train_data, val_data, augment
        # On a GPU the decoded uint8 images move there once, so a batch is gathered where it is used.
        self._train_source = _on_device(train_data, self.device, labels=True)
        self._val_source = _on_device(val_data, self.device, labels=False)
        # How often the running metrics come back from the device: every step on a CPU (no cost),
        # every 50 steps on a GPU (each read waits for the GPU to finish its queue).
        self.sync_every = 1 if self.device.type == "cpu" else 50
        self.stopped_early = False
        self.optimizer = make_optimizer(model, config.optimizer, config.lr, config.momentum, config.weight_decay)
        if config.schedule == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="min", factor=0.1, patience=config.plateau_patience
            )
        elif config.schedule == "step":
            self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.milestones), gamma=0.1)
        else:
            self.scheduler = None
        self.aug_gen = torch.Generator()
        self.on_epoch_end = None  # called with the trainer after each epoch's log and checkpoint
        self.history = History(self._meta(), [])
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self._partial = {"loss": 0.0, "top1": 0, "top5": 0, "n": 0, "seconds": 0.0}

    def _meta(self) -> dict:
        c = self.config
        return {
            "label": c.label,
            "mode": c.mode,
            "device": str(self.device) + (f" ({torch.cuda.get_device_name(self.device)})" if self.device.type == "cuda" else ""),
            "cpu_threads": torch.get_num_threads(),
            "malloc_keeps_freed_memory": self.kept_freed_memory,
            "world_size": c.world_size,
            "torch": torch.__version__,
            "commit": git_commit(),
            "seed": c.seed,
            "command": command_line(),
            "train": repr(self.train_data),
            "val": repr(self.val_data) if self.val_data is not None else None,
            "model": type(self.model).__name__,
            "config": {k: (display_path(v) if k in ("checkpoint_dir", "log_path") and v else v)
                       for k, v in asdict(c).items() if k != "meta"},
            **c.meta,
        }

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "partial": dict(self._partial),
            "rng": _rng_state(self.aug_gen),
            "history": self.history.to_json(),
            "config": asdict(self.config),
        }

    def _all_ranks(self, obj) -> list:
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        gathered = [None] * self.world
        dist.all_gather_object(gathered, obj)
        return gathered

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def save_checkpoint(self) -> Path | None:
        if not self.config.checkpoint_dir:
            return None
        state = self.state_dict()
        state["rng"] = self._all_ranks(state["rng"])  # one entry per rank
        state["partial"] = self._all_ranks(state["partial"])
        if not self.is_main:
            self._barrier()
            return None
        d = Path(self.config.checkpoint_dir)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"ckpt-e{self.epoch:04d}-s{self.step_in_epoch:07d}.pt"
        atomic_save(state, path)
        for old in checkpoint_paths(d)[self.config.keep_checkpoints :]:
            old.unlink(missing_ok=True)
        self._barrier()
        return path

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step_in_epoch, self.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        rng, partial = state["rng"], state["partial"]
        if isinstance(rng, list):  # saved by save_checkpoint: one entry per rank
            if len(rng) != self.world:
                raise CheckpointError(
                    f"this checkpoint was saved by {len(rng)} processes; resume it with {len(rng)} (torchrun --nproc_per_node)"
                )
            rng, partial = rng[self.rank], partial[self.rank]
        self._partial = dict(partial)
        _set_rng_state(rng, self.aug_gen)
        saved = state["history"]
        resume = {"at_epoch": self.epoch, "command": command_line(), "commit": git_commit(),
                  "epochs": self.config.epochs, "cpu_threads": torch.get_num_threads()}
        meta = {**saved["meta"], "resumed": True, "resumes": saved["meta"].get("resumes", []) + [resume]}
        self.history = History(meta, list(saved["epochs"]))

    def resume(self) -> Path | None:
        """Continue from the newest readable checkpoint in ``checkpoint_dir``, if any."""
        if not self.config.checkpoint_dir:
            raise ValueError("resume needs config.checkpoint_dir (the folder the run saved its checkpoints to)")
        state, path = load_latest_checkpoint(self.config.checkpoint_dir, map_location=self.device)
        if state is None:
            return None
        self.load_state_dict(state)
        self.write_log()  # the log matches the checkpoint again, even if a kill came between them
        return path

    def write_log(self) -> None:
        if self.config.log_path and self.is_main:
            write_json_atomic(self.history.to_json(), Path(self.config.log_path))

    # ----------------------------------------------------------------------- training
    def _start_epoch_rng(self) -> None:
        # Each process draws its own dropout masks and augmentation (stream offset by rank).
        torch.manual_seed(epoch_seed(self.config.seed, self.epoch, 1 + 16 * self.rank))
        self.aug_gen.manual_seed(epoch_seed(self.config.seed, self.epoch, 2 + 16 * self.rank))

    def train_step(self, x: torch.Tensor, y: torch.Tensor):
        x = self.augment.train(x.to(self.device, non_blocking=True), self.aug_gen)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.amp):
            logits = self.net(x)
        loss = F.cross_entropy(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach(), logits.detach(), y

    def _diverged(self, loss: float, steps: int) -> TrainingDivergedError:
        latest = checkpoint_paths(self.config.checkpoint_dir) if self.config.checkpoint_dir else []
        where = f"step {self.step_in_epoch}" if steps == 1 else f"one of steps {self.step_in_epoch - steps + 1}-{self.step_in_epoch}"
        return TrainingDivergedError(
            f"the loss became {loss} at epoch {self.epoch + 1}, {where} "
            f"(global step {self.global_step}). Likely causes: a learning rate too high for this init "
            f"(lr={self.optimizer.param_groups[0]['lr']:g}; the paper uses 0.01), or an init whose activations "
            "blow up. Nothing was saved after the failure"
            + (f"; the last good checkpoint is {latest[0]}" if latest else "")
            + ". Lower lr (or change init) and resume."
        )

    def _flush(self, acc: torch.Tensor, steps: int) -> None:
        """Add the metrics summed on the device since the last flush to the epoch's totals;
        stop with TrainingDivergedError if the loss of any of those steps was not finite."""
        if steps == 0:
            return
        loss, top1, top5 = acc.tolist()
        if not math.isfinite(loss):
            raise self._diverged(loss, steps)
        p = self._partial
        p["loss"] += loss
        p["top1"] += int(top1)
        p["top5"] += int(top5)
        acc.zero_()

    def fit(self, resume: bool = False) -> History:
        c = self.config
        if resume:
            self.resume()
        while self.epoch < c.epochs:
            batches = epoch_batches(len(self.train_data), c.batch_size, c.seed, self.epoch, self.rank, self.world)
            if self.step_in_epoch == 0:
                self._start_epoch_rng()
                self._partial = {"loss": 0.0, "top1": 0, "top5": 0, "n": 0, "seconds": 0.0}
            self.net.train()
            bar = progress_bar(None, c.progress and self.is_main, total=len(batches), initial=self.step_in_epoch,
                               desc=f"epoch {self.epoch + 1}/{c.epochs}", leave=False)
            t0 = time.perf_counter()
            # loss sum, top-1 hits, top-5 hits since the last flush, summed where the model runs
            acc, pending = torch.zeros(3, dtype=torch.float64, device=self.device), 0
            for xb, yb in iterate_batches(self._train_source, batches[self.step_in_epoch :], c.workers):
                loss, logits, y = self.train_step(xb, yb)
                acc += torch.cat([(loss.double() * len(y)).view(1), topk_hits(logits, y).double()])
                pending += 1
                p = self._partial
                p["n"] += len(y)
                self.step_in_epoch += 1
                self.global_step += 1
                checkpoint_now = bool(c.checkpoint_every_steps and self.step_in_epoch % c.checkpoint_every_steps == 0
                                      and self.step_in_epoch < len(batches))
                if pending >= self.sync_every or checkpoint_now:
                    self._flush(acc, pending)
                    pending = 0
                    bar.set_postfix(loss=f"{p['loss'] / p['n']:.3f}", err=f"{1 - p['top1'] / p['n']:.3f}", refresh=False)
                bar.update(1)
                if checkpoint_now:
                    p["seconds"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    self.save_checkpoint()
            self._flush(acc, pending)
            bar.close()
            self._partial["seconds"] += time.perf_counter() - t0
            self._end_epoch(len(batches))
            target = c.stop_at_train_error
            if target is not None and self.history.epochs[-1]["train_top1"] <= target:
                self.stopped_early = True
                break
        return self.history

    def _end_epoch(self, steps: int) -> None:
        c, p = self.config, dict(self._partial)
        if self.world > 1:  # the epoch's metrics over every process's share of each batch
            totals = self._all_ranks({k: p[k] for k in ("loss", "top1", "top5", "n")})
            for k in ("loss", "top1", "top5", "n"):
                p[k] = sum(t[k] for t in totals)
        record = {
            "epoch": self.epoch + 1,
            "steps": steps,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": p["loss"] / p["n"],
            "train_top1": 1 - p["top1"] / p["n"],
            "train_top5": 1 - p["top5"] / p["n"],
            "train_seconds": p["seconds"],
        }
        if self.val_data is not None and ((self.epoch + 1) % c.eval_every == 0 or self.epoch + 1 == c.epochs):
            t = time.perf_counter()
            # every process evaluates the same (synchronised) model, so the schedule stays in step
            val = evaluate(self.model, self._val_source, self.augment, batch_size=max(256, c.batch_size), device=self.device)
            record.update({f"val_{k}": v for k, v in val.items()}, val_seconds=time.perf_counter() - t)
        if self.scheduler is not None:
            if c.schedule == "plateau":
                if "val_top1" in record:
                    self.scheduler.step(record["val_top1"])
            else:
                self.scheduler.step()
        self.history.epochs.append(record)
        self.epoch += 1
        self.step_in_epoch = 0
        self.save_checkpoint()
        self.write_log()
        if self.on_epoch_end is not None and self.is_main:
            self.on_epoch_end(self)


def fit(model, train_data, val_data, augment, config: TrainConfig | None = None, resume: bool = False, **overrides) -> History:
    """One call: build a Trainer with ``config`` (or TrainConfig(**overrides)) and fit."""
    config = config or TrainConfig(**overrides)
    return Trainer(model, train_data, val_data, augment, config).fit(resume=resume)


def epochs_to_reach(errors, target: float) -> float:
    """The first epoch (1-based) whose error is at or below ``target``; inf if never."""
    for i, e in enumerate(errors):
        if e is not None and e <= target:
            return i + 1
    return math.inf


def epochs_to_levels(curves: dict, levels) -> tuple[list, dict]:
    """Compare runs at every level they all reached: errors or losses, lower is better.

    ``curves`` maps a label to its runs' per-epoch values, e.g. ``{"relu": [[...], [...]]}``.
    A level is kept if every run gets to it, and no run is already there after its first
    epoch (there the epoch count says nothing). Returns the kept levels, in the order given,
    and ``{level: {label: [epochs to reach it, one per run]}}``.
    """
    runs = [c for cs in curves.values() for c in cs]
    if not runs:
        return [], {}
    first = min(c[0] for c in runs)
    kept = [t for t in levels if t < first and all(not math.isinf(epochs_to_reach(c, t)) for c in runs)]
    return kept, {t: {label: [epochs_to_reach(c, t) for c in cs] for label, cs in curves.items()} for t in kept}
