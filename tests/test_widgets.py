"""The explorers of alexnet_lib.widgets, without a browser: what each draws equals the paper's
formula written out here, the controls reach the drawing, the static figure is the same on
every run, and no widget is shown where nobody can turn it."""

import io
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from alexnet_lib import widgets
from alexnet_lib.model import AlexNet
from alexnet_lib.transforms import IMAGENET_PCA_EIGENVALUES, IMAGENET_PCA_EIGENVECTORS


@pytest.fixture(autouse=True)
def no_widgets_from_the_environment(monkeypatch):
    monkeypatch.delenv("ALEXNET_WIDGETS", raising=False)
    yield
    plt.close("all")


@pytest.fixture
def displayed(monkeypatch):
    """What ``show_*`` hands to IPython's display (instead of printing it)."""
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    return shown


def lrn_by_hand(a, k, n, alpha, beta, groups=1):
    """§3.3 for every map i: a_i / (k + α Σ_{j in window} a_j²)^β, the window i - n//2 .. i + (n-1)//2
    clipped to the map's own tower, α as given (the caller divides by n for cuda-convnet)."""
    a = np.asarray(a, dtype=np.float64)
    per_tower = a.shape[0] // groups
    b = np.empty_like(a)
    for i in range(a.shape[0]):
        first = (i // per_tower) * per_tower
        lo, hi = max(first, i - n // 2), min(first + per_tower - 1, i + (n - 1) // 2)
        b[i] = a[i] / (k + alpha * (a[lo : hi + 1] ** 2).sum(axis=0)) ** beta
    return b


def relu_response(seed=0, shape=(3, 16, 9, 9), scale=40.0):
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(shape, generator=g) * scale)


def panel(fig, index):
    return np.asarray(fig.axes[index].images[0].get_array())


def maps_after(fig, maps):
    """{map number: the drawn "after LRN" image} of an lrn_figure."""
    out = {}
    for j in range(maps):
        ax = fig.axes[maps + j]
        m = int(re.match(r"map (\d+): b", ax.get_title()).group(1))
        out[m] = np.asarray(ax.images[0].get_array())
    return out


# ------------------------------------------------------------------------------ LRN
@pytest.mark.parametrize("convention, divide", [("cuda-convnet", True), ("paper-literal", False)])
@pytest.mark.parametrize("groups", [1, 2])
def test_the_lrn_panels_equal_the_formula_at_the_given_constants(convention, divide, groups):
    a = relu_response()
    a[:, [0, 7, 8, 15]] *= 3  # the largest maps, shown: the edges, and the two beside the tower boundary
    k, n, alpha, beta, photo = 1.5, 3, 2e-3, 0.6, 1
    fig = widgets.lrn_figure(a, photo=photo, maps=4, k=k, n=n, alpha=alpha, beta=beta,
                             alpha_convention=convention, groups=groups)
    expected = lrn_by_hand(a[photo], k, n, alpha / n if divide else alpha, beta, groups)
    drawn = maps_after(fig, 4)
    assert len(drawn) == 4
    for m, image in drawn.items():
        np.testing.assert_allclose(image, expected[m], rtol=1e-5, atol=1e-6)
    assert not np.allclose(expected, np.asarray(a[photo]) / k**beta, rtol=1e-3), "the neighbours must matter here"
    # the panels show the maps with the largest mean response of that photo, largest first
    by_mean = np.argsort(-a[photo].mean(dim=(1, 2)).numpy(), kind="stable")[:4]
    assert list(drawn) == by_mean.tolist() and set(drawn) == {0, 7, 8, 15}
    np.testing.assert_allclose(panel(fig, 0), a[photo, by_mean[0]].numpy())


def test_the_lrn_explorer_runs_an_alexnet_s_conv1_with_the_model_s_constants(displayed):
    torch.manual_seed(0)
    model = AlexNet(width=0.25, lrn_alpha_convention="caffe").eval()
    images = torch.randn(2, 3, 224, 224) * 50
    response = widgets.conv1_response(model, images)
    assert response.shape == (2, 24, 55, 55) and bool((response >= 0).all())
    settings = widgets.lrn_settings(model)
    assert settings == {"k": 1.0, "n": 5, "alpha": 1e-4, "beta": 0.75, "alpha_convention": "caffe", "groups": 1}
    fig = widgets.show_lrn_explorer(model, images, photo=1, maps=3, interactive=False)
    expected = lrn_by_hand(response[1], 1.0, 5, 1e-4 / 5, 0.75)
    for m, image in maps_after(fig, 3).items():
        np.testing.assert_allclose(image, expected[m], rtol=1e-5, atol=1e-6)
    assert "k=1, n=5" in fig._suptitle.get_text() and not displayed
    with pytest.raises(TypeError, match="needs an AlexNet"):
        widgets.conv1_response(torch.nn.Conv2d(3, 8, 3), images)


def test_the_lrn_sliders_redraw_with_the_values_chosen(displayed, monkeypatch):
    drawn = []
    real = widgets.lrn_figure
    monkeypatch.setattr(widgets, "lrn_figure", lambda *args, **kw: drawn.append(kw) or real(*args, **kw))
    fig = widgets.show_lrn_explorer(relu_response(), maps=2, interactive=True)
    assert len(displayed) == 1 and not plt.fignum_exists(fig.number), "the static figure is closed, the widget shown"
    controls = {c.description: c for c in displayed[0].children[0].children}
    assert set(controls) == {"photo", "k", "n", "α", "β", "α convention"}
    assert drawn[0] == drawn[1] == {"maps": 2, "groups": 1, "photo": 0, **widgets.PAPER_LRN,
                                    "alpha_convention": "cuda-convnet"}  # the static figure, then the live one
    controls["k"].value, controls["n"].value, controls["α"].value = 1.0, 7, 1e-3
    controls["β"].value, controls["α convention"].value, controls["photo"].value = 0.5, "paper-literal", 2
    assert drawn[-1] == {"maps": 2, "groups": 1, "photo": 2, "k": 1.0, "n": 7, "alpha": pytest.approx(1e-3),
                         "beta": 0.5, "alpha_convention": "paper-literal"}


# ------------------------------------------------------------------------ PCA colour
def test_the_pca_shift_is_the_formula_of_section_4_1():
    g = torch.Generator().manual_seed(1)
    photo = torch.randint(0, 256, (3, 12, 10), generator=g, dtype=torch.uint8)
    alphas = (0.8, -0.5, 0.9)
    shifted, shift = widgets.pca_recoloured(photo, IMAGENET_PCA_EIGENVALUES, IMAGENET_PCA_EIGENVECTORS, alphas)
    p = np.asarray(IMAGENET_PCA_EIGENVECTORS, dtype=np.float64)  # columns p1, p2, p3
    lam = np.asarray(IMAGENET_PCA_EIGENVALUES, dtype=np.float64)
    by_hand = 255.0 * sum(alphas[i] * lam[i] * p[:, i] for i in range(3))  # [p1 p2 p3][α1λ1 α2λ2 α3λ3]ᵀ
    np.testing.assert_allclose(shift.numpy(), by_hand, rtol=1e-5)
    expected = np.clip(np.round(photo.numpy().astype(np.float64) + by_hand[:, None, None]), 0, 255)
    assert np.abs(shifted.numpy().astype(int) - expected).max() <= 1  # rounding at .5 may differ by one level
    assert shifted.dtype == torch.uint8 and (shifted.numpy() == expected).mean() > 0.99
    zero, none = widgets.pca_recoloured(photo, IMAGENET_PCA_EIGENVALUES, IMAGENET_PCA_EIGENVECTORS, (0, 0, 0))
    assert torch.equal(zero, photo) and not none.any()


def test_the_pca_explorer_draws_the_shifted_photo_and_its_sliders_reach_it(displayed):
    photo = torch.full((3, 6, 6), 100, dtype=torch.uint8)
    fig = widgets.show_pca_explorer(photo, IMAGENET_PCA_EIGENVALUES, IMAGENET_PCA_EIGENVECTORS, alphas=(1.0, 0, 0),
                                    interactive=False)
    shifted, shift = widgets.pca_recoloured(photo, IMAGENET_PCA_EIGENVALUES, IMAGENET_PCA_EIGENVECTORS, (1.0, 0, 0))
    np.testing.assert_allclose(panel(fig, 1), shifted.permute(1, 2, 0).numpy() / 255.0, atol=1e-6)
    r, g, b = shift.tolist()
    assert f"R {r:+.1f}, G {g:+.1f}, B {b:+.1f}" in fig._suptitle.get_text()
    assert r < -10 and g < -10 and b < -10  # p1 of ImageNet is a brightness axis: α1 = 1 darkens by ~14 levels
    widgets.show_pca_explorer(photo, IMAGENET_PCA_EIGENVALUES, IMAGENET_PCA_EIGENVECTORS, interactive=True)
    sliders = displayed[0].children[0].children
    assert [s.description for s in sliders] == ["α1", "α2", "α3"] and [s.value for s in sliders] == [0.3] * 3
    assert all(s.min == -1.0 and s.max == 1.0 for s in sliders)


# --------------------------------------------------------------------- conv1 kernels
def test_the_kernel_viewer_shows_the_chosen_set_and_tower(displayed):
    torch.manual_seed(0)
    models = {f"epoch {e}": AlexNet(width=0.25) for e in (1, 2)}
    sets = widgets.kernel_sets(models)
    assert list(sets) == ["epoch 1", "epoch 2"]
    assert all(torch.equal(w, t.conv1.weight) for w, t in zip(sets["epoch 2"], models["epoch 2"].towers))
    cli_file = {"tower1": torch.ones(4, 3, 11, 11), "tower0": torch.zeros(4, 3, 11, 11)}
    assert list(widgets.kernel_sets(cli_file)) == ["conv1"]  # the CLI's file is one set, its towers in order
    assert torch.equal(widgets.kernel_sets(cli_file)["conv1"][1], cli_file["tower1"])

    both = widgets.show_kernel_viewer(models, interactive=False)
    assert both._suptitle.get_text() == "epoch 2" and len(both.axes) == 2  # the last set, both towers
    one = widgets.show_kernel_viewer(models, selected="epoch 1", tower="tower 1", interactive=False)
    assert len(one.axes) == 1 and one.axes[0].get_title().startswith("tower 1 (the paper's GPU 2): 12 kernels")
    from alexnet_lib.viz import kernel_grid

    expected = kernel_grid(models["epoch 1"].towers[1].conv1.weight.detach(), ncols=12)
    np.testing.assert_allclose(panel(one, 0), expected)
    with pytest.raises(ValueError, match="no kernel set named 'epoch 9'"):
        widgets.show_kernel_viewer(models, selected="epoch 9", interactive=False)
    widgets.show_kernel_viewer(models, interactive=True)
    selector, towers = displayed[0].children[0].children
    assert list(selector.options) == ["epoch 1", "epoch 2"] and list(towers.options) == ["both", "tower 0", "tower 1"]


# ----------------------------------------------------------------------- predictions
def test_the_prediction_explorer_shows_the_top5_of_the_chosen_photo(displayed):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 16, 16), generator=g, dtype=torch.uint8)
    probs = torch.softmax(torch.randn(3, 10, generator=g) * 3, dim=1)
    targets = torch.tensor([4, 7, 1])
    names = [f"class {i}" for i in range(10)]
    fig = widgets.show_prediction_explorer(images, probs, targets, names, photo=2, interactive=False)
    bars = sorted((p.get_width() for p in fig.axes[1].patches), reverse=True)
    np.testing.assert_allclose(bars, sorted(probs[2].tolist(), reverse=True)[:5], rtol=1e-6)
    assert fig.axes[0].get_title() == "class 1"
    with pytest.raises(ValueError, match="one of each per photo"):
        widgets.show_prediction_explorer(images, probs[:2], targets, names, interactive=False)
    widgets.show_prediction_explorer(images, probs, targets, names, interactive=True)
    (choice,) = displayed[0].children[0].children
    assert choice.options[2] == ("2: class 1", 2)


# ---------------------------------------------------------------- static and quiet
def png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def test_the_static_figures_are_the_same_on_every_run():
    a = relu_response(seed=3)
    photo = torch.randint(0, 256, (3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    for make in (lambda: widgets.show_lrn_explorer(a, interactive=False),
                 lambda: widgets.show_pca_explorer(photo, IMAGENET_PCA_EIGENVALUES, IMAGENET_PCA_EIGENVECTORS,
                                                   interactive=False)):
        assert png(make()) == png(make())


def test_widgets_are_shown_only_where_someone_can_turn_them(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "book/04_lrn.ipynb")
    assert widgets.widgets_wanted() is False  # no kernel in this process (as under nbval, a kernel has one)
    assert widgets.widgets_wanted(True) is True and widgets.widgets_wanted(False) is False
    monkeypatch.setenv("ALEXNET_WIDGETS", "1")
    assert widgets.widgets_wanted() is True
    monkeypatch.setenv("ALEXNET_WIDGETS", "0")
    assert widgets.widgets_wanted() is False and widgets.widgets_wanted(True) is True


def test_a_kernel_started_by_nbconvert_shows_no_widget_and_one_from_jupyterlab_does(monkeypatch):
    import IPython

    class KernelShell:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: KernelShell())
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert widgets.widgets_wanted() is False  # nbclient/nbval: a kernel, no front end
    monkeypatch.setenv("JPY_SESSION_NAME", "book/04_lrn.ipynb")
    assert widgets.widgets_wanted() is True  # JupyterLab names the notebook of the kernel it starts
