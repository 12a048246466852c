"""Layers of the paper that PyTorch does not have in the form the paper uses.

* ``LocalResponseNorm``: AlexNet §3.3, across channels, inside each tower, as a layer (the
  formula and its kernels are in the :mod:`alexnet_lib.lrn` package).
* ``PReLU``: He et al. 2015 §2.1, channel-wise or channel-shared, a = 0.25 at init.
* ``LocallyConnected2d``: cuda-convnet's unshared convolution, used by the
  CIFAR-10 nets behind the paper's "13% -> 11%" LRN claim.
* ``FFTConv2d``: a convolution computed by FFT on a CPU, the same numbers faster (the CIFAR nets' conv2).
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


class _LocallyConnected(torch.autograd.Function):
    """out[n, o, i, j] = bias[o, i, j] + Σ_f cols[n, f, (i, j)] · weight[(i, j), f, o], f = (c, kh, kw),
    as one batched matrix product over the L = S² output positions, forward and backward.

    The windows are gathered channels-innermost, (L, N, kh, kw, C), so that the copy runs over
    contiguous rows of C values (gathering them in ``F.unfold``'s order, C outermost, makes rows of
    k values and costs more than the product). The weight is permuted to that order on the fly
    (and its gradient back), so the parameter keeps ``F.unfold``'s (c, kh, kw) order. The input's
    gradient is the sum of k² shifted slices of the columns' gradient (the transpose of the gather).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, k: int, p: int):
        n, c, h, w = x.shape
        positions, _, out = weight.shape
        side = h + 2 * p - k + 1
        padded = x.new_zeros(n, h + 2 * p, w + 2 * p, c)  # NHWC, zero border
        padded[:, p : p + h, p : p + w] = x.permute(0, 2, 3, 1)
        # (N, S, S, C, kh, kw) windows as a view, gathered once into (L, N, kh·kw·C)
        cols = padded.unfold(1, k, 1).unfold(2, k, 1).permute(1, 2, 0, 4, 5, 3).reshape(positions, n, k * k * c)
        w_kc = weight.view(positions, c, k * k, out).transpose(1, 2).reshape(positions, k * k * c, out)
        y = torch.baddbmm(bias.permute(1, 2, 0).reshape(positions, 1, out), cols, w_kc)  # (L, N, O)
        ctx.save_for_backward(cols, w_kc)
        ctx.dims = (n, c, h, w, k, p, side)
        return y.permute(1, 2, 0).view(n, out, side, side)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        cols, w_kc = ctx.saved_tensors
        n, c, h, w, k, p, side = ctx.dims
        positions, _, out = w_kc.shape
        g = grad.permute(2, 3, 0, 1).reshape(positions, n, out)
        dw = torch.bmm(cols.transpose(1, 2), g).view(positions, k * k, c, out).transpose(1, 2)
        db = g.sum(1).t().reshape(out, side, side)
        dcols = torch.bmm(g, w_kc.transpose(1, 2)).view(side, side, n, k, k, c)
        dpadded = grad.new_zeros(n, h + 2 * p, w + 2 * p, c)
        for kh in range(k):
            for kw in range(k):
                dpadded[:, kh : kh + side, kw : kw + side].add_(dcols[:, :, :, kh, kw].permute(2, 0, 1, 3))
        dx = dpadded[:, p : p + h, p : p + w].permute(0, 3, 1, 2)
        return dx, dw.reshape(positions, c * k * k, out), db, None, None


class LocallyConnected2d(nn.Module):
    """A convolution whose filters are not shared across positions (cuda-convnet 'local').

    Each output position (i, j) has its own ``out_channels × in_channels × k × k`` filter
    and its own bias. ``weight[i·S + j]`` is position (i, j)'s filter as a (fan_in, out_channels)
    matrix, its rows in ``F.unfold``'s order (channel, then kernel row, then kernel column).
    Computed as one batched matrix product over the positions (``_LocallyConnected``).
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: int, kernel_size: int, padding: int = 0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding, self.input_size = kernel_size, padding, input_size
        self.output_size = input_size + 2 * padding - kernel_size + 1
        positions = self.output_size**2
        fan_in = in_channels * kernel_size**2
        self.weight = nn.Parameter(torch.randn(positions, fan_in, out_channels) * (1.0 / fan_in) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(out_channels, self.output_size, self.output_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = self.input_size
        if x.dim() != 4 or x.shape[1:] != (self.in_channels, side, side):
            raise ValueError(f"this LocallyConnected2d expects (N, {self.in_channels}, {side}, {side}) inputs, "
                             f"got {tuple(x.shape)}")
        return _LocallyConnected.apply(x, self.weight, self.bias, self.kernel_size, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"padding={self.padding}, output_size={self.output_size}"
        )


class _FFTConvolution(torch.autograd.Function):
    """A stride-1 convolution by NNPACK's FFT algorithm on a CPU: the forward pass, the input's gradient
    (the correlation of the output's gradient with the flipped, transposed kernel) and the weight's
    gradient (dW[o, i] = Σ_n x[n, i] ⋆ g[n, o]: a convolution with the batch as its channels). Where
    NNPACK refuses a shape (a kernel over 16x16), the weight's gradient is oneDNN's."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding: int, channels_last: bool):
        xc = x.contiguous()
        y = torch._nnpack_spatial_convolution(xc, weight, bias, [padding, padding])
        ctx.save_for_backward(xc, weight)
        ctx.padding, ctx.channels_last, ctx.has_bias = padding, channels_last, bias is not None
        return y.contiguous(memory_format=torch.channels_last) if channels_last else y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        xc, w = ctx.saved_tensors
        g, p, k = grad.contiguous(), ctx.padding, w.shape[-1]
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch._nnpack_spatial_convolution(g, w.flip(2, 3).transpose(0, 1).contiguous(), None, [k - 1 - p] * 2)
            if ctx.channels_last:
                dx = dx.contiguous(memory_format=torch.channels_last)
        try:
            dw = torch._nnpack_spatial_convolution(xc.transpose(0, 1).contiguous(), g.transpose(0, 1).contiguous(),
                                                   None, [p, p]).transpose(0, 1)
        except RuntimeError:
            dw = torch.ops.aten.convolution_backward(g, xc, w, None, [1, 1], [p, p], [1, 1], False, [0, 0], 1,
                                                     [False, True, False])[1]
        db = g.sum((0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db, None, None


class FFTConv2d(nn.Conv2d):
    """``nn.Conv2d`` (stride 1, no dilation, one group, square padding), computed on a CPU with the FFT
    convolution of NNPACK (which PyTorch ships, behind its private ``torch._nnpack_spatial_convolution``),
    forward and backward: the same numbers to float rounding (about 1e-6 of the output), and for the
    5x5 kernels of the CIFAR nets' conv2 on 12x12 maps about 1.6x as fast as the direct convolution
    (bench/bench_cifar_epoch.py). Elsewhere (a GPU, float64, a PyTorch without NNPACK) it is
    ``nn.Conv2d`` itself; its parameters are ``nn.Conv2d``'s, names and all."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fits = (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4 and self.stride == (1, 1)
                and self.dilation == (1, 1) and self.groups == 1 and self.padding[0] == self.padding[1]
                and isinstance(self.padding[0], int) and _nnpack_available())
        if not fits:
            return super().forward(x)
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        return _FFTConvolution.apply(x, self.weight, self.bias, self.padding[0], channels_last)


def _nnpack_available() -> bool:
    """Whether this PyTorch has NNPACK (a private function of PyTorch's: False if it is gone)."""
    check = getattr(torch, "_nnpack_available", None)
    return bool(check and check() and hasattr(torch, "_nnpack_spatial_convolution"))

