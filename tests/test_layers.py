"""LRN and PReLU against their formulas written out in numpy.

The LRN tests run twice: on the fused CPU kernel (alexnet_lib.lrn_cpu) and on the Python path.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from alexnet_lib.layers import LocallyConnected2d, LocalResponseNorm, PReLU
from alexnet_lib.lrn import cpu as lrn_cpu
from alexnet_lib.lrn import local_response_norm
from alexnet_lib.lrn.reference import LRN_ALPHA_CONVENTIONS

from .helpers import close_relative


def lrn_numpy(a, n=5, alpha=1e-4, beta=0.75, k=2.0, divide_by_n=True):
    """b^i = a^i / (k + α Σ_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} (a^j)²)^β, loops and all.

    For an even n the window is torch.nn.LocalResponseNorm's: n/2 maps before i, n/2 - 1 after."""
    a = np.asarray(a, dtype=np.float64)
    N = a.shape[1]
    scale = alpha / n if divide_by_n else alpha
    b = np.empty_like(a)
    for i in range(N):
        lo, hi = max(0, i - n // 2), min(N - 1, i + (n - 1) // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(axis=1)
        b[:, i] = a[:, i] / (k + scale * s) ** beta
    return b


@pytest.fixture
def activations():
    torch.manual_seed(0)
    return torch.randn(2, 12, 5, 5) * 30  # large enough that the normalisation matters


@pytest.fixture(params=["kernel", "python"])
def lrn_path(request, monkeypatch):
    """Every LRN test runs on both paths of local_response_norm on a CPU: the fused kernel of
    alexnet_lib.lrn_cpu (skipped where it cannot be built, an error with
    ALEXNET_LRN_KERNEL=require) and the Python path (the kernel turned off)."""
    if request.param == "python":
        monkeypatch.setenv(lrn_cpu.ENV_VAR, "0")
    elif not lrn_cpu.available():
        pytest.skip(lrn_cpu.status())
    return request.param


@pytest.mark.parametrize("convention, divide", [("cuda-convnet", True), ("paper-literal", False)])
def test_lrn_equals_formula(activations, convention, divide, lrn_path):
    out = LocalResponseNorm(alpha_convention=convention)(activations)
    ref = lrn_numpy(activations.numpy(), divide_by_n=divide)
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_cuda_convnet_convention_matches_torch(activations, lrn_path):
    ours = LocalResponseNorm(5, 1e-4, 0.75, 2.0, "cuda-convnet")(activations)
    theirs = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(activations)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_paper_literal_is_torch_with_alpha_times_n(activations, lrn_path):
    ours = LocalResponseNorm(alpha_convention="paper-literal")(activations)
    theirs = torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)(activations)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_lrn_groups_normalise_each_tower_alone(activations, lrn_path):
    out = LocalResponseNorm(groups=2)(activations)
    a = activations.numpy()
    ref = np.concatenate([lrn_numpy(a[:, :6]), lrn_numpy(a[:, 6:])], axis=1)
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-5, atol=1e-6)
    # and this differs from normalising across the boundary
    assert not np.allclose(ref, lrn_numpy(a), rtol=1e-6)


def towers_numpy(a, groups, **formula):
    """lrn_numpy inside each of ``groups`` equal blocks of channels."""
    return np.concatenate([lrn_numpy(block, **formula) for block in np.split(a, groups, axis=1)], axis=1)


LAYOUTS = {"NCHW": torch.contiguous_format, "NHWC": torch.channels_last}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("convention", LRN_ALPHA_CONVENTIONS)
@pytest.mark.parametrize("size, k, beta, groups", [(5, 2.0, 0.75, 1), (5, 1.0, 0.75, 2), (4, 2.0, 0.6, 2),
                                                   (9, 2.0, 0.75, 3), (7, 1.0, 0.5, 4)])
def test_lrn_equals_formula_for_every_convention_window_and_layout(activations, lrn_path, layout, convention,
                                                                   size, k, beta, groups):
    """Windows odd and even, wider than a tower (7 > 3 channels), the paper's β and others,
    towers, in both memory layouts; the result keeps the input's layout."""
    x = activations.contiguous(memory_format=LAYOUTS[layout])
    out = local_response_norm(x, size, 1e-3, beta, k, convention, groups)
    assert out.is_contiguous(memory_format=LAYOUTS[layout])
    ref = towers_numpy(activations.numpy(), groups, n=size, alpha=1e-3, beta=beta, k=k,
                       divide_by_n=convention != "paper-literal")
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-5, atol=1e-6)


# One rounding of the exact value to bfloat16 (8 significant bits) or float16 (11) is a relative
# error of at most 2^-8 or 2^-11. The kernel computes in float32 and rounds once; the Python path
# computes in the tensor's own dtype and rounds several times, within 3 roundings.
ROUNDINGS = {"kernel": 1.02, "python": 3.0}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype, unit", [(torch.bfloat16, 2.0**-8), (torch.float16, 2.0**-11)])
def test_lrn_in_half_precision_equals_formula_in_both_layouts(lrn_path, layout, dtype, unit):
    torch.manual_seed(0)
    x = (torch.randn(3, 16, 6, 6) * 30).relu().to(dtype).contiguous(memory_format=LAYOUTS[layout])
    x.requires_grad_(True)
    out = local_response_norm(x, groups=2)
    assert out.dtype == dtype and out.is_contiguous(memory_format=LAYOUTS[layout])
    ref = towers_numpy(x.detach().double().numpy(), 2)
    np.testing.assert_allclose(out.double().detach().numpy(), ref, rtol=ROUNDINGS[lrn_path] * unit, atol=1e-6)
    # the gradient, against the float64 gradient of the same formula (autograd through torch's
    # LRN per tower): within a few roundings of the largest value, since the two terms of the
    # gradient cancel
    g = torch.randn(out.shape, dtype=torch.float64)
    out.backward(g.to(dtype).contiguous(memory_format=LAYOUTS[layout]))
    x64 = x.detach().double().requires_grad_(True)
    ref64 = torch.cat([F.local_response_norm(t, 5, 1e-4, 0.75, 2.0) for t in x64.chunk(2, dim=1)], dim=1)
    ref64.backward(g.to(dtype).double())
    assert x.grad.dtype == dtype and x.grad.is_contiguous(memory_format=LAYOUTS[layout])
    err = (x.grad.double() - x64.grad).abs().max() / x64.grad.abs().max()
    assert err <= 4 * ROUNDINGS[lrn_path] * unit, f"{lrn_path} {dtype}: gradient off by {err:.2e} of its largest value"


def test_lrn_even_window_and_gradients(activations, lrn_path):
    x = activations.clone().requires_grad_(True)
    ours = LocalResponseNorm(4, 1e-3, 0.75, 1.0)(x)
    theirs = torch.nn.LocalResponseNorm(4, alpha=1e-3, beta=0.75, k=1.0)(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    (g1,) = torch.autograd.grad(ours.sum(), x)
    (g2,) = torch.autograd.grad(theirs.sum(), x)
    # a gradient is a difference of two terms, so an entry near zero has no relative precision of
    # its own: compare relative to the gradient's scale (float32: a few ulps of the largest entry)
    assert close_relative(g1, g2, rel=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_lrn_hand_written_gradient_passes_gradcheck(lrn_path, layout):
    """The gradient (the kernel's backward, or _LRN's) against finite differences of the
    formula, in float64, for every convention, towers, odd and even windows, several β."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 3, 3, dtype=torch.double).contiguous(memory_format=LAYOUTS[layout]).requires_grad_(True)
    options = [{"size": 5, "groups": 2, "alpha": 1e-2}, {"size": 4, "k": 1.0, "alpha": 1e-2},
               {"size": 3, "alpha": 0.5}, {"size": 5, "beta": 0.6, "alpha": 0.3, "groups": 4}]
    options += [{"size": 5, "alpha": 0.2, "alpha_convention": c, "groups": 2} for c in LRN_ALPHA_CONVENTIONS]
    for kw in options:
        lrn = LocalResponseNorm(**kw)
        assert torch.autograd.gradcheck(lrn, (x,)), kw


def test_lrn_other_shapes_and_strides(lrn_path):
    """(N, C, L) and (N, C, D, H, W) inputs, and a non-contiguous one (a slice)."""
    torch.manual_seed(0)
    sliced = (torch.randn(2, 12, 5, 8) * 20)[:, ::2, :, 1:6]
    for x in (torch.randn(2, 6, 7) * 20, torch.randn(2, 6, 2, 3, 3) * 20, sliced):
        out = local_response_norm(x, 3, 1e-2, 0.75, 2.0, groups=2)
        ref = towers_numpy(x.numpy(), 2, n=3, alpha=1e-2)
        np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-5, atol=1e-6)


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


@pytest.mark.parametrize("kernel, padding, side", [(3, 1, 6), (3, 0, 5), (2, 1, 4)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_locally_connected_outputs_and_gradients_equal_unfold_and_einsum(kernel, padding, side, channels_last):
    """The layer's own forward and backward against the plain formula: F.unfold's columns times each
    position's matrix, through autograd (the layer's earlier implementation)."""
    torch.manual_seed(0)
    layer = LocallyConnected2d(3, 4, input_size=side, kernel_size=kernel, padding=padding).double()
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(5, 3, side, side, dtype=torch.double)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    out = layer(x)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, layer.weight, layer.bias), grad)
    cols = F.unfold(x, kernel, padding=padding)  # (N, C·k·k, L)
    ref = torch.einsum("nfl,lfo->nol", cols, layer.weight).reshape(out.shape) + layer.bias
    expected = torch.autograd.grad(ref, (x, layer.weight, layer.bias), grad)
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="expects"):
        layer(torch.randn(5, 3, side + 1, side + 1, dtype=torch.double))


def test_window_sum_is_the_sum_over_each_window_counted_by_hand():
    from alexnet_lib.lrn.python import window_sum

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


def test_lrn_keeps_channels_last_and_matches_torch_in_both_layouts(lrn_path):
    """A channels_last input gives a channels_last output (no hidden copy to NCHW), with the
    values and input gradients of torch.nn.functional.local_response_norm in both layouts."""
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
        assert close_relative(xin.grad, ref_in.grad, rel=1e-10)  # float64
