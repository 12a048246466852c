"""Pictures the chapters share: image grids, training curves, conv1 kernels (§6.1)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_display(img: torch.Tensor) -> np.ndarray:
    """A (3, H, W) tensor, uint8 or float, as an H×W×3 array in [0, 1] for imshow."""
    x = img.detach().float().cpu()
    if img.dtype == torch.uint8:
        x = x / 255.0
    else:
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo + 1e-12)
    return x.permute(1, 2, 0).clamp(0, 1).numpy()


def image_grid(images, titles=None, ncols: int = 8, size: float = 1.4, suptitle: str | None = None):
    """Show a list or batch of (3, H, W) images in a grid; returns the figure."""
    n = len(images)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(to_display(img))
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def training_curves(histories: dict, key: str = "train_top1", ax=None, target: float | None = None, **style):
    """Plot one metric of several runs against epochs. ``histories``: label -> list of values
    or label -> list of lists (seeds: drawn thin, with their mean thick)."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for label, runs in histories.items():
        runs = [runs] if runs and not isinstance(runs[0], (list, tuple)) else runs
        color = None
        for r in runs:
            (line,) = ax.plot(range(1, len(r) + 1), r, lw=0.8, alpha=0.5 if len(runs) > 1 else 1, color=color, **style)
            color = line.get_color()
        if len(runs) > 1:
            length = min(len(r) for r in runs)
            mean = np.mean([r[:length] for r in runs], axis=0)
            ax.plot(range(1, length + 1), mean, lw=2, color=color, label=f"{label} (mean of {len(runs)})")
        else:
            ax.lines[-1].set_label(label)
    if target is not None:
        ax.axhline(target, ls="--", color="grey", lw=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " "))
    ax.legend()
    return ax


def kernel_grid(weight: torch.Tensor, ncols: int = 16) -> np.ndarray:
    """conv1 kernels (K, 3, h, w) as one RGB mosaic, each kernel scaled to its own range."""
    k, _, h, w = weight.shape
    nrows = (k + ncols - 1) // ncols
    mosaic = np.ones((nrows * (h + 1) + 1, ncols * (w + 1) + 1, 3))
    for i in range(k):
        r, c = divmod(i, ncols)
        mosaic[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = to_display(weight[i])
    return mosaic
