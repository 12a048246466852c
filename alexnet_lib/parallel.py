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
import torch.nn.functional as F
from torch import nn

from .layers import LocalResponseNorm
from .model import AlexNet


def default_devices() -> tuple[torch.device, torch.device]:
    if torch.cuda.device_count() >= 2:
        return torch.device("cuda:0"), torch.device("cuda:1")
    if torch.cuda.device_count() == 1:
        return torch.device("cuda:0"), torch.device("cuda:0")
    return torch.device("cpu"), torch.device("cpu")


class TowerParallel(nn.Module):
    """Model parallelism of §3.2 around an existing two-tower AlexNet (shares its weights).

    ``transfers`` lists every exchange of the last forward pass as
    (layer, from_tower, to_tower, bytes).
    """

    def __init__(self, model: AlexNet, devices=None):
        super().__init__()
        if model.towers_count != 2:
            raise ValueError("TowerParallel needs the two-tower model (towers=2)")
        if not model.tower_isolation:
            raise ValueError("TowerParallel splits the paper's net; with tower_isolation=False every layer would need an exchange")
        if getattr(model.lrn, "alpha_convention", None) == "caffe":
            raise ValueError("Caffe's LRN normalises across the tower boundary, so its towers cannot run apart")
        self.model = model
        self.devices = tuple(torch.device(d) for d in (devices or default_devices()))
        for tower, device in zip(model.towers, self.devices):
            tower.to(device)
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

    def _act(self, t: int, name: str, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if m.activation == "relu":
            return F.relu(x)
        if m.activation == "tanh":
            return torch.tanh(x)
        return m.towers[t].act[name](x)

    def _conv(self, t: int, name: str, x: torch.Tensor) -> torch.Tensor:
        layer = getattr(self.model.towers[t], name)
        return self._act(t, name, layer(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        m.check_input(x)
        self.transfers = []
        x = F.pad(x, (0, m.input_pad, 0, m.input_pad))
        lrn = m.lrn
        if isinstance(lrn, LocalResponseNorm):  # the same LRN, applied to one tower's maps
            lrn = LocalResponseNorm(lrn.size, lrn.alpha, lrn.beta, lrn.k, lrn.alpha_convention, groups=1)
        # conv1: each tower sees all three RGB channels (the input is sent to both GPUs).
        h = [m.pool(lrn(self._conv(t, "conv1", x.to(d)))) for t, d in enumerate(self.devices)]
        # conv2: own tower only.
        h = [m.pool(lrn(self._conv(t, "conv2", h[t]))) for t in range(2)]
        # conv3: both towers -> exchange.
        h = self._exchange("conv3", h)
        h = [self._conv(t, "conv3", h[t]) for t in range(2)]
        h = [self._conv(t, "conv4", h[t]) for t in range(2)]
        h = [m.pool(self._conv(t, "conv5", h[t])) for t in range(2)]
        # fc6 sees the pool5 maps of both towers, flattened in tower order.
        h = [hh.flatten(1) for hh in self._exchange("fc6", h)]
        h = [self._fc_block(t, "fc6", h[t]) for t in range(2)]
        h = self._exchange("fc7", h)
        h = [self._fc_block(t, "fc7", h[t]) for t in range(2)]
        h = self._exchange("fc8", h)
        logits = [m.towers[t].fc8(h[t]) for t in range(2)]
        out_device = self.devices[0]
        self.transfers.append(("logits", 1, 0, logits[1].numel() * logits[1].element_size()))
        return torch.cat([logits[0], logits[1].to(out_device)], dim=1)

    def _fc_block(self, t: int, name: str, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if m.dropout_placement == "torchvision":
            x = m.drop(x)
        x = self._act(t, name, getattr(m.towers[t], name)(x))
        return m.drop(x) if m.dropout_placement == "paper" else x

    def bytes_transferred(self) -> int:
        return sum(b for *_, b in self.transfers)


__all__ = ["TowerParallel", "default_devices"]
