"""Do two versions of alexnet_lib train to the same numbers, bit for bit, on this machine?

    python tools/same_numbers.py OLD_CHECKOUT NEW_CHECKOUT

Each checkout's library trains the same two tiny runs (a two-tower AlexNet with LRN, random crops,
flips and PCA colour; the Figure 1 CIFAR net in channels_last) from the same seed on the same
synthetic images, in a fresh process, one thread. It prints each run's last loss, validation error
and a sum of conv1's weights, and whether the two versions agree exactly. A refactor of the
library must agree; chapters re-run on another CPU may still differ in the last digits, since
oneDNN's kernels round differently on different CPU models.
"""

from __future__ import annotations

import subprocess
import sys

RUN = r"""
import sys, torch
sys.path.insert(0, sys.argv[1])
from alexnet_lib.data import ImageTensors
from alexnet_lib.model import AlexNet
from alexnet_lib.train import TrainConfig, Trainer
from alexnet_lib.transforms import Augment
try:
    from alexnet_lib.small_nets import CifarNet
except ImportError:  # before the library was split up
    from alexnet_lib.model import CifarNet
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
for name, make, side, crop, extra in (
        ("alexnet", lambda: AlexNet(num_classes=10, width=0.25, input_size=67, init="kaiming"), 80, 67,
         dict(pca=(torch.tensor([0.2, 0.02, 0.004]), torch.eye(3)), scale=64.0)),
        ("cifar-fig1", lambda: CifarNet("fig1"), 32, 32, dict(pca=None))):
    images = torch.randint(0, 256, (64, 3, side, side), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,), generator=g)
    data = ImageTensors(images, labels, [str(i) for i in range(10)], "synthetic", "tiny", "train")
    augment = Augment(crop=crop, mean=images.float().mean(0), **extra)
    torch.manual_seed(0)
    config = TrainConfig(epochs=2, batch_size=16, lr=0.01, progress=False, device="cpu", schedule="constant",
                         channels_last=name == "cifar-fig1")
    trainer = Trainer(make(), data, data, augment, config)
    last = trainer.fit().epochs[-1]
    first = next(p for p in trainer.model.parameters())
    print(name, repr(last["train_loss"]), repr(last["val_top1"]), repr(float(first.detach().double().sum())))
"""


def numbers(checkout: str) -> list:
    out = subprocess.run([sys.executable, "-c", RUN, checkout], capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    old, new = numbers(argv[0]), numbers(argv[1])
    for a, b in zip(old, new):
        print(f"{'same' if a == b else 'DIFFERENT'}: {a}" + ("" if a == b else f"\n           {b}"))
    return 0 if old == new else 1


if __name__ == "__main__":
    sys.exit(main())
