"""LRN in PyTorch operations, written by hand: the path where neither fused kernel runs.

A CPU where ``lrn.cpu`` cannot be built, a GPU without triton (``lrn.gpu``), other devices. Its
forward and backward make a few passes over memory each, instead of the dozens that autograd
through :func:`lrn.reference.lrn_formula` (or torch's pooling-based LRN) makes; it is tested
against that formula.
"""

from __future__ import annotations

import torch


def window_sum(a: torch.Tensor, size: int, transpose: bool = False, dim: int = 1) -> torch.Tensor:
    """Sum of ``a`` over each channel's window along ``dim``: channels i - size//2 .. i + (size-1)//2
    (the window of ``torch.nn.LocalResponseNorm``), channels past the edge counting as zero.

    ``transpose=True`` sums over the mirrored window (i - (size-1)//2 .. i + size//2), the
    transposed operator the backward pass needs; for odd sizes the two are the same.
    A copy and size - 1 shifted in-place adds: fewer passes over memory than padding, and far
    fewer operations than a band-matrix product once there are more than a few dozen channels.
    """
    before, after = size // 2, (size - 1) // 2
    if transpose:
        before, after = after, before
    out = a.clone()  # keeps a's memory layout (NCHW or channels_last)
    c = a.shape[dim]
    before, after = min(before, c - 1), min(after, c - 1)  # a shift past every channel adds nothing
    for d in range(1, before + 1):  # channel i gets channel i - d
        out.narrow(dim, d, c - d).add_(a.narrow(dim, 0, c - d))
    for d in range(1, after + 1):  # channel i gets channel i + d
        out.narrow(dim, 0, c - d).add_(a.narrow(dim, d, c - d))
    return out


class HandWrittenLRN(torch.autograd.Function):
    """b = a · s^-β with s = k + α' Σ_window a², and its gradient written out:

    ∂L/∂a_j = g_j s_j^-β − 2α'β a_j Σ_{i: j in window(i)} g_i a_i s_i^(−β−1)

    The channels are viewed as (towers, channels per tower), which needs no copy in either
    memory layout, so a channels_last input gives a channels_last output.
    """

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k, groups):
        n, c = x.shape[:2]
        xg = x.view(n, groups, c // groups, *x.shape[2:])
        scale = window_sum(xg * xg, size, dim=2).mul_(alpha).add_(k)  # k + α' Σ a²
        inv = scale.pow(-beta)
        ctx.save_for_backward(xg, inv.div(scale), inv)  # s^(−β−1), s^−β
        ctx.alpha_beta, ctx.size = alpha * beta, size
        return (xg * inv).flatten(1, 2)

    @staticmethod
    def backward(ctx, grad):
        xg, inv_scale, inv = ctx.saved_tensors
        g = grad.reshape(xg.shape)
        t = (g * xg).mul_(inv_scale)
        dx = (g * inv).addcmul_(xg, window_sum(t, ctx.size, transpose=True, dim=2), value=-2 * ctx.alpha_beta)
        return dx.flatten(1, 2), None, None, None, None, None




def lrn(x: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int) -> torch.Tensor:
    """The formula (``alpha`` is α') by :class:`HandWrittenLRN`, on any device."""
    return HandWrittenLRN.apply(x, size, alpha, beta, k, groups)
