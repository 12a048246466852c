"""Files that runs and caches write, kept safe from the accidents of a shared disk.

* :class:`FolderLock`: one process at a time in a run folder. The lock is the operating
  system's (``flock``), so it goes away with its process, even after a kill; a second process
  stops at once with :class:`FolderInUseError`, which names the first one's pid;
* :func:`remove_stale_temporaries`: the temporary files of atomic writes
  (``util.atomic_write``) whose writer was killed before its rename;
* :func:`save_atomically` and :func:`write_json_safely`: ``util``'s atomic writes that remove
  their temporary file when a write fails, and say "no space left on the device"
  (:class:`NoSpaceError`) when that is why;
* :func:`save_checked` and :func:`load_checked`: tensors (and plain values beside them) saved
  with a CRC-32 of their content, checked on every load (:class:`DamagedFileError`), and
  :func:`keep_newest`, which bounds how many versions of a file a folder keeps;
* the cache of decoded images (:func:`cache_dir`): a damaged cache file is decoded again, a
  cache folder that cannot be written is a warning, old versions are deleted.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import socket
import time
import warnings
import zlib
from pathlib import Path

import torch

from .util import atomic_save, command_line, display_path, project_root, write_json_atomic

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".lock"
#: errno values that mean the disk (or a quota, or a file-size limit) has no room for the write
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class FolderInUseError(RuntimeError):
    """Another process holds the lock of a run folder."""


class NoSpaceError(OSError):
    """A write failed because the disk (or a quota, or a file-size limit) is full."""


class DamagedFileError(ValueError):
    """A file's content does not match the checksum saved with it."""


class CacheFolderError(NotADirectoryError):
    """``$ALEXNET_CACHE`` names something that cannot be a folder."""


def shown(path) -> str:
    """A path for a message: as the user gave it when relative, else ``util.display_path`` (no
    machine's absolute paths in the book's outputs)."""
    return str(path) if not Path(path).is_absolute() else display_path(path)


def temporary_path(path: Path) -> Path:
    """The temporary file ``util.atomic_write`` fills before renaming it to ``path``."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or we cannot tell: keep its file
    return True


def remove_stale_temporaries(folder, pattern: str = ".*.tmp-*", max_age_s: float = 86_400) -> list[Path]:
    """Delete the temporary files of atomic writes in ``folder`` whose writer is gone (its pid
    is not running) or that are older than ``max_age_s``; returns what was deleted."""
    folder, removed = Path(folder), []
    if not folder.is_dir():
        return removed
    now = time.time()
    for tmp in folder.glob(pattern):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit():
            continue
        try:
            fresh = now - tmp.stat().st_mtime < max_age_s
        except FileNotFoundError:
            continue
        if fresh and _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def no_space_message(path, what: str, error: OSError) -> str:
    reason = os.strerror(error.errno) if error.errno else str(error)
    return (
        f"no space left on the device while writing {what} {shown(path)} ({reason}). "
        "The partial file was removed; the earlier version of the file, if any, is intact. "
        "Free some space (or choose a folder on another disk) and try again."
    )


def _write_or_explain(path: Path, what: str, write) -> None:
    try:
        write()
    except BaseException as e:
        # A kill (KeyboardInterrupt from a test, or Ctrl-C) leaves the temporary file as a real
        # kill would; the next run removes it. Any error of the write itself removes it now.
        if isinstance(e, (OSError, RuntimeError)):
            temporary_path(path).unlink(missing_ok=True)
        cause = e if isinstance(e, OSError) else getattr(e, "__cause__", None) or getattr(e, "__context__", None)
        if isinstance(cause, OSError) and cause.errno in NO_SPACE:
            error = NoSpaceError(no_space_message(path, what, cause))
            error.errno = cause.errno
            raise error from e
        raise


def save_atomically(obj, path, what: str = "file") -> None:
    """``util.atomic_save``, cleaning up after a failed write; :class:`NoSpaceError` on a full disk."""
    path = Path(path)
    _write_or_explain(path, what, lambda: atomic_save(obj, path))


def write_json_safely(obj, path, what: str = "log") -> None:
    """``util.write_json_atomic``, cleaning up after a failed write; :class:`NoSpaceError` on a full disk."""
    path = Path(path)
    _write_or_explain(path, what, lambda: write_json_atomic(obj, path))


def checksum(*tensors: torch.Tensor, plain=()) -> str:
    """CRC-32 of the tensors' bytes (CPU tensors), in order, then of each value of ``plain`` (plain
    data: lists, dicts, strings, numbers) written as JSON: 0.07 s for CIFAR-10's 150 MB."""
    crc = 0
    for t in tensors:
        crc = zlib.crc32(t.detach().cpu().contiguous().numpy(), crc)
    for value in plain:
        crc = zlib.crc32(json.dumps(value, sort_keys=True, default=str).encode(), crc)
    return f"crc32:{crc:08x}"


def save_checked(blob: dict, path, keys: tuple, what: str = "file", plain: tuple = ()) -> None:
    """Save ``blob`` (a dict holding the tensors named in ``keys`` and the plain values named in
    ``plain``) with their checksum."""
    total = checksum(*(blob[k] for k in keys), plain=[blob[k] for k in plain])
    save_atomically({**blob, "checksum": total}, path, what)


def load_checked(path, keys: tuple, plain: tuple = ()) -> dict:
    """A dict saved by :func:`save_checked`; :class:`DamagedFileError` if its tensors or plain values
    changed since (or it carries no checksum: a file of an older format)."""
    blob = torch.load(path, weights_only=True)
    saved = blob.get("checksum") if isinstance(blob, dict) else None
    if saved is None:
        raise DamagedFileError(f"{shown(path)} carries no checksum (an older format)")
    missing = [k for k in (*keys, *plain) if k not in blob]
    if missing:
        raise DamagedFileError(f"{shown(path)} is damaged: it lacks {', '.join(missing)}")
    now = checksum(*(blob[k] for k in keys), plain=[blob[k] for k in plain])
    if now != saved:
        raise DamagedFileError(f"{shown(path)} is damaged: its content gives {now}, it was saved as {saved}")
    return blob


def keep_newest(folder, pattern: str, keep: int, newest=None) -> list[Path]:
    """Delete all but the ``keep`` newest (by modification time) files matching ``pattern``; the file
    ``newest`` (the one just written) counts as the newest whatever its time says (a clock that has not
    ticked since the last write, or files dated in the future by another machine)."""
    def age(p: Path) -> tuple:
        try:
            return p == newest, p.stat().st_mtime_ns
        except FileNotFoundError:
            return False, 0

    old = sorted(Path(folder).glob(pattern), key=age, reverse=True)[keep:]
    for p in old:
        p.unlink(missing_ok=True)
    return old


# ------------------------------------------------------------- the cache of decoded data
#: cache files kept per dataset, split, size and subset: the newest and the one before (two data
#: roots used in turn); older versions are deleted when a new one is written
CACHE_VERSIONS_KEPT = 2
#: the version of what a decoded split's cache file holds: a new version is a new key, never a "damaged" file
CACHE_FORMAT = 2
#: what a decoded split's cache file holds: tensors, and plain values that its checksum covers too
SPLIT_TENSORS, SPLIT_PLAIN = ("images", "labels"), ("classes", "info")


def cache_key(parts) -> str:
    """12 hex digits that change with any of ``parts`` (and with :data:`CACHE_FORMAT`)."""
    h = hashlib.sha1()
    for p in (CACHE_FORMAT, *parts):
        h.update(str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def cache_dir() -> Path:
    """Where decoded tensors are cached: ``$ALEXNET_CACHE`` or the project's data/cache."""
    path = Path(os.environ.get("ALEXNET_CACHE", project_root() / "data" / "cache")).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise CacheFolderError(
            f"ALEXNET_CACHE={shown(path)} is a file (or lies under one), not a folder. Point ALEXNET_CACHE "
            "at a folder (it is created if missing), or unset it to use the project's data/cache."
        ) from None
    return path


def usable_cache_dir() -> Path | None:
    """The cache folder, or None (with a warning) when it cannot be created: loading goes on without it."""
    try:
        folder = cache_dir()
    except CacheFolderError:
        raise
    except OSError as e:
        warnings.warn(f"cannot create the cache folder ({e}); decoding without a cache. Set ALEXNET_CACHE "
                      "to a writable folder to cache the decoded images.", stacklevel=3)
        return None
    try:
        remove_stale_temporaries(folder)  # the leftovers of cache writes that were killed
    except OSError:
        pass  # a read-only cache can still be read
    return folder


def read_checked_cache(path: Path | None, keys: tuple, plain: tuple = ()) -> dict | None:
    """A cache file saved by :func:`write_cache`, or None if there is none or it is damaged (a warning)."""
    if path is None or not path.exists():
        return None
    try:
        return load_checked(path, keys, plain)
    except DamagedFileError as e:
        warnings.warn(f"{e}; decoding again", stacklevel=3)
    except Exception as e:
        warnings.warn(f"cache file {shown(path)} is unreadable ({_first_line(e)}); decoding again", stacklevel=3)
    return None


def _first_line(error: Exception) -> str:
    """Why a file could not be loaded, in a few words (PyTorch's own explanations run to many lines)."""
    if isinstance(error, pickle.UnpicklingError):
        return "not a file that torch.save wrote"
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return line if len(line) <= 100 else line[:97] + "..."


def read_split_cache(path: Path | None, classes: list | None) -> dict | None:
    """A decoded split's cache file, or None (with a warning, when there is one) unless it is sound:
    its checksum holds (pixels, labels, class names and facts), it holds uint8 images (N, 3, H, W) with
    one label each among its classes, and those are ``classes`` (the data's, when known)."""
    blob = read_checked_cache(path, SPLIT_TENSORS, SPLIT_PLAIN)
    problem = blob and _split_problem(blob, classes)
    if problem:
        warnings.warn(f"cache file {shown(path)} {problem}; decoding again", stacklevel=3)
        return None
    return blob


def _split_problem(blob: dict, classes: list | None) -> str:
    """What is wrong with a cache file whose checksum holds, or ''."""
    images, labels, names, info = blob["images"], blob["labels"], blob["classes"], blob["info"]
    if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.dim() == 4
            and images.shape[1] == 3):
        return "does not hold uint8 images of shape (N, 3, H, W)"
    if not (isinstance(labels, torch.Tensor) and labels.dtype == torch.int64 and labels.shape == (len(images),)):
        return "does not hold one int64 label per image"
    if not (isinstance(names, list) and all(isinstance(c, str) for c in names)) or not isinstance(info, dict):
        return "does not hold a list of class names and a dict of facts"
    if classes is not None and names != list(classes):
        return f"names other classes ({', '.join(names[:3])}, ...) than the data's ({', '.join(classes[:3])}, ...)"
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < len(names)):
        return f"holds labels outside its {len(names)} classes"
    return ""


def write_cache(blob: dict, path: Path, keys: tuple, plain: tuple = ()) -> None:
    """Save a cache file with the checksum of its tensors ``keys`` and plain values ``plain``, and
    delete older versions of it (the same name up to its last ``-``). A cache that cannot be written
    (read-only, full) is a warning, not an error: the data were decoded, only not kept."""
    try:
        save_checked(blob, path, keys, what="the cache file", plain=plain)
    except OSError as e:
        warnings.warn(f"cannot write the cache file {shown(path)} ({e}); going on without it, so the next load "
                      "decodes again. To cache, free some space or set ALEXNET_CACHE to a writable folder.",
                      stacklevel=3)
        return
    stem = path.name.rsplit("-", 1)[0]
    keep_newest(path.parent, f"{stem}-{'?' * len(path.stem.rsplit('-', 1)[-1])}.pt", CACHE_VERSIONS_KEPT, path)


# ------------------------------------------------------------------- the folder lock
_HELD: dict[str, list] = {}  # real path of a locked folder -> [fd, count, lock file, created folder]


def _holder(lock_file: Path) -> str:
    try:
        text = lock_file.read_text().strip()
    except OSError:
        text = ""
    return text or "a process that has not yet written its pid"


class FolderLock:
    """Hold ``folder`` for this process while in a ``with`` block (re-entrant within a process).

    The folder is created if it does not exist (and removed again at the end if nothing but the
    lock was ever put in it). ``purpose`` words the error a second process gets.
    """

    def __init__(self, folder, purpose: str = "training into"):
        self.folder, self.purpose = Path(folder), purpose

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        key = os.path.realpath(self.folder)
        if key in _HELD:
            _HELD[key][1] += 1
            return
        created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        lock_file = self.folder / LOCK_NAME
        fd = self._lock(lock_file) if fcntl is not None else None
        if fd is not None:
            os.ftruncate(fd, 0)
            holder = f"pid {os.getpid()} on {socket.gethostname()}, since {time.ctime()}: {command_line()}"
            os.write(fd, f"{holder}\n".encode())
        _HELD[key] = [fd, 1, lock_file, created]

    def _lock(self, lock_file: Path) -> int:
        while True:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderInUseError(
                    f"{shown(self.folder)} is in use: another process is {self.purpose} it "
                    f"({_holder(lock_file)}). Two runs in one folder would delete each other's checkpoints. "
                    "Wait for it to finish, stop it, or choose another folder (--out)."
                ) from None
            try:  # its previous holder may have deleted the file between our open and our lock
                same = os.stat(lock_file).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)

    def release(self) -> None:
        key = os.path.realpath(self.folder)
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] > 0:
            return
        fd, _, lock_file, created = _HELD.pop(key)
        lock_file.unlink(missing_ok=True)  # while still locked: nobody else can be using it
        if fd is not None:
            os.close(fd)
        if created:
            try:
                self.folder.rmdir()  # only if empty: a run that never wrote anything leaves nothing
            except OSError:
                pass
