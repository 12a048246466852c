"""Plain helpers every other module may use; this module imports none of them.

* where the project is, where run folders live (``runs_root``), and how a path is shown to a
  reader (``display_path``);
* one way to write a file so that a kill never leaves half of it (``atomic_write``);
* option checks with errors that list the valid values (``check_choice``);
* progress bars (``progress``);
* the run mode, smoke, quick or full (``get_mode``);
* the device: which one, and how to describe it (``default_device``, ``device_description``);
* provenance for logs: the git commit and the command line (``git_commit``, ``command_line``);
* the CPU allocator setting the trainer uses (``keep_freed_memory``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path

import torch
from tqdm import TqdmExperimentalWarning

# tqdm.auto's notice that it picked its notebook bar is noise in a chapter. tqdm silences it around
# its own import, but that filter is not thread-safe and let the notice through in a kernel, so the
# library silences it for the whole process, from its first import.
warnings.filterwarnings("ignore", category=TqdmExperimentalWarning)

#: The folder that holds alexnet_lib/, book/ and data/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The project folder, read at call time (tests point it elsewhere)."""
    return PROJECT_ROOT


def results_dir() -> Path:
    """Where recorded results live: ``$ALEXNET_RESULTS``, else the project's ``book/results``."""
    env = os.environ.get("ALEXNET_RESULTS")
    return Path(env).expanduser() if env else project_root() / "book" / "results"


def runs_root() -> Path:
    """Where long runs keep their folders (checkpoints), outside the project so that a fresh
    checkout finds them again: ``$ALEXNET_RUNS``, else ``$XDG_CACHE_HOME/alexnet_lib/runs``,
    else ``~/.cache/alexnet_lib/runs``."""
    env = os.environ.get("ALEXNET_RUNS")
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()
    if not cache.is_absolute():  # the XDG rule: a relative setting is ignored
        cache = Path.home() / ".cache"
    return cache / "alexnet_lib" / "runs"


def display_path(path) -> str:
    """A path as shown to readers: relative to the project when that is shorter, else
    relative to the home directory (``~/...``), so committed outputs never carry one
    machine's absolute paths."""
    path = Path(path)
    resolved = path.resolve()
    try:
        rel = os.path.relpath(resolved, project_root())
    except ValueError:
        return str(path)
    if len(rel) <= len(str(path)) or not path.is_absolute():
        return rel
    home = Path.home().resolve()
    return str(Path("~") / resolved.relative_to(home)) if resolved.is_relative_to(home) else str(path)


def atomic_write(path, write) -> None:
    """Write a file so that it is either the old one or the whole new one, never a part:
    ``write(fh)`` fills a temporary binary file in the same folder, which is synced to
    disk and then renamed over ``path``. A write that fails (a full disk, an error in
    ``write``) removes its temporary file and leaves ``path`` as it was; one that is killed
    leaves it, for the next run to remove (``storage``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save(obj, path) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def write_json_atomic(obj, path) -> None:
    """JSON (indent 1) through :func:`atomic_write`."""
    atomic_write(path, lambda fh: fh.write(json.dumps(obj, indent=1, default=str).encode()))


def check_choice(name: str, value, choices) -> None:
    """Raise a ValueError that lists the valid values of an option."""
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name}={value!r}; valid values are {valid}.")


def progress(iterable=None, enabled: bool = True, **kwargs):
    """A tqdm.auto progress bar (a widget in JupyterLab, text in a terminal).

    Off when ``enabled`` is False or ``$TQDM_DISABLE`` is set (CI, and the runs that make
    the committed outputs, where a bar is noise).
    """
    from tqdm.auto import tqdm  # imported here: tqdm.auto looks for Jupyter on import

    off = not enabled or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return tqdm(iterable, disable=off, **kwargs)


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


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_description(device: torch.device | str | None = None) -> str:
    """'cuda (NVIDIA H100 80GB HBM3)' or 'cpu (x86_64, 2 threads)'."""
    device = torch.device(device) if device else default_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def git_commit() -> str:
    """The project's commit, for logs: ``git rev-parse`` or, in a copy of the tree without its
    git folder (a tree sent to another machine), ``$ALEXNET_COMMIT``."""
    if os.environ.get("ALEXNET_COMMIT"):
        return os.environ["ALEXNET_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=project_root(),
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


def command_line() -> str:
    """How this process was started, without the machine's paths: 'python -m alexnet_lib ...'."""
    argv = sys.argv or [""]
    argv = argv[:1] + [display_path(a) if os.path.isabs(a) else a for a in argv[1:]]
    if Path(argv[0]).name == "__main__.py" and Path(argv[0]).parent.name == "alexnet_lib":
        return "python -m alexnet_lib " + " ".join(argv[1:])
    if "ipykernel" in argv[0]:
        return "(a notebook)"
    return " ".join([Path(argv[0]).name, *argv[1:]])


_FREED_MEMORY_KEPT = False


def keep_freed_memory() -> bool:
    """Have the C library keep freed memory for reuse instead of handing it back to the OS.

    A train step on a CPU allocates and frees activation buffers of tens of MB (conv1's maps
    of a batch of 32 are 37 MB). glibc's malloc serves every block above 32 MB with a fresh
    ``mmap`` and returns it on free, so each new buffer costs a page fault per 4 KB page on
    first touch: at AlexNet's sizes, batch 32, that was 30% of a step (bench/bench_train.py
    with and without --glibc-malloc-default measures it). With ``mmap`` switched off and the
    heap never trimmed below 1 GB, freed buffers are reused. Process-wide and permanent;
    glibc (Linux) only. Returns whether it is in effect.
    """
    global _FREED_MEMORY_KEPT
    if _FREED_MEMORY_KEPT:
        return True
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_mmap_max, m_trim_threshold = -4, -1  # from glibc's malloc.h
        _FREED_MEMORY_KEPT = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError):  # not glibc (musl, another libc)
        return False
    return _FREED_MEMORY_KEPT
