"""Helpers of chapters 6 and 7 against hand-made references: eigenvector angles, the
train/validation gap, and the counts behind the §4.1 crop arithmetic."""

import math

import numpy as np
import torch
from torch import nn

from alexnet_lib.data import ImageTensors
from alexnet_lib.evaluate import train_val_gap
from alexnet_lib.transforms import Augment, eigenvector_angles, random_crops, random_flips


def rotation_z(degrees):
    t = math.radians(degrees)
    return torch.tensor([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0], [0.0, 0.0, 1.0]])


def test_eigenvector_angles_of_a_known_rotation():
    # rotating the basis by 30 degrees about the third axis turns the first two columns by 30
    # degrees and leaves the third alone
    angles = eigenvector_angles(torch.eye(3), rotation_z(30.0))
    # angles in degrees of at most 90, computed in float64 and returned as float32: float32 holds
    # 90 to about 1e-5, and arccos near 1 loses half the digits of float64 (~1e-8 rad): 1e-4 degrees
    np.testing.assert_allclose(angles.numpy(), [30.0, 30.0, 0.0], atol=1e-4)


def test_eigenvector_angles_ignore_sign_and_length():
    a = torch.eye(3)
    b = torch.diag(torch.tensor([-2.0, 0.5, -1.0]))  # same directions, flipped and rescaled
    np.testing.assert_allclose(eigenvector_angles(a, b).numpy(), [0.0, 0.0, 0.0], atol=1e-4)
    # perpendicular columns are 90 degrees apart; 120 degrees counts as 60 (p and -p are one direction)
    c = torch.tensor([[0.0, math.cos(math.radians(120))], [1.0, math.sin(math.radians(120))]])
    np.testing.assert_allclose(eigenvector_angles(torch.eye(2), c).numpy(), [90.0, 30.0], atol=1e-4)


def test_eigenvector_angles_reject_different_shapes():
    try:
        eigenvector_angles(torch.eye(3), torch.eye(2))
    except ValueError as e:
        assert "same shape" in str(e)
    else:
        raise AssertionError("expected a ValueError")


def test_distinct_crops_with_flips_are_counted_by_hand():
    # §4.1's arithmetic depends only on the gap between image and crop: a gap of 4 gives
    # offsets 0..4, so 5 * 5 positions, times 2 for the mirror image = 50 distinct crops
    size, crop = 12, 8
    rows = torch.arange(size)[:, None].expand(size, size)
    cols = torch.arange(size)[None, :].expand(size, size)
    x = torch.stack([rows, cols, rows * 0]).to(torch.uint8)[None].expand(4000, 3, size, size)
    g = torch.Generator().manual_seed(0)
    out = random_flips(random_crops(x, crop, g), g)
    seen = {(int(o[0, 0, 0]), int(o[1, 0, 0]), bool(o[1, 0, 0] > o[1, 0, 1])) for o in out}
    assert len(seen) == (size - crop + 1) ** 2 * 2 == 50


class _LookupModel(nn.Module):
    """Predicts class 0 when the image's first pixel is positive, class 1 otherwise."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))  # evaluate() reads the device from a parameter

    def forward(self, x):
        score = x[:, 0, 0, 0]
        return torch.stack([score, -score], dim=1)


def test_train_val_gap_counts_errors_by_hand():
    model = _LookupModel()
    aug = Augment(crop=2, mean=torch.zeros(3, 1, 1), flip=False, random_crop=False)
    # training set: 4 images, labels match the rule for 3 of them -> 25% error
    imgs = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    imgs[:2, 0, 0, 0] = 10  # first pixel positive -> predicts class 0
    train = ImageTensors(imgs, torch.tensor([0, 0, 1, 0]), ["a", "b"])
    # validation set: 4 images, rule right for 2 -> 50% error
    val = ImageTensors(imgs.clone(), torch.tensor([0, 1, 0, 1]), ["a", "b"])
    out = train_val_gap(model, train, val, aug, batch_size=3)
    assert out["train_top1"] == 0.25 and out["val_top1"] == 0.5
    assert abs(out["gap"] - 0.25) < 1e-12  # 0.5 - 0.25 is exact in binary; any error would be a bug
