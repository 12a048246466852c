"""`make data` over a real HTTP server on 127.0.0.1: tiny archives in the real formats, served
through the one setting ($ALEXNET_MIRROR), built into the book's layouts and checked image by image."""

import csv
import hashlib
import http.server
import io
import pickle
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from alexnet_lib.download import IMAGENETTE_CLASSES

from .helpers import cli_env

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _tar(path, members: dict) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def _jpeg(rng, w, h) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_mirror(folder) -> dict:
    """A CIFAR-10 archive of 3 images per batch and an Imagenette archive of 2 photos per class
    and split, in the real formats, with their MD5SUMS. Returns what they hold."""
    rng = np.random.default_rng(0)
    batches, held = {}, {"cifar": {}, "nette": {}}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, 3)]
        batches[name] = pickle.dumps({"batch_label": name, "data": data, "labels": labels,
                                      "filenames": [f"{name}_{i}.png" for i in range(3)]})
        held["cifar"][name] = (data, labels)
    batches["batches.meta"] = pickle.dumps({"label_names": CIFAR_CLASSES, "num_vis": 3072})
    _tar(folder / "cifar-10-python.tar.gz", {f"cifar-10-batches-py/{k}": v for k, v in batches.items()})
    photos = {}
    for split in ("train", "val"):
        for wnid in IMAGENETTE_CLASSES:
            for i in range(2):
                path = f"imagenette2/{split}/{wnid}/{wnid}_{split}{i}.JPEG"
                photos[path] = _jpeg(rng, 60 + 7 * i, 40 + 5 * i)  # full-size photos differ in size
    _tar(folder / "imagenette2.tgz", photos)
    held["nette"] = photos
    sums = {name: hashlib.md5(blob).hexdigest() for name, blob in batches.items()}
    for archive in ("cifar-10-python.tar.gz", "imagenette2.tgz"):
        sums[archive] = hashlib.md5((folder / archive).read_bytes()).hexdigest()
    (folder / "MD5SUMS").write_text("".join(f"{md5}  {name}\n" for name, md5 in sums.items()))
    return held


@pytest.fixture
def mirror(tmp_path):
    """The tiny archives, served on 127.0.0.1 for the test's duration; yields (url, contents, request log)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    held = make_mirror(folder)
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, fmt, *args):
            requests.append(f"{self.command} {self.path}")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", held, requests
    server.shutdown()
    server.server_close()


def make_data(root, env, *extra):
    return subprocess.run([sys.executable, "-m", "alexnet_lib.download", "--root", str(root), *extra],
                          env=env, capture_output=True, text=True, timeout=300)


def test_make_data_builds_the_layouts_image_by_image(mirror, tmp_path):
    url, held, _ = mirror
    root = tmp_path / "root"
    env = cli_env(root, tmp_path / "cache", ALEXNET_MIRROR=url)
    proc = make_data(root, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # CIFAR-10 as the book reads it: every image and label, in order
    from alexnet_lib.data import _read_cifar_pickle

    for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        images, labels, classes = _read_cifar_pickle(root / "cifar10" / "cifar-10-batches-py", split)
        expected = np.concatenate([held["cifar"][n][0] for n in names]).reshape(-1, 3, 32, 32)
        assert torch.equal(images, torch.from_numpy(expected)) and classes == CIFAR_CLASSES
        assert labels.tolist() == [lab for n in names for lab in held["cifar"][n][1]]
    # Imagenette: every photo, byte for byte, in its class folder, and the class table
    for path, blob in held["nette"].items():
        assert (root / path).read_bytes() == blob, path
    table = (root / "imagenette2" / "wnid_to_name.txt").read_text().splitlines()[1:]
    assert [line.split("\t") for line in table] == [[w, str(i), n] for w, (i, n) in sorted(IMAGENETTE_CLASSES.items())]
    # the sample photos: the first validation photo of each class, and their labels
    with open(root / "imagenet-samples" / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["wnid"] for r in rows] == sorted(IMAGENETTE_CLASSES)
    for r in rows:
        source = held["nette"][f"imagenette2/val/{r['wnid']}/{r['wnid']}_val0.JPEG"]
        assert (root / "imagenet-samples" / r["file"]).read_bytes() == source
        assert int(r["ilsvrc2012_index"]) == IMAGENETTE_CLASSES[r["wnid"]][0]
        assert (r["width"], r["height"]) == ("60", "40")
    # and the chapters' loader finds all three there, in quick mode (not the sample)
    code = ("from alexnet_lib import data as D; "
            "print([len(D.load_dataset(n, s, size=s2, progress=False)) for n, s, s2 in "
            "(('cifar10', 'train', None), ('imagenette', 'val', 64), ('imagenet-samples', 'all', 64))])")
    out = subprocess.run([sys.executable, "-c", code], env={**env, "ALEXNET_MODE": "quick"}, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "[15, 20, 10]", out.stderr[-2000:]


def test_an_interrupted_run_is_finished_by_running_it_again(mirror, tmp_path):
    url, held, requests = mirror
    root = tmp_path / "root"
    env = cli_env(root, tmp_path / "cache", ALEXNET_MIRROR=url)
    assert make_data(root, env, "--only", "imagenette").returncode == 0
    # as if killed while extracting: the folder is there, half of it, and not marked verified
    (root / "imagenette2" / ".verified").unlink()
    victim = next(iter(held["nette"]))
    (root / victim).unlink()
    fetched = requests.count("GET /imagenette2.tgz")
    proc = make_data(root, env, "--only", "imagenette")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (root / victim).read_bytes() == held["nette"][victim]
    assert requests.count("GET /imagenette2.tgz") == fetched, "the verified archive was downloaded again"


def test_offline_it_fails_at_once_and_says_why(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "root"
    env = cli_env(root, tmp_path / "cache", ALEXNET_MIRROR=f"http://127.0.0.1:{port}/")
    t = time.perf_counter()
    proc = make_data(root, env, "--only", "cifar10")
    assert proc.returncode == 1 and time.perf_counter() - t < 60
    assert "cannot reach" in proc.stderr and "needs the internet" in proc.stderr and "ALEXNET_DATA" in proc.stderr
    assert "Traceback" not in proc.stderr
