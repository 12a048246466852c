"""FFTConv2d: the FFT convolution of the CIFAR nets' conv2 against the direct convolution in float64,
forward and all three gradients, in both memory layouts; and where it cannot run, it is nn.Conv2d."""

import pytest
import torch
import torch.nn.functional as F

from alexnet_lib.layers import FFTConv2d, _nnpack_available

needs_nnpack = pytest.mark.skipif(not _nnpack_available(), reason="this PyTorch has no NNPACK")


@needs_nnpack
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("side, cin, bias", [(12, 64, True), (6, 8, True), (16, 3, False)])
def test_the_fft_convolution_is_the_direct_one_to_float_rounding(channels_last, side, cin, bias):
    torch.manual_seed(0)
    conv = FFTConv2d(cin, 16, 5, padding=2, bias=bias)
    x = torch.randn(20, cin, side, side)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    out = conv(x)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last  # the layout is kept
    g = torch.randn_like(out)
    params = (x, conv.weight) + ((conv.bias,) if bias else ())
    got = torch.autograd.grad(out, params, g)
    exact = [p.detach().double().requires_grad_(True) for p in params]
    ref = F.conv2d(exact[0], exact[1], exact[2] if bias else None, padding=2)  # the direct convolution, float64
    expected = torch.autograd.grad(ref, exact, g.double())
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-5 * ref.abs().max().item())
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-5 * b.abs().max().item())


def test_where_the_fft_cannot_run_it_is_the_plain_convolution():
    torch.manual_seed(0)
    conv = FFTConv2d(3, 4, 5, padding=2)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)  # float64: NNPACK computes float32 only
    torch.testing.assert_close(conv.double()(x), F.conv2d(x, conv.weight, conv.bias, padding=2), rtol=0, atol=0)
    strided = FFTConv2d(3, 4, 5, padding=2, stride=2)
    y = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(strided(y), F.conv2d(y, strided.weight, strided.bias, stride=2, padding=2),
                               rtol=0, atol=0)
