"""§3.2: the two towers on two devices, talking only where the paper lets them.

"The parallelization scheme that we employ essentially puts half of the kernels (or
neurons) on each GPU, with one additional trick: the GPUs communicate only in certain
layers. This means that, for example, the kernels of layer 3 take input from all kernel
maps in layer 2. However, kernels in layer 4 take input only from those kernel maps in
layer 3 which reside on the same GPU."

:class:`TowerParallel` runs an :class:`~alexnet_lib.model.AlexNet`'s towers apart, each
on its own device, with every cross-tower exchange (the inputs of conv3, fc6, fc7 and
fc8) an explicit copy that is counted in bytes. With two CUDA devices the towers live on
``cuda:0`` and ``cuda:1``; on a CPU both "devices" are the CPU and the same code runs.
"""

from __future__ import annotations

import torch
from torch import nn

from .anatomy import connectivity
from .model import STAGES, AlexNet


def default_devices() -> tuple[torch.device, torch.device]:
    if torch.cuda.device_count() >= 2:
        return torch.device("cuda:0"), torch.device("cuda:1")
    if torch.cuda.device_count() == 1:
        return torch.device("cuda:0"), torch.device("cuda:0")
    return torch.device("cpu"), torch.device("cpu")


class TowerParallel(nn.Module):
    """Model parallelism of §3.2 around an existing two-tower AlexNet (shares its weights).

    Each tower runs every stage on its own device through ``AlexNet.stage(name, x, tower)``,
    the same code the fused model runs. Before the layers that read both towers (conv3,
    fc6, fc7, fc8), the towers exchange their outputs. ``transfers`` lists every exchange
    of the last forward pass as (layer, from_tower, to_tower, bytes).
    """

    def __init__(self, model: AlexNet, devices=None):
        super().__init__()
        if model.towers_count != 2:
            raise ValueError("TowerParallel needs the two-tower model (towers=2)")
        if not model.tower_isolation:
            raise ValueError(
                "TowerParallel splits the paper's net; with tower_isolation=False every layer would need an exchange"
            )
        if getattr(model.lrn, "alpha_convention", None) == "caffe":
            raise ValueError("Caffe's LRN normalises across the tower boundary, so its towers cannot run apart")
        self.model = model
        self.devices = tuple(torch.device(d) for d in (devices or default_devices()))
        for tower, device in zip(model.towers, self.devices):
            tower.to(device)
        # the layers whose towers read both towers' outputs: read from the weights' shapes
        self.exchange_before = tuple(name for name, reads in connectivity(model).items() if reads == "all")
        self.transfers: list[tuple[str, int, int, int]] = []

    def _exchange(self, layer: str, parts: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every tower gets both towers' activations, concatenated in tower order (A, then B)."""
        gathered = []
        for t, device in enumerate(self.devices):
            pieces = []
            for s, part in enumerate(parts):
                if s != t:
                    self.transfers.append((layer, s, t, part.numel() * part.element_size()))
                pieces.append(part.to(device, non_blocking=True))
            gathered.append(torch.cat(pieces, dim=1))
        return gathered

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        m.check_input(x)
        self.transfers = []
        x = m.pad_input(x)
        h = [x.to(d) for d in self.devices]  # conv1: each tower sees all three RGB channels
        for name in STAGES:
            if name in self.exchange_before:
                h = self._exchange(name, h)
            h = [m.stage(name, h[t], tower=t) for t in range(2)]
        self.transfers.append(("logits", 1, 0, h[1].numel() * h[1].element_size()))
        return torch.cat([h[0], h[1].to(self.devices[0])], dim=1)

    def bytes_transferred(self) -> int:
        return sum(b for *_, b in self.transfers)


__all__ = ["TowerParallel", "default_devices"]
