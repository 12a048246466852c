"""The two-tower AlexNet of Krizhevsky, Sutskever and Hinton (NIPS 2012), §3.5 and Figure 2.

The network is stored the way the paper drew it: ``model.towers[0]`` and
``model.towers[1]`` each hold half of every layer, what one GTX 580 held. Where the
towers talk (conv3, fc6, fc7, fc8 see both towers' outputs), each tower's layer has the
full input width; where they do not (conv2, conv4, conv5), it sees its own tower only.

On one device the forward pass concatenates the two towers' weights and runs one
(grouped, ``groups=2``) convolution per layer. That is numerically the same as running
the towers apart. Every stage of the forward pass is one public method,
``model.stage(name, x, tower=None)``: with ``tower=None`` it runs both towers side by side,
with ``tower=t`` only tower t's share. ``alexnet_lib.parallel`` runs the towers apart with
it, on two devices if you have them, with the exchanges as explicit transfers.

``alexnet(**options)`` builds the net, as torchvision's ``alexnet()`` does.

References: the paper's §3.5, Figure 2 and §5 (layers, init); chapter 3 counts the 60,965,224 parameters
and explains the 224/227 puzzle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ACTIVATIONS, POOLINGS, LocalResponseNorm, make_activation, pool_output_size
from .lrn import local_response_norm
from .lrn.reference import LRN_ALPHA_CONVENTIONS
from .util import check_choice

INITS = ("paper", "caffe", "xavier", "kaiming")
DROPOUT_PLACEMENTS = ("paper", "torchvision")
#: How the towers' own-tower convolutions (conv2, conv4, conv5) run on one device: one grouped
#: convolution (groups=2), or one convolution per tower on its half of the maps; "auto" splits
#: on a GPU (faster there with cuDNN) and groups on a CPU (faster there). Same numbers.
TOWER_CONVS = ("auto", "grouped", "split")

#: Full-width channel counts of the whole net (both towers together), paper Figure 2.
BASE_WIDTH = {"conv1": 96, "conv2": 256, "conv3": 384, "conv4": 384, "conv5": 256, "fc6": 4096, "fc7": 4096}
#: kernel, stride, padding of each convolution (§3.5).
CONV_GEOMETRY = {"conv1": (11, 4, 0), "conv2": (5, 1, 2), "conv3": (3, 1, 1), "conv4": (3, 1, 1), "conv5": (3, 1, 1)}
#: Layers whose bias the paper sets to 1 (§5); every other bias starts at 0.
BIAS_ONE_LAYERS = ("conv2", "conv4", "conv5", "fc6", "fc7")
#: Layers that see only their own tower in the paper (Figure 2).
ISOLATED_LAYERS = ("conv2", "conv4", "conv5")
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
#: The stages of the forward pass, in order: what ``AlexNet.activations`` returns, and what
#: ``AlexNet.stage`` computes one at a time.
STAGES = ("conv1", "lrn1", "pool1", "conv2", "lrn2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7", "fc8")


def conv1_output_size(input_size: int) -> int:
    """cuda-convnet's output size for conv1: 1 + ceil((img - 11) / 4). 224 -> 55, 227 -> 55."""
    return 1 + math.ceil((input_size - 11) / 4)


@dataclass(frozen=True)
class Widths:
    """Channels per tower for each layer, and the net's spatial sizes."""

    per_tower: dict
    towers: int
    conv1_size: int
    pool5_size: int


def plan_widths(towers: int, width: float, input_size: int, pooling: str) -> Widths:
    half = {name: max(1, round(c * width / 2)) for name, c in BASE_WIDTH.items()}
    if towers == 2:
        per_tower = dict(half)
    else:
        # The §3.2 footnote control: one tower with half the kernels in conv1..conv4,
        # but the full conv5 and fully connected layers.
        per_tower = {
            name: (half[name] if name in ("conv1", "conv2", "conv3", "conv4") else 2 * half[name]) for name in half
        }
    k, s = POOLINGS[pooling]
    c1 = conv1_output_size(input_size)
    p = c1
    for _ in range(3):
        p = pool_output_size(p, k, s)
    return Widths(per_tower, towers, c1, p)


class Tower(nn.Module):
    """Half of AlexNet: every layer's share on one GPU (paper Figure 2, top or bottom row).

    ``in_channels`` says how wide each layer's input is, which is where the paper's
    connectivity lives: a layer that sees both towers has twice the input.
    """

    def __init__(self, in_channels: dict, out_channels: dict, activation: str):
        super().__init__()
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
            k, s, p = CONV_GEOMETRY[name]
            setattr(self, name, nn.Conv2d(in_channels[name], out_channels[name], k, stride=s, padding=p))
        for name in ("fc6", "fc7", "fc8"):
            setattr(self, name, nn.Linear(in_channels[name], out_channels[name]))
        self.act = nn.ModuleDict({name: make_activation(activation, out_channels[name]) for name in LAYERS[:-1]})


@dataclass(frozen=True)
class AlexNetConfig:
    """The one description of an AlexNet: every option of the net, faithful to the paper by default.

    A model is built from it (``AlexNet(config)``), a checkpoint stores it (``asdict``), a resumed
    run compares it, and :func:`layer_table` prints the net from it.

    Args:
        num_classes: 1000 for ILSVRC; 10 for Imagenette or CIFAR-10.
        towers: 2 (the paper's net) or 1 (the §3.2 control: half the kernels in
            conv1..conv4, full conv5 and fully connected layers).
        tower_isolation: True (paper): conv2, conv4, conv5 see their own tower only.
            False: every layer sees both towers (the dense net, 62,378,344 params).
        activation: "relu" (paper), "tanh", "prelu" (channel-wise), "prelu-shared".
        lrn: apply local response normalisation after conv1 and conv2 (paper: True).
        lrn_alpha_convention: "cuda-convnet" (α/n, the paper's code), "paper-literal"
            (α as printed), "caffe" (α/n, k=1, across the tower boundary).
        pooling: "overlapping" (z=3, s=2, paper) or "non-overlapping" (z=2, s=2).
        dropout: p on the outputs of fc6 and fc7 (paper: 0.5). 0 disables it.
        dropout_placement: "paper" (outputs of fc6/fc7) or "torchvision" (their inputs).
        init: "paper" (N(0, 0.01), bias 1 in conv2/4/5, fc6/7), "caffe" (the same with
            bias 0.1), "xavier" (std sqrt(1/fan_in), bias 0), "kaiming" (std
            sqrt(2/((1+a²) fan_in)), bias 0).
        width: channel multiplier for small, fast versions (1.0 = the paper).
        input_size: 224 (paper; 3 px of zeros are added right and bottom, the ceil rule
            of cuda-convnet, so conv1 gives 55×55) or 227 (Caffe). Smaller sizes work
            for quick experiments as long as pool5 is at least 1×1.
        tower_convs: "grouped" (one groups=2 convolution per layer), "split" (one
            convolution per tower) or "auto" (split on a GPU, grouped on a CPU: the faster
            of the two on each, bench/bench_train.py); the same numbers either way.
    """

    family: ClassVar[str] = "alexnet"  # what a checkpoint calls this kind of net

    num_classes: int = 1000
    towers: int = 2
    tower_isolation: bool = True
    activation: str = "relu"
    lrn: bool = True
    lrn_alpha_convention: str = "cuda-convnet"
    pooling: str = "overlapping"
    dropout: float = 0.5
    dropout_placement: str = "paper"
    init: str = "paper"
    width: float = 1.0
    input_size: int = 224
    tower_convs: str = "auto"

    def __post_init__(self):
        check_whole("num_classes", self.num_classes, 1)
        if self.towers not in (1, 2) or isinstance(self.towers, bool):
            raise ValueError(f"towers must be 1 or 2 (the paper's two GPUs, or the one-GPU control), "
                             f"got {self.towers!r}")
        check_whole("input_size", self.input_size, 1)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("lrn_alpha_convention", self.lrn_alpha_convention, LRN_ALPHA_CONVENTIONS)
        check_choice("pooling", self.pooling, tuple(POOLINGS))
        check_choice("init", self.init, INITS)
        check_choice("dropout_placement", self.dropout_placement, DROPOUT_PLACEMENTS)
        check_choice("tower_convs", self.tower_convs, TOWER_CONVS)
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout p must be in [0, 1), got {self.dropout!r} (the paper uses 0.5)")
        if not (isinstance(self.width, (int, float)) and math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"width must be a positive number, got {self.width!r} (1.0 is the paper's net)")
        plan = self.plan
        if plan.pool5_size < 1:
            raise ValueError(
                f"input_size={self.input_size} is too small: conv1 gives {plan.conv1_size}x{plan.conv1_size} "
                "and three poolings leave nothing. Use 224 (paper) or 227 (Caffe), or at least 67."
            )

    @property
    def plan(self) -> "Widths":
        return plan_widths(self.towers, self.width, self.input_size, self.pooling)

    @property
    def isolated(self) -> bool:
        """Whether conv2, conv4 and conv5 see their own tower only (the paper's wiring)."""
        return self.tower_isolation and self.towers == 2


def check_whole(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be a whole number, at least {least}, got {value!r}")


class AlexNet(nn.Module):
    """AlexNet (2012), faithful to the paper by default: ``AlexNet()`` is Figure 2's net.

    Built from an :class:`AlexNetConfig`, or from its options as keywords
    (``AlexNet(num_classes=10, width=0.25)``); ``model.config`` holds the description.
    """

    def __init__(self, config: AlexNetConfig | None = None, **options):
        super().__init__()
        if config is not None and not isinstance(config, AlexNetConfig):
            raise TypeError(f"AlexNet takes an AlexNetConfig (or keyword options), got {type(config).__name__}")
        self.config = c = replace(config, **options) if config is not None else AlexNetConfig(**options)
        plan = c.plan
        self.num_classes, self.towers_count, self.input_size = c.num_classes, c.towers, c.input_size
        self.tower_isolation, self.activation, self.init_scheme = c.tower_isolation, c.activation, c.init
        self.width, self.pooling, self.tower_convs = c.width, c.pooling, c.tower_convs
        self.dropout_p, self.dropout_placement = c.dropout, c.dropout_placement
        self.plan = plan
        # Right/bottom zero padding that turns PyTorch's floor rule into cuda-convnet's ceil rule.
        self.input_pad = (plan.conv1_size - 1) * 4 + 11 - c.input_size

        self.groups = {name: (c.towers if c.isolated and name in ISOLATED_LAYERS else 1) for name in LAYERS}
        in_ch, out = _layer_inputs(plan, c.towers, c.isolated), dict(plan.per_tower)
        # fc8's 1000 neurons are split between the GPUs like every other layer's.
        head = _head_split(c)
        self.towers = nn.ModuleList(Tower(in_ch, {**out, "fc8": head[t]}, c.activation) for t in range(c.towers))
        self.features_dim = in_ch["fc6"]

        caffe = c.lrn_alpha_convention == "caffe"
        lrn_groups = 1 if caffe or not c.isolated else c.towers
        self.lrn = (
            LocalResponseNorm(
                5, 1e-4, 0.75, k=1.0 if caffe else 2.0, alpha_convention=c.lrn_alpha_convention, groups=lrn_groups
            )
            if c.lrn
            else nn.Identity()
        )
        k, s = POOLINGS[c.pooling]
        self.pool = nn.MaxPool2d(k, s)
        self.drop = nn.Dropout(c.dropout)
        self.reset_parameters()

    # ----------------------------------------------------------------- initialisation
    def reset_parameters(self) -> None:
        """§5: 'We initialized the weights in each layer from a zero-mean Gaussian
        distribution with standard deviation 0.01. We initialized the neuron biases in
        the second, fourth, and fifth convolutional layers, as well as in the
        fully-connected hidden layers, with the constant 1 ... the remaining layers 0.'"""
        prelu_a = 0.25 if self.activation.startswith("prelu") else 0.0
        for tower in self.towers:
            for name in LAYERS:
                layer = getattr(tower, name)
                fan_in = layer.weight[0].numel()
                if self.init_scheme in ("paper", "caffe"):
                    std = 0.01
                    bias = (1.0 if self.init_scheme == "paper" else 0.1) if name in BIAS_ONE_LAYERS else 0.0
                elif self.init_scheme == "xavier":
                    std, bias = math.sqrt(1.0 / fan_in), 0.0
                else:  # kaiming (He et al. 2015, eq. 10 and 15)
                    a = 0.0 if name == "fc8" else prelu_a
                    std, bias = math.sqrt(2.0 / ((1 + a * a) * fan_in)), 0.0
                with torch.no_grad():
                    layer.weight.normal_(0.0, std)
                    layer.bias.fill_(bias)

    # ------------------------------------------------------- the stages, one at a time
    def check_input(self, x: torch.Tensor) -> None:
        s = self.input_size
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(
                f"AlexNet(input_size={s}) expects a batch of shape (N, 3, {s}, {s}), got {tuple(x.shape)}. "
                f"With input_size=224 the model adds {(conv1_output_size(224) - 1) * 4 + 11 - 224} px of zeros "
                "right and "
                "bottom (cuda-convnet's ceil rule) so conv1 gives 55x55; Caffe feeds 227x227 crops instead. "
                "Crop or resize the images to the model's input_size, or build the model with the size you feed."
            )

    def pad_input(self, x: torch.Tensor) -> torch.Tensor:
        """The image with the zeros of cuda-convnet's ceil rule added right and bottom."""
        return F.pad(x, (0, self.input_pad, 0, self.input_pad))

    def stage(self, name: str, x: torch.Tensor, tower: int | None = None) -> torch.Tensor:
        """One stage of the forward pass (a name of ``STAGES``) on its input ``x``.

        ``tower=None``: both towers side by side, ``x`` holding every tower's maps (one
        device). ``tower=t``: tower t's share alone, ``x`` being what tower t reads: its own
        maps where the paper isolates the towers, both towers' maps where they talk.
        """
        if name.startswith("conv"):
            return self.activate(name, self.conv(name, x, tower), tower)
        if name.startswith("lrn"):
            return self.normalise(x, tower)
        if name.startswith("pool"):
            return self.pool(x)
        if name == "fc6":
            x = x.flatten(1)
        if name == "fc8":
            return self.linear(name, x, tower)
        # §4.2: dropout on the outputs of fc6 and fc7 (torchvision puts it on their inputs)
        if self.dropout_placement == "torchvision":
            x = self.drop(x)
        x = self.activate(name, self.linear(name, x, tower), tower)
        return self.drop(x) if self.dropout_placement == "paper" else x

    def conv(self, name: str, x: torch.Tensor, tower: int | None = None) -> torch.Tensor:
        """Convolution ``name`` before its activation."""
        _, stride, padding = CONV_GEOMETRY[name]
        if tower is not None:
            layer = getattr(self.towers[tower], name)
            return F.conv2d(x, layer.weight, layer.bias, stride=stride, padding=padding)
        split = self.tower_convs == "split" or (self.tower_convs == "auto" and x.is_cuda)
        if split and self.groups[name] > 1:
            # each tower's own convolution on its own maps, outputs side by side
            parts = x.chunk(self.groups[name], dim=1)
            return torch.cat([self.conv(name, p, t) for t, p in enumerate(parts)], dim=1)
        layers = [getattr(t, name) for t in self.towers]
        w, b = (
            (layers[0].weight, layers[0].bias)
            if len(layers) == 1
            else (torch.cat([m.weight for m in layers]), torch.cat([m.bias for m in layers]))
        )
        return F.conv2d(x, w, b, stride=stride, padding=padding, groups=self.groups[name])

    def linear(self, name: str, x: torch.Tensor, tower: int | None = None) -> torch.Tensor:
        """Fully connected layer ``name`` before its activation."""
        if tower is not None or len(self.towers) == 1:
            return getattr(self.towers[tower or 0], name)(x)
        # Each tower's half of the layer, outputs side by side: the same numbers as one layer
        # with the weights stacked, without copying 150 MB of fc6 weights every step.
        return torch.cat([getattr(t, name)(x) for t in self.towers], dim=1)

    def activate(self, name: str, x: torch.Tensor, tower: int | None = None) -> torch.Tensor:
        """The activation after layer ``name``; ``x`` is a fresh layer output (ReLU runs in place)."""
        if self.activation == "relu":
            return F.relu(x, inplace=True)
        if self.activation == "tanh":
            return torch.tanh(x)
        acts = [t.act[name] for t in self.towers] if tower is None else [self.towers[tower].act[name]]
        per_channel = x.shape[1] // len(acts)
        a = torch.cat([m.weight.expand(per_channel) for m in acts]) if len(acts) > 1 else acts[0].weight
        return F.prelu(x, a)

    def normalise(self, x: torch.Tensor, tower: int | None = None) -> torch.Tensor:
        """§3.3's LRN (or nothing with ``lrn=False``), inside each tower."""
        lrn = self.lrn
        if tower is None or not isinstance(lrn, LocalResponseNorm):
            return lrn(x)
        if lrn.groups != self.towers_count:
            raise ValueError(
                "this LRN normalises across the tower boundary (Caffe's), so one tower cannot run it alone"
            )
        return local_response_norm(x, lrn.size, lrn.alpha, lrn.beta, lrn.k, lrn.alpha_convention, groups=1)

    # ------------------------------------------------------------------- forward
    def activations(self, x: torch.Tensor) -> dict:
        """Every named stage of the forward pass, for pictures and shape checks."""
        self.check_input(x)
        out = {"input": x}
        x = self.pad_input(x)
        for name in STAGES:
            out[name] = x = self.stage(name, x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)["fc8"]

    def extra_repr(self) -> str:
        return (
            f"towers={self.towers_count}, tower_isolation={self.tower_isolation}, input_size={self.input_size} "
            f"(+{self.input_pad} px right/bottom), conv1 {self.plan.conv1_size}x{self.plan.conv1_size}, "
            f"pool5 {self.plan.pool5_size}x{self.plan.pool5_size}, features {self.features_dim}, width={self.width}"
        )


def _layer_inputs(plan: Widths, towers: int, isolated: bool) -> dict:
    """How many inputs each tower's share of each layer reads: this is where the paper's
    connectivity lives (a layer that sees both towers reads twice as many)."""
    out = plan.per_tower
    total = {name: towers * c for name, c in out.items()}
    own_or_all = lambda prev: out[prev] if isolated else total[prev]  # noqa: E731
    return {
        "conv1": 3,
        "conv2": own_or_all("conv1"),
        "conv3": total["conv2"],
        "conv4": own_or_all("conv3"),
        "conv5": own_or_all("conv4"),
        "fc6": total["conv5"] * plan.pool5_size**2,
        "fc7": total["fc6"],
        "fc8": total["fc7"],
    }


def _head_split(config: AlexNetConfig) -> list:
    """fc8's neurons per tower: split between the GPUs like every other layer's."""
    n = config.num_classes
    return [n - n // 2, n // 2] if config.towers == 2 else [n]


def layer_table(config: AlexNetConfig | None = None) -> list:
    """Figure 2 read from a config, one row per layer, without building the weights.

    Each row: ``layer``; ``output`` (channels, height, width of the layer's output, both towers
    together, before pooling); ``per_tower`` (each tower's channels); ``kernel``, ``stride``,
    ``pad`` (None for the fully connected layers); ``reads`` ("input", "own" tower or "all"
    towers); ``params_per_tower`` (weights, biases and PReLU slopes of each tower's share) and
    ``params`` (their sum). The rows add up to the net's parameter count (60,965,224 for the
    paper's net with 1000 classes).
    """
    c = config or AlexNetConfig()
    plan = c.plan
    k, s = POOLINGS[c.pooling]
    p1 = pool_output_size(plan.conv1_size, k, s)
    p2 = pool_output_size(p1, k, s)
    size = {"conv1": plan.conv1_size, "conv2": p1, "conv3": p2, "conv4": p2, "conv5": p2}
    in_ch = _layer_inputs(plan, c.towers, c.isolated)
    out = {**plan.per_tower, "fc8": None}
    prelu = {"prelu": "channel", "prelu-shared": "shared"}.get(c.activation)
    rows = []
    for name in LAYERS:
        per_tower = _head_split(c) if name == "fc8" else [out[name]] * c.towers
        kernel, stride, pad = CONV_GEOMETRY.get(name, (None, None, None))
        params = []
        for n_out in per_tower:
            weights = n_out * in_ch[name] * (kernel or 1) ** 2
            slopes = 0 if prelu is None or name == "fc8" else (n_out if prelu == "channel" else 1)
            params.append(weights + n_out + slopes)
        reads = "input" if name == "conv1" else ("own" if c.towers == 1 or (c.isolated and name in ISOLATED_LAYERS)
                                                 else "all")
        side = size.get(name, 1)
        rows.append({"layer": name, "output": (sum(per_tower), side, side), "per_tower": per_tower,
                     "kernel": kernel, "stride": stride, "pad": pad, "reads": reads,
                     "params_per_tower": params, "params": sum(params)})
    return rows


def alexnet(num_classes: int = 1000, **options) -> AlexNet:
    """The paper's net, or a variant of it (see :class:`AlexNetConfig` for the options)."""
    return AlexNet(num_classes=num_classes, **options)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

