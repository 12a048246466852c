"""The fused CUDA kernels of local response normalisation (§3.3), written in Triton.

The GPU twin of :mod:`alexnet_lib.lrn.cpu`: the LRN and its gradient in one walk over memory
each way. The forward pass reads x and writes b; the backward pass reads x and the incoming
gradient and writes dx (s is recomputed from x instead of being stored). The Python path of
``layers`` makes about a dozen passes over memory, and torch.nn's LRN more.

Each program takes a tile of one (image, tower): a few channels by a block of positions, the
positions being the spatial dims flattened (``H·W`` for images). A window sum is ``size``
loads of the tile shifted by one channel each: each value comes from memory once, and the
repeated loads of its neighbours are meant to hit the cache (bench/bench_lrn.py times each pass
against a copy). The tile's shape follows the memory layout (wide in
positions for NCHW, wide in channels for channels_last) so both layouts load whole cache lines,
and every address goes through the tensors' strides: no copy, and the result keeps the input's
layout. bfloat16 and float16 are computed in float32 (rounded once, on the store), float64 in
float64.

Two operators, ``torch.ops.alexnet_lib.lrn_gpu_forward`` and ``lrn_gpu_backward``, carry the
kernels, with their output shapes and the autograd formula, so autograd and torch.compile see
one operator each way.

Triton is imported, and the kernels built, on first use on a machine with a CUDA device, where
a smoke test on a tiny tensor compiles both kernels and checks their numbers. Where that fails
(no triton, no C compiler for its launcher, a failed compile) ``available()`` says False, warns
once, and ``layers.local_response_norm`` uses its Python path, which gives the same numbers.
``ALEXNET_LRN_KERNEL=0`` turns this kernel off without a warning, as it does the CPU one
(``require``: an error instead of the warning). Without CUDA this module imports and builds
nothing (torch.compiler may import triton on its own).

With ``TRITON_INTERPRET=1`` Triton runs the kernels on CPU tensors, slowly, in NumPy: the
tests check them that way on machines without a GPU (``_launch_forward``, ``_launch_backward``
and the operators all accept CPU tensors then).
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings

import torch

from .cpu import ENV_VAR, _differentiable_gradient, _output_like, enabled, loaded_once
from .reference import lrn_formula

#: The dtypes the kernels compute (bfloat16 and float16 in float32 inside).
DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)

# None: not tried yet; True: usable; False: not (the reason in _STATE["error"]).
_STATE = {"loaded": None, "error": ""}
# The jitted kernels, built on first use: {interpreting (bool): (forward, backward)}.
_KERNELS = {}
#: ``triton.language``, bound on first use: the kernels' bodies name it as ``tl``.
tl = None


@torch.compiler.assume_constant_result
def available() -> bool:
    """Whether the kernels can be used: enabled, a CUDA device here, triton imported and the
    kernels compiled and checked (on the first call; under torch.compile, once, at tracing)."""
    return loaded_once(_STATE, _load)


def supports(x: torch.Tensor) -> bool:
    """Whether the kernels handle ``x``: a CUDA tensor of a floating dtype they know."""
    return x.device.type == "cuda" and x.dtype in DTYPES


def status() -> str:
    """Which LRN the library uses on a CUDA GPU, in words (for logs and benchmarks)."""
    if not enabled():
        return f"Python path (the Triton kernel is turned off by {ENV_VAR})"
    if available():
        import triton

        return f"fused Triton kernel (triton {triton.__version__}, {torch.cuda.get_device_name()})"
    return f"Python path (the Triton kernel cannot be used: {_STATE['error']})"


def lrn(x: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int) -> torch.Tensor:
    """b = x (k + alpha Σ_window x²)^-beta, alpha already divided by the size where the
    convention says so; the result has x's memory layout (NCHW or channels_last)."""
    return torch.ops.alexnet_lib.lrn_gpu_forward(x, size, alpha, beta, k, groups)


# The kernels. Plain functions here, jitted by _kernels() on first use (so importing this module
# imports no triton); their arguments: the tensors, then the channels of a tower, the number of
# positions, the tiles along channels and positions, the towers, then each tensor's strides
# along (image, channel, position), then the formula's numbers, each as two float32 (a scalar
# argument is a float32: their sum gives float64 kernels their float64 value). ACC: the
# arithmetic's dtype. They call triton's builtins only, none of its jitted helpers (tl.zeros is
# one): those are jitted when triton is imported, compiled unless TRITON_INTERPRET was set then,
# and the interpreter cannot call a compiled one (torch imports triton before a test sets it).


def _forward_kernel(x, y, cg, npos, ctiles, ptiles, groups, xs_n, xs_c, xs_p, ys_n, ys_c, ys_p,
                    alpha_hi, alpha_lo, beta_hi, beta_lo, k_hi, k_lo,
                    SIZE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, ACC: tl.constexpr):
    """b_i = x_i s_i^-β, s_i = k + α Σ_{j = i - SIZE//2 .. i + (SIZE-1)//2} x_j², j inside the tower."""
    BEFORE: tl.constexpr = SIZE // 2
    alpha, beta = tl.cast(alpha_hi, ACC) + tl.cast(alpha_lo, ACC), tl.cast(beta_hi, ACC) + tl.cast(beta_lo, ACC)
    k = tl.cast(k_hi, ACC) + tl.cast(k_lo, ACC)
    pid = tl.program_id(0)
    tower = pid // (ctiles * ptiles)
    chan = (pid % ctiles) * BLOCK_C + tl.arange(0, BLOCK_C)  # channels inside the tower
    pos = (pid // ctiles % ptiles) * BLOCK_P + tl.arange(0, BLOCK_P)
    inside = (pos < npos)[None, :]
    image, first = (tower // groups).to(tl.int64), (tower % groups * cg).to(tl.int64)
    x_rows = x + image * xs_n + first * xs_c + pos[None, :] * xs_p
    window = tl.full([BLOCK_C, BLOCK_P], 0.0, ACC)
    centre = tl.full([BLOCK_C, BLOCK_P], 0.0, ACC)
    for d in tl.static_range(SIZE):  # the window, one shifted tile at a time (cache hits but one)
        c = chan + (d - BEFORE)
        v = tl.load(x_rows + c[:, None] * xs_c, mask=((c >= 0) & (c < cg))[:, None] & inside, other=0.0).to(ACC)
        window += v * v
        if d == BEFORE:
            centre = v
    out = centre * tl.exp2(-beta * tl.log2(k + alpha * window))
    y_rows = y + image * ys_n + first * ys_c + pos[None, :] * ys_p
    tl.store(y_rows + chan[:, None] * ys_c, out.to(y.dtype.element_ty), mask=(chan < cg)[:, None] & inside)


def _backward_kernel(g, x, dx, cg, npos, ctiles, ptiles, groups, gs_n, gs_c, gs_p, xs_n, xs_c, xs_p,
                     ds_n, ds_c, ds_p, alpha_hi, alpha_lo, beta_hi, beta_lo, k_hi, k_lo,
                     SIZE: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, ACC: tl.constexpr):
    """dx_i = g_i s_i^-β - 2αβ x_i Σ_{j: i in window(j)} t_j, t_j = g_j x_j s_j^(-β-1).

    The j are i - AFTER .. i + BEFORE; s_j's window sum moves along with j, one channel in and
    one out: SIZE - 1 updates, whose rounding is a few float32 ulps of the largest window sum
    nearby, which k + α·(window) dwarfs for the paper's numbers."""
    BEFORE: tl.constexpr = SIZE // 2
    AFTER: tl.constexpr = SIZE - 1 - BEFORE
    alpha, beta = tl.cast(alpha_hi, ACC) + tl.cast(alpha_lo, ACC), tl.cast(beta_hi, ACC) + tl.cast(beta_lo, ACC)
    k = tl.cast(k_hi, ACC) + tl.cast(k_lo, ACC)
    pid = tl.program_id(0)
    tower = pid // (ctiles * ptiles)
    chan = (pid % ctiles) * BLOCK_C + tl.arange(0, BLOCK_C)
    pos = (pid // ctiles % ptiles) * BLOCK_P + tl.arange(0, BLOCK_P)
    inside = (pos < npos)[None, :]
    image, first = (tower // groups).to(tl.int64), (tower % groups * cg).to(tl.int64)
    x_rows = x + image * xs_n + first * xs_c + pos[None, :] * xs_p
    g_rows = g + image * gs_n + first * gs_c + pos[None, :] * gs_p
    window = tl.full([BLOCK_C, BLOCK_P], 0.0, ACC)  # Σ x² over window(j), j = chan - AFTER first
    for d in tl.static_range(SIZE):
        c = chan + (d - BEFORE - AFTER)
        v = tl.load(x_rows + c[:, None] * xs_c, mask=((c >= 0) & (c < cg))[:, None] & inside, other=0.0).to(ACC)
        window += v * v
    spread = tl.full([BLOCK_C, BLOCK_P], 0.0, ACC)  # Σ_j t_j
    own = tl.full([BLOCK_C, BLOCK_P], 0.0, ACC)  # g_i s_i^-β
    centre = tl.full([BLOCK_C, BLOCK_P], 0.0, ACC)
    for e in tl.static_range(SIZE):
        j = chan + (e - AFTER)
        if e > 0:  # the window of j - 1 moved on by one channel
            c_in, c_out = j + AFTER, j - BEFORE - 1
            v_in = tl.load(x_rows + c_in[:, None] * xs_c, mask=((c_in >= 0) & (c_in < cg))[:, None] & inside,
                           other=0.0).to(ACC)
            v_out = tl.load(x_rows + c_out[:, None] * xs_c, mask=((c_out >= 0) & (c_out < cg))[:, None] & inside,
                            other=0.0).to(ACC)
            window = tl.maximum((window - v_out * v_out) + v_in * v_in, 0.0)  # not below 0 by rounding
        valid = ((j >= 0) & (j < cg))[:, None] & inside
        xj = tl.load(x_rows + j[:, None] * xs_c, mask=valid, other=0.0).to(ACC)
        gj = tl.load(g_rows + j[:, None] * gs_c, mask=valid, other=0.0).to(ACC)
        s = k + alpha * window
        power = tl.exp2((-beta - 1.0) * tl.log2(s))  # s_j^(-β-1)
        spread += tl.where(valid, gj * xj * power, 0.0)
        if e == AFTER:
            own, centre = gj * power * s, xj
    out = own - 2.0 * alpha * beta * centre * spread
    dx_rows = dx + image * ds_n + first * ds_c + pos[None, :] * ds_p
    tl.store(dx_rows + chan[:, None] * ds_c, out.to(dx.dtype.element_ty), mask=(chan < cg)[:, None] & inside)


# Launching: the host side of the kernels, on CUDA tensors (and CPU ones when interpreting).


def _interpreting() -> bool:
    """Whether ``triton.jit`` gives interpreted kernels now (``TRITON_INTERPRET=1``): triton
    reads the variable when it decorates, which is why the kernels are jitted per mode."""
    import triton

    knobs = getattr(triton, "knobs", None)  # triton >= 3.4
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _kernels() -> tuple:
    """(forward, backward), jitted on first use for the current mode (compiled or interpreted)."""
    global tl
    import triton
    import triton.language

    tl = triton.language
    mode = _interpreting()
    if mode not in _KERNELS:
        _KERNELS[mode] = (triton.jit(_forward_kernel), triton.jit(_backward_kernel))
    return _KERNELS[mode]


def _strides(t: torch.Tensor):
    """t's strides along (image, channel, position), the position being the spatial dims flattened;
    None where the spatial dims cannot be walked with one stride (a sliced tensor, say)."""
    dims = [(n, s) for n, s in zip(t.shape[2:], t.stride()[2:]) if n != 1]
    if any(outer != inner * n for (_, outer), (n, inner) in zip(dims, dims[1:])):
        return None
    return t.stride(0), t.stride(1), dims[-1][1] if dims else 1


def _walkable(t: torch.Tensor) -> torch.Tensor:
    """t itself when the kernels can walk it (NCHW, channels_last, an expanded gradient...), else a copy."""
    return t if _strides(t) is not None else t.contiguous()


def _tiles(cg: int, strides: tuple, values: int) -> tuple:
    """(BLOCK_C, BLOCK_P) for tiles of ``values`` values, wide along whichever axis is contiguous
    in memory, so that a row of the tile is whole sectors of cache lines. 1024 values forward, 256
    backward, whose many shifted loads need more registers (2 values a thread: about 60-110 of
    them on sm_90, against 190-255 and spills for 1024). Not tuned on a GPU yet."""
    if strides[1] == 1 and strides[2] != 1:  # channels_last: a position's channels are contiguous
        block_c = next((b for b in (32, 16, 8) if cg % b == 0), min(32, 1 << max(cg - 1, 0).bit_length()))
        return block_c, max(values // block_c, 1)
    return 8, values // 8  # NCHW: a channel's positions are contiguous


def _halves(*values: float) -> list:
    """Each value as (its float32 rounding, the float32 rounding of the rest), the kernels' scalars."""
    out = []
    for v in values:
        hi = struct.unpack("f", struct.pack("f", v))[0]
        out += [hi, struct.unpack("f", struct.pack("f", v - hi))[0]]
    return out


def _launch(kernel, tensors: list, out: torch.Tensor, size, alpha, beta, k, groups, tiles, values) -> torch.Tensor:
    """Run one kernel into ``out``: one program per (image, tower, tile of channels, tile of
    positions), the tiles shaped for the layout of x (the last of ``tensors``)."""
    x = tensors[-1]
    if x.device.type != "cuda" and not _interpreting():
        raise ValueError(f"the Triton LRN kernels need a CUDA tensor (or TRITON_INTERPRET=1), got {x.device}")
    if out.numel() == 0:
        return out
    n, c = x.shape[:2]
    cg, npos = c // groups, x[0, 0].numel()
    block_c, block_p = tiles or _tiles(cg, _strides(x), values)
    ctiles, ptiles = -(-cg // block_c), -(-npos // block_p)
    strides = [s for t in tensors + [out] for s in _strides(t)]
    acc = tl.float64 if x.dtype == torch.float64 else tl.float32
    with torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext():  # x's GPU, not the current one
        kernel[(ctiles * ptiles * n * groups,)](*tensors, out, cg, npos, ctiles, ptiles, groups, *strides,
                                              *_halves(alpha, beta, k), SIZE=size, BLOCK_C=block_c,
                                              BLOCK_P=block_p, ACC=acc, num_warps=4)
    return out


def _launch_forward(x, size, alpha, beta, k, groups, tiles=None) -> torch.Tensor:
    """b = LRN(x) by the forward kernel, laid out as x (``tiles``: (BLOCK_C, BLOCK_P) to force)."""
    x = _walkable(x)
    forward, _ = _kernels()
    return _launch(forward, [x], _output_like(x), size, alpha, beta, k, groups, tiles, 1024)


def _launch_backward(grad, x, size, alpha, beta, k, groups, tiles=None) -> torch.Tensor:
    """dx from the incoming gradient by the backward kernel, laid out as x."""
    x = _walkable(x)
    _, backward = _kernels()
    return _launch(backward, [_walkable(grad), x], _output_like(x), size, alpha, beta, k, groups, tiles, 256)


# The operators. Their implementation runs on any device; a CPU tensor needs TRITON_INTERPRET=1.


@torch.library.custom_op("alexnet_lib::lrn_gpu_forward", mutates_args=(),
                         schema="(Tensor x, int size, float alpha, float beta, float k, int groups) -> Tensor")
def _forward_op(x, size, alpha, beta, k, groups):
    return _launch_forward(x, size, alpha, beta, k, groups)


@torch.library.custom_op("alexnet_lib::lrn_gpu_backward", mutates_args=(),
                         schema="(Tensor grad, Tensor x, int size, float alpha, float beta, float k, int groups)"
                         " -> Tensor")
def _backward_op(grad, x, size, alpha, beta, k, groups):
    return _launch_backward(grad, x, size, alpha, beta, k, groups)


@_forward_op.register_fake
def _(x, size, alpha, beta, k, groups):
    return _output_like(x)


@_backward_op.register_fake
def _(grad, x, size, alpha, beta, k, groups):
    return _output_like(x)


def _setup_context(ctx, inputs, output):
    x, *params = inputs
    ctx.save_for_backward(x)
    ctx.params = params


def _backward(ctx, grad):
    (x,) = ctx.saved_tensors
    if torch.is_grad_enabled():  # a graph of the gradient is wanted (double backward)
        dx = _differentiable_gradient(grad, x, *ctx.params)
    else:
        dx = torch.ops.alexnet_lib.lrn_gpu_backward(grad, x, *ctx.params)
    return (dx,) + (None,) * len(ctx.params)


_forward_op.register_autograd(_backward, setup_context=_setup_context)


# Loading: on first use, on a machine with a CUDA device.


def _load() -> None:
    """Import triton, jit the kernels, compile and check them on a tiny tensor. Any failure
    leaves the Python path in use, with one warning (an error where ``$ALEXNET_LRN_KERNEL`` is
    ``require``). Without a CUDA device there is nothing to load, and nothing to say."""
    if not torch.cuda.is_available():
        _STATE.update(loaded=False, error="no CUDA device")
        return
    try:
        _smoke_test()
        _STATE["loaded"] = True
    except Exception as err:  # noqa: BLE001  (no triton, no C compiler, a failed compile: all fall back)
        _STATE.update(loaded=False, error=_reason(err))
        message = f"alexnet_lib: the Triton kernel of LRN for CUDA cannot be used ({_STATE['error']})."
        if os.environ.get(ENV_VAR, "").strip().lower() == "require":
            raise RuntimeError(f"{message} {ENV_VAR}=require asks for it.") from err
        warnings.warn(f"{message} Using the Python path instead, which gives the same numbers more slowly; "
                      f"set {ENV_VAR}=0 to use it without this warning.", RuntimeWarning, stacklevel=4)


def _reason(err: Exception) -> str:
    """The error's type and first line (a compiler's message can run to pages)."""
    if isinstance(err, ImportError):
        return f"triton cannot be imported ({err}); it comes with torch's CUDA wheels, or: pip install triton"
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first[:200]}" if first else type(err).__name__


def _smoke_test() -> None:
    """Both kernels on a small float32 CUDA tensor (which compiles them), against the formula in
    float64: an error unless both agree with it to 1e-4 of its largest value."""
    _kernels()  # triton first: without it, nothing else to try
    gen = torch.Generator().manual_seed(0)  # the global random state is the user's
    x, g = (torch.randn(2, 12, 3, 5, generator=gen, dtype=torch.float64) * (20, 1)[i] for i in range(2))
    args = (5, 2e-5, 0.75, 2.0, 2)
    got = _launch_forward(x.float().cuda(), *args), _launch_backward(g.float().cuda(), x.float().cuda(), *args)
    for name, out, ref in zip(("forward", "backward"), got, _formula(x, g, *args)):
        err = (out.cpu().double() - ref).abs().max().item() / ref.abs().max().item()
        if not err <= 1e-4:
            raise RuntimeError(f"the {name} kernel gives wrong numbers here (off by {err:.1e} of the largest)")


def _formula(x, g, size, alpha, beta, k, groups) -> tuple:
    """(b, dx) of the reference formula, dx by autograd: for the smoke test."""
    leaf = x.detach().requires_grad_(True)
    b = lrn_formula(leaf, size, alpha, beta, k, groups)
    (dx,) = torch.autograd.grad(b, leaf, g)
    return b.detach(), dx
