"""Chapter 10's measures (§6.1): kernel chroma and nearest neighbours, against hand-built cases."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from alexnet_lib.analysis import kernel_chroma, nearest_neighbours
from alexnet_lib.viz import predictions_figure, topk_bars, tower_kernels


def kernel(r, g, b, size=11):
    """A kernel with the same (r, g, b) weights at every pixel, times a spatial pattern."""
    pattern = torch.cos(torch.linspace(0, 3 * math.pi, size))[None, :].expand(size, size)  # a grating
    return torch.stack([r * pattern, g * pattern, b * pattern])


# Chroma is a ratio of norms in [0, 1], computed in float32 over 3 x 11 x 11 weights: its rounding
# error is a few float32 epsilons (1.2e-7) times the ratio's scale, 1. The bounds below (1e-6
# absolute on a quantity of scale 1, or 1e-5 relative) leave a factor of about 10 over that.


def test_grey_kernel_has_no_chroma():
    grey = kernel(1.0, 1.0, 1.0)
    assert kernel_chroma(grey[None]).item() == pytest.approx(0.0, abs=1e-6)


def test_red_green_opponent_kernel_is_all_colour():
    # R = +p, G = -p, B = 0: the RGB mean is 0 at every pixel, so all of the norm is colour.
    assert kernel_chroma(kernel(1.0, -1.0, 0.0)[None]).item() == pytest.approx(1.0, abs=1e-6)


def test_values_computed_by_hand():
    # Pure red (1, 0, 0): grey part (1/3, 1/3, 1/3), colour part (2/3, -1/3, -1/3);
    # |colour|^2 = 4/9 + 1/9 + 1/9 = 6/9 of |w|^2 = 1 per pixel, so chroma = sqrt(2/3).
    # (2, 1, 0): grey (1, 1, 1), colour (1, 0, -1): 2 of 5 per pixel, chroma = sqrt(2/5).
    # (1, 1, 0): grey (2/3, 2/3, 2/3), colour (1/3, 1/3, -2/3): 6/9 of 2, chroma = sqrt(1/3).
    ks = torch.stack([kernel(1.0, 0.0, 0.0), kernel(2.0, 1.0, 0.0), kernel(1.0, 1.0, 0.0)])
    expected = [math.sqrt(2 / 3), math.sqrt(2 / 5), math.sqrt(1 / 3)]
    assert kernel_chroma(ks).tolist() == pytest.approx(expected, abs=1e-6)


def test_grey_blob_plus_colour_blob_matches_a_numpy_loop():
    # A kernel whose pixels differ: an independent per-pixel reference in numpy.
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 3, 11, 11, generator=g)
    w[:, :, :5] = w[:, :1, :5]  # the top rows grey, the rest random colour
    arr = w.numpy().astype(np.float64)
    for i in range(len(arr)):
        colour_sq, total_sq = 0.0, 0.0
        for y in range(11):
            for x in range(11):
                rgb = arr[i, :, y, x]
                m = (rgb[0] + rgb[1] + rgb[2]) / 3
                colour_sq += sum((c - m) ** 2 for c in rgb)
                total_sq += sum(c**2 for c in rgb)
        assert kernel_chroma(w[i : i + 1]).item() == pytest.approx(math.sqrt(colour_sq / total_sq), rel=1e-5)


def test_chroma_ignores_scale_and_sign_and_random_kernels_give_sqrt_two_thirds():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(96, 3, 11, 11, generator=g)
    c = kernel_chroma(w)
    assert c.shape == (96,)
    assert torch.allclose(kernel_chroma(-3.0 * w), c, atol=1e-6)
    assert c.mean().item() == pytest.approx(math.sqrt(2 / 3), abs=0.01)


def test_chroma_rejects_non_rgb_kernels():
    with pytest.raises(ValueError, match=r"\(K, 3, h, w\)"):
        kernel_chroma(torch.zeros(4, 1, 11, 11))


def test_nearest_neighbours_match_a_brute_force_loop():
    g = torch.Generator().manual_seed(2)
    keys = torch.randint(0, 256, (37, 3, 4, 4), generator=g, dtype=torch.uint8)
    queries = torch.randint(0, 256, (6, 3, 4, 4), generator=g, dtype=torch.uint8)
    d, idx = nearest_neighbours(queries, keys, k=4, chunk=5)  # several chunks
    K, Q = keys.numpy().reshape(37, -1).astype(np.float64), queries.numpy().reshape(6, -1).astype(np.float64)
    for q in range(6):
        dist = [math.sqrt(((Q[q] - K[n]) ** 2).sum()) for n in range(37)]
        order = sorted(range(37), key=lambda n: dist[n])[:4]
        assert idx[q].tolist() == order
        assert d[q].tolist() == pytest.approx([dist[n] for n in order], rel=1e-5)


def test_a_key_equal_to_the_query_is_its_nearest_neighbour():
    keys = torch.randn(20, 8)
    d, idx = nearest_neighbours(keys[[3, 11]], keys, k=2)
    assert idx[:, 0].tolist() == [3, 11]
    # a distance of a vector to itself, computed in float64 as sqrt(|q|^2 + |k|^2 - 2 q.k) by cdist:
    # zero up to sqrt of a few float64 epsilons of |q|^2 (about 3), i.e. below 1e-6 of the scale
    scale = float(keys[[3, 11]].norm(dim=1).max())
    assert d[:, 0].tolist() == pytest.approx([0.0, 0.0], abs=1e-6 * scale)


def test_topk_bars_draws_the_five_most_probable_with_the_true_class_in_red():
    import matplotlib.pyplot as plt

    probs = torch.tensor([0.05, 0.4, 0.1, 0.02, 0.3, 0.08, 0.04])
    fig, ax = plt.subplots()
    topk_bars(ax, probs, [f"c{i}" for i in range(7)], target=4)
    by_height = {t.get_position()[1]: t.get_text() for t in ax.texts}  # the names written over the bars
    bars = sorted(ax.patches, key=lambda p: -p.get_y())  # top bar first
    assert [round(b.get_width(), 2) for b in bars] == [0.4, 0.3, 0.1, 0.08, 0.05]
    red = [i for i, b in enumerate(bars) if b.get_facecolor()[:3] == matplotlib.colors.to_rgb("tab:red")]
    assert red == [1]
    assert [by_height[y] for y in sorted(by_height, reverse=True)] == ["c1", "c4", "c2", "c5", "c0"]
    plt.close(fig)


def test_figures_have_a_panel_per_tower_and_per_photo():
    import matplotlib.pyplot as plt

    fig = tower_kernels({"tower0": torch.randn(6, 3, 11, 11), "tower1": torch.randn(6, 3, 11, 11)}, ncols=3)
    assert len(fig.axes) == 2 and "tower 1 (the paper's GPU 2)" in fig.axes[1].get_title()
    plt.close(fig)
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    probs = torch.softmax(torch.randn(3, 10), 1)
    fig = predictions_figure(images, probs, [0, 1, 2], [str(i) for i in range(10)], ncols=2)
    assert sum(1 for ax in fig.axes if ax.patches) == 3
    plt.close(fig)
