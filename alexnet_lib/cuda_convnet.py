"""cuda-convnet's own recipe for the CIFAR-10 nets behind "13% -> 11%" (§3.3), as library parts.

The paper's CIFAR-10 numbers come from Alex Krizhevsky's cuda-convnet, trained the way its
``Methodology`` wiki page describes. This module holds that recipe for the ``lrn-pair``
:class:`~alexnet_lib.small_nets.CifarNet`, each part a function the trainer can call:

* :func:`init_cuda_convnet`: zero-mean Gaussian weights with each layer's ``initW`` as std,
  biases 0;
* :func:`parameter_groups`: each layer's learning rate (``epsW`` for weights, ``epsB`` for
  biases), momentum and weight cost ``wc``, as optimiser parameter groups;
* :func:`holdout_split`: the fixed, class-balanced hold-out that stands in for batch 5;
* :data:`SCHEDULES` with :func:`phase_at`, :func:`lr_factor_at`, :func:`uses_holdout_at`,
  :func:`total_epochs`, :func:`make_scheduler`: the phases of the 13% and 11% runs;
* :func:`multiview_windows`, :func:`multiview_crops`, :func:`multiview_probs`,
  :func:`evaluate_multiview`: the test of ``--multiview-test=1``, nine 24x24 crops averaged.

The version followed. The original Google Code project is gone; its files survive in public
forks, which differ in small values. This module follows:

* ``example-layers/layers-conv-local-13pct.cfg`` of dnouri/cuda-convnet at commit 73454778da77
  for ``initW`` (conv1 0.0001, conv2 0.01, local3 0.04, local4 0.04, fc10 0.01; no ``initB``,
  whose default is 0). petewarden/cuda-convnet (d6731537b165) has the same values. The 11%
  definition of stephenyan1231/cuda_convnet_plus (72af795cf2e0), the one with ``cmrnorm`` of
  size 9 after pool1 and conv2 that ``CifarNet(lrn=True)`` builds, has the same ``initW`` too.
* ``example-layers/layer-params-conv-local-13pct.cfg`` of dnouri/cuda-convnet at 504490cf2bf5
  and ``layer-params-conv-local-11pct.cfg`` at 3878e8f3ee10 (identical values): ``epsW``
  0.001, ``epsB`` 0.002, ``momW`` = ``momB`` = 0.9 on every layer; ``wc`` 0 on conv1 and
  conv2, 0.004 on local3, local4 and fc10. (Another stored version of the 13% file in the same
  fork, c027ce320b5f, has ``epsW`` 0.00001: a fork's experiment, not followed.)
* The schedule: the ``Methodology`` wiki page (the Google Code export in
  mbrukman/cuda-convnet, ``wiki/Methodology.wiki`` at 1da547277d46) for the 13% net, and the
  comment at the top of ``layer-params-conv-local-11pct.cfg`` (3878e8f3ee10) for the 11% net.
* The update rule: ``include/weights.cuh`` of dnouri/cuda-convnet (0262de8f16d9):
  ``inc = mom·inc + (eps/numCases)·Σ grad − wc·eps·w;  w = w + inc``. The summed gradient
  divided by the batch size is the gradient of the mean loss, so ``eps`` is PyTorch's ``lr``
  and this is exactly :class:`~alexnet_lib.optim.PaperSGD` with ``weight_decay = wc``.
* The test crops: ``CroppedCIFARDataProvider`` in ``convdata.py`` of dnouri/cuda-convnet
  (2ce23f6665c6): nine windows starting at (0, b, 2b) x (0, b, 2b), b = ``crop_border`` = 4,
  no flips. That code subtracts the mean image cropped to the *centre* window from every crop;
  the book's training pipeline (``transforms.Augment``) subtracts the whole mean image before
  cropping, i.e. the mean of the crop's own window. :func:`multiview_probs` does the latter by
  default (``mean_window="same"``), and cuda-convnet's with ``mean_window="centre"``.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .evaluate import evaluate, topk_errors
from .small_nets import CUDA_CONVNET_INIT_STD, CifarNet
from .util import check_choice

#: The five weight layers of layers-conv-local-13pct.cfg / -11pct.cfg, in order.
LAYERS = ("conv1", "conv2", "local3", "local4", "fc10")
#: initW: the std of each layer's zero-mean Gaussian weights (layers-conv-local-13pct.cfg).
INIT_STD = CUDA_CONVNET_INIT_STD
#: wc: each layer's weight cost (layer-params-conv-local-13pct.cfg, and -11pct.cfg alike).
WEIGHT_COST = {"conv1": 0.0, "conv2": 0.0, "local3": 0.004, "local4": 0.004, "fc10": 0.004}
#: epsW, epsB, momW = momB of every layer (the same files).
EPS_W, EPS_B, MOMENTUM = 0.001, 0.002, 0.9


def cuda_convnet_layers(model: nn.Module) -> dict:
    """{"conv1": module, ..., "fc10": module}: the five weight layers of an ``lrn-pair`` CifarNet."""
    if not isinstance(model, CifarNet):
        raise ValueError(f"cuda-convnet's recipe is for CifarNet('lrn-pair') (conv1, conv2, local3, local4, fc10), "
                         f"not {type(model).__name__}. Build the model with --model cifar-lrn-pair.")
    return model.weight_layers()


@torch.no_grad()
def init_cuda_convnet(model: nn.Module, stds: dict | None = None, generator: torch.Generator | None = None):
    """Every weight ~ N(0, initW²) with its layer's initW (:data:`INIT_STD`; ``stds`` overrides some),
    every bias 0; in place, and returns ``model``. ``CifarNetConfig(init="cuda-convnet")`` builds a
    net initialised so. cuda-convnet feeds raw 0..255 pixels minus the mean, and these stds are
    sized for that (``transforms.Augment(scale=1)``, the default)."""
    stds = {**INIT_STD, **(stds or {})}
    for name, layer in cuda_convnet_layers(model).items():
        layer.weight.normal_(0.0, stds[name], generator=generator)
        layer.bias.zero_()
    return model


def parameter_groups(model: nn.Module, eps_w: float = EPS_W, eps_b: float = EPS_B, momentum: float = MOMENTUM,
                     weight_costs: dict | None = None, divide_eps_b: bool = False) -> list[dict]:
    """Optimiser parameter groups with cuda-convnet's per-layer rates: one group per weight (lr
    ``eps_w``, weight decay its layer's ``wc``), then one per bias (lr ``eps_b``, no decay).

    The weight groups come first, so ``param_groups[0]["lr"]`` (what the trainer logs) is epsW.
    Each group also names its ``layer`` and ``kind`` ("weight" or "bias"), and says in
    ``lr_steps`` whether the schedule's ÷10 steps apply to it (:func:`make_scheduler` reads it).

    ``divide_eps_b=False`` (the default) keeps epsB at 0.002 through the ÷10 steps: the
    Methodology page says "reduce all learning rates (the ``epsW`` parameters) ... by a factor
    of 10", and the 11% file's comment "Lower learning rates (epsW) by a factor of 10 to
    0.0001"; both name epsW and nothing else. ``True`` divides epsB too, as torch's MultiStepLR
    (which scales every group) does.

    Use them with :class:`~alexnet_lib.optim.PaperSGD`, cuda-convnet's own update rule:
    ``PaperSGD(parameter_groups(model), lr=EPS_W, momentum=MOMENTUM, weight_decay=0)``.
    """
    costs = {**WEIGHT_COST, **(weight_costs or {})}
    for name, value in (("eps_w", eps_w), ("eps_b", eps_b)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive learning rate, got {value} (cuda-convnet: {EPS_W}, {EPS_B})")
    layers = cuda_convnet_layers(model)
    covered = {id(p) for layer in layers.values() for p in (layer.weight, layer.bias)}
    extra = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in covered]
    if extra:
        raise ValueError(f"cuda-convnet's recipe has no rates for the parameters {extra[:3]} of this model; "
                         "it is for the ReLU lrn-pair net (--activation relu).")
    weights = [{"params": [layer.weight], "lr": eps_w, "weight_decay": costs[name], "momentum": momentum,
                "layer": name, "kind": "weight", "lr_steps": True} for name, layer in layers.items()]
    biases = [{"params": [layer.bias], "lr": eps_b, "weight_decay": 0.0, "momentum": momentum,
               "layer": name, "kind": "bias", "lr_steps": divide_eps_b} for name, layer in layers.items()]
    return weights + biases


# ------------------------------------------------------------------ the hold-out and the schedules
def holdout_split(labels, size: int = 10_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_index, holdout_index): a fixed, seeded, class-balanced hold-out of ``size`` images
    (1,000 per class on CIFAR-10) standing in for cuda-convnet's batch 5, and the rest. Both are
    sorted int64 index tensors, disjoint, and together cover every image. The same labels and
    seed give the same split, so every run of every arm holds out the same images."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"holdout_split expects a 1-D tensor of integer class labels, got {labels.dtype} "
                         f"of shape {tuple(labels.shape)}")
    classes = labels.unique()
    if not 0 < size < len(labels) or size % len(classes):
        raise ValueError(f"the hold-out size must be a multiple of the {len(classes)} classes, above 0 and below "
                         f"the {len(labels)} images; got {size} (cuda-convnet's batch 5: 10000)")
    per_class, g = size // len(classes), torch.Generator().manual_seed(seed)
    held = []
    for c in classes.tolist():
        members = (labels == c).nonzero().flatten()
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} images, fewer than the {per_class} a balanced "
                             f"hold-out of {size} needs; choose a smaller size")
        held.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    holdout = torch.cat(held).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[holdout] = False
    return keep.nonzero().flatten(), holdout


#: The recipes of ``TrainConfig.recipe`` ("" is §5's own), each a schedule of :data:`SCHEDULES`.
RECIPES = ("", "cuda-convnet-13pct", "cuda-convnet-11pct")


def recipe_schedule(recipe: str) -> str:
    """The :data:`SCHEDULES` key of a recipe: "cuda-convnet-13pct" -> "13pct"."""
    return recipe.removeprefix("cuda-convnet-")


def holdout_size(data) -> int:
    """A fifth of ``data``'s images (cuda-convnet holds out one of its five training batches), rounded
    to a multiple of its classes: 10,000 of CIFAR-10's 50,000."""
    classes = len(data.classes)
    return max(1, round(len(data) / 5 / classes)) * classes


class Phase(NamedTuple):
    """A stretch of a schedule: ``epochs`` epochs on ``train_set`` ("without-holdout": every
    training image but the hold-out; "all": all of them) at ``lr_factor`` times epsW."""

    epochs: int
    train_set: str
    lr_factor: float


TRAIN_SETS = ("without-holdout", "all")
#: The runs of the Methodology page (13%) and of the 11% file's comment. Their epochs are those of
#: the page: 100 on batches 1-4, to 140 on batches 1-5, ÷10 to 150, ÷10 to 160. For the 11% net,
#: "after about 300 epochs" and "about 150 more" are taken as 300 and 150 (REFERENCE's range is
#: 300-350 on batches 1-4): 470 epochs in all.
SCHEDULES = {
    "13pct": (Phase(100, "without-holdout", 1.0), Phase(40, "all", 1.0), Phase(10, "all", 0.1),
              Phase(10, "all", 0.01)),
    "11pct": (Phase(300, "without-holdout", 1.0), Phase(150, "all", 1.0), Phase(10, "all", 0.1),
              Phase(10, "all", 0.01)),
}


def _phases(schedule) -> Sequence[Phase]:
    if isinstance(schedule, str):
        check_choice("schedule", schedule, tuple(SCHEDULES))
        return SCHEDULES[schedule]
    phases = [Phase(*p) for p in schedule]
    for p in phases:
        check_choice("train_set", p.train_set, TRAIN_SETS)
        if p.epochs < 1:
            raise ValueError(f"a phase lasts at least one epoch, got {p.epochs}")
    return phases


def total_epochs(schedule) -> int:
    """The epochs of a schedule (a name of :data:`SCHEDULES` or a list of phases): 160 for 13pct."""
    return sum(p.epochs for p in _phases(schedule))


def phase_at(schedule, epoch: int) -> Phase:
    """The phase that epoch ``epoch`` belongs to. ``epoch`` is 0-based: the index of the epoch
    being trained, the trainer's ``Trainer.epoch`` (its log's "epoch" counts from 1)."""
    phases, start = _phases(schedule), 0
    for phase in phases:
        if start <= epoch < start + phase.epochs:
            return phase
        start += phase.epochs
    raise ValueError(f"epoch {epoch} is outside this schedule, which has epochs 0 to {start - 1} (0-based)")


def lr_factor_at(schedule, epoch: int) -> float:
    """What epsW is multiplied by in epoch ``epoch`` (0-based): 1, then 0.1, then 0.01."""
    return phase_at(schedule, epoch).lr_factor


def uses_holdout_at(schedule, epoch: int) -> bool:
    """True while the hold-out is held out in epoch ``epoch`` (0-based): the epoch trains on the
    other images and the hold-out serves as the validation set; False once it is folded in."""
    return phase_at(schedule, epoch).train_set == "without-holdout"


def make_scheduler(optimizer: torch.optim.Optimizer, schedule):
    """A LambdaLR that gives each group of :func:`parameter_groups` its rate for every epoch:
    its own lr times :func:`lr_factor_at` where the group's ``lr_steps`` says the ÷10 steps apply,
    its own lr throughout where not. Call ``step()`` once after each epoch, as the trainer does."""
    def factor(steps: bool):
        return lambda epoch: lr_factor_at(schedule, min(epoch, total_epochs(schedule) - 1)) if steps else 1.0

    lambdas = [factor(group.get("lr_steps", True)) for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


# --------------------------------------------------------------------------- multiview testing
def multiview_windows(image: int = 32, crop: int = 24, offsets=None) -> list[tuple[int, int]]:
    """The (top, left) corners of the nine test crops, row by row: every pair of ``offsets``, in
    convdata.py's order, no flips. By default cuda-convnet's 0, b, 2b with b = (image - crop) / 2,
    its ``crop_border``: 0, 4, 8 for 24x24 crops of 32x32 images."""
    if offsets is None:
        border = (image - crop) // 2
        offsets = (0, border, 2 * border)
    bad = [o for o in offsets if not 0 <= o <= image - crop]
    if bad or crop < 1:
        raise ValueError(f"crop offsets must lie in 0..{image - crop} for {crop}x{crop} crops of "
                         f"{image}x{image} images; got {list(offsets)}")
    return [(top, left) for top in offsets for left in offsets]


def multiview_crops(x: torch.Tensor, crop: int = 24, windows=None) -> torch.Tensor:
    """(N, C, H, W) -> (N, views, C, crop, crop): the crop at each window of
    :func:`multiview_windows` (by default the nine of a square image)."""
    windows = windows or multiview_windows(x.shape[-1], crop)
    return torch.stack([x[..., top : top + crop, left : left + crop] for top, left in windows], dim=1)


def _mean_crops(mean: torch.Tensor, windows, crop: int, mean_window: str) -> list[torch.Tensor]:
    check_choice("mean_window", mean_window, ("same", "centre"))
    if mean.shape[-2:] == (1, 1):  # a channel mean: the same for every window
        return [mean] * len(windows)
    if mean_window == "centre":
        border = (mean.shape[-1] - crop) // 2
        windows = [(border, border)] * len(windows)
    return [mean[..., top : top + crop, left : left + crop] for top, left in windows]


@torch.no_grad()
def multiview_probs(model: nn.Module, images: torch.Tensor, mean: torch.Tensor, crop: int = 24, windows=None,
                    scale: float = 1.0, mean_window: str = "same", batch_size: int = 256, device=None) -> torch.Tensor:
    """The mean of the softmaxes of the nine test crops of each uint8 image, (N, classes) on the CPU.

    Each crop has the mean (a (3, H, W) mean image or a (3, 1, 1) channel mean, 0..255)
    subtracted: cropped to the crop's own window (``mean_window="same"``, as training crops get
    it from ``transforms.Augment``) or to the centre window (``"centre"``, cuda-convnet's
    convdata.py), then divided by ``scale``. The model runs in eval mode.
    """
    device = device or next(model.parameters()).device
    windows = windows or multiview_windows(images.shape[-1], crop)
    means = [m.to(device) for m in _mean_crops(mean.float(), windows, crop, mean_window)]
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(images), batch_size):
            x = images[i : i + batch_size].to(device).float()
            total = 0.0
            for (top, left), m in zip(windows, means):
                view = x[..., top : top + crop, left : left + crop] - m
                total = total + F.softmax(model(view / scale if scale != 1.0 else view).float(), dim=1)
            out.append((total / len(windows)).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def evaluate_multiview(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor,
                       **options) -> dict:
    """{"loss", "top1", "top5"} of the nine-crop test (errors in [0, 1], the loss the mean
    negative log of the averaged probability of the true class), like ``evaluate.evaluate``.
    ``options`` go to :func:`multiview_probs`."""
    probs = multiview_probs(model, images, mean, **options)
    labels = torch.as_tensor(labels)
    loss = float(F.nll_loss(probs.clamp_min(1e-12).log(), labels))
    return {"loss": loss, **topk_errors(probs, labels)}


def recipe_measures(recipe: str, epoch: int, evaluated: bool, model, held_out, val, augment, device) -> dict:
    """What a recipe's epoch ``epoch`` (0-based) records beyond the trainer's own: the error on the
    ``held_out`` images while they are held out (in the epochs the test set is ``evaluated``), and the
    nine-crop test of ``val`` after the schedule's last epoch (``val_multiview_*``), with its seconds."""
    out, schedule = {}, recipe_schedule(recipe)
    if evaluated and uses_holdout_at(schedule, epoch):
        out.update({f"holdout_{k}": v for k, v in evaluate(model, held_out, augment, device=device).items()})
    if epoch + 1 == total_epochs(schedule):
        t = time.perf_counter()
        views = evaluate_multiview(model, val.images, val.labels, augment.mean, crop=augment.crop, scale=augment.scale,
                                   device=device)
        out.update({f"val_multiview_{k}": v for k, v in views.items()}, multiview_seconds=time.perf_counter() - t)
    return out
