"""Which images each step sees, in which process, on which device.

The order of every epoch is drawn from (seed, epoch) alone, so a resumed run sees the same
batches as one that never stopped, and under torchrun the processes' shares of a batch
together are exactly the batch one process would see (:func:`epoch_batches`). Batches come
from decoded uint8 tensors, moved to the GPU once when there is room, or from a streamed
dataset through a DataLoader (:func:`iterate_batches`).
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch
import torch.distributed as dist

from .data import ImageTensors


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
        raise ValueError(f"the training set has {n} images, fewer than one batch of {batch_size}; "
                         "lower the batch size (--batch-size)")
    if batch_size % world:
        raise ValueError(f"the global batch {batch_size} must divide evenly among {world} processes")
    sampler = torch.utils.data.DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    local = batch_size // world
    indices = torch.tensor(list(sampler), dtype=torch.int64)
    return list(indices[: (n // batch_size) * local].split(local))


def distributed_setup():
    """(rank, world size, device) under torchrun; (0, 1, None) in a plain process.

    torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address. The backend is
    nccl on GPUs (one per process) and gloo on CPUs.
    """
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


def all_ranks(obj, world: int) -> list:
    """``obj`` of every process under torchrun, in rank order (``[obj]`` alone)."""
    if world == 1:
        return [obj]
    gathered = [None] * world
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(world: int) -> None:
    """Wait for every process under torchrun (nothing alone)."""
    if world > 1:
        dist.barrier()


def on_device(data, device: torch.device, labels: bool):
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
        data,
        batch_sampler=[b.tolist() for b in batches],
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )
    for x, y in loader:
        keep = y >= 0  # a streamed corrupt image comes back with label -1 when skipped
        yield x[keep], y[keep]
