"""Knobs a reader can turn: ipywidgets explorers where the paper invites "what if?".

* ``show_lrn_explorer``: §3.3's local response normalisation on a real conv1 response, with
  sliders for k, n, α and β;
* ``show_pca_explorer``: §4.1's colour shift along the RGB principal components of a photo,
  one slider per α_i;
* ``show_kernel_viewer``: conv1's kernels (§6.1, Figure 3) by tower, and by epoch or run when
  several sets of kernels are given;
* ``show_prediction_explorer``: the top-5 predictions (Figure 4) of a chosen photo.

Each ``show_*`` returns a static matplotlib figure drawn at its default values. That figure is
what the rendered book shows and what nbval runs, so neither depends on the state of a widget,
and it is the same on every run. Where a person runs the chapter in a notebook front end, the
function also displays the controls, which redraw the same figure with the values chosen (the
static figure is then closed, so it is not shown twice). When that happens:
``interactive=True/False`` decides; without it ``$ALEXNET_WIDGETS`` (``1`` or ``0``); without
that, only in a kernel that a notebook front end started (JupyterLab, Jupyter Notebook: they set
``JPY_SESSION_NAME``; Colab). Chapters run by nbconvert, nbclient or nbval (``make chapters``,
``make test``) show no widget, so the committed outputs hold none (run those from a terminal:
a notebook's ``!make chapters`` passes its session on; or set ``ALEXNET_WIDGETS=0``).

The numbers come from the library (``layers.local_response_norm``, ``transforms.pca_colour``),
the pictures from ``viz``; this module only wires them to controls.
"""

from __future__ import annotations

import os
import sys

import matplotlib.pyplot as plt
import torch

from . import viz
from .layers import LocalResponseNorm
from .lrn import local_response_norm
from .lrn.reference import LRN_ALPHA_CONVENTIONS
from .transforms import pca_colour

#: The paper's LRN constants (§3.3): k, n, α, β.
PAPER_LRN = {"k": 2.0, "n": 5, "alpha": 1e-4, "beta": 0.75}


# ------------------------------------------------------------------------- the machinery
def widgets_wanted(interactive: bool | None = None) -> bool:
    """Whether ``show_*`` displays its controls (see the module's docstring)."""
    if interactive is not None:
        return bool(interactive)
    env = os.environ.get("ALEXNET_WIDGETS", "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):
        return False  # a plain Python process or a terminal IPython: no widgets to show
    return bool(os.environ.get("JPY_SESSION_NAME")) or "google.colab" in sys.modules


def explorer(draw, controls: dict):
    """The controls above a live figure: ``draw(**values)`` is called, and its figure shown,
    each time a control changes (and once at the start). Returns the ipywidgets box."""
    import ipywidgets as W

    def redraw(**values):
        fig = draw(**values)
        plt.show()
        plt.close(fig)

    out = W.interactive_output(redraw, controls)
    return W.VBox([W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")), out])


def show(draw, defaults: dict, make_controls, interactive: bool | None = None):
    """The static figure ``draw(**defaults)``, returned; with widgets wanted, the controls
    ``make_controls()`` (names as in ``defaults``) and their live figure are displayed too."""
    fig = draw(**defaults)
    if widgets_wanted(interactive):
        from IPython.display import display

        plt.close(fig)
        display(explorer(draw, make_controls()))
    return fig


# ----------------------------------------------------------------------- §3.3: LRN
def conv1_response(model, images: torch.Tensor) -> torch.Tensor:
    """An AlexNet's conv1 after its ReLU and before LRN (the a of §3.3), for a batch of images
    of the model's input size; no gradient."""
    if not hasattr(model, "stage"):
        raise TypeError(f"conv1_response needs an AlexNet (its stages run one at a time), got {type(model).__name__}; "
                        "pass the conv1 response itself (an (N, C, H, W) tensor) instead")
    model.check_input(images)
    with torch.no_grad():
        return model.stage("conv1", model.pad_input(images))


def lrn_settings(model) -> dict:
    """k, n, α, β, the α convention and the towers of a model's LRN; the paper's for anything else."""
    lrn = getattr(model, "lrn", None)
    if isinstance(lrn, LocalResponseNorm):
        return {"k": lrn.k, "n": lrn.size, "alpha": lrn.alpha, "beta": lrn.beta,
                "alpha_convention": lrn.alpha_convention, "groups": lrn.groups}
    return {**PAPER_LRN, "alpha_convention": "cuda-convnet", "groups": 1}


def lrn_figure(response: torch.Tensor, photo: int = 0, maps: int = 4, k: float = 2.0, n: int = 5,
               alpha: float = 1e-4, beta: float = 0.75, alpha_convention: str = "cuda-convnet", groups: int = 1):
    """One photo's conv1 response before and after LRN with these constants.

    Axes, in order: the ``maps`` maps with the largest mean response, before LRN (top row);
    the same maps after it, on the same colour scale (bottom row); every active neuron of the
    photo as a point, b against a, with the line a / k^β that LRN follows without neighbours.
    """
    a = response[photo : photo + 1].float()
    b = local_response_norm(a, n, alpha, beta, k, alpha_convention, groups)[0]
    a = a[0]
    top = a.mean(dim=(1, 2)).argsort(descending=True, stable=True)[:maps].tolist()
    fig = plt.figure(figsize=(2.1 * len(top) + 4.2, 4.6))
    grid = fig.add_gridspec(2, len(top) + 2)
    before = [fig.add_subplot(grid[0, j]) for j in range(len(top))]
    after = [fig.add_subplot(grid[1, j]) for j in range(len(top))]
    for j, m in enumerate(top):
        vmax = float(a[m].max()) or 1.0
        before[j].imshow(a[m].numpy(), cmap="magma", vmin=0, vmax=vmax)
        after[j].imshow(b[m].numpy(), cmap="magma", vmin=0, vmax=vmax)
        before[j].set_title(f"map {m}: a", fontsize=8)
        after[j].set_title(f"map {m}: b (same scale)", fontsize=8)
    for ax in before + after:
        ax.axis("off")
    scatter = fig.add_subplot(grid[:, len(top) :])
    active = a > 0
    av, bv = a[active], b[active]
    step = max(1, len(av) // 4000)  # a fixed thinning: the same points on every run
    scatter.scatter(av[::step].numpy(), bv[::step].numpy(), s=2, alpha=0.3, rasterized=True, label="active neurons")
    line = torch.linspace(0, float(av.max()) if len(av) else 1.0, 50)
    scatter.plot(line.numpy(), (line / k**beta).numpy(), color="black", lw=1, label="a / k^β (no neighbours)")
    scatter.set_xlabel("a: conv1 after ReLU")
    scatter.set_ylabel("b: after LRN")
    scatter.legend(fontsize=7)
    ratio = (bv / av) if len(av) else torch.ones(1)
    used = alpha if alpha_convention == "paper-literal" else alpha / n
    fig.suptitle(f"LRN on conv1, photo {photo}: k={k:g}, n={n}, α={alpha:.1e} (α'={used:.1e} in the sum, "
                 f"{alpha_convention}), β={beta:g}; b/a from {float(ratio.min()):.3f} to {float(ratio.max()):.3f}",
                 fontsize=9)
    fig.tight_layout()
    return fig


def show_lrn_explorer(model, images: torch.Tensor | None = None, photo: int = 0, maps: int = 4,
                      interactive: bool | None = None, **constants):
    """§3.3's LRN on a real conv1 response, with sliders for k, n, α, β, the α convention and
    the photo. ``model``: an AlexNet (run on ``images``) or a conv1 response (N, C, H, W)
    already computed. The defaults are the model's own LRN constants (the paper's for a
    tensor); ``constants`` (k, n, alpha, beta, alpha_convention, groups) override them.
    Returns the static figure of :func:`lrn_figure` at those values."""
    response = model if isinstance(model, torch.Tensor) else conv1_response(model, images)
    settings = {**lrn_settings(model), **constants}
    groups = settings.pop("groups")
    defaults = {"photo": photo, **settings}

    def draw(**values):
        return lrn_figure(response, maps=maps, groups=groups, **values)

    def controls():
        import ipywidgets as W

        return {
            "photo": W.IntSlider(value=photo, min=0, max=len(response) - 1, description="photo"),
            "k": W.FloatSlider(value=settings["k"], min=0.1, max=4.0, step=0.1, description="k"),
            "n": W.IntSlider(value=settings["n"], min=1, max=15, description="n"),
            "alpha": W.FloatLogSlider(value=settings["alpha"], base=10, min=-6, max=-1, step=0.1, description="α"),
            "beta": W.FloatSlider(value=settings["beta"], min=0.0, max=2.0, step=0.05, description="β"),
            "alpha_convention": W.Dropdown(options=LRN_ALPHA_CONVENTIONS, value=settings["alpha_convention"],
                                           description="α convention"),
        }

    return show(draw, defaults, controls, interactive)


# ----------------------------------------------------------------------- §4.1: PCA colour
def pca_recoloured(photo: torch.Tensor, eigenvalues, eigenvectors, alphas) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 photo (3, H, W) with [p1 p2 p3][α1λ1, α2λ2, α3λ3]ᵀ added to every pixel (§4.1),
    the eigen-decomposition's units being pixels in [0, 1] (as ``transforms.pca_basis`` gives).

    Returns the photo as uint8, rounded and clipped to 0..255 for display, and the shift added
    to every pixel, in 0..255 levels (R, G, B)."""
    alphas = torch.as_tensor(alphas, dtype=torch.float32).reshape(1, 3)
    values, vectors = torch.as_tensor(eigenvalues).float(), torch.as_tensor(eigenvectors).float()
    shifted = pca_colour(photo.float()[None], values, vectors, alphas=alphas, scale=255.0)[0]
    shift = pca_colour(torch.zeros(1, 3, 1, 1), values, vectors, alphas=alphas, scale=255.0).flatten()
    return shifted.round().clamp(0, 255).to(torch.uint8), shift


def pca_figure(photo: torch.Tensor, eigenvalues, eigenvectors, a1: float = 0.3, a2: float = 0.3, a3: float = 0.3):
    """The photo, the photo with α = (a1, a2, a3), and the colour that was added (on mid-grey)."""
    shifted, shift = pca_recoloured(photo, eigenvalues, eigenvectors, (a1, a2, a3))
    swatch = (torch.full((3, 8, 8), 128.0) + shift[:, None, None]).round().clamp(0, 255).to(torch.uint8)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1, 1, 0.5]})
    for ax, img, title in zip(axes, (photo, shifted, swatch), ("the photo", f"α = ({a1:+.2f}, {a2:+.2f}, {a3:+.2f})",
                                                                 "added, on grey 128")):
        ax.imshow(viz.to_display(img), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    r, g, b = shift.tolist()
    fig.suptitle(f"PCA colour (§4.1): every pixel gets R {r:+.1f}, G {g:+.1f}, B {b:+.1f} levels", fontsize=10)
    fig.tight_layout()
    return fig


def show_pca_explorer(photo: torch.Tensor, eigenvalues, eigenvectors, alphas=(0.3, 0.3, 0.3),
                      max_alpha: float = 1.0, interactive: bool | None = None):
    """§4.1's colour shift on a uint8 photo (3, H, W), one slider per α_i in ±``max_alpha``
    (the paper draws α_i from N(0, 0.1): the default 0.3 is a large but possible draw).
    Returns the static figure of :func:`pca_figure` at ``alphas``."""
    defaults = dict(zip(("a1", "a2", "a3"), (float(a) for a in alphas)))

    def draw(**values):
        return pca_figure(photo, eigenvalues, eigenvectors, **values)

    def controls():
        import ipywidgets as W

        return {name: W.FloatSlider(value=value, min=-max_alpha, max=max_alpha, step=0.01, description=f"α{i + 1}")
                for i, (name, value) in enumerate(defaults.items())}

    return show(draw, defaults, controls, interactive)


# ------------------------------------------------------------------ §6.1: conv1's kernels
def tower_weights(kernels) -> list:
    """One kernel set as a list of per-tower (K, 3, h, w) tensors: from an AlexNet, the CLI's
    ``{"tower0": ..., "tower1": ...}``, a list of tensors, or one tensor (one tower)."""
    if hasattr(kernels, "towers"):
        return [t.conv1.weight.detach().cpu() for t in kernels.towers]
    if isinstance(kernels, torch.Tensor):
        return [kernels.detach().cpu()]
    if isinstance(kernels, dict):
        return [kernels[name].detach().cpu() for name in sorted(kernels)]
    return [w.detach().cpu() for w in kernels]


def kernel_sets(kernels) -> dict:
    """{label: per-tower kernels}: one set (labelled "conv1"), or a dict of label -> set (epochs, runs)."""
    one_set = not isinstance(kernels, dict) or all(str(name).startswith("tower") for name in kernels)
    sets = {"conv1": kernels} if one_set else kernels
    return {str(label): tower_weights(k) for label, k in sets.items()}


def kernel_figure(sets: dict, selected: str, tower: str = "both"):
    """The kernels of set ``selected`` (a label of ``sets``), both towers or ``"tower t"``."""
    weights = sets[selected]
    names = [f"tower {t} (the paper's GPU {t + 1})" for t in range(len(weights))]
    if tower != "both":
        t = int(tower.split()[-1])
        weights, names = [weights[t]], [names[t]]
    return viz.tower_kernels(weights, names=names, suptitle=selected)


def show_kernel_viewer(kernels, selected: str | None = None, tower: str = "both", interactive: bool | None = None):
    """conv1's kernels by tower, and by epoch or run. ``kernels``: one set (an AlexNet, the
    CLI's tower dict, a list of tensors) or a dict of label -> set, e.g. ``{"epoch 1": ...,
    "epoch 90": ...}``. Shows ``selected`` (default: the last set) and ``tower`` ("both",
    "tower 0", "tower 1"). Returns that static figure (``viz.tower_kernels``)."""
    sets = kernel_sets(kernels)
    selected = list(sets)[-1] if selected is None else selected
    if selected not in sets:
        raise ValueError(f"no kernel set named {selected!r}; the sets are {list(sets)}")
    towers = ["both"] + [f"tower {t}" for t in range(len(sets[selected]))]

    def draw(**values):
        return kernel_figure(sets, **values)

    def controls():
        import ipywidgets as W

        return {"selected": W.SelectionSlider(options=list(sets), value=selected, description="kernels"),
                "tower": W.ToggleButtons(options=towers, value=tower, description="tower")}

    return show(draw, {"selected": selected, "tower": tower}, controls, interactive)


# ---------------------------------------------------------------- Figure 4: predictions
def prediction_figure(images, probs, targets, class_names, photo: int = 0, k: int = 5):
    """Photo ``photo`` and its top-k predictions (``viz.predictions_figure`` for one photo)."""
    pick = slice(photo, photo + 1)
    return viz.predictions_figure(images[pick], probs[pick], targets[pick], class_names, ncols=1, k=k, size=3.2,
                                  suptitle=f"photo {photo}")


def show_prediction_explorer(images, probs, targets, class_names, photo: int = 0, k: int = 5,
                             interactive: bool | None = None):
    """The top-k predictions of a chosen photo. ``images``: uint8 photos (N, 3, H, W);
    ``probs``: the model's softmax outputs (N, classes); ``targets``: their true classes.
    Returns the static figure for ``photo``."""
    if len(images) != len(probs) or len(images) != len(targets):
        raise ValueError(f"{len(images)} images, {len(probs)} rows of probabilities and {len(targets)} targets: "
                         "give one of each per photo")

    def draw(**values):
        return prediction_figure(images, probs, targets, class_names, k=k, **values)

    def controls():
        import ipywidgets as W

        options = [(f"{i}: {class_names[int(t)]}", i) for i, t in enumerate(targets)]
        return {"photo": W.Dropdown(options=options, value=photo, description="photo")}

    return show(draw, {"photo": photo}, controls, interactive)
