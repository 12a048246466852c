"""The Imagenette data pipeline (decode, resize/crop, flips, PCA colour) against what the model consumes.

  stream:  JPEG decode + resize to 256 + centre crop in DataLoader workers (ImageFolderStream),
           then batched crops/flips/PCA: what a run over ILSVRC-2012 does;
  cached:  decoded once into uint8 tensors, then batched crops/flips/PCA: what the book does for
           Imagenette;
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
    cached = load_dataset("imagenette", "train", size=256, progress=False)
    augment = Augment(crop=224, mean=mean_image(cached.images), pca=pca_basis(cached.images))
    gen = torch.Generator().manual_seed(0)
    n = args.batch * args.batches

    stream = ImageFolderStream(find_dataset("imagenette").path / "train", size=256)
    loader = torch.utils.data.DataLoader(stream, batch_size=args.batch, shuffle=True, num_workers=args.workers)

    def stream_pipeline():
        for i, (x, _) in enumerate(loader):
            augment.train(x, gen)
            if i + 1 == args.batches:
                break

    def cached_pipeline():
        perm = torch.randperm(len(cached), generator=gen)
        for i in range(args.batches):
            augment.train(cached.images[perm[i * args.batch : (i + 1) * args.batch]], gen)

    rates = {"stream (decode in workers + batch aug)": rate(stream_pipeline, n),
             "cached uint8 + batch aug": rate(cached_pipeline, n)}
    for name, width, size in [("AlexNet full width, 224", 1.0, 224), ("AlexNet width 0.25, 128", 0.25, 128)]:
        model = AlexNet(num_classes=10, width=width, input_size=size)
        opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
        x, y = torch.randn(32, 3, size, size), torch.randint(0, 10, (32,))

        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        rates[f"model: {name}"] = rate(step, 32, rounds=2)
    for name, r in rates.items():
        print(f"{name:>40}: {r:8.0f} img/s")
    data_rate = rates["cached uint8 + batch aug"]
    for name in [k for k in rates if k.startswith("model")]:
        bound = "compute" if rates[name] < data_rate else "data"
        print(f"{name[7:]}: {bound}-bound with the cached pipeline "
              f"(data {data_rate / rates[name]:.1f}x the model's rate); streamed: "
              f"{'compute' if rates[name] < rates['stream (decode in workers + batch aug)'] else 'data'}-bound")


if __name__ == "__main__":
    main()
