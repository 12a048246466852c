"""The fused CPU kernel of local response normalisation (§3.3), built on first use.

``cpu.cpp`` computes the LRN and its gradient in one walk over memory each way: the
forward pass reads x and writes y, the backward pass reads x and the incoming gradient and
writes dx (the Python path in ``layers`` makes about a dozen passes). On first use it is
compiled with ``torch.utils.cpp_extension`` into PyTorch's extension cache
(``$TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``), once per machine and
source version (a few seconds to a minute), and loaded from there afterwards.

It is registered as two operators, ``torch.ops.alexnet_lib.lrn_forward`` and ``lrn_backward``,
with their autograd formula and their output shapes, so autograd and torch.compile see one
operator each way.

Where it cannot be built (no C++ compiler or ninja, a failed build) ``available()`` says
False, warns once, and ``lrn.local_response_norm`` uses ``lrn.python``, which gives the
same numbers. ``ALEXNET_LRN_KERNEL=0`` turns the kernel off without a warning.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import sys
import warnings
from pathlib import Path

import torch

from .reference import lrn_formula

#: 0 (or off, false, no): the Python path even where the kernel builds; require: an error, not
#: a warning, where it cannot be built (for test machines that must test it).
ENV_VAR = "ALEXNET_LRN_KERNEL"
SOURCE = Path(__file__).with_name("cpu.cpp")
#: The dtypes the kernel computes (bfloat16 and float16 in float32 inside).
DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)

# None: not tried yet; True: loaded; False: failed (the reason in _STATE["error"]).
_STATE = {"loaded": None, "error": ""}


def enabled() -> bool:
    """False when ``$ALEXNET_LRN_KERNEL`` turns the kernel off."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "off", "false", "no")


@torch.compiler.assume_constant_result
def available() -> bool:
    """Whether the kernel can be used: enabled, and built and loaded (on the first call).

    Under torch.compile it runs once, when the graph is traced, and its answer is part of the
    graph (so the first call may come from inside a compiled model)."""
    return loaded_once(_STATE, _load)


def loaded_once(state: dict, load) -> bool:
    """Enabled (``$ALEXNET_LRN_KERNEL``), and ``load`` tried once: its outcome, kept in ``state``
    (``loaded``: None before the first try, then True or False). Both fused kernels use it."""
    if not enabled():
        return False
    if state["loaded"] is None:
        load()
    return bool(state["loaded"])


def supports(x: torch.Tensor) -> bool:
    """Whether the kernel handles ``x`` (a CPU tensor of a floating dtype it knows)."""
    return x.device.type == "cpu" and x.dtype in DTYPES


def status() -> str:
    """Which LRN the library uses on a CPU, in words (for logs and benchmarks)."""
    if not enabled():
        return f"Python path (the fused kernel is turned off by {ENV_VAR})"
    if available():
        return f"fused C++ kernel ({_extension_name()}, {torch.get_num_threads()} threads)"
    return f"Python path (the fused kernel did not build: {_STATE['error']})"


def lrn(x: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int) -> torch.Tensor:
    """b = x (k + alpha Σ_window x²)^-beta, alpha already divided by the size where the
    convention says so; x is NCHW-contiguous or channels_last, and so is the result."""
    return torch.ops.alexnet_lib.lrn_forward(x, size, alpha, beta, k, groups)


def _extension_name() -> str:
    return "alexnet_lib_lrn_" + _vector_isa()


def _vector_isa() -> str:
    """The widest vector instructions the kernel is built for here: 'avx512' or 'avx2' on
    x86-64 CPUs that have them (as PyTorch detects them), else 'generic'."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "generic"
    capability = torch.backends.cpu.get_cpu_capability()
    return {"AVX512": "avx512", "AVX2": "avx2"}.get(capability, "generic")


def _flags() -> tuple[list, list]:
    """Compiler and linker flags: optimised, OpenMP threads where gcc has them, AVX2 + FMA (and
    AVX-512F) where this CPU has them; the cache name says which, so a shared cache stays safe."""
    isa = _vector_isa()
    if sys.platform == "win32":
        return ["/O2", "/openmp"] + (["/arch:AVX2"] if isa != "generic" else []), []
    cflags, ldflags = ["-O3", "-fno-math-errno"], []
    if sys.platform.startswith("linux"):
        cflags.append("-fopenmp")
        ldflags.append("-fopenmp")
    if isa != "generic":
        cflags += ["-mavx2", "-mfma", "-mf16c"] + (["-mavx512f"] if isa == "avx512" else [])
    return cflags, ldflags


def _load() -> None:
    """Build (or find in the cache) and load the kernel, then register its autograd formula.
    Any failure leaves the Python path in use, with one warning (an error where
    ``$ALEXNET_LRN_KERNEL`` is ``require``)."""
    try:
        if not _op_exists():  # loaded before in this process (e.g. a reloaded module)
            _build()
            _register()
        _STATE["loaded"] = True
    except Exception as err:  # noqa: BLE001  (no compiler, no ninja, a failed build: all fall back)
        _STATE["loaded"] = False
        _STATE["error"] = _reason(err)
        message = (f"alexnet_lib: the fused CPU kernel of LRN could not be built ({_STATE['error']}). "
                   "It needs a C++ compiler and ninja (pip install ninja).")
        if os.environ.get(ENV_VAR, "").strip().lower() == "require":
            raise RuntimeError(f"{message} {ENV_VAR}=require asks for it.") from err
        warnings.warn(f"{message} Using the Python path instead, which gives the same numbers more slowly; "
                      f"set {ENV_VAR}=0 to use it without this warning.", RuntimeWarning, stacklevel=4)


def _reason(err: Exception) -> str:
    """The first line of a build error, and the line of the compiler's output that says why."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    why = next((line for line in lines[1:] if re.search(r"error|not found|no such file", line, re.IGNORECASE)
                and not line.startswith(("FAILED", "ninja:"))), "")
    head = lines[0].split(": [")[0]  # cpp_extension appends the whole build log to its first line
    return (head[:160] + (f": {why[:200]}" if why else "")).strip()


def _op_exists() -> bool:
    try:
        torch.ops.alexnet_lib.lrn_forward  # noqa: B018  (raises AttributeError when not registered)
    except (AttributeError, RuntimeError):
        return False
    return True


def _build() -> None:
    # Importing cpp_extension on a CUDA build of torch without a GPU logs a warning about
    # CUDA_HOME that does not concern a CPU-only extension; torch's own warnings about the
    # compiler go the same way: the only warning a user sees is ours, if the build fails.
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension

        _ninja_on_path()
        cflags, ldflags = _flags()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cpp_extension.load(name=_extension_name(), sources=[str(SOURCE)], extra_cflags=cflags,
                               extra_ldflags=ldflags, is_python_module=False, verbose=False)
    finally:
        logger.setLevel(level)


def _ninja_on_path() -> None:
    """The ninja that pip installs with the project (the ``ninja`` package) lives in the
    environment's bin folder, which is not on PATH when a Python is run without activating its
    environment: put it there for the build, where no other ninja is found."""
    import shutil

    try:
        import ninja
    except ImportError:
        return
    if shutil.which("ninja") is None:
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")


def _output_like(x: torch.Tensor) -> torch.Tensor:
    """An empty tensor laid out as the kernel lays out its result (the layout of its input)."""
    nhwc = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    return torch.empty_like(x.contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format))


def _register() -> None:
    """Shapes for torch.compile (fake tensors) and the autograd formula: the backward op."""
    torch.library.register_fake("alexnet_lib::lrn_forward")(
        lambda x, size, alpha, beta, k, groups: _output_like(x))
    torch.library.register_fake("alexnet_lib::lrn_backward")(
        lambda grad, x, size, alpha, beta, k, groups: _output_like(x))

    def setup_context(ctx, inputs, output):
        x, *params = inputs
        ctx.save_for_backward(x)
        ctx.params = params

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # a graph of the gradient is wanted (double backward)
            dx = _differentiable_gradient(grad, x, *ctx.params)
        else:
            dx = torch.ops.alexnet_lib.lrn_backward(grad, x, *ctx.params)
        return (dx,) + (None,) * len(ctx.params)

    torch.library.register_autograd("alexnet_lib::lrn_forward", backward, setup_context=setup_context)


def _differentiable_gradient(grad, x, size, alpha, beta, k, groups):
    """x's gradient through the reference formula, so that autograd can differentiate it again (the
    kernel's backward cannot be): slow, and only for double backward."""
    leaf = x if x.requires_grad else x.detach().requires_grad_(True)
    with torch.enable_grad():
        (dx,) = torch.autograd.grad(lrn_formula(leaf, size, alpha, beta, k, groups), leaf, grad, create_graph=True)
    return dx
