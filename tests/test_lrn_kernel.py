"""The fused CPU kernel of LRN (alexnet_lib.lrn_cpu): which path runs, its registration with
autograd and torch.compile, and the fallback where it cannot be built.

Its numbers are checked against the formula in test_layers.py (both paths, every convention,
both layouts, bfloat16 and float16, gradcheck).
"""

import os
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

from alexnet_lib.layers import LocalResponseNorm
from alexnet_lib.lrn import cpu as lrn_cpu
from alexnet_lib.lrn import local_response_norm

from .helpers import ROOT, close_relative, graph_recorder


@pytest.fixture
def kernel():
    if not lrn_cpu.available():
        pytest.skip(lrn_cpu.status())


def reference(x, groups=2):
    """torch's LRN (cuda-convnet's α/n, as ours by default) inside each tower, in float64."""
    return torch.cat([F.local_response_norm(t, 5, 1e-4, 0.75, 2.0) for t in x.double().chunk(groups, dim=1)], dim=1)


def test_a_cpu_tensor_goes_through_the_kernel_and_the_switch_turns_it_off(kernel, monkeypatch):
    x = (torch.randn(2, 8, 4, 4) * 20).requires_grad_(True)
    assert "alexnet_lib_lrn_forward" in type(local_response_norm(x, groups=2).grad_fn).__name__
    assert lrn_cpu.status().startswith("fused C++ kernel")
    monkeypatch.setenv(lrn_cpu.ENV_VAR, "0")
    assert type(local_response_norm(x, groups=2).grad_fn).__name__.startswith("HandWrittenLRN")
    assert "turned off" in lrn_cpu.status()


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_operators_pass_opcheck(kernel, layout):
    """Schema, shape function (fake tensors), autograd registration and dispatch of both ops."""
    torch.manual_seed(0)
    x = (torch.randn(2, 8, 5, 5, dtype=torch.double) * 20).contiguous(memory_format=layout).requires_grad_(True)
    torch.library.opcheck(torch.ops.alexnet_lib.lrn_forward.default, (x, 5, 2e-5, 0.75, 2.0, 2))
    g = torch.randn_like(x)
    torch.library.opcheck(torch.ops.alexnet_lib.lrn_backward.default, (g, x.detach(), 5, 2e-5, 0.75, 2.0, 2))


def test_double_backward_is_right_too(kernel):
    """The kernel's backward is not differentiable; when a graph of the gradient is asked for,
    the formula's gradient is built with torch operations instead."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 3, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: local_response_norm(t, 5, 0.3, 0.75, 2.0, groups=2), (x,))


def test_torch_compile_sees_one_operator_each_way(kernel):
    """With fullgraph=True, dynamo traces through local_response_norm to the operator (no graph
    break), AOTAutograd's forward and backward graphs are one kernel call each, and they give
    the eager numbers."""
    backend, graphs = graph_recorder()
    torch.compiler.reset()
    lrn = LocalResponseNorm(groups=2)
    torch.manual_seed(0)
    x = (torch.randn(2, 8, 5, 5) * 20).relu()
    xc, xe = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    yc = torch.compile(lrn, backend=backend, fullgraph=True)(xc)
    ye = lrn(xe)
    torch.testing.assert_close(yc, ye)
    g = torch.randn_like(ye)
    yc.backward(g)
    ye.backward(g)
    assert close_relative(xc.grad, xe.grad, rel=1e-6)  # the same kernels, compiled or not
    assert graphs == {"forward": ["alexnet_lib.lrn_forward.default"],
                      "backward": ["alexnet_lib.lrn_backward.default"]}, graphs
    torch.compiler.reset()


def test_the_first_call_may_come_from_a_compiled_model(kernel, monkeypatch):
    """Loading the kernel happens while the graph is traced, without a graph break."""
    torch.compiler.reset()
    monkeypatch.setattr(lrn_cpu, "_STATE", {"loaded": None, "error": ""})  # as in a fresh process
    x = (torch.randn(2, 8, 5, 5) * 20).relu()
    y = torch.compile(lambda t: local_response_norm(t, groups=2), backend="eager", fullgraph=True)(x)
    assert lrn_cpu._STATE["loaded"] is True
    torch.testing.assert_close(y.double(), reference(x), rtol=1e-5, atol=1e-6)
    torch.compiler.reset()


def test_a_failed_build_falls_back_with_one_warning(monkeypatch):
    """A build that fails (no compiler, no ninja) leaves the Python path in use: one warning
    that says why, then the formula's numbers, call after call."""
    def no_compiler():
        raise RuntimeError("Error building extension 'x': [1/2] c++ ...\n/bin/sh: 1: c++: not found\n")

    monkeypatch.setattr(lrn_cpu, "_STATE", {"loaded": None, "error": ""})
    monkeypatch.setattr(lrn_cpu, "_op_exists", lambda: False)
    monkeypatch.setattr(lrn_cpu, "_build", no_compiler)
    monkeypatch.delenv(lrn_cpu.ENV_VAR, raising=False)
    torch.manual_seed(0)
    x = (torch.randn(2, 8, 5, 5) * 20).relu()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [local_response_norm(x, groups=2) for _ in range(3)]
    assert len(caught) == 1 and issubclass(caught[0].category, RuntimeWarning)
    assert "c++: not found" in str(caught[0].message) and "ALEXNET_LRN_KERNEL=0" in str(caught[0].message)
    assert "did not build" in lrn_cpu.status()
    for out in outs:
        torch.testing.assert_close(out.double(), reference(x), rtol=1e-5, atol=1e-6)

    monkeypatch.setattr(lrn_cpu, "_STATE", {"loaded": None, "error": ""})
    monkeypatch.setenv(lrn_cpu.ENV_VAR, "require")
    with pytest.raises(RuntimeError, match="ALEXNET_LRN_KERNEL=require"):
        local_response_norm(x)


def test_turned_off_the_kernel_is_not_built_and_nothing_warns(monkeypatch):
    monkeypatch.setattr(lrn_cpu, "_STATE", {"loaded": None, "error": ""})
    monkeypatch.setattr(lrn_cpu, "_build", lambda: pytest.fail("built although turned off"))
    monkeypatch.setenv(lrn_cpu.ENV_VAR, "0")
    x = torch.randn(2, 8, 3, 3) * 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = local_response_norm(x, groups=2)
    assert not lrn_cpu.available()
    torch.testing.assert_close(out.double(), reference(x), rtol=1e-5, atol=1e-6)


def test_a_missing_compiler_in_a_fresh_process_falls_back(tmp_path):
    """The real thing, in a new process: the compiler named by $CXX does not exist and the
    extension cache is empty. The LRN still works, with one warning."""
    script = (
        "import warnings, torch\n"
        "from alexnet_lib.lrn import local_response_norm\n"
        "x = torch.randn(2, 8, 3, 3) * 20\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    a, b = local_response_norm(x, groups=2), local_response_norm(x, groups=2)\n"
        "print(len(caught), torch.equal(a, b), caught[0].message if caught else '')\n"
    )
    env = {**os.environ, "CXX": str(tmp_path / "no-such-compiler"), "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")}
    env.pop(lrn_cpu.ENV_VAR, None)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    count, same, message = proc.stdout.strip().split(" ", 2)
    assert (count, same) == ("1", "True"), proc.stdout
    assert "could not be built" in message
