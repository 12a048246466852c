"""The small nets of the side experiments, beside the paper's big one (``model``).

* :class:`CifarNet`: the CIFAR-10 nets of AlexNet §3.1 (Figure 1, ReLU against tanh) and
  §3.3 (the "13% -> 11%" LRN pair), in the style of cuda-convnet's public layer configs.
* :class:`PlainNet`: the deep plain nets He et al. (2015, §2.2, Figures 2 and 3) train from
  scratch to compare initialisations, with :func:`plain_init_std`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import torch
from torch import nn

from .layers import (
    ACTIVATIONS,
    POOLINGS,
    FFTConv2d,
    LocallyConnected2d,
    LocalResponseNorm,
    PReLU,
    make_activation,
    pool_output_size,
)
from .util import check_choice

CIFAR_KINDS = ("fig1", "lrn-pair")
#: How a CIFAR net's weights start: PyTorch's default (uniform, scaled by fan-in), or cuda-convnet's
#: ``initW`` of each layer, the std of a zero-mean Gaussian, biases 0: for the lrn-pair net those of
#: ``layers-conv-local-13pct.cfg`` (``alexnet_lib.cuda_convnet`` names the version of the files), for
#: the Figure 1 net those of ``layers-18pct.cfg`` (dnouri/cuda-convnet, commit 504490cf2bf5).
CIFAR_INITS = ("pytorch", "cuda-convnet")
CUDA_CONVNET_INIT_STD = {"conv1": 1e-4, "conv2": 1e-2, "local3": 4e-2, "local4": 4e-2, "fc10": 1e-2}
CUDA_CONVNET_FIG1_INIT_STD = {"conv1": 1e-4, "conv2": 1e-2, "conv3": 1e-2, "fc10": 1e-2}
#: The window and stride of the Figure 1 net's average poolings (cuda-convnet's ``layers-18pct``), whatever
#: ``pooling`` says: overlapping pooling (§3.4) is the paper's choice for its max poolings.
AVG_POOL = (3, 2)


@dataclass(frozen=True)
class CifarNetConfig:
    """The one description of a CIFAR-10 net of the paper's side experiments (:class:`CifarNet`).

    ``kind="fig1"``: the four-layer net of §3.1 / Figure 1 (ReLU against tanh), in the
    style of cuda-convnet's ``layers-18pct``: conv 32-32-64 (5×5, pad 2), each followed by
    the activation and a 3/2 pooling (max, then average, average), then fc10. No LRN and
    no regularisation by default; ``init="cuda-convnet"`` starts it as ``layers-18pct.cfg`` does.

    ``pooling`` sets the windows of the **max** poolings only (§3.4's claim is about AlexNet's
    max pooling): ``"non-overlapping"`` makes them 2/2; the Figure 1 net's two average poolings
    stay 3/2 either way (:data:`AVG_POOL`).

    ``kind="lrn-pair"``: the net behind "13% -> 11%" (§3.3), in the style of cuda-convnet's
    ``layers-conv-local-13pct`` / ``-11pct``: conv 64 (5×5) - pool 3/2 - [LRN] -
    conv 64 (5×5) - [LRN] - pool 3/2 - local 64 (3×3) - local 32 (3×3) - fc10. The two
    differ by the two LRN layers (size 9), switched with ``lrn``.

    ``pool_rounding="ceil"`` keeps a last, partial pooling window, as cuda-convnet does: then the
    overlapping and non-overlapping poolings give maps of the same size (16, 8, 4) on 32x32.

    ``input_size=24`` takes the 24x24 crops that cuda-convnet's ``-13pct`` / ``-11pct`` runs
    trained on (random crops and flips of the 32x32 images).
    """

    family: ClassVar[str] = "cifar"  # what a checkpoint calls this kind of net

    kind: str = "fig1"
    activation: str = "relu"
    lrn: bool = False
    num_classes: int = 10
    lrn_size: int = 9
    lrn_alpha: float = 1e-3
    lrn_beta: float = 0.75
    lrn_k: float = 1.0
    pooling: str = "overlapping"
    width: float = 1.0
    pool_rounding: str = "floor"
    input_size: int = 32
    init: str = "pytorch"

    def __post_init__(self):
        check_choice("kind", self.kind, CIFAR_KINDS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("pooling", self.pooling, tuple(POOLINGS))
        check_choice("pool_rounding", self.pool_rounding, ("floor", "ceil"))
        check_choice("init", self.init, CIFAR_INITS)
        for name in ("num_classes", "lrn_size", "input_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number, at least 1, got {value!r}")
        if self.input_size < 8:
            raise ValueError(f"input_size must be at least 8 (three poolings need maps to pool), got {self.input_size}")
        for name in ("width", "lrn_alpha", "lrn_beta", "lrn_k"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.lrn and self.kind != "lrn-pair":
            raise ValueError("lrn=True needs kind='lrn-pair': the Figure 1 net has no LRN layers")


class CifarNet(nn.Module):
    """A CIFAR-10 net of the paper's side experiments, built from a :class:`CifarNetConfig`
    (or its options as keywords: ``CifarNet("lrn-pair", lrn=True)``)."""

    def __init__(self, kind: str | CifarNetConfig = "fig1", **options):
        super().__init__()
        config = kind if isinstance(kind, CifarNetConfig) else CifarNetConfig(kind, **options)
        if options and isinstance(kind, CifarNetConfig):
            config = replace(config, **options)
        self.config = c = config
        self.kind, self.activation_name, self.input_size = c.kind, c.activation, c.input_size
        k, s = POOLINGS[c.pooling]
        ceil = c.pool_rounding == "ceil"
        width = lambda n: max(1, round(n * c.width))  # noqa: E731
        act = lambda n: make_activation(c.activation, width(n))  # noqa: E731
        lrn = lambda: LocalResponseNorm(c.lrn_size, c.lrn_alpha, c.lrn_beta, c.lrn_k)  # noqa: E731
        norm = lrn if c.lrn else nn.Identity
        max_pool = lambda: nn.MaxPool2d(k, s, ceil_mode=ceil)  # noqa: E731
        avg_pool = lambda: nn.AvgPool2d(*AVG_POOL, ceil_mode=ceil)  # noqa: E731
        # 32 -> 15 -> 7 -> 3 with 3/2 pooling and the floor rule; 32 -> 16 -> 8 -> 4 with the ceil rule
        # (cuda-convnet's, pool_rounding="ceil") whether the max pooling is 3/2 or 2/2
        windows = [(k, s), AVG_POOL, AVG_POOL] if c.kind == "fig1" else [(k, s), (k, s)]
        size = c.input_size
        for window, stride in windows:
            size = pool_output_size(size, window, stride, ceil)
        if c.kind == "fig1":
            layers = [nn.Conv2d(3, width(32), 5, padding=2), act(32), max_pool(),
                      norm(), nn.Conv2d(width(32), width(32), 5, padding=2), act(32), avg_pool(),
                      norm(), nn.Conv2d(width(32), width(64), 5, padding=2), act(64), avg_pool()]
            out = width(64)
        else:
            layers = [nn.Conv2d(3, width(64), 5, padding=2), act(64), max_pool(), norm(),
                      FFTConv2d(width(64), width(64), 5, padding=2), act(64), norm(), max_pool(),
                      LocallyConnected2d(width(64), width(64), size, 3, padding=1), act(64),
                      LocallyConnected2d(width(64), width(32), size, 3, padding=1), act(32)]
            out = width(32)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(out * size * size, c.num_classes)
        if c.init == "cuda-convnet":
            self.init_cuda_convnet()

    def weight_layers(self) -> dict:
        """{"conv1": ..., "conv2": ..., "local3": ..., "local4": ..., "fc10": ...} of the lrn-pair net (the
        names of cuda-convnet's layer files); ValueError for the Figure 1 net."""
        convs = [m for m in self.features if isinstance(m, (nn.Conv2d, LocallyConnected2d))]  # FFTConv2d too
        if self.kind != "lrn-pair" or len(convs) != 4:
            raise ValueError("cuda-convnet's layer names (conv1, conv2, local3, local4, fc10) are those of the "
                             "lrn-pair net; build CifarNet('lrn-pair')")
        return dict(zip(CUDA_CONVNET_INIT_STD, [*convs, self.classifier]))

    @torch.no_grad()
    def init_cuda_convnet(self) -> None:
        """Every weight ~ N(0, initW²) with its layer's ``initW``, biases 0: :data:`CUDA_CONVNET_INIT_STD`
        for the lrn-pair net, :data:`CUDA_CONVNET_FIG1_INIT_STD` (conv1, conv2, conv3, fc10) for the
        Figure 1 net. The stds are sized for raw 0..255 pixels minus the mean, as cuda-convnet feeds them."""
        if self.kind == "lrn-pair":
            layers, stds = self.weight_layers(), CUDA_CONVNET_INIT_STD
        else:
            convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
            stds = CUDA_CONVNET_FIG1_INIT_STD
            layers = dict(zip(stds, [*convs, self.classifier]))
        for name, layer in layers.items():
            layer.weight.normal_(0.0, stds[name])
            layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = self.input_size
        if x.dim() != 4 or x.shape[1:] != (3, side, side):
            raise ValueError(f"this CifarNet expects a batch of shape (N, 3, {side}, {side}), got {tuple(x.shape)}")
        return self.classifier(self.features(x).flatten(1))


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

    def __init__(
        self,
        depth: int = 30,
        width: int = 16,
        activation: str = "relu",
        init: str = "kaiming",
        num_classes: int = 10,
        stages: int = 3,
        first_stride: int = 2,
        in_channels: int = 3,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("init", init, PLAIN_INITS)
        if depth < 2:
            raise ValueError(
                f"depth counts weight layers (convolutions + the classifier) and must be >= 2, got {depth}"
            )
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
            convs.append(
                nn.Conv2d(c_in, c_out, 3, stride=first_stride if i == 0 else 1, padding=1, padding_mode=padding_mode)
            )
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
        return (
            f"depth={self.depth} ({len(self.convs)} conv + fc), width={self.width}, stages={max(self.stage_of) + 1}, "
            f"activation={self.activation!r}, init={self.init_scheme!r}, padding_mode={self.padding_mode!r}"
        )
