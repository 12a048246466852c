"""The Imagenette data pipeline (decode, resize/crop, flips, PCA colour) against what the model consumes.

  stream:  JPEG decode + resize to 256 + centre crop in DataLoader workers (ImageFolderStream),
           then batched crops/flips/PCA: what a run over ILSVRC-2012 does;
  cached:  decoded once into uint8 tensors, then batched crops/flips/PCA: what the book does for
           Imagenette, at the paper's geometry (256 -> 224) and at quick mode's (146 -> 128);
  model:   AlexNet train steps (full width at 224, and the quick-mode quarter width at 128).
Prints img/s of each, and whether data or compute bounds training.

    python bench/bench_imagenette_pipeline.py [--batch 64] [--workers 2] [--batches 6]
    python bench/bench_imagenette_pipeline.py --device cuda --batch 256 --workers 16 --bf16 --channels-last

On a GPU the cached images live on the GPU and are cropped, flipped and coloured there, and
the model steps run with the given precision and layout.
"""

import argparse
import statistics
import time

import torch
from _common import add_malloc_flag, apply_malloc, header, sync, trainer_step

from alexnet_lib.data import find_dataset, load_dataset
from alexnet_lib.images import ImageFolderStream
from alexnet_lib.model import AlexNet
from alexnet_lib.transforms import Augment, mean_image, pca_basis


def rate(fn, n_images, rounds=3, device="cpu"):
    fn()  # warm up
    times = []
    for _ in range(rounds):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return n_images / statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the model steps")
    p.add_argument("--channels-last", action="store_true")
    add_malloc_flag(p)
    args = p.parse_args()
    dev = args.device
    malloc = apply_malloc(args)
    header(f"Imagenette pipeline against the model, {dev}" + (", bf16 autocast" if args.bf16 else "")
           + (", channels_last" if args.channels_last else ""), malloc=malloc)
    gen = torch.Generator().manual_seed(0)
    n = args.batch * args.batches
    rates = {}

    # ILSVRC-style streaming: decode + resize to 256 in DataLoader workers, then crop 224
    full = load_dataset("imagenette", "train", size=256, progress=False)
    augment_full = Augment(crop=224, mean=mean_image(full.images), pca=pca_basis(full.images))
    stream = ImageFolderStream(find_dataset("imagenette").path / "train", size=256)

    def stream_pipeline():  # a new DataLoader each round: its workers stop before the next timings
        loader = torch.utils.data.DataLoader(stream, batch_size=args.batch, shuffle=True, num_workers=args.workers)
        for i, (x, _) in enumerate(loader):
            augment_full.train(x, gen)
            if i + 1 == args.batches:
                break

    rates["stream 256 -> 224 (decode in workers + batch aug)"] = rate(stream_pipeline, n)

    # the book's path: decoded once into uint8 tensors; the paper's geometry and quick mode's
    geometries = {224: (full, augment_full)}
    small = load_dataset("imagenette", "train", size=146, progress=False)   # round(128 * 256 / 224)
    geometries[128] = (small, Augment(crop=128, mean=mean_image(small.images), pca=pca_basis(small.images)))
    for crop, (data, augment) in geometries.items():
        images = data.images.to(dev)

        def cached_pipeline(images=images, augment=augment):
            perm = torch.randperm(len(images), generator=gen).to(dev)
            for i in range(args.batches):
                augment.train(images[perm[i * args.batch : (i + 1) * args.batch]], gen)
        rates[f"cached uint8 {data.images.shape[-1]} -> {crop} + batch aug"] = rate(cached_pipeline, n, device=dev)

    models = {224: ("AlexNet full width", 1.0), 128: ("AlexNet width 0.25 (quick mode)", 0.25)}
    # a CPU step at batch 32 takes long enough to time alone; a GPU step is timed three at a time
    steps_per_round, rounds = (1, 2) if dev == "cpu" else (3, 3)
    for size, (name, width) in models.items():
        model = AlexNet(num_classes=10, width=width, input_size=size).to(dev)
        fmt = torch.channels_last if args.channels_last else torch.contiguous_format
        model = model.to(memory_format=fmt)
        mb = args.batch if dev != "cpu" else 32
        x = torch.randn(mb, 3, size, size, device=dev).contiguous(memory_format=fmt)
        y = torch.randint(0, 10, (mb,), device=dev)
        step = trainer_step(model, x, y, amp=args.bf16)

        def steps(step=step):
            for _ in range(steps_per_round):
                step()

        rates[f"model: {name}, {size}"] = rate(steps, steps_per_round * mb, rounds=rounds, device=dev)
    for name, r in rates.items():
        print(f"{name:>52}: {r:8.0f} img/s")
    for size, (name, _) in models.items():
        model_rate = rates[f"model: {name}, {size}"]
        data_rate = next(r for k, r in rates.items()
                         if k.startswith("cached") and k.split(" + ")[0].endswith(f"-> {size}"))
        streamed = rates["stream 256 -> 224 (decode in workers + batch aug)"]
        print(f"{name} at {size}: {'compute' if model_rate < data_rate else 'data'}-bound with the cached pipeline "
              f"(data {data_rate / model_rate:.1f}x the model's rate)"
              + (f"; streamed: {'compute' if model_rate < streamed else 'data'}-bound" if size == 224 else ""))


if __name__ == "__main__":
    main()
