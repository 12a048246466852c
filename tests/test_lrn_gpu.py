"""The Triton kernels of LRN for CUDA GPUs (alexnet_lib.lrn_gpu), tested without a GPU.

Triton's interpreter (TRITON_INTERPRET=1) runs the kernels on CPU tensors, in NumPy: the
same kernel code, the same index arithmetic, masks, strides and tiles, float32 arithmetic for
bfloat16 and float16, so every number below is the kernels' own, checked against the formula
written out channel by channel in float64. The interpreter is slow: the tensors are small.
The compiler is checked too: both kernels are compiled for an H100/H200 (sm_90) by the ptxas
that ships with triton, which needs no GPU.

What only a GPU can check: the launch itself (the driver, the stream, a second device), the
GPU's own exp2/log2 (approximate to a few ulps, which the float32 tolerance allows for), and
the speed (bench/bench_lrn.py).
"""

import ast
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

from alexnet_lib.lrn import gpu as lrn_gpu
from alexnet_lib.lrn import local_response_norm

from .helpers import ROOT, graph_recorder

LAYOUTS = {"NCHW": torch.contiguous_format, "NHWC": torch.channels_last}
#: (size, α' (α already divided by the size, as the kernels take it), β, k): the paper's LRN
#: (k = 2, α = 1e-4 over 5) and caffe's wider one (k = 1, α = 1e-3 over 9), with inputs scaled
#: so that α' Σ x² is about k: the normalisation matters as much as it can.
PARAMS = {"size 5": (5, 1e-4 / 5, 0.75, 2.0, 100.0), "size 9": (9, 1e-3 / 9, 0.75, 1.0, 50.0)}


@pytest.fixture
def interpreted(monkeypatch):
    """Triton's interpreter for this test: the kernels are jitted per mode, on first use."""
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def reference(x, size, alpha, beta, k, groups):
    """b_i = x_i (k + α Σ_{j in window(i)} x_j²)^-β, one channel at a time in float64: the window
    is channels i - size//2 .. i + (size-1)//2, cut at the edges of i's tower."""
    x = x.double()
    per_tower = x.shape[1] // groups
    out = []
    for i in range(x.shape[1]):
        first, last = i // per_tower * per_tower, (i // per_tower + 1) * per_tower - 1
        window = range(max(first, i - size // 2), min(last, i + (size - 1) // 2) + 1)
        out.append(x[:, i] * (k + alpha * sum(x[:, j] ** 2 for j in window)) ** -beta)
    return torch.stack(out, dim=1)


def reference_pair(x, g, size, alpha, beta, k, groups):
    """(b, dx) of the formula in float64, dx by autograd through the loop above."""
    leaf = x.detach().double().requires_grad_(True)
    b = reference(leaf, size, alpha, beta, k, groups)
    (dx,) = torch.autograd.grad(b, leaf, g.double())
    return b.detach(), dx


def inputs(shape, layout, scale, dtype=torch.float32, seed=0):
    """x (ReLU'd, as after a convolution, and some negative values too) and an incoming gradient."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
    x = torch.where(torch.rand(shape, generator=gen) < 0.8, x.relu(), x)
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    return tuple(t.to(dtype).contiguous(memory_format=LAYOUTS[layout]) for t in (x, g))


def run_kernels(x, g, size, alpha, beta, k, groups, tiles=None):
    b = lrn_gpu._launch_forward(x, size, alpha, beta, k, groups, tiles=tiles)
    dx = lrn_gpu._launch_backward(g, x, size, alpha, beta, k, groups, tiles=tiles)
    return b, dx


def scaled_error(out, ref) -> float:
    """max |out - ref| as a fraction of max |ref|."""
    return ((out.double() - ref).abs().max() / ref.abs().max()).item()


# float32: each output is a handful of float32 roundings (about 6e-8 each) in the window sum,
# s and the product, and exp2(log2) for the power, which a GPU approximates to a few ulps; a
# gradient also loses a few ulps of its largest term where its two terms cancel. All are ~1e-6
# of the tensor's scale at most, so 1e-5 of it leaves a tenfold margin, and is 1000 times
# smaller than what a wrong window or power changes (checked below).
FLOAT32 = 1e-5


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_float32_forward_and_gradient_equal_the_formula(interpreted, layout, groups, params):
    """44 channels (22 a tower): not a multiple of any tile's channels (8 for NCHW, 32 for
    channels_last); 5x7 positions, odd, over several tiles of positions; results keep x's layout."""
    size, alpha, beta, k, scale = PARAMS[params]
    x, g = inputs((2, 44, 5, 7), layout, scale)
    b, dx = run_kernels(x, g, size, alpha, beta, k, groups)
    ref_b, ref_dx = reference_pair(x, g, size, alpha, beta, k, groups)
    assert b.dtype == dx.dtype == torch.float32
    assert b.is_contiguous(memory_format=LAYOUTS[layout]) and dx.is_contiguous(memory_format=LAYOUTS[layout])
    assert scaled_error(b, ref_b) <= FLOAT32 and scaled_error(dx, ref_dx) <= FLOAT32
    # the test can see a mistake: the normalisation is far larger than the tolerance
    unnormalised = reference_pair(x, g, size, 0.0, beta, k, groups)
    assert scaled_error(unnormalised[0], ref_b) > 1000 * FLOAT32
    assert scaled_error(unnormalised[1], ref_dx) > 1000 * FLOAT32


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("size, beta", [(9, 0.75), (4, 0.6)])
def test_small_tiles_overlap_correctly_at_their_edges(interpreted, layout, size, beta):
    """Tiles of 4 channels by 16 positions: many tiles in both directions, each window crossing
    tile edges (a window of 9 spans three tiles of channels); 13 channels a tower, 3x5 positions.
    An even window too (2 channels before, 1 after), whose gradient needs the mirrored window."""
    x, g = inputs((1, 26, 3, 5), layout, 50.0, seed=1)
    b, dx = run_kernels(x, g, size, 1e-3 / size, beta, 1.0, 2, tiles=(4, 16))
    ref_b, ref_dx = reference_pair(x, g, size, 1e-3 / size, beta, 1.0, 2)
    assert scaled_error(b, ref_b) <= FLOAT32 and scaled_error(dx, ref_dx) <= FLOAT32


# bfloat16 keeps 8 significant bits and float16 11: rounding the exact value to them is a
# relative error of at most 2^-8 or 2^-11. The kernels compute in float32 from the rounded
# inputs and round once, on the store: within that (plus float32's share) of the formula
# computed in float64 from the same rounded inputs. One exception, the interpreter's: it
# converts float32 to bfloat16 by cutting the low bits off (a GPU rounds to nearest even), an
# error of up to a whole unit in the last place, 2^-7.
HALF_UNITS = {torch.bfloat16: 2.0**-7, torch.float16: 2.0**-11}


@pytest.mark.parametrize("dtype", HALF_UNITS, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_half_precision_is_one_rounding_of_the_formula(interpreted, layout, dtype):
    """bfloat16 is tested too: the interpreter keeps it as 16-bit integers and converts it to
    and from float32 bit by bit, as a GPU does (but for the rounding, above)."""
    size, alpha, beta, k, scale = PARAMS["size 5"]
    x, g = inputs((2, 44, 5, 7), layout, scale, dtype=dtype)
    b, dx = run_kernels(x, g, size, alpha, beta, k, 2)
    ref_b, ref_dx = reference_pair(x, g, size, alpha, beta, k, 2)
    assert b.dtype == dx.dtype == dtype and b.is_contiguous(memory_format=LAYOUTS[layout])
    unit = HALF_UNITS[dtype]
    for out, ref in ((b, ref_b), (dx, ref_dx)):
        excess = (out.double() - ref).abs() - unit * ref.abs()  # beyond one rounding of each value
        assert excess.max() <= FLOAT32 * ref.abs().max(), f"{dtype}: off by {excess.max():.2e} beyond a rounding"


def test_float64_is_computed_in_float64(interpreted):
    """α, β and k reach a float64 kernel whole (as two float32 halves), and it computes in float64."""
    size, alpha, beta, k, scale = PARAMS["size 9"]
    x, g = inputs((2, 22, 3, 5), "NCHW", scale, dtype=torch.float64)
    b, dx = run_kernels(x, g, size, alpha, beta, k, 2)
    ref_b, ref_dx = reference_pair(x, g, size, alpha, beta, k, 2)
    assert b.dtype == torch.float64 and scaled_error(b, ref_b) <= 1e-13 and scaled_error(dx, ref_dx) <= 1e-13


@pytest.mark.parametrize("layout", LAYOUTS)
def test_windows_never_cross_the_tower_boundary(interpreted, layout):
    """A poke at the first channel of tower 2 (x and the gradient) changes outputs and gradients
    of tower 2 only: the channels within two windows' reach (4 channels for size 5: the gradient
    reaches x through the windows of its window), never tower 1's last channel next to it; a
    poke at tower 1's last channel, tower 1 only."""
    size, alpha, beta, k, scale = PARAMS["size 5"]
    x, g = inputs((2, 24, 3, 5), layout, scale, seed=2)
    b, dx = run_kernels(x, g, size, alpha, beta, k, 2)
    for poked, changed in ((12, range(12, 17)), (11, range(7, 12))):
        x2, g2 = x.clone(), g.clone()
        x2[:, poked] += 3 * scale
        g2[:, poked] += 1.0
        b2, dx2 = run_kernels(x2, g2, size, alpha, beta, k, 2)
        moved = [c for c in range(24) if not (torch.equal(b[:, c], b2[:, c]) and torch.equal(dx[:, c], dx2[:, c]))]
        assert moved == list(changed), f"a poke at channel {poked} moved channels {moved}"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_operators_pass_opcheck_and_carry_autograd(interpreted, layout):
    """Schema, shapes and strides of the fake tensors, autograd registration; the gradient
    through the operator is the backward kernel's, and a graph of it (double backward) the formula's."""
    size, alpha, beta, k, scale = PARAMS["size 5"]
    x, g = inputs((2, 12, 3, 5), layout, scale, dtype=torch.float64, seed=3)
    x.requires_grad_(True)
    torch.library.opcheck(torch.ops.alexnet_lib.lrn_gpu_forward.default, (x, size, alpha, beta, k, 2))
    torch.library.opcheck(torch.ops.alexnet_lib.lrn_gpu_backward.default, (g, x.detach(), size, alpha, beta, k, 2))
    ref_b, ref_dx = reference_pair(x, g, size, alpha, beta, k, 2)
    b = lrn_gpu.lrn(x, size, alpha, beta, k, 2)
    assert "lrn_gpu_forward" in type(b.grad_fn).__name__ and b.is_contiguous(memory_format=LAYOUTS[layout])
    (dx,) = torch.autograd.grad(b, x, g, retain_graph=True)
    (dx_graph,) = torch.autograd.grad(b, x, g, create_graph=True)
    assert dx_graph.requires_grad
    for out in (dx, dx_graph):
        assert scaled_error(out, ref_dx) <= 1e-12


def test_torch_compile_sees_one_operator_each_way(interpreted):
    """The traced graphs hold the two operators, nothing else, and give the eager numbers."""
    backend, graphs = graph_recorder()
    torch.compiler.reset()
    size, alpha, beta, k, scale = PARAMS["size 5"]
    x, g = inputs((2, 8, 3, 5), "NCHW", scale, seed=4)
    xc, xe = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fn = lambda t: lrn_gpu.lrn(t, size, alpha, beta, k, 2)
    yc, ye = torch.compile(fn, backend=backend, fullgraph=True)(xc), fn(xe)
    assert torch.equal(yc, ye)
    yc.backward(g)
    ye.backward(g)
    assert torch.equal(xc.grad, xe.grad)
    assert graphs == {"forward": ["alexnet_lib.lrn_gpu_forward.default"],
                      "backward": ["alexnet_lib.lrn_gpu_backward.default"]}, graphs
    torch.compiler.reset()


def test_an_expanded_or_sliced_gradient_is_read_as_it_is(interpreted):
    """y.sum()'s gradient is a stride-0 expansion: walked as it is, no copy; a slice is copied."""
    size, alpha, beta, k, scale = PARAMS["size 5"]
    x, _ = inputs((2, 12, 3, 5), "NCHW", scale, seed=5)
    ones = torch.ones(()).expand(x.shape)
    sliced = torch.randn(2, 12, 3, 10)[..., ::2]
    for g in (ones, sliced):
        dx = lrn_gpu._launch_backward(g, x, size, alpha, beta, k, 2)
        assert scaled_error(dx, reference_pair(x, g, size, alpha, beta, k, 2)[1]) <= FLOAT32


def test_a_cpu_tensor_needs_the_interpreter(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="need a CUDA tensor"):
        lrn_gpu._launch_forward(torch.randn(1, 4, 2, 2), 5, 1e-4, 0.75, 2.0, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the interpreter tests above stand in")
@pytest.mark.parametrize("dtype, unit", [(torch.float32, 0.0), (torch.bfloat16, 2.0**-8)], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_on_a_gpu_the_library_runs_the_kernels(layout, dtype, unit):
    """Where there is a GPU: local_response_norm goes through the kernels, compiled, on every
    device there is, and gives the formula's numbers (bfloat16: one rounding to nearest)."""
    assert lrn_gpu.available(), lrn_gpu.status()
    size, alpha, beta, k, scale = PARAMS["size 5"]
    x, g = inputs((4, 96, 13, 11), layout, scale, dtype=dtype)
    ref_b, ref_dx = reference_pair(x, g, size, alpha, beta, k, 2)
    for device in range(torch.cuda.device_count()):
        xd = x.to(f"cuda:{device}").requires_grad_(True)
        b = local_response_norm(xd, size, alpha * size, beta, k, groups=2)
        assert "lrn_gpu_forward" in type(b.grad_fn).__name__ and b.is_contiguous(memory_format=LAYOUTS[layout])
        (dx,) = torch.autograd.grad(b, xd, g.to(xd.device))
        for out, ref in ((b, ref_b), (dx, ref_dx)):
            excess = (out.cpu().double() - ref).abs() - unit * ref.abs()
            assert excess.max() <= FLOAT32 * ref.abs().max(), f"cuda:{device} {dtype}: off by {excess.max():.2e}"


# The fallback.


@pytest.fixture
def fresh(monkeypatch):
    """lrn_gpu as in a new process (nothing tried yet), with triton made unimportable."""
    monkeypatch.setattr(lrn_gpu, "_STATE", {"loaded": None, "error": ""})
    monkeypatch.setattr(lrn_gpu, "_KERNELS", {})
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` raises ImportError
    monkeypatch.delenv(lrn_gpu.ENV_VAR, raising=False)
    return monkeypatch


def test_without_triton_a_cuda_machine_falls_back_with_one_warning(fresh):
    fresh.setattr(torch.cuda, "is_available", lambda: True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answers = [lrn_gpu.available() for _ in range(3)]
    assert answers == [False] * 3
    assert len(caught) == 1 and issubclass(caught[0].category, RuntimeWarning), [str(w.message) for w in caught]
    assert "triton" in str(caught[0].message) and "ALEXNET_LRN_KERNEL=0" in str(caught[0].message)
    assert "cannot be used" in lrn_gpu.status() and "triton cannot be imported" in lrn_gpu.status()


def test_a_kernel_that_fails_to_compile_falls_back_with_one_warning_or_an_error_if_required(fresh):
    def broken():
        raise RuntimeError("PassManager::run failed\n(long compiler log)")

    fresh.setattr(torch.cuda, "is_available", lambda: True)
    fresh.setattr(lrn_gpu, "_smoke_test", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not lrn_gpu.available() and not lrn_gpu.available()
    assert len(caught) == 1 and "PassManager::run failed" in str(caught[0].message)
    fresh.setattr(lrn_gpu, "_STATE", {"loaded": None, "error": ""})
    fresh.setenv(lrn_gpu.ENV_VAR, "require")
    with pytest.raises(RuntimeError, match="ALEXNET_LRN_KERNEL=require"):
        lrn_gpu.available()


def test_turned_off_nothing_is_tried_and_nothing_warns(fresh):
    fresh.setattr(torch.cuda, "is_available", lambda: True)
    fresh.setattr(lrn_gpu, "_load", lambda: pytest.fail("loaded although turned off"))
    fresh.setenv(lrn_gpu.ENV_VAR, "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not lrn_gpu.available()
    assert "turned off" in lrn_gpu.status()


def test_a_machine_without_cuda_tries_nothing_and_says_nothing(fresh):
    """No CUDA: CPU tensors never reach lrn_gpu, available() is False without a word, and no
    kernel is jitted; the module imports no triton of its own at import time either."""
    fresh.setattr(torch.cuda, "is_available", lambda: False)
    x = torch.randn(2, 8, 3, 3) * 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        local_response_norm(x, groups=2)
        assert lrn_gpu._STATE["loaded"] is None and not lrn_gpu.supports(x)
        assert not lrn_gpu.available()
    assert lrn_gpu._STATE["error"] == "no CUDA device" and lrn_gpu._KERNELS == {}
    tree = ast.parse((ROOT / "alexnet_lib" / "lrn" / "gpu.py").read_text())
    top_level = [a.name for node in tree.body if isinstance(node, ast.Import) for a in node.names]
    top_level += [node.module for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert not [m for m in top_level if m and m.split(".")[0] == "triton"]


# The compiler, without a GPU.


def _compile_for_sm90(kernel, dtype: str, tensors: int, size: int, tiles: tuple, channels_last: bool) -> bytes:
    """One kernel compiled for sm_90 as a launch would compile it: its pointers, the float32
    scalars, 32-bit integers, and the stride of 1 that the launcher makes a constant."""
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = triton.jit(kernel)
    constants = {"SIZE": size, "BLOCK_C": tiles[0], "BLOCK_P": tiles[1], "ACC": tl.float32}
    unit = "s_c" if channels_last else "s_p"
    constants.update({name: 1 for name in fn.arg_names if name.endswith(unit)})
    signature = {name: "constexpr" if name in constants else f"*{dtype}" if i < tensors
                 else "fp32" if name.endswith(("_hi", "_lo")) else "i32" for i, name in enumerate(fn.arg_names)}
    compiled = triton.compile(ASTSource(fn, signature, constants), target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": 4})
    return compiled.asm["cubin"]


@pytest.mark.parametrize("dtype, size, channels_last", [("fp32", 5, False), ("bf16", 9, True)])
def test_both_kernels_compile_for_sm90_without_spilling(dtype, size, channels_last, tmp_path):
    """The compile a GPU would do at first use, done here: Triton to PTX to a cubin for sm_90
    with triton's own ptxas; with the tiles a launch picks, no register spills to local memory."""
    triton = pytest.importorskip("triton")
    tools = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    if not os.path.exists(os.path.join(tools, "ptxas")):
        pytest.skip("this triton has no ptxas of its own")
    lrn_gpu._kernels()  # binds triton.language as the kernels' `tl`
    strides = (96, 1, 96) if channels_last else (96, 25, 1)
    for kernel, tensors, values in ((lrn_gpu._forward_kernel, 2, 1024), (lrn_gpu._backward_kernel, 3, 256)):
        tiles = lrn_gpu._tiles(48, strides, values)
        cubin = tmp_path / f"{kernel.__name__}.cubin"
        cubin.write_bytes(_compile_for_sm90(kernel, dtype, tensors, size, tiles, channels_last))
        dump = shutil.which("cuobjdump", path=tools)
        if dump:
            usage = subprocess.run([dump, "--dump-resource-usage", str(cubin)], capture_output=True, text=True).stdout
            assert "STACK:0" in usage and "LOCAL:0" in usage, f"{kernel.__name__} spills: {usage}"
