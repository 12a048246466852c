"""The one formula of local response normalisation (AlexNet §3.3), which every kernel must match.

    b_i = a_i / (k + α' Σ_{j = i - n/2}^{i + n/2} a_j²)^β,

the sum running over the n neighbouring channels inside the channel's group (tower), channels
past the group's edge counting as zero. α' is α / n in Alex's own code (cuda-convnet) and in Caffe,
and α for the paper's formula read literally (:data:`LRN_ALPHA_CONVENTIONS`).

:func:`lrn_formula` writes it with plain torch operations: slow, differentiable any number of
times, and the reference the fast paths (``lrn.python``, ``lrn.cpu``, ``lrn.gpu``) are tested
against and fall back on for double backward.
"""

from __future__ import annotations

import torch

#: How a source treats α in  b = a / (k + α Σ a_j²)^β  (chapter 4 compares them on real activations).
#:  * ``cuda-convnet``: Alex's own code divides α by the window size n. This is what
#:    ``torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2)`` computes.
#:  * ``paper-literal``: the formula of §3.3 read literally, no division.
#:  * ``caffe``: bvlc_alexnet divides by n too, but uses k = 1 and normalises across
#:    the tower boundary (the model uses one group for it).
LRN_ALPHA_CONVENTIONS = ("cuda-convnet", "paper-literal", "caffe")


def effective_alpha(alpha: float, size: int, convention: str) -> float:
    """α' of the formula: α / n, or α itself for ``paper-literal``."""
    return alpha if convention == "paper-literal" else alpha / size


def lrn_formula(x: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int = 1) -> torch.Tensor:
    """The formula above, with ``alpha`` already α' (see :func:`effective_alpha`), over (N, C, ...)."""
    n, c = x.shape[:2]
    squares = (x * x).reshape(n, groups, c // groups, -1)
    # channel i sums channels i - size//2 .. i + (size-1)//2 of its group (torch.nn.LocalResponseNorm's window)
    padded = torch.nn.functional.pad(squares, (0, 0, size // 2, (size - 1) // 2))
    window = sum(padded[:, :, d : d + c // groups] for d in range(size)).reshape(x.shape)
    return x * (k + alpha * window).pow(-beta)
