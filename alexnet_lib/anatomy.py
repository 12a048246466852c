"""What each tower holds, reads and costs: the anatomy of the two-tower net (§3.2, §3.5).

Read from a built :class:`~alexnet_lib.model.AlexNet`, never typed in: which towers feed
each layer (from the weights' shapes), each layer's parameters and multiply-adds, what one
GPU holds to train its tower, and how long each stage of the forward pass takes.
"""

from __future__ import annotations

import statistics
import time
from functools import partial

import torch

from .layers import POOLINGS, pool_output_size
from .model import CONV_GEOMETRY, LAYERS, STAGES, AlexNet

#: The stages of ``AlexNet.activations`` that belong to each layer's share of a tower.
STAGES_OF_LAYER = {
    "conv1": ("conv1", "lrn1", "pool1"),
    "conv2": ("conv2", "lrn2", "pool2"),
    "conv3": ("conv3",),
    "conv4": ("conv4",),
    "conv5": ("conv5", "pool5"),
    "fc6": ("fc6",),
    "fc7": ("fc7",),
    "fc8": ("fc8",),
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
                raise ValueError(
                    f"{name} of a tower reads {fan_in} inputs: neither its own tower's {own} nor all {every}"
                )
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
        rows.append(
            {
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
            }
        )
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
            "weights": params,
            "weight_gradients": params,
            "momentum": params,
            "input": acts["input"][0].numel() * batch_size,
            "activations": kept * batch_size,
            "activation_gradients": kept * batch_size,
        }
        rows.append({"tower": t, **{k: v * bytes_per_value for k, v in values.items()}})
    return rows


def stage_functions(model: AlexNet) -> list:
    """Each stage of ``AlexNet.activations`` as (name, input stage, function), so that each
    can be run, and timed, on its own input (in eval mode: no dropout)."""
    sources = ("padded",) + STAGES[:-1]
    return [(name, source, partial(model.stage, name)) for name, source in zip(STAGES, sources)]


@torch.no_grad()
def time_stages(model: AlexNet, x: torch.Tensor, repeats: int = 3) -> dict:
    """Seconds per stage of the forward pass on batch ``x``: each stage run on its own
    input ``repeats`` times after one warm-up run; the median is kept."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    was_training = model.training
    model.eval()
    acts = model.activations(x)
    acts["padded"] = model.pad_input(x)
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
