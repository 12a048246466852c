"""Crops, flips, ten-crop positions, the mean image and PCA colour against hand-made references."""

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet_lib.transforms import (
    Augment,
    centre_crop,
    channel_mean,
    mean_image,
    pca_basis,
    pca_colour,
    random_crops,
    random_flips,
    resize_shorter_and_crop,
    ten_crops,
)


def coordinate_image(h=8, w=10):
    """Channel 0 holds the row index, channel 1 the column index: a crop shows where it came from."""
    rows = torch.arange(h)[:, None].expand(h, w)
    cols = torch.arange(w)[None, :].expand(h, w)
    return torch.stack([rows, cols, rows * 0]).to(torch.uint8)[None]


def test_ten_crop_positions_and_flips():
    x = coordinate_image(8, 10)
    crops = ten_crops(x, 4)[0]
    assert crops.shape == (10, 3, 4, 4)
    # (top, left) of the four corners and the centre, worked out by hand for 8x10 and size 4
    expected = [(0, 0), (0, 6), (4, 0), (4, 6), (2, 3)]
    for i, (top, left) in enumerate(expected):
        assert crops[i, 0, 0, 0] == top and crops[i, 1, 0, 0] == left
        # the mirrored twin: its first column is the original's last
        assert crops[5 + i, 1, 0, 0] == left + 3 and crops[5 + i, 1, 0, 3] == left
        assert torch.equal(crops[5 + i], crops[i].flip(-1))


def test_random_crops_are_slices_at_valid_offsets():
    x = coordinate_image(8, 10).repeat(64, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    out = random_crops(x, 5, g)
    tops, lefts = out[:, 0, 0, 0].long(), out[:, 1, 0, 0].long()
    assert tops.min() >= 0 and tops.max() <= 3 and lefts.min() >= 0 and lefts.max() <= 5
    assert len(set(zip(tops.tolist(), lefts.tolist()))) > 10  # independent per image
    for i in range(64):
        assert torch.equal(out[i], x[i, :, tops[i] : tops[i] + 5, lefts[i] : lefts[i] + 5])
    with pytest.raises(ValueError, match="larger than the images"):
        random_crops(x, 11)


def test_random_flips_mirror_about_half():
    x = coordinate_image().repeat(1000, 1, 1, 1)
    out = random_flips(x, torch.Generator().manual_seed(1))
    flipped = out[:, 1, 0, 0] == 9
    assert torch.equal(out[flipped], x[flipped].flip(-1))
    assert torch.equal(out[~flipped], x[~flipped])
    assert 400 < int(flipped.sum()) < 600


def test_mean_image_and_channel_mean():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (50, 3, 4, 5), generator=g, dtype=torch.uint8)
    ref = x.numpy().astype(np.float64).mean(axis=0)
    # summed in float64, returned as float32 (relative precision 6e-8): 1e-6 relative is safe
    np.testing.assert_allclose(mean_image(x).numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(channel_mean(x).numpy().ravel(), ref.mean(axis=(1, 2)), rtol=1e-6)


def test_pca_colour_equals_formula_with_fixed_alphas():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 4, generator=g) * 255
    lam = torch.tensor([0.2175, 0.0188, 0.0045])
    P = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])
    alphas = torch.tensor([[0.1, -0.2, 0.05], [0.0, 0.3, -0.1]])
    out = pca_colour(x, lam, P, alphas=alphas)
    for n in range(2):
        # [p1 p2 p3][α1λ1, α2λ2, α3λ3]ᵀ, in [0,1] pixel units, times 255; the same for every pixel
        shift = sum(P[:, i].numpy() * alphas[n, i].item() * lam[i].item() for i in range(3)) * 255
        for r in range(4):
            for c in range(4):
                # float32 pixels of up to 255 carry 255 x 6e-8 = 1.5e-5 of rounding per operation
                expected = x[n, :, r, c].numpy() + shift
                np.testing.assert_allclose(out[n, :, r, c].numpy(), expected, rtol=1e-5, atol=1e-6 * 255)


def test_pca_basis_recovers_a_known_covariance():
    torch.manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    lam = torch.tensor([0.04, 0.01, 0.002], dtype=torch.float64)
    pixels = (torch.randn(200_000, 3, dtype=torch.float64) * lam.sqrt()) @ Q.T + 0.5
    images = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).T.reshape(3, 200, 1000).unsqueeze(0)
    values, vectors = pca_basis(images.expand(1, 3, 200, 1000))
    # orthonormal, to float32 precision of unit vectors (scale 1)
    assert torch.allclose(vectors.T @ vectors, torch.eye(3), atol=1e-5)
    # estimated from 200,000 pixels rounded to 1/255: the eigenvalues to a few percent, the
    # directions to within 1e-2 of parallel (sampling error, not rounding)
    np.testing.assert_allclose(values.numpy(), lam.numpy(), rtol=0.05)
    for i in range(3):
        assert abs(abs(float(vectors[:, i].double() @ Q[:, i])) - 1) < 1e-2


def test_resize_shorter_side_and_centre_crop():
    img = Image.new("RGB", (500, 375))
    assert resize_shorter_and_crop(img, 256).size == (256, 256)
    # the centre crop keeps the middle: a red bar in the middle column survives, the edges go
    arr = np.zeros((100, 300, 3), np.uint8)
    arr[:, 149:151, 0] = 255
    arr[:, :10, 1] = 255
    out = np.asarray(resize_shorter_and_crop(Image.fromarray(arr), 100))
    assert out[:, 45:55, 0].max() > 100 and out[:, :, 1].max() == 0


def test_augment_scale_divides_after_the_mean_and_scales_pca_alike():
    x = torch.full((2, 3, 4, 4), 100, dtype=torch.uint8)
    lam, vec = torch.tensor([0.2, 0.0, 0.0]), torch.eye(3)
    aug = Augment(crop=4, mean=torch.full((3, 1, 1), 40.0), pca=(lam, vec), scale=60.0, flip=False)
    out = aug.train(x, torch.Generator().manual_seed(0))
    plain = Augment(crop=4, mean=torch.full((3, 1, 1), 40.0), pca=(lam, vec), flip=False)
    plain = plain.train(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, plain / 60.0)  # the same colour shift, in the scaled units
    assert torch.all(aug.evaluate(x) == 1.0)


def test_augment_train_and_eval_shapes_and_mean():
    x = torch.full((4, 3, 10, 10), 100, dtype=torch.uint8)
    aug = Augment(crop=8, mean=torch.full((3, 10, 10), 40.0), pca=None)
    assert torch.all(aug.train(x, torch.Generator().manual_seed(0)) == 60)
    assert aug.evaluate(x).shape == (4, 3, 8, 8)
    assert aug.evaluate(x, ten_crop=True).shape == (4, 10, 3, 8, 8)
    assert torch.equal(centre_crop(coordinate_image(8, 10), 4)[0, :, 0, 0], torch.tensor([2, 3, 0], dtype=torch.uint8))
