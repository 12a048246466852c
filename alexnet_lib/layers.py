"""Layers of the paper that PyTorch does not have in the form the paper uses.

* ``LocalResponseNorm``: AlexNet §3.3, across channels, inside each tower, as a layer (the
  formula and its kernels are in the :mod:`alexnet_lib.lrn` package).
* ``PReLU``: He et al. 2015 §2.1, channel-wise or channel-shared, a = 0.25 at init.
* ``LocallyConnected2d``: cuda-convnet's unshared convolution, used by the
  CIFAR-10 nets behind the paper's "13% -> 11%" LRN claim.
* ``POOLINGS`` and ``pool_output_size``: overlapping pooling (§3.4) and its control.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .lrn import local_response_norm
from .lrn.reference import LRN_ALPHA_CONVENTIONS
from .util import check_choice

#: Max-pooling of §3.4: (window z, stride s). The paper's overlapping pooling, and the
#: non-overlapping control "which produces output of equivalent dimensions".
POOLINGS = {"overlapping": (3, 2), "non-overlapping": (2, 2)}

class LocalResponseNorm(nn.Module):
    """AlexNet's LRN (§3.3): k=2, n=5, α=1e-4, β=0.75 by default, inside each tower.

    >>> lrn = LocalResponseNorm(groups=2)          # two towers of 48 maps after conv1
    """

    def __init__(
        self,
        size: int = 5,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 2.0,
        alpha_convention: str = "cuda-convnet",
        groups: int = 1,
    ):
        super().__init__()
        check_choice("alpha_convention", alpha_convention, LRN_ALPHA_CONVENTIONS)
        if size < 1:
            raise ValueError(f"LRN size must be >= 1, got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.alpha_convention, self.groups = alpha_convention, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return local_response_norm(
            x, self.size, self.alpha, self.beta, self.k, self.alpha_convention, self.groups
        )

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
            f"alpha_convention={self.alpha_convention!r}, groups={self.groups}"
        )


class PReLU(nn.Module):
    """f(y) = max(0, y) + a·min(0, y) with a learned (He et al. 2015, eq. 1).

    ``channel_wise=True`` learns one a per channel, ``False`` one a for the layer.
    a starts at 0.25. The trainer never applies weight decay to it (the paper's rule):
    every PReLU coefficient is a parameter named ``...weight`` of a ``PReLU`` module,
    and :func:`alexnet_lib.optim.parameter_groups` finds them by type.
    """

    def __init__(self, num_channels: int = 1, channel_wise: bool = True, init: float = 0.25):
        super().__init__()
        self.channel_wise = channel_wise
        self.num_channels = num_channels
        self.weight = nn.Parameter(torch.full((num_channels if channel_wise else 1,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_channels={self.num_channels}, channel_wise={self.channel_wise}"


def pool_output_size(size: int, kernel: int, stride: int, ceil: bool = False) -> int:
    """Side of a pooling's output, no padding: PyTorch's floor rule, or with ``ceil`` the rule of
    cuda-convnet (``ceil_mode=True``: a last, partial window is kept)."""
    return (-(-(size - kernel) // stride) if ceil else (size - kernel) // stride) + 1


ACTIVATIONS = ("relu", "tanh", "prelu", "prelu-shared")


def make_activation(name: str, num_channels: int) -> nn.Module:
    """One activation module by name: relu, tanh, prelu (channel-wise), prelu-shared."""
    check_choice("activation", name, ACTIVATIONS)
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "tanh":
        return nn.Tanh()
    return PReLU(num_channels, channel_wise=(name == "prelu"))


class LocallyConnected2d(nn.Module):
    """A convolution whose filters are not shared across positions (cuda-convnet 'local').

    Each output position (i, j) has its own ``out_channels × in_channels × k × k`` filter
    and its own bias. Computed as unfold + a batched matrix product.
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: int, kernel_size: int, padding: int = 0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding = kernel_size, padding
        self.output_size = input_size + 2 * padding - kernel_size + 1
        positions = self.output_size**2
        fan_in = in_channels * kernel_size**2
        self.weight = nn.Parameter(torch.randn(positions, fan_in, out_channels) * (1.0 / fan_in) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(out_channels, self.output_size, self.output_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, self.kernel_size, padding=self.padding)  # N, fan_in, L
        out = torch.einsum("nfl,lfo->nol", cols, self.weight)
        out = out.reshape(x.shape[0], self.out_channels, self.output_size, self.output_size)
        return out + self.bias

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"padding={self.padding}, output_size={self.output_size}"
        )
