"""The Imagenette data pipeline (decode, resize/crop, flips, PCA colour) against what the model consumes.

  stream:  JPEG decode + resize to 256 + centre crop in DataLoader workers (ImageFolderStream),
           then batched crops/flips/PCA: what a run over ILSVRC-2012 does;
  cached:  decoded once into uint8 tensors, then batched crops/flips/PCA: what the book does for
           Imagenette, at the paper's geometry (256 -> 224) and at quick mode's (146 -> 128);
  model:   AlexNet train steps (full width at 224, and the quick-mode quarter width at 128).
Prints img/s of each, and whether data or compute bounds training.

    python bench/bench_imagenette_pipeline.py [--batch 64] [--workers 2] [--batches 6]
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from _common import header

from alexnet_lib.data import ImageFolderStream, find_dataset, load_dataset
from alexnet_lib.model import AlexNet
from alexnet_lib.transforms import Augment, mean_image, pca_basis


def rate(fn, n_images, rounds=3):
    fn()  # warm up
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return n_images / statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=6)
    args = p.parse_args()
    header("Imagenette pipeline against the model")
    gen = torch.Generator().manual_seed(0)
    n = args.batch * args.batches
    rates = {}

    # ILSVRC-style streaming: decode + resize to 256 in DataLoader workers, then crop 224
    full = load_dataset("imagenette", "train", size=256, progress=False)
    augment_full = Augment(crop=224, mean=mean_image(full.images), pca=pca_basis(full.images))
    stream = ImageFolderStream(find_dataset("imagenette").path / "train", size=256)
    loader = torch.utils.data.DataLoader(stream, batch_size=args.batch, shuffle=True, num_workers=args.workers)

    def stream_pipeline():
        for i, (x, _) in enumerate(loader):
            augment_full.train(x, gen)
            if i + 1 == args.batches:
                break

    rates["stream 256 -> 224 (decode in workers + batch aug)"] = rate(stream_pipeline, n)
    del loader  # stop its workers before the next timings

    # the book's path: decoded once into uint8 tensors; the paper's geometry and quick mode's
    geometries = {224: (full, augment_full)}
    small = load_dataset("imagenette", "train", size=146, progress=False)   # round(128 * 256 / 224)
    geometries[128] = (small, Augment(crop=128, mean=mean_image(small.images), pca=pca_basis(small.images)))
    for crop, (data, augment) in geometries.items():
        def cached_pipeline(data=data, augment=augment):
            perm = torch.randperm(len(data), generator=gen)
            for i in range(args.batches):
                augment.train(data.images[perm[i * args.batch : (i + 1) * args.batch]], gen)
        rates[f"cached uint8 {data.images.shape[-1]} -> {crop} + batch aug"] = rate(cached_pipeline, n)

    models = {224: ("AlexNet full width", 1.0), 128: ("AlexNet width 0.25 (quick mode)", 0.25)}
    for size, (name, width) in models.items():
        model = AlexNet(num_classes=10, width=width, input_size=size)
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        x, y = torch.randn(32, 3, size, size), torch.randint(0, 10, (32,))

        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        rates[f"model: {name}, {size}"] = rate(step, 32, rounds=2)
    for name, r in rates.items():
        print(f"{name:>52}: {r:8.0f} img/s")
    for size, (name, _) in models.items():
        model_rate = rates[f"model: {name}, {size}"]
        data_rate = next(r for k, r in rates.items() if k.startswith("cached") and k.split(" + ")[0].endswith(f"-> {size}"))
        print(f"{name} at {size}: {'compute' if model_rate < data_rate else 'data'}-bound with the cached pipeline "
              f"(data {data_rate / model_rate:.1f}x the model's rate)"
              + (f"; streamed: {'compute' if model_rate < rates['stream 256 -> 224 (decode in workers + batch aug)'] else 'data'}-bound"
                 if size == 224 else ""))


if __name__ == "__main__":
    main()
