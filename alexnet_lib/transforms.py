"""Preprocessing and augmentation of §2 and §4.1, on whole batches of tensors.

Images are held as uint8 (N, 3, H, W) tensors. Every function here but the first takes and gives
batches, so a training step augments 128 images with a handful of tensor ops instead
of 128 trips through PIL.

* :func:`resize_shorter_and_crop`: the §2 rescaling of one PIL image, done once at decoding.
* :func:`mean_image` / :func:`channel_mean`: "subtracting the mean activity over the
  training set from each pixel" (§2). The paper's is a per-pixel mean image; many
  implementations use a per-channel mean instead. Both are here.
* :func:`random_crops` and :func:`random_flips`: "extracting random 224×224 patches (and
  their horizontal reflections) from the 256×256 images" (§4.1).
* :func:`pca_basis` and :func:`pca_colour`: "perform PCA on the set of RGB pixel values
  ... add multiples of the found principal components" (§4.1).
* :func:`ten_crops`: "five 224×224 patches (the four corner patches and the center
  patch) as well as their horizontal reflections (hence ten patches in all)" (§4.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

#: The ImageNet RGB eigen-decomposition published with fb.resnet.torch (pixels in [0, 1]).
IMAGENET_PCA_EIGENVALUES = torch.tensor([0.2175, 0.0188, 0.0045])
IMAGENET_PCA_EIGENVECTORS = torch.tensor(
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
)


def resize_shorter_and_crop(img: Image.Image, size: int) -> Image.Image:
    """§2: 'rescaled the image such that the shorter side was of length 256, and then
    cropped out the central 256×256 patch' (with ``size`` in place of 256). On one PIL
    image: the data pipeline applies it once, when it decodes a dataset."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=None)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def mean_image(images: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """The per-pixel mean over a uint8 (N, 3, H, W) set, as float (3, H, W) in [0, 255]."""
    total = torch.zeros(images.shape[1:], dtype=torch.float64)
    for i in range(0, len(images), batch):
        total += images[i : i + batch].to(torch.float64).sum(0)
    return (total / len(images)).float()


def channel_mean(images: torch.Tensor) -> torch.Tensor:
    """The per-channel mean, float (3, 1, 1) in [0, 255]: the common simplification."""
    return mean_image(images).mean(dim=(1, 2), keepdim=True)


def _offsets(n: int, limit: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(0, limit + 1, (n,), generator=generator)


def crop_at(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """Crop image i of the batch at (top[i], left[i]), size × size, with one gather: of whole
    rows of the windows of ``x`` (a view), so the copy runs over ``size`` values at a time."""
    windows = x.unfold(2, size, 1).unfold(3, size, 1)  # (N, C, H - size + 1, W - size + 1, size, size)
    return windows[torch.arange(x.shape[0], device=x.device), :, top.to(x.device), left.to(x.device)]


def random_crops(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """An independent random size×size crop of every image of the batch."""
    n, _, h, w = x.shape
    if size > h or size > w:
        raise ValueError(f"crop size {size} is larger than the images ({h}x{w})")
    return crop_at(x, _offsets(n, h - size, generator), _offsets(n, w - size, generator), size)


def random_flips(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability p."""
    flip = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def ten_crops(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 10, 3, size, size): TL, TR, BL, BR, centre, then each mirrored."""
    h, w = x.shape[-2:]
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), ((h - size) // 2, (w - size) // 2)]
    crops = [x[..., top : top + size, left : left + size] for top, left in corners]
    crops += [c.flip(-1) for c in crops]
    return torch.stack(crops, dim=1)


def pca_basis(images: torch.Tensor, max_pixels: int = 2_000_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and eigenvectors (columns) of the RGB covariance.

    Pixels are scaled to [0, 1], the convention of the published ImageNet values. At
    most ``max_pixels`` pixels, drawn at random with a fixed seed, enter the estimate.
    """
    n, c, h, w = images.shape
    total = n * h * w
    g = torch.Generator().manual_seed(seed)
    flat = images.permute(1, 0, 2, 3).reshape(c, total)
    if total > max_pixels:
        flat = flat[:, torch.randint(0, total, (max_pixels,), generator=g)]
    pixels = flat.to(torch.float64).T / 255.0
    cov = torch.cov(pixels.T)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    order = eigenvalues.argsort(descending=True)
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    # eigh's sign is arbitrary: make each vector's first component negative, as published.
    eigenvectors = eigenvectors * torch.where(eigenvectors[0] > 0, -1.0, 1.0)
    return eigenvalues.float(), eigenvectors.float()


def pca_colour(
    x: torch.Tensor,
    eigenvalues: torch.Tensor,
    eigenvectors: torch.Tensor,
    std: float = 0.1,
    alphas: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    scale: float = 255.0,
) -> torch.Tensor:
    """Add [p1 p2 p3][α1λ1, α2λ2, α3λ3]ᵀ to every pixel of each image, α_i ~ N(0, std).

    One draw of α per image, per use (§4.1). ``x`` is float (N, 3, H, W) in units where
    the eigen-decomposition's pixels in [0, 1] map to ``scale`` (255 for 0..255 data).
    """
    n = x.shape[0]
    if alphas is None:
        alphas = torch.randn(n, 3, generator=generator) * std
    shift = (alphas.to(x.device) * eigenvalues.to(x.device)) @ eigenvectors.to(x.device).T  # (N, 3)
    return x + scale * shift[:, :, None, None].to(x.dtype)


@dataclass
class Augment:
    """The whole training-time pipeline on a uint8 batch, and its test-time twin.

    train: subtract the mean (image or channel), divide by ``scale``, random crop, flip,
    PCA colour. evaluate: subtract the mean, divide by ``scale``, centre crop (or ten crops).
    """

    crop: int
    mean: torch.Tensor  # (3, H, W) mean image or (3, 1, 1) channel mean, 0..255
    flip: bool = True
    pca: tuple | None = None  # (eigenvalues, eigenvectors) or None for no colour noise
    pca_std: float = 0.1
    random_crop: bool = True
    # The paper feeds raw 0..255 values minus the mean: its N(0, 0.01) init is sized for that.
    # Kaiming/Xavier inits assume unit-variance inputs: pass the pixel std (e.g. ~64) here.
    scale: float = 1.0

    def _centre(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() - self.mean.to(x.device)
        return x / self.scale if self.scale != 1.0 else x

    def train(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = self._centre(x)
        if self.random_crop and self.crop < x.shape[-1]:
            x = random_crops(x, self.crop, generator)
        else:
            x = centre_crop(x, self.crop)
        if self.flip:
            x = random_flips(x, generator)
        if self.pca is not None:
            x = pca_colour(x, *self.pca, std=self.pca_std, generator=generator, scale=255.0 / self.scale)
        return x

    def evaluate(self, x: torch.Tensor, ten_crop: bool = False) -> torch.Tensor:
        x = self._centre(x)
        return ten_crops(x, self.crop) if ten_crop else centre_crop(x, self.crop)


def eigenvector_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between column i of ``a`` and column i of ``b``, for each i.

    An eigenvector's sign means nothing, so p and -p count as the same direction: the
    angle is arccos(|a_i · b_i| / (|a_i| |b_i|)), between 0 and 90 degrees.
    """
    if a.shape != b.shape:
        raise ValueError(f"eigenvector matrices must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.double(), b.double()
    cos = (a * b).sum(0).abs() / (a.norm(dim=0) * b.norm(dim=0))
    return torch.rad2deg(torch.arccos(cos.clamp(max=1.0))).float()
