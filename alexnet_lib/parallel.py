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


# ------------------------------------------------ what each tower holds, reads and costs
import statistics  # noqa: E402
import time  # noqa: E402

from .model import CONV_GEOMETRY, LAYERS, POOLINGS, pool_output_size  # noqa: E402

#: The stages of ``AlexNet.activations`` that belong to each layer's share of a tower.
STAGES_OF_LAYER = {
    "conv1": ("conv1", "lrn1", "pool1"), "conv2": ("conv2", "lrn2", "pool2"), "conv3": ("conv3",),
    "conv4": ("conv4",), "conv5": ("conv5", "pool5"), "fc6": ("fc6",), "fc7": ("fc7",), "fc8": ("fc8",),
}


def layer_output_sizes(model: AlexNet) -> dict:
    """Height (= width) of each layer's output maps; 1 for the fully connected layers."""
    k, s = POOLINGS[model.pooling]
    c1 = model.plan.conv1_size
    p1 = pool_output_size(c1, k, s)
    p2 = pool_output_size(p1, k, s)
    return {"conv1": c1, "conv2": p1, "conv3": p2, "conv4": p2, "conv5": p2, "fc6": 1, "fc7": 1, "fc8": 1}


def connectivity(model: AlexNet) -> dict:
    """Which towers feed each tower's share of each layer, read from the weights' shapes.

    Returns ``{layer: "input" | "own" | "all"}``: conv1 reads the image; a layer whose
    input width equals its own tower's previous output reads its own tower ("own");
    one whose input is every tower's output together reads them all ("all").
    """
    out = {"conv1": "input"}
    for prev, name in zip(LAYERS, LAYERS[1:]):
        kinds = set()
        for tower in model.towers:
            fan_in = getattr(tower, name).weight.shape[1]
            area = model.plan.pool5_size**2 if name == "fc6" else 1
            own = getattr(tower, prev).weight.shape[0] * area
            every = sum(getattr(t, prev).weight.shape[0] for t in model.towers) * area
            if fan_in == every and (fan_in != own or len(model.towers) == 1):
                kinds.add("all" if len(model.towers) > 1 else "own")
            elif fan_in == own:
                kinds.add("own")
            else:
                raise ValueError(f"{name} of a tower reads {fan_in} inputs: neither its own tower's {own} nor all {every}")
        if len(kinds) != 1:
            raise ValueError(f"the towers of {name} are wired differently: {kinds}")
        out[name] = kinds.pop()
    return out


def layer_costs(model: AlexNet) -> list:
    """Per layer: its shape, where it reads from, its parameters and its multiply-adds.

    Multiply-adds per image are counted by formula: for a convolution, every output value
    costs (input maps it sees) × k × k multiply-adds, i.e. weight elements × output
    positions, summed over towers; for a fully connected layer, inputs × outputs. Biases,
    ReLU, LRN and pooling are left out (as in the usual "FLOPs" of a net).
    """
    sizes, wiring = layer_output_sizes(model), connectivity(model)
    rows = []
    for name in LAYERS:
        layers = [getattr(t, name) for t in model.towers]
        positions = sizes[name] ** 2
        conv = name in CONV_GEOMETRY
        rows.append({
            "layer": name,
            "kind": "conv" if conv else "fc",
            "reads": wiring[name],
            "out_per_tower": [m.weight.shape[0] for m in layers],
            "in_per_tower": layers[0].weight.shape[1],
            "kernel": CONV_GEOMETRY[name][0] if conv else None,
            "output_size": sizes[name],
            "params_per_tower": [sum(p.numel() for p in m.parameters()) for m in layers],
            "params": sum(p.numel() for m in layers for p in m.parameters()),
            "macs": sum(m.weight.numel() for m in layers) * positions,
        })
    return rows


def tower_memory(model: AlexNet, batch_size: int = 128, bytes_per_value: int = 4) -> list:
    """What one GPU holds to train its tower, in bytes, for one batch.

    For each tower: its weights, their gradients and the momentum buffer (one value each
    per parameter), the input batch (each GPU gets the whole image), and the activations
    kept for the backward pass: the output of every stage of its share of the net
    (conv, LRN, pooling, fc), read from a forward pass. During the backward pass the
    gradients with respect to those activations need up to as much again
    ("activation_gradients", an upper bound: a framework may free them layer by layer).
    """
    was_training = model.training
    model.eval()
    s = model.input_size
    with torch.no_grad():
        acts = model.activations(torch.zeros(1, 3, s, s, device=next(model.parameters()).device))
    model.train(was_training)
    rows = []
    for t, tower in enumerate(model.towers):
        kept = 0
        for name, stages in STAGES_OF_LAYER.items():
            share = getattr(tower, name).weight.shape[0] / sum(getattr(u, name).weight.shape[0] for u in model.towers)
            kept += sum(round(acts[st][0].numel() * share) for st in stages)
        params = sum(p.numel() for p in tower.parameters())
        values = {
            "weights": params, "weight_gradients": params, "momentum": params,
            "input": acts["input"][0].numel() * batch_size,
            "activations": kept * batch_size, "activation_gradients": kept * batch_size,
        }
        rows.append({"tower": t, **{k: v * bytes_per_value for k, v in values.items()}})
    return rows


def stage_functions(model: AlexNet) -> list:
    """Each stage of ``AlexNet.activations`` in eval mode as (name, input stage, function),
    so that each can be run, and timed, on its own input."""
    m = model

    def conv(name):
        return lambda x: m._conv(name, x)

    def fc(name, flatten=False):
        if name == "fc8":
            return lambda x: m._fc(name, x)
        return lambda x: m._activate(name, m._fc(name, x.flatten(1) if flatten else x))

    return [
        ("conv1", "padded", conv("conv1")), ("lrn1", "conv1", m.lrn), ("pool1", "lrn1", m.pool),
        ("conv2", "pool1", conv("conv2")), ("lrn2", "conv2", m.lrn), ("pool2", "lrn2", m.pool),
        ("conv3", "pool2", conv("conv3")), ("conv4", "conv3", conv("conv4")), ("conv5", "conv4", conv("conv5")),
        ("pool5", "conv5", m.pool), ("fc6", "pool5", fc("fc6", flatten=True)), ("fc7", "fc6", fc("fc7")),
        ("fc8", "fc7", fc("fc8")),
    ]


@torch.no_grad()
def time_stages(model: AlexNet, x: torch.Tensor, repeats: int = 3) -> dict:
    """Seconds per stage of the forward pass on batch ``x``: each stage run on its own
    input ``repeats`` times after one warm-up run; the median is kept."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    was_training = model.training
    model.eval()
    acts = model.activations(x)
    acts["padded"] = F.pad(x, (0, model.input_pad, 0, model.input_pad))
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    out = {}
    for name, source, fn in stage_functions(model):
        fn(acts[source])
        times = []
        for _ in range(repeats):
            sync()
            t = time.perf_counter()
            fn(acts[source])
            sync()
            times.append(time.perf_counter() - t)
        out[name] = statistics.median(times)
    model.train(was_training)
    return out


__all__ += ["connectivity", "layer_costs", "layer_output_sizes", "stage_functions", "time_stages", "tower_memory"]
