"""The optimiser of §5: the paper's update rule, and which parameters get weight decay.

    v_{i+1} := 0.9 · v_i − 0.0005 · ε · w_i − ε · ⟨∂L/∂w | w_i⟩_{D_i}
    w_{i+1} := w_i + v_{i+1}

``torch.optim.SGD(momentum=0.9, weight_decay=5e-4)`` is the same rule while ε is constant,
and differs after ε changes (:class:`PaperSGD` says how); both are available by name.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import PReLU
from .util import check_choice

OPTIMIZERS = ("paper", "sgd")


class PaperSGD(torch.optim.Optimizer):
    """The update rule of §5, literally: v ← m·v − wd·ε·w − ε·g;  w ← w + v.

    ``torch.optim.SGD(momentum=m, weight_decay=wd)`` keeps b ← m·b + g + wd·w and steps
    w ← w − ε·b. While ε is constant the two are the same (v = −ε·b). When ε changes,
    torch's carried momentum is rescaled by ε_new/ε_old at once; the paper's is not.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4):
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning rate must be positive, got {lr} (the paper starts at 0.01)")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum} (the paper uses 0.9)")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay} (the paper uses 5e-4)")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, m, wd = group["lr"], group["momentum"], group["weight_decay"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if "velocity" not in self.state[p]:
                    self.state[p]["velocity"] = torch.zeros_like(p)
            vs = [self.state[p]["velocity"] for p in params]
            # The rule above, one fused kernel per line for all the layers at once.
            torch._foreach_mul_(vs, m)
            if wd:
                torch._foreach_add_(vs, params, alpha=-wd * lr)
            torch._foreach_add_(vs, [p.grad for p in params], alpha=-lr)
            torch._foreach_add_(params, vs)
        return loss


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights only: not on biases (as in cuda-convnet and Caffe), and
    never on PReLU coefficients (He et al. 2015, §2.1)."""
    no_decay_ids = {id(m.weight) for m in model.modules() if isinstance(m, PReLU)}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if id(p) in no_decay_ids or name.endswith("bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_optimizer(model: nn.Module, name: str, lr: float, momentum: float, weight_decay: float):
    check_choice("optimizer", name, OPTIMIZERS)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be positive, got {lr} (the paper starts at 0.01)")
    groups = parameter_groups(model, weight_decay)
    if name == "paper":
        return PaperSGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def set_learning_rate(optimizer: torch.optim.Optimizer, scheduler, lr: float) -> None:
    """Change the learning rate by hand, as the paper did (§5), from the next step on: in every
    parameter group, and in the schedule's record of it, so that a later ÷10 starts from ``lr``.
    The paper's rule carries its momentum v over unchanged (PaperSGD); torch's SGD rescales it."""
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be a positive number, got {lr} (the paper starts at 0.01)")
    for group in optimizer.param_groups:
        group["lr"] = lr
        if "initial_lr" in group:
            group["initial_lr"] = lr
    for name in ("base_lrs", "_last_lr"):
        if scheduler is not None and hasattr(scheduler, name):
            setattr(scheduler, name, [lr] * len(optimizer.param_groups))
