"""What a dataset is, wherever it lies: :func:`data_identity`.

The same data copied to another folder is the same data, and one image changed is other data.
So the identity holds no path and no file time (those key the cache of decoded images, see
``storage.cache_key``), only what the images and labels are: how many, the class names (hashed),
the image shape, and a SHA-256 of every decoded image and every label in full. For CIFAR-10's
50,000 training images (150 MB) that takes about 0.1 s; the identity is kept with the tensors
until they change (PyTorch counts every in-place change in a tensor's version), so asking again
costs nothing.

A dataset read as a stream (ILSVRC-2012, :class:`images.ImageFolderStream`) is too large to
decode for this: its identity hashes its files' paths within the split folder, and their labels.
"""

from __future__ import annotations

import hashlib
import os
import weakref

import torch
from torch.utils.weak import WeakIdKeyDictionary

from .images import ImageFolderStream

#: images tensor -> (labels tensor (weakly), its version, images' version, classes, items, identity)
_KEPT = WeakIdKeyDictionary()


def class_names_hash(classes) -> str:
    """12 hex digits of SHA-1 over the class names in order (the form checkpoints have always stored)."""
    return hashlib.sha1("\0".join(str(c) for c in classes).encode()).hexdigest()[:12]


def tensors_hash(*tensors: torch.Tensor) -> str:
    """``sha256:`` and the digest of each tensor's dtype, shape and bytes in order (CPU memory is hashed
    where it lies; a tensor elsewhere, or not contiguous, is copied first)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{t.dtype} {tuple(t.shape)}\0".encode())
        h.update(t.view(torch.uint8).numpy())
    return f"sha256:{h.hexdigest()}"


def data_identity(data) -> dict | None:
    """What identifies ``data`` wherever it lies, as plain JSON: ``items`` (its length), ``classes``
    (their number), ``class_names`` (their hash), and, when it holds an ``images`` tensor, ``shape``
    (one image's) and ``content`` (a SHA-256 of every image and label, labels as int64); for an
    :class:`ImageFolderStream`, ``content`` hashes its files' paths within the split folder and their
    labels. ``None`` for ``None``. Two identities are the same data exactly when they are equal."""
    if data is None:
        return None
    classes = [str(c) for c in getattr(data, "classes", None) or []]
    images, labels = getattr(data, "images", None), getattr(data, "labels", None)
    labels = labels if isinstance(labels, torch.Tensor) else None
    ident = {"items": len(data), "classes": len(classes), "class_names": class_names_hash(classes)}
    if isinstance(images, torch.Tensor):
        kept = _KEPT.get(images)
        stamp = (labels._version if labels is not None else None, images._version, classes, len(data))
        if kept is not None and kept[0]() is labels and kept[1:5] == stamp:
            return {**kept[5], "shape": list(kept[5]["shape"])}
        ident.update(shape=list(images.shape[1:]),
                     content=tensors_hash(images, *([labels.to(torch.int64)] if labels is not None else [])))
        _KEPT[images] = ((weakref.ref(labels) if labels is not None else lambda: None), *stamp, ident)
        return {**ident, "shape": list(ident["shape"])}
    if isinstance(data, ImageFolderStream):
        h, skip = hashlib.sha256(), len(str(data.root)) + 1
        for path, label in data.items:
            h.update(f"{str(path)[skip:].replace(os.sep, '/')}\0{label}\0".encode())
        ident["content"] = f"files-sha256:{h.hexdigest()}"
    return ident
