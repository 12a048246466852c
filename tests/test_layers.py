"""LRN and PReLU against their formulas written out in numpy."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alexnet_lib.layers import LocallyConnected2d, LocalResponseNorm, PReLU


def lrn_numpy(a, n=5, alpha=1e-4, beta=0.75, k=2.0, divide_by_n=True):
    """b^i = a^i / (k + α Σ_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} (a^j)²)^β, loops and all."""
    a = np.asarray(a, dtype=np.float64)
    N = a.shape[1]
    scale = alpha / n if divide_by_n else alpha
    b = np.empty_like(a)
    for i in range(N):
        lo, hi = max(0, i - n // 2), min(N - 1, i + n // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(axis=1)
        b[:, i] = a[:, i] / (k + scale * s) ** beta
    return b


@pytest.fixture
def activations():
    torch.manual_seed(0)
    return torch.randn(2, 12, 5, 5) * 30  # large enough that the normalisation matters


@pytest.mark.parametrize("convention, divide", [("cuda-convnet", True), ("paper-literal", False)])
def test_lrn_equals_formula(activations, convention, divide):
    out = LocalResponseNorm(alpha_convention=convention)(activations)
    ref = lrn_numpy(activations.numpy(), divide_by_n=divide)
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_cuda_convnet_convention_matches_torch(activations):
    ours = LocalResponseNorm(5, 1e-4, 0.75, 2.0, "cuda-convnet")(activations)
    theirs = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(activations)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_paper_literal_is_torch_with_alpha_times_n(activations):
    ours = LocalResponseNorm(alpha_convention="paper-literal")(activations)
    theirs = torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)(activations)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_lrn_groups_normalise_each_tower_alone(activations):
    out = LocalResponseNorm(groups=2)(activations)
    a = activations.numpy()
    ref = np.concatenate([lrn_numpy(a[:, :6]), lrn_numpy(a[:, 6:])], axis=1)
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-5, atol=1e-6)
    # and this differs from normalising across the boundary
    assert not np.allclose(ref, lrn_numpy(a), rtol=1e-6)


def test_lrn_even_window_and_gradients(activations):
    x = activations.clone().requires_grad_(True)
    ours = LocalResponseNorm(4, 1e-3, 0.75, 1.0)(x)
    theirs = torch.nn.LocalResponseNorm(4, alpha=1e-3, beta=0.75, k=1.0)(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    (g1,) = torch.autograd.grad(ours.sum(), x)
    (g2,) = torch.autograd.grad(theirs.sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-6)


def test_lrn_hand_written_gradient_passes_gradcheck():
    x = torch.randn(2, 8, 3, 3, dtype=torch.double, requires_grad=True)
    options = ({"size": 5, "groups": 2, "alpha": 1e-2}, {"size": 4, "k": 1.0, "alpha": 1e-2}, {"size": 3, "alpha": 0.5})
    for kw in options:
        lrn = LocalResponseNorm(**kw)
        assert torch.autograd.gradcheck(lrn, (x,))


def test_lrn_rejects_bad_convention():
    with pytest.raises(ValueError, match="valid values are 'cuda-convnet'"):
        LocalResponseNorm(alpha_convention="pytorch")


def test_prelu_formula():
    y = torch.tensor([[-2.0, -0.5, 0.0, 3.0]]).T.reshape(1, 4, 1, 1).repeat(1, 1, 2, 2)
    p = PReLU(4)
    assert torch.all(p.weight == 0.25)
    with torch.no_grad():
        p.weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    expected = torch.tensor([-0.2, -0.1, 0.0, 3.0])  # max(0,y) + a·min(0,y), by hand
    assert torch.allclose(p(y)[0, :, 0, 0], expected)
    shared = PReLU(4, channel_wise=False)
    assert shared.weight.numel() == 1
    assert torch.allclose(shared(y)[0, :, 1, 1], torch.tensor([-0.5, -0.125, 0.0, 3.0]))


def test_locally_connected_equals_per_position_dot_products():
    torch.manual_seed(0)
    layer = LocallyConnected2d(2, 3, input_size=4, kernel_size=3, padding=1)
    x = torch.randn(1, 2, 4, 4)
    out = layer(x)
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(4):
        for j in range(4):
            patch = xp[0, :, i : i + 3, j : j + 3].reshape(-1)  # channel-major, like unfold
            w = layer.weight[i * 4 + j]  # (fan_in, out)
            ref = patch @ w + layer.bias[:, i, j]
            assert torch.allclose(out[0, :, i, j], ref, atol=1e-5)
    # a filter is not shared: two positions have different weights
    assert not torch.equal(layer.weight[0], layer.weight[1])


def test_window_sum_is_the_sum_over_each_window_counted_by_hand():
    from alexnet_lib.layers import window_sum

    torch.manual_seed(0)
    for channels in range(1, 10):
        a = torch.randn(2, channels, 3, dtype=torch.double)
        for size in range(1, 8):
            for transpose in (False, True):
                lo, hi = (size // 2, (size - 1) // 2)[:: -1 if transpose else 1]
                window = [range(max(0, i - lo), min(channels - 1, i + hi) + 1) for i in range(channels)]
                expected = torch.stack([sum((a[:, j] for j in w), torch.zeros_like(a[:, 0])) for w in window], dim=1)
                torch.testing.assert_close(window_sum(a, size, transpose), expected,
                                           msg=f"C={channels} n={size} T={transpose}")


def test_lrn_keeps_channels_last_and_matches_torch_in_both_layouts():
    """A channels_last input gives a channels_last output (no hidden copy to NCHW), with the
    values and input gradients of torch.nn.functional.local_response_norm in both layouts."""
    from alexnet_lib.layers import local_response_norm

    torch.manual_seed(0)
    x = torch.randn(3, 12, 5, 5, dtype=torch.double) * 20
    g = torch.randn_like(x)
    ref_in = x.clone().requires_grad_()
    ref = F.local_response_norm(ref_in, 5, alpha=1e-4, beta=0.75, k=2.0)
    ref.backward(g)
    for fmt in (torch.contiguous_format, torch.channels_last):
        xin = x.clone(memory_format=fmt).requires_grad_()
        y = local_response_norm(xin)
        assert y.is_contiguous(memory_format=fmt)
        y.backward(g.contiguous(memory_format=fmt))
        torch.testing.assert_close(y, ref)
        torch.testing.assert_close(xin.grad, ref_in.grad)
