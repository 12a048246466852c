"""Top-1 / top-5 error, from a centre crop or from ten crops (§4.1, §6).

"At test time, the network makes a prediction by extracting five 224×224 patches ... as
well as their horizontal reflections ... and averaging the predictions made by the
network's softmax layer on the ten patches."
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .util import progress as progress_bar


def topk_hits(logits: torch.Tensor, targets: torch.Tensor, ks=(1, 5)) -> torch.Tensor:
    """How many rows have the target among their k highest scores, for each k, as a tensor
    on the logits' device (no wait for the GPU). k is capped at the number of classes
    (top-5 of a 3-class problem is top-3)."""
    maxk = min(max(ks), logits.shape[1])
    hit = logits.topk(maxk, dim=1).indices.eq(targets[:, None])
    return torch.stack([hit[:, : min(k, maxk)].any(dim=1).sum() for k in ks])


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks=(1, 5)) -> dict:
    """How many rows have the target among their k highest scores, for each k, as ints."""
    return dict(zip(ks, topk_hits(logits, targets, ks).tolist()))


def topk_errors(logits: torch.Tensor, targets: torch.Tensor, ks=(1, 5)) -> dict:
    """Top-k error rates in [0, 1], keyed "top1", "top5"."""
    n = len(targets)
    return {f"top{k}": 1.0 - c / n for k, c in topk_correct(logits, targets, ks).items()}


@torch.no_grad()
def predict(
    model,
    images,
    augment,
    ten_crop: bool = False,
    batch_size: int = 256,
    device=None,
    progress: bool = False,
    desc: str = "evaluating",
) -> torch.Tensor:
    """Softmax probabilities for uint8 images; with ``ten_crop`` the mean of ten softmaxes.

    ``images`` is a uint8 (N, 3, H, W) tensor, or a Dataset of (image, label) pairs.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    probs = []
    try:
        if isinstance(images, torch.Tensor):
            chunks = (images[i : i + batch_size] for i in range(0, len(images), batch_size))
        else:
            loader = torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False)
            chunks = (x for x, _ in loader)
        for chunk in progress_bar(chunks, progress, total=-(-len(images) // batch_size), desc=desc, leave=False):
            x = augment.evaluate(chunk.to(device), ten_crop=ten_crop)
            if ten_crop:
                n = x.shape[0]
                p = F.softmax(model(x.flatten(0, 1)).float(), dim=1).view(n, 10, -1).mean(1)
            else:
                p = F.softmax(model(x).float(), dim=1)
            probs.append(p.cpu())
    finally:
        model.train(was_training)
    return torch.cat(probs)


def evaluate(
    model, data, augment, ten_crop: bool = False, batch_size: int = 256, device=None, progress: bool = False
) -> dict:
    """{"loss", "top1", "top5"} of a model on an ImageTensors split (errors in [0, 1])."""
    if hasattr(data, "images"):
        probs, labels = predict(model, data.images, augment, ten_crop, batch_size, device, progress), data.labels
    else:
        probs = predict(model, data, augment, ten_crop, batch_size, device, progress)
        labels = torch.tensor([label for _, label in data.items])
    loss = float(F.nll_loss(probs.clamp_min(1e-12).log(), labels))
    return {"loss": loss, **topk_errors(probs, labels)}


def train_val_gap(
    model, train_data, val_data, augment, ten_crop: bool = False, batch_size: int = 256, device=None
) -> dict:
    """Top-1 error on the training set and on the validation set, both measured the same
    way (eval mode: no dropout, centre crop or ten crops), and the gap val − train.

    The running training error a trainer logs is measured on augmented images with
    dropout on; it is not comparable with a validation error. This one is.
    """
    train = evaluate(model, train_data, augment, ten_crop, batch_size, device)
    val = evaluate(model, val_data, augment, ten_crop, batch_size, device)
    return {
        "train_top1": train["top1"],
        "val_top1": val["top1"],
        "gap": val["top1"] - train["top1"],
        "train_loss": train["loss"],
        "val_loss": val["loss"],
    }
