"""The two-tower AlexNet of Krizhevsky, Sutskever and Hinton (NIPS 2012), §3.5 and Figure 2.

The network is stored the way the paper drew it: ``model.towers[0]`` and
``model.towers[1]`` each hold half of every layer, what one GTX 580 held. Where the
towers talk (conv3, fc6, fc7, fc8 see both towers' outputs), each tower's layer has the
full input width; where they do not (conv2, conv4, conv5), it sees its own tower only.

On one device the forward pass concatenates the two towers' weights and runs one
(grouped, ``groups=2``) convolution per layer. That is numerically the same as running
the towers apart; ``alexnet_lib.parallel`` runs them apart, on two devices if you have
them, with the exchanges as explicit transfers.

References: REFERENCE.md §1 (layers, init, the 60,965,224 parameters, the 224/227 puzzle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import (
    ACTIVATIONS,
    LRN_ALPHA_CONVENTIONS,
    LocalResponseNorm,
    LocallyConnected2d,
    PReLU,
    check_choice,
    make_activation,
)

POOLINGS = {"overlapping": (3, 2), "non-overlapping": (2, 2)}
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


def conv1_output_size(input_size: int) -> int:
    """cuda-convnet's output size for conv1: 1 + ceil((img - 11) / 4). 224 -> 55, 227 -> 55."""
    return 1 + math.ceil((input_size - 11) / 4)


def pool_output_size(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


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
        per_tower = {name: (half[name] if name in ("conv1", "conv2", "conv3", "conv4") else 2 * half[name]) for name in half}
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


class AlexNet(nn.Module):
    """AlexNet (2012), faithful to the paper by default.

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

    def __init__(
        self,
        num_classes: int = 1000,
        towers: int = 2,
        tower_isolation: bool = True,
        activation: str = "relu",
        lrn: bool = True,
        lrn_alpha_convention: str = "cuda-convnet",
        pooling: str = "overlapping",
        dropout: float = 0.5,
        dropout_placement: str = "paper",
        init: str = "paper",
        width: float = 1.0,
        input_size: int = 224,
        tower_convs: str = "auto",
    ):
        super().__init__()
        if towers not in (1, 2):
            raise ValueError(f"towers must be 1 or 2 (the paper's two GPUs, or the one-GPU control), got {towers!r}")
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("lrn_alpha_convention", lrn_alpha_convention, LRN_ALPHA_CONVENTIONS)
        check_choice("pooling", pooling, tuple(POOLINGS))
        check_choice("init", init, INITS)
        check_choice("dropout_placement", dropout_placement, DROPOUT_PLACEMENTS)
        if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise ValueError(f"dropout p must be in [0, 1), got {dropout!r} (the paper uses 0.5)")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width!r} (1.0 is the paper's net)")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes!r}")
        plan = plan_widths(towers, width, input_size, pooling)
        if plan.pool5_size < 1:
            raise ValueError(
                f"input_size={input_size} is too small: conv1 gives {plan.conv1_size}x{plan.conv1_size} "
                "and three poolings leave nothing. Use 224 (paper) or 227 (Caffe), or at least 67."
            )
        self.num_classes, self.towers_count, self.input_size = num_classes, towers, input_size
        self.tower_isolation, self.activation, self.init_scheme = tower_isolation, activation, init
        self.width, self.pooling = width, pooling
        check_choice("tower_convs", tower_convs, TOWER_CONVS)
        self.tower_convs = tower_convs
        self.dropout_p, self.dropout_placement = dropout, dropout_placement
        self.plan = plan
        # Right/bottom zero padding that turns PyTorch's floor rule into cuda-convnet's ceil rule.
        self.input_pad = (plan.conv1_size - 1) * 4 + 11 - input_size

        out = dict(plan.per_tower)
        # fc8's 1000 neurons are split between the GPUs like every other layer's.
        head = [num_classes - num_classes // 2, num_classes // 2] if towers == 2 else [num_classes]
        total = {name: towers * c for name, c in out.items()}
        isolated = tower_isolation and towers == 2
        own_or_all = lambda prev: out[prev] if isolated else total[prev]  # noqa: E731
        self.groups = {name: (towers if isolated and name in ISOLATED_LAYERS else 1) for name in LAYERS}
        in_ch = {
            "conv1": 3,
            "conv2": own_or_all("conv1"),
            "conv3": total["conv2"],
            "conv4": own_or_all("conv3"),
            "conv5": own_or_all("conv4"),
            "fc6": total["conv5"] * plan.pool5_size**2,
            "fc7": total["fc6"],
            "fc8": total["fc7"],
        }
        self.towers = nn.ModuleList(
            Tower(in_ch, {**out, "fc8": head[t]}, activation) for t in range(towers)
        )
        self.features_dim = in_ch["fc6"]

        caffe = lrn_alpha_convention == "caffe"
        lrn_groups = 1 if caffe or not isolated else towers
        self.lrn = (
            LocalResponseNorm(5, 1e-4, 0.75, k=1.0 if caffe else 2.0, alpha_convention=lrn_alpha_convention, groups=lrn_groups)
            if lrn
            else nn.Identity()
        )
        k, s = POOLINGS[pooling]
        self.pool = nn.MaxPool2d(k, s)
        self.drop = nn.Dropout(dropout)
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

    # ------------------------------------------------------------------------ forward
    def check_input(self, x: torch.Tensor) -> None:
        s = self.input_size
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(
                f"AlexNet(input_size={s}) expects a batch of shape (N, 3, {s}, {s}), got {tuple(x.shape)}. "
                f"With input_size=224 the model adds {(conv1_output_size(224) - 1) * 4 + 11 - 224} px of zeros right and "
                "bottom (cuda-convnet's ceil rule) so conv1 gives 55x55; Caffe feeds 227x227 crops instead. "
                "Crop or resize the images to the model's input_size, or build the model with the size you feed."
            )

    def _weights(self, name: str):
        layers = [getattr(t, name) for t in self.towers]
        if len(layers) == 1:
            return layers[0].weight, layers[0].bias
        return torch.cat([m.weight for m in layers]), torch.cat([m.bias for m in layers])

    def _activate(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if self.activation == "relu":  # in place: x is a fresh layer output that nothing else keeps
            return F.relu(x, inplace=True)
        if self.activation == "tanh":
            return torch.tanh(x)
        acts = [t.act[name] for t in self.towers]
        per_channel = x.shape[1] // len(acts)
        a = torch.cat([m.weight.expand(per_channel) for m in acts]) if len(acts) > 1 else acts[0].weight
        return F.prelu(x, a)

    def _conv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        _, stride, padding = CONV_GEOMETRY[name]
        split = self.tower_convs == "split" or (self.tower_convs == "auto" and x.is_cuda)
        if split and self.groups[name] > 1:
            # each tower's own convolution on its own maps, outputs side by side
            parts = x.chunk(self.groups[name], dim=1)
            y = torch.cat([F.conv2d(p, getattr(t, name).weight, getattr(t, name).bias, stride=stride, padding=padding)
                           for p, t in zip(parts, self.towers)], dim=1)
        else:
            w, b = self._weights(name)
            y = F.conv2d(x, w, b, stride=stride, padding=padding, groups=self.groups[name])
        return self._activate(name, y)

    def _fc(self, name: str, x: torch.Tensor) -> torch.Tensor:
        # Each tower's half of the layer, outputs side by side: the same numbers as one layer
        # with the weights stacked, without copying 150 MB of fc6 weights every step.
        return torch.cat([getattr(t, name)(x) for t in self.towers], dim=1) if len(self.towers) > 1 else getattr(self.towers[0], name)(x)

    def activations(self, x: torch.Tensor) -> dict:
        """Every named stage of the forward pass, for pictures and shape checks."""
        self.check_input(x)
        out = {"input": x}
        x = F.pad(x, (0, self.input_pad, 0, self.input_pad))
        out["conv1"] = x = self._conv("conv1", x)
        out["lrn1"] = x = self.lrn(x)
        out["pool1"] = x = self.pool(x)
        out["conv2"] = x = self._conv("conv2", x)
        out["lrn2"] = x = self.lrn(x)
        out["pool2"] = x = self.pool(x)
        out["conv3"] = x = self._conv("conv3", x)
        out["conv4"] = x = self._conv("conv4", x)
        out["conv5"] = x = self._conv("conv5", x)
        out["pool5"] = x = self.pool(x)
        x = x.flatten(1)
        if self.dropout_placement == "torchvision":
            x = self.drop(x)
        x = self._activate("fc6", self._fc("fc6", x))
        out["fc6"] = x = self.drop(x) if self.dropout_placement == "paper" else x
        if self.dropout_placement == "torchvision":
            x = self.drop(x)
        x = self._activate("fc7", self._fc("fc7", x))
        out["fc7"] = x = self.drop(x) if self.dropout_placement == "paper" else x
        out["fc8"] = self._fc("fc8", x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)["fc8"]

    def tower_parameters(self, tower: int):
        """The parameters one GPU held."""
        return self.towers[tower].parameters()

    def extra_repr(self) -> str:
        return (
            f"towers={self.towers_count}, tower_isolation={self.tower_isolation}, input_size={self.input_size} "
            f"(+{self.input_pad} px right/bottom), conv1 {self.plan.conv1_size}x{self.plan.conv1_size}, "
            f"pool5 {self.plan.pool5_size}x{self.plan.pool5_size}, features {self.features_dim}, width={self.width}"
        )


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------ the CIFAR-10 nets
class CifarNet(nn.Module):
    """The small CIFAR-10 nets of the paper's side experiments.

    ``kind="fig1"``: the four-layer net of §3.1 / Figure 1 (ReLU against tanh), in the
    style of cuda-convnet's ``layers-18pct``: conv 32-32-64 (5×5, pad 2), each followed by
    the activation and a 3/2 pooling (max, then average, average), then fc10. No LRN and
    no regularisation by default.

    ``kind="lrn-pair"``: the net behind "13% -> 11%" (§3.3), in the style of cuda-convnet's
    ``layers-conv-local-13pct`` / ``-11pct``: conv 64 (5×5) - pool 3/2 - [LRN] -
    conv 64 (5×5) - [LRN] - pool 3/2 - local 64 (3×3) - local 32 (3×3) - fc10. The two
    differ by the two LRN layers (size 9), switched with ``lrn``.
    """

    def __init__(self, kind: str = "fig1", activation: str = "relu", lrn: bool = False, num_classes: int = 10,
                 lrn_size: int = 9, lrn_alpha: float = 1e-3, lrn_beta: float = 0.75, lrn_k: float = 1.0,
                 pooling: str = "overlapping", width: float = 1.0):
        super().__init__()
        check_choice("kind", kind, ("fig1", "lrn-pair"))
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("pooling", pooling, tuple(POOLINGS))
        self.kind, self.activation_name = kind, activation
        k, s = POOLINGS[pooling]
        c = lambda n: max(1, round(n * width))  # noqa: E731
        norm = (lambda: LocalResponseNorm(lrn_size, lrn_alpha, lrn_beta, lrn_k)) if lrn else nn.Identity
        # 32 -> 15 -> 7 -> 3 with 3/2 pooling; 32 -> 16 -> 8 -> 4 with 2/2.
        size = 32
        if kind == "fig1":
            layers = [nn.Conv2d(3, c(32), 5, padding=2), make_activation(activation, c(32)), nn.MaxPool2d(k, s)]
            size = pool_output_size(size, k, s)
            layers += [norm(), nn.Conv2d(c(32), c(32), 5, padding=2), make_activation(activation, c(32)), nn.AvgPool2d(k, s)]
            size = pool_output_size(size, k, s)
            layers += [norm(), nn.Conv2d(c(32), c(64), 5, padding=2), make_activation(activation, c(64)), nn.AvgPool2d(k, s)]
            size = pool_output_size(size, k, s)
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(c(64) * size * size, num_classes)
        else:
            layers = [nn.Conv2d(3, c(64), 5, padding=2), make_activation(activation, c(64)), nn.MaxPool2d(k, s), norm()]
            size = pool_output_size(size, k, s)
            layers += [nn.Conv2d(c(64), c(64), 5, padding=2), make_activation(activation, c(64)), norm(), nn.MaxPool2d(k, s)]
            size = pool_output_size(size, k, s)
            layers += [LocallyConnected2d(c(64), c(64), size, 3, padding=1), make_activation(activation, c(64))]
            layers += [LocallyConnected2d(c(64), c(32), size, 3, padding=1), make_activation(activation, c(32))]
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(c(32) * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (3, 32, 32):
            raise ValueError(f"CifarNet expects a batch of shape (N, 3, 32, 32), got {tuple(x.shape)}")
        return self.classifier(self.features(x).flatten(1))


__all__ = ["AlexNet", "CifarNet", "Tower", "count_parameters", "conv1_output_size", "PReLU"]


# ------------------------------------------------------- the deep plain nets of He et al.
PLAIN_INITS = ("kaiming", "xavier")


def plain_init_std(init: str, fan_in: int, prelu_a: float = 0.0) -> float:
    """He et al. 2015, eq. (10)/(15): std = sqrt(2 / ((1 + a²) n)); "Xavier" as the paper
    writes it (its §2.2, after Glorot and Bengio): std = sqrt(1 / n). n is the fan-in, k²·c."""
    check_choice("init", init, PLAIN_INITS)
    if init == "xavier":
        return math.sqrt(1.0 / fan_in)
    return math.sqrt(2.0 / ((1.0 + prelu_a * prelu_a) * fan_in))


class PlainNet(nn.Module):
    """A deep "plain" net (3×3 convolutions, no normalisation, no shortcuts), the kind of
    net He et al. (2015, §2.2, Figures 2 and 3) train from scratch to compare inits.

    ``depth`` counts weight layers, as the paper does: ``depth - 1`` convolutions and one
    fully connected classifier. The first convolution has stride ``first_stride`` (the
    paper's nets start with a strided 7×7), the convolutions are split evenly into
    ``stages`` with a 2×2 max-pooling between stages and the width doubling at each
    stage, and global average pooling feeds the classifier. Every weight is drawn from
    N(0, std²) with the std of :func:`plain_init_std`; every bias is 0 (the paper's rule).

    ``pre_activations(x)`` returns each layer's response y_l before its activation: the
    quantity whose variance the paper follows through depth.

    ``padding_mode="circular"`` (not the paper's) wraps each map around instead of
    padding it with zeros, so every output sees all k²·c inputs of its window, as the
    derivation assumes; with zeros, the border outputs of small maps see fewer inputs and
    the signal shrinks a little at every layer. Feed it unit-variance inputs
    (``transforms.Augment(scale=...)``), as the inits assume.
    """

    def __init__(self, depth: int = 30, width: int = 16, activation: str = "relu", init: str = "kaiming",
                 num_classes: int = 10, stages: int = 3, first_stride: int = 2, in_channels: int = 3,
                 padding_mode: str = "zeros"):
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("init", init, PLAIN_INITS)
        if depth < 2:
            raise ValueError(f"depth counts weight layers (convolutions + the classifier) and must be >= 2, got {depth}")
        if not 1 <= stages <= depth - 1:
            raise ValueError(f"stages must be between 1 and depth - 1 = {depth - 1}, got {stages}")
        if width < 1:
            raise ValueError(f"width must be at least 1, got {width}")
        check_choice("padding_mode", padding_mode, ("zeros", "circular"))
        self.depth, self.width, self.activation, self.init_scheme = depth, width, activation, init
        self.padding_mode = padding_mode
        n_conv = depth - 1
        per_stage = [n_conv // stages + (1 if s < n_conv % stages else 0) for s in range(stages)]
        self.stage_of = [s for s, n in enumerate(per_stage) for _ in range(n)]
        convs, acts, c_in = [], [], in_channels
        for i, s in enumerate(self.stage_of):
            c_out = width * 2**s
            convs.append(nn.Conv2d(c_in, c_out, 3, stride=first_stride if i == 0 else 1, padding=1, padding_mode=padding_mode))
            acts.append(make_activation(activation, c_out))
            c_in = c_out
        self.convs, self.acts = nn.ModuleList(convs), nn.ModuleList(acts)
        self.pool = nn.MaxPool2d(2, 2)
        self.classifier = nn.Linear(c_in, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        a = 0.25 if self.activation.startswith("prelu") else 0.0
        for layer in [*self.convs, self.classifier]:
            with torch.no_grad():
                layer.weight.normal_(0.0, plain_init_std(self.init_scheme, layer.weight[0].numel(), a))
                layer.bias.zero_()

    def pre_activations(self, x: torch.Tensor) -> list:
        """[y_1, ..., y_{depth-1}, logits]: every weight layer's output before its activation."""
        out = []
        for i, (conv, act) in enumerate(zip(self.convs, self.acts)):
            if i > 0 and self.stage_of[i] != self.stage_of[i - 1]:
                x = self.pool(x)
            y = conv(x)
            out.append(y)
            x = act(y)
        out.append(self.classifier(x.mean(dim=(2, 3))))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pre_activations(x)[-1]

    def prelu_coefficients(self) -> list:
        """The learned PReLU a of every convolution, as tensors (one value, or one per channel)."""
        return [act.weight.detach().clone() for act in self.acts if isinstance(act, PReLU)]

    def extra_repr(self) -> str:
        return (f"depth={self.depth} ({len(self.convs)} conv + fc), width={self.width}, stages={max(self.stage_of) + 1}, "
                f"activation={self.activation!r}, init={self.init_scheme!r}, padding_mode={self.padding_mode!r}")


__all__ += ["PlainNet", "plain_init_std"]
