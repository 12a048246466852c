"""Run modes and the sizes of every named experiment.

One switch, ``ALEXNET_MODE``, picks the size of everything a chapter runs:

========  ==================================  ====================================
smoke     CI, 2 CPU cores, ≤ 60 s a chapter   every code path runs, tiny sizes
quick     a laptop CPU, ≤ 5 min a chapter     the qualitative effect, where a CPU can
full      a GPU                               the paper's sizes
========  ==================================  ====================================

Without ``ALEXNET_MODE`` the mode is ``full`` when a GPU is found and ``quick`` when not.
The sizes live here, not in the notebooks, so a chapter reads ``preset("relu_tanh")``.
"""

from __future__ import annotations

import os
import platform
import time

import torch

MODES = ("smoke", "quick", "full")


class ModeError(ValueError):
    """ALEXNET_MODE holds something other than smoke, quick or full."""


def get_mode(mode: str | None = None) -> str:
    """The run mode: the argument, else ``$ALEXNET_MODE``, else full on a GPU, quick on a CPU."""
    mode = mode or os.environ.get("ALEXNET_MODE") or ("full" if torch.cuda.is_available() else "quick")
    mode = mode.strip().lower()
    if mode not in MODES:
        raise ModeError(
            f"unknown ALEXNET_MODE={mode!r}; valid modes are {', '.join(map(repr, MODES))} "
            "(smoke: CI-sized, quick: a few minutes on a CPU, full: the paper's sizes on a GPU)."
        )
    return mode


#: Sizes of each named experiment in each mode. Seeds are run seeds; ``limit`` is a
#: class-balanced subset of the training set (None: all of it).
PRESETS: dict[str, dict[str, dict]] = {
    "dataset": {
        "smoke": {"limit": 400, "grid": 4},
        "quick": {"limit": None, "grid": 6},
        "full": {"limit": None, "grid": 6},
    },
}


def preset(name: str, mode: str | None = None) -> dict:
    """The sizes of experiment ``name`` in ``mode`` (default: :func:`get_mode`)."""
    if name not in PRESETS:
        raise KeyError(f"unknown experiment {name!r}; known experiments are {', '.join(sorted(PRESETS))}.")
    return {"mode": get_mode(mode), **PRESETS[name][get_mode(mode)]}


def progress(iterable=None, enabled: bool = True, **kwargs):
    """A tqdm.auto progress bar (a widget in JupyterLab, text in a terminal).

    Off when ``enabled`` is False or ``$TQDM_DISABLE`` is set (CI, and the runs that make
    the committed outputs, where a bar is noise).
    """
    from tqdm.auto import tqdm

    off = not enabled or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return tqdm(iterable, disable=off, **kwargs)


def device_description(device: torch.device | str | None = None) -> str:
    device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class Chapter:
    """The first and last output of every chapter: mode, device, data; then wall time.

    >>> chapter = Chapter("1. The dataset", data="cifar10, imagenette")   # prints the header
    >>> chapter.done()                                                   # prints the wall time
    """

    def __init__(self, title: str, mode: str | None = None, data: str = "", seed: int | None = None):
        self.title, self.mode, self.start = title, get_mode(mode), time.perf_counter()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        from .data import data_roots, display_path

        roots = ", ".join(f"{label}={display_path(path)}" for label, path in data_roots())
        print(f"{title}\nmode: {self.mode} | device: {device_description(self.device)} | torch {torch.__version__}")
        print(f"data: {data or '-'} | searched: {roots}" + (f" | seed: {seed}" if seed is not None else ""))

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def done(self) -> None:
        print(f"wall time: {self.elapsed():.1f} s in {self.mode} mode on {device_description(self.device)}")
