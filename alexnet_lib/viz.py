"""Pictures the chapters share: image grids, training curves, the towers' wiring,
conv1 kernels, top-5 predictions and nearest neighbours (§6.1). Figures only: the numbers
behind them come from ``analysis`` and ``anatomy``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .analysis import kernel_chroma
from .anatomy import layer_costs
from .claims import REGISTRY, UNITS


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
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)), squeeze=False
    )
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
            ax.plot(range(1, length + 1), mean, lw=2, color=color, label=f"{label} (mean of {len(runs)})", **style)
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


def tower_diagram(model, ax=None):
    """AlexNet's towers and where they talk (paper Figure 2), drawn from the model itself.

    One box per layer and tower, labelled with what the tower's share of the layer holds
    (its output maps or neurons, its kernel, and its input width read from the weights);
    grey arrows stay inside a tower, red arrows cross between towers. Which arrows exist
    comes from :func:`alexnet_lib.anatomy.connectivity`, i.e. from the weights' shapes.

    Long because it draws the figure piece by piece: boxes, arrows and labels share one
    layout (the positions of every layer and tower), kept in this one function.
    """
    rows = layer_costs(model)
    n_towers = len(model.towers)
    ax = ax or plt.subplots(figsize=(1.45 * (len(rows) + 1), 1.6 + 1.5 * n_towers))[1]
    w, h = 0.72, 0.9
    y_of = {t: (n_towers - 1 - t) * 1.6 for t in range(n_towers)}
    names = "AB"

    def box(x, y, text, colour):
        ax.add_patch(
            FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=colour, ec="black", lw=0.8)
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=7)

    def arrow(x0, y0, x1, y1, crossing):
        ax.add_patch(
            FancyArrowPatch(
                (x0 + w / 2, y0),
                (x1 - w / 2, y1),
                arrowstyle="-|>",
                mutation_scale=8,
                color="crimson" if crossing else "grey",
                lw=1.4 if crossing else 1.0,
            )
        )

    y_mid = sum(y_of.values()) / n_towers
    box(0, y_mid, f"input\n3x{model.input_size}\nx{model.input_size}", "whitesmoke")
    for i, r in enumerate(rows, start=1):
        for t in range(n_towers):
            kernel = f"{r['kernel']}x{r['kernel']}, " if r["kernel"] else ""
            size = f"x{r['output_size']}x{r['output_size']}" if r["kind"] == "conv" else ""
            label = f"{r['layer']}\n{r['out_per_tower'][t]}{size}\n{kernel}in {r['in_per_tower']}"
            box(i, y_of[t], label, "lightsteelblue" if r["kind"] == "conv" else "navajowhite")
            if r["reads"] == "input":
                arrow(0, y_mid, i, y_of[t], False)
            elif r["reads"] == "own":
                arrow(i - 1, y_of[t], i, y_of[t], False)
            else:
                for s in range(n_towers):
                    arrow(i - 1, y_of[s], i, y_of[t], s != t)
    for t in range(n_towers):
        ax.text(
            -0.55,
            y_of[t],
            f"tower {names[t]}" if n_towers > 1 else "one tower",
            ha="right",
            va="center",
            fontsize=9,
            rotation=90,
        )
    ax.set_xlim(-0.8, len(rows) + 0.6)
    ax.set_ylim(min(y_of.values()) - 0.8, max(y_of.values()) + 0.8)
    ax.set_aspect("equal")
    ax.axis("off")
    crossing = [r["layer"] for r in rows if r["reads"] == "all" and n_towers > 1]
    ax.set_title(
        "one tower: no exchanges" if n_towers == 1 else "the towers talk at: " + (", ".join(crossing) or "nowhere"),
        fontsize=9,
    )
    return ax


# --------------------------------------------------- §6.1: what the network learned (Figures 3, 4)
def _tower_weights(kernels) -> list:
    """conv1 kernels per tower, from a model, a {"tower0": ..., "tower1": ...} dict or a list."""
    if hasattr(kernels, "towers"):
        return [t.conv1.weight.detach().cpu() for t in kernels.towers]
    if isinstance(kernels, dict):
        return [kernels[k].detach().cpu() for k in sorted(kernels)]
    return [k.detach().cpu() for k in kernels]


def tower_kernels(kernels, names=None, ncols: int = 16, size: float = 0.5, suptitle: str | None = None):
    """conv1's kernels, one panel per tower, as in the paper's Figure 3 (GPU 1 on top).

    ``kernels``: an AlexNet, the CLI's ``{"tower0": (K, 3, h, w), "tower1": ...}`` file
    contents, or a list of (K, 3, h, w) tensors. Each panel is titled with its tower's
    mean :func:`kernel_chroma`. Returns the figure.
    """
    weights = _tower_weights(kernels)
    names = names or [f"tower {t} (the paper's GPU {t + 1})" for t in range(len(weights))]
    ncols = min(ncols, max(len(w) for w in weights))
    mosaics = [kernel_grid(w, ncols=ncols) for w in weights]
    heights = [m.shape[0] for m in mosaics]
    width = mosaics[0].shape[1]
    fig, axes = plt.subplots(
        len(mosaics),
        1,
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
        figsize=(size * ncols, size * sum(heights) / width * ncols + 0.45 * len(mosaics) + (0.4 if suptitle else 0)),
    )
    for ax, mosaic, name, w in zip(axes[:, 0], mosaics, names, weights):
        ax.imshow(mosaic, interpolation="nearest")
        ax.set_title(f"{name}: {len(w)} kernels, mean chroma {kernel_chroma(w).mean():.2f}", fontsize=9)
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def topk_bars(ax, probs: torch.Tensor, class_names, target: int | None = None, k: int = 5):
    """The k most probable classes of one image as horizontal bars, the most probable on top
    (the paper's Figure 4, left). The true class, if among them, is drawn in red, as in the paper."""
    probs = torch.as_tensor(probs).float()
    k = min(k, len(probs))
    p, idx = probs.topk(k)
    colours = ["tab:red" if int(i) == target else "lightsteelblue" for i in idx]
    ax.barh(range(k)[::-1], p.tolist(), color=colours, height=0.8)
    for y, i in zip(range(k)[::-1], idx):  # the class names over the bars, as in the paper
        ax.text(0.02, y, str(class_names[int(i)]), va="center", ha="left", fontsize=7)
    ax.set_yticks([])
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, k - 0.5)
    ax.tick_params(axis="x", labelsize=6)
    return ax


def predictions_figure(
    images, probs, targets, class_names, ncols: int = 4, k: int = 5, size: float = 2.0, suptitle: str | None = None
):
    """Photos with their top-k predictions below them (paper Figure 4, left).

    ``images``: (3, H, W) uint8 photos; ``probs``: (N, classes) softmax outputs; ``targets``:
    the true class of each (its bar is red; the photo's title names it). Returns the figure.
    """
    n = len(images)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(
        2 * nrows,
        ncols,
        squeeze=False,
        figsize=(size * ncols, size * 1.6 * nrows + (0.4 if suptitle else 0)),
        gridspec_kw={"height_ratios": [1, 0.55] * nrows},
    )
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, ncols)
        top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
        top.imshow(to_display(images[i]))
        top.set_title(str(class_names[int(targets[i])]), fontsize=8)
        bottom.axis("on")
        topk_bars(bottom, probs[i], class_names, int(targets[i]), k)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def neighbours_figure(
    queries,
    rows: dict,
    same_class: dict | None = None,
    query_titles=None,
    size: float = 1.0,
    suptitle: str | None = None,
):
    """Query images and their nearest neighbours in one or more spaces (paper Figure 4, right).

    ``queries``: the query images; ``rows``: space name -> one list of neighbour images per
    query. ``same_class`` (same keys, lists of booleans) frames each neighbour green when it
    shares the query's class and orange when not. Returns the figure.
    """
    spaces = list(rows)
    k = max(len(r) for space in spaces for r in rows[space])
    n_rows = len(queries) * len(spaces)
    fig, axes = plt.subplots(
        n_rows, k + 1, squeeze=False, figsize=(size * (k + 1) + 0.8, size * n_rows + (0.4 if suptitle else 0))
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for q, query in enumerate(queries):
        for s, space in enumerate(spaces):
            row = axes[q * len(spaces) + s]
            if s == 0:
                row[0].imshow(to_display(query))
                if query_titles is not None:
                    row[0].set_title(str(query_titles[q]), fontsize=7)
            else:
                row[0].axis("off")
            row[1].set_ylabel(space, fontsize=7)
            for j, img in enumerate(rows[space][q]):
                ax = row[j + 1]
                ax.imshow(to_display(img))
                if same_class is not None:
                    for spine in ax.spines.values():
                        spine.set_visible(True)
                        spine.set_color("tab:green" if same_class[space][q][j] else "tab:orange")
                        spine.set_linewidth(2)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ chapter 9: the claims
VERDICT_COLOURS = {"replicates": "tab:green", "direction only": "tab:olive", "inconclusive": "tab:grey",
                   "not detected": "tab:purple", "contradicted": "tab:red", "cannot be tested here": "lightgrey"}


def _run_effects(c) -> list:
    """Each run's (or pair's, or seed's) effect, in the claim's metric: paired differences, each
    variant run against the baseline mean, or each seed's mean per-image difference."""
    if c.design == "paired by image":
        return [sum(v) / len(v) - sum(b) / len(b) for b, v in zip(c.baseline, c.variant)]
    if c.design == "paired":
        return [v / b if c.log_scale else v - b for b, v in zip(c.baseline, c.variant)]
    mean = sum(c.baseline) / len(c.baseline)
    return [v / mean if c.log_scale else v - mean for v in c.variant]


def forest_plot(claims: list):
    """One row per judged claim: our effect with its 95% interval (the bar), every run's value
    (ticks), the paper's effect where it gives a number (the diamond) or the smallest effect of
    interest (the open square), and zero (or a ratio of 1); a record without per-run values (a
    second reading) shows its interval only. Each row has its own x axis, in the
    claim's units (``claims.UNITS``: points for errors, x for ratios on a log axis). Returns the
    figure, or None when no claim is judged."""
    shown = [c for c in claims if c.comparison and c.comparison.get("effect") is not None]
    if not shown:
        return None
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 0.95 * len(shown) + 0.8), squeeze=False)
    for ax, c in zip(axes[:, 0], shown):
        k, spec = c.comparison, REGISTRY[c.claim_key]
        factor, unit = UNITS[spec.units]
        colour = VERDICT_COLOURS.get(c.verdict, "black")
        ax.axvline((1.0 if c.log_scale else 0.0) * factor, color="black", lw=0.8)
        if k.get("ci_low") is not None:
            ax.plot([k["ci_low"] * factor, k["ci_high"] * factor], [0, 0], color=colour, lw=4, solid_capstyle="butt")
        ax.plot([k["effect"] * factor], [0], "o", color="black", ms=5)
        if c.baseline:  # a second reading keeps only its interval
            ax.plot([r * factor for r in _run_effects(c)], [0.3] * len(c.baseline), "|", color=colour, ms=10,
                    mew=1.5)
        marker = "D" if spec.paper_value is not None else "s"
        ax.plot([spec.target * factor], [0], marker, color="tab:blue", ms=7, mfc="none", mew=1.5)
        if c.log_scale:  # ratios: a log axis, ticked at 0.1, 0.2, 0.5, 1, 2, 5 rather than powers of ten
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks([])
        ax.set_ylim(-0.6, 0.6)
        source = ", paper-scale runs" if c.source == "paper scale" else ""
        ax.set_title(f"{c.claim} — {c.verdict} (n={k['n']}, {k['design']}{source})", fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=7)
        label = "ratio" if c.log_scale else (unit.strip() or "as measured")
        ax.set_xlabel(f"{c.variant_label} vs {c.baseline_label} ({label})", fontsize=7)
    fig.suptitle("Effect and 95% interval (bar), each run or seed (ticks), the paper's effect (diamond) or the "
                 "smallest effect of interest (square), no effect (line)", fontsize=8)
    fig.tight_layout()
    return fig
