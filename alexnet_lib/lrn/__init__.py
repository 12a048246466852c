"""Local response normalisation (AlexNet §3.3): one formula and the kernels that compute it fast.

* ``reference``: the formula, written once with plain torch operations, and the α conventions;
* ``python``: a hand-written forward and backward in torch operations (any device);
* ``cpu``: the fused C++ kernel (``cpu.cpp``), built on first use;
* ``gpu``: the fused Triton kernels for CUDA GPUs, compiled on first use.

Each kernel is tested against the reference (and the tests write the formula out once more in
float64). :func:`local_response_norm` picks the fastest that runs here; the layer is
``layers.LocalResponseNorm``.
"""

from __future__ import annotations

import torch

from ..util import check_choice
from . import cpu, gpu, python
from .reference import LRN_ALPHA_CONVENTIONS, effective_alpha


def local_response_norm(
    x: torch.Tensor,
    size: int = 5,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 2.0,
    alpha_convention: str = "cuda-convnet",
    groups: int = 1,
) -> torch.Tensor:
    """b_i = a_i / (k + α' Σ_{j=i-n/2}^{i+n/2} a_j²)^β, the sum clipped to the group.

    ``α' = α / n`` for the ``cuda-convnet`` and ``caffe`` conventions and ``α`` for
    ``paper-literal``. ``groups`` splits the channels into towers that never see each
    other's maps; channels past a group's edge count as zero.

    On a CPU this runs the fused kernel of :mod:`alexnet_lib.lrn.cpu` (built on first use), on
    a CUDA GPU the Triton kernels of :mod:`alexnet_lib.lrn.gpu` (compiled on first use);
    elsewhere, or where they cannot be used, :mod:`alexnet_lib.lrn.python`.
    All give the formula's numbers, in NCHW and channels_last alike.
    """
    check_choice("alpha_convention", alpha_convention, LRN_ALPHA_CONVENTIONS)
    if x.dim() < 3:
        raise ValueError(f"local_response_norm expects (N, C, ...) input, got shape {tuple(x.shape)}")
    c = x.shape[1]
    if c % groups:
        raise ValueError(f"{c} channels cannot be split into {groups} towers of equal size")
    a = effective_alpha(alpha, size, alpha_convention)
    if not (x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))):
        x = x.contiguous()
    if cpu.supports(x) and cpu.available():
        return cpu.lrn(x, size, a, beta, k, groups)
    if gpu.supports(x) and gpu.available():
        return gpu.lrn(x, size, a, beta, k, groups)
    return python.lrn(x, size, a, beta, k, groups)
