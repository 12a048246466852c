"""What several test files share: tiny datasets, a tiny trainer, the book's chapter list.

Test files import from here, never from each other.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from alexnet_lib.data import ImageTensors
from alexnet_lib.small_nets import CifarNet
from alexnet_lib.train import TrainConfig, Trainer
from alexnet_lib.transforms import Augment

ROOT = Path(__file__).resolve().parent.parent


#: The claims the book tests, written out here (not read from the library's registry), with the chapter
#: that tests each and the paper's effect where the paper gives a number (REFERENCE.md): LRN
#: 13% -> 11%, two towers -1.7 top-1, overlapping pooling -0.4, PCA colour "over 1%", ten crops
#: 39.0 -> 37.5, ReLU six times faster (epochs ReLU / tanh), dropout about twice the iterations,
#: PReLU 33.82 -> 32.64.
EXPECTED_CLAIMS = {
    "relu_speedup": ("02_relu_tanh", 1 / 6),
    "two_towers": ("03_multiple_gpus", -0.017),
    "lrn_cifar": ("04_lrn", -0.02),
    "overlapping_pooling_error": ("05_overlapping_pooling", -0.004),
    "overlapping_pooling_gap": ("05_overlapping_pooling", None),
    "augmentation_crops_flips": ("06_augmentation", None),
    "pca_colour": ("06_augmentation", -0.01),
    "ten_crop": ("06_augmentation", -0.015),
    "dropout_overfitting": ("07_dropout", None),
    "dropout_iterations": ("07_dropout", 2.0),
    "tower_colour_specialisation": ("10_kernels", None),
    "fc7_neighbours": ("10_kernels", None),
    "he_vs_xavier": ("11_prelu_he", None),
    "prelu_vs_relu": ("11_prelu_he", -0.0118),
}


def chapters() -> list:
    """Every file of the table of contents, in order (without extension)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def notebooks() -> list:
    """The chapters that are notebooks."""
    return [f for f in chapters() if (ROOT / f"{f}.ipynb").exists()]


#: tags that keep a code cell's source out of the reader's sight: folded (hide-) or left out (remove-)
HIDDEN_CODE_TAGS = {"hide-input", "hide-cell", "remove-input", "remove-cell"}


def code_cells(chapter: str) -> list:
    """The code cells of a notebook chapter (a name from ``notebooks()``), in order."""
    return [c for c in json.loads((ROOT / f"{chapter}.ipynb").read_text())["cells"] if c["cell_type"] == "code"]


def shows_its_code(cell: dict) -> bool:
    """Whether a reader of the rendered book sees the cell's code without unfolding anything."""
    return not HIDDEN_CODE_TAGS & set(cell.get("metadata", {}).get("tags", []))


def make_cifar_like(root, per_class=12):
    """A two-class CIFAR-10 tree of random 32x32 PNGs under ``root``/cifar10/{train,test}."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(("cat", "dog")):
            folder = root / "cifar10" / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                arr[..., 0] = arr[..., 0] // 2 if c else arr[..., 0]
                Image.fromarray(arr).save(folder / f"{i}.png")


def cli_env(data_root, cache, **extra) -> dict:
    """The environment of a CLI run in a test: its own data root and cache, no progress bars."""
    return {**os.environ, "ALEXNET_DATA": str(data_root), "ALEXNET_CACHE": str(cache), "TQDM_DISABLE": "1", **extra}


def tiny_data(n=96, seed=0):
    """96 random 36x36 uint8 images in 10 classes, with something learnable (red halved in even classes)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 36, 36), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    images[labels % 2 == 0, 0] //= 2  # something learnable
    return ImageTensors(images, labels, [str(i) for i in range(10)], "synthetic", "tiny", "train")


def tiny_augment(data):
    return Augment(crop=32, mean=data.images.float().mean(0), pca=(torch.tensor([0.2, 0.02, 0.004]), torch.eye(3)))


def make_trainer(tmp_path, epochs, seed=0, **kw):
    """A quarter-width Figure-1 net on tiny_data, checkpointing to tmp_path/ckpt, logging to tmp_path/log.json."""
    torch.manual_seed(seed)
    data = tiny_data()
    model = CifarNet("fig1", width=0.25)
    config = TrainConfig(
        epochs=epochs,
        batch_size=16,
        lr=0.01,
        seed=seed,
        progress=False,
        device="cpu",
        checkpoint_dir=str(tmp_path / "ckpt"),
        log_path=str(tmp_path / "log.json"),
        **kw,
    )
    return Trainer(model, data, data.subset(torch.arange(32)), tiny_augment(data), config)


def close_relative(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5) -> bool:
    """``actual`` equals ``expected`` up to ``rel`` times the size of ``expected``'s largest entry.

    A tolerance relative to the tensor's scale, not to each element: summing the same numbers in
    another order (another CPU's kernels, another layout) moves every entry by a few ulps of the
    largest partial sums, so an element near zero can differ by far more than its own ulps.
    fp32 has 6e-8 relative precision; 1e-5 leaves room for sums of a few thousand terms.
    """
    scale = expected.detach().abs().max().clamp_min(torch.finfo(expected.dtype).tiny)
    return bool(((actual.detach() - expected.detach()).abs().max() <= rel * scale).item())


# ------------------------------------------------------------ the command line, run as a user would
#: a CLI run small enough for a test: the quarter-width Figure-1 net on make_cifar_like's data
TINY_RUN = ["--dataset", "cifar10", "--model", "cifar-fig1", "--width", "0.25", "--batch-size", "4", "--no-pca",
            "--schedule", "constant", "--no-progress", "--mode", "smoke"]


def cli_command(*args) -> list:
    return [sys.executable, "-m", "alexnet_lib", *map(str, args)]


def run_cli(*args, env, timeout=300, **kw) -> subprocess.CompletedProcess:
    """``python -m alexnet_lib ARGS`` to the end; its exit code is not checked."""
    return subprocess.run(cli_command(*args), env=env, capture_output=True, text=True, timeout=timeout, **kw)


def run_cli_together(commands: list, env, timeout=300) -> list:
    """Several ``python -m alexnet_lib`` commands (lists of arguments) at once (most of each is
    Python starting up), in order of the list; exit codes not checked."""
    procs = [subprocess.Popen(cli_command(*c), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    done = []
    for p, c in zip(procs, commands):
        out, err = p.communicate(timeout=timeout)
        done.append(subprocess.CompletedProcess(c, p.returncode, out, err))
    return done


def snapshot(folder) -> dict:
    """{relative path: bytes} of every file under ``folder``: to show that nothing changed."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def dead_pid() -> int:
    """The pid of a process that has ended (for leftovers of a killed writer)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def readable_error(proc, *words, code=1, max_lines=3) -> str:
    """Assert that a CLI run failed with exit ``code`` and a short message (no traceback, at most
    ``max_lines`` lines) that holds every one of ``words``; return its stderr."""
    err = proc.stderr
    assert proc.returncode == code, (proc.returncode, err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    assert len(err.strip().splitlines()) <= max_lines, err
    missing = [w for w in words if w not in err]
    assert not missing, (missing, err)
    return err


def graph_recorder() -> tuple:
    """(backend, graphs) for ``torch.compile(..., backend=backend)``: AOTAutograd's forward and
    backward graphs are recorded in ``graphs`` ("forward"/"backward": the call targets, in order)
    and then run as they are."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    graphs = {}

    def recording(kind):
        def compiler(gm, example_inputs):
            graphs[kind] = [str(node.target) for node in gm.graph.nodes if node.op == "call_function"]
            return make_boxed_func(gm.forward)
        return compiler

    return aot_autograd(fw_compiler=recording("forward"), bw_compiler=recording("backward")), graphs
