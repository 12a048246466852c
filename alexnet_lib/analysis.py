"""The numbers behind the book's verdicts and pictures, without any plotting.

* over seeds: :func:`spread` and :func:`format_spread` (verdicts on two sets of runs are
  ``stats.compare``'s);
* along a run: :func:`epochs_to_reach` and :func:`epochs_to_levels` (how fast each net
  gets to a training error or loss), :func:`is_flat` and :func:`comparison_epochs` (where to
  compare nets that regularise differently: converged, else at matched training error);
* of learned weights and features (§6.1): :func:`kernel_chroma` (how colour-specific a
  conv1 kernel is) and :func:`nearest_neighbours` (Figure 4's fc7 neighbours).
"""

from __future__ import annotations

import math

import torch


# ----------------------------------------------------------------------- over seeds
def spread(values) -> dict:
    """Mean, sample standard deviation, min, max and count of a list of numbers."""
    v = [float(x) for x in values]
    n = len(v)
    mean = sum(v) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else float("nan")
    return {"mean": mean, "std": std, "min": min(v), "max": max(v), "n": n}


def format_spread(values, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    """'12.3 ± 0.4 (11.9–12.8, n=3)' for a list of per-seed values."""
    s = spread([x * scale for x in values])
    return (
        f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}{unit} "
        f"({s['min']:.{digits}f}–{s['max']:.{digits}f}, n={s['n']})"
    )


# ------------------------------------------------------------------------ along a run
def epochs_to_reach(errors, target: float) -> float:
    """The first epoch (1-based) whose error is at or below ``target``; inf if never."""
    for i, e in enumerate(errors):
        if e is not None and e <= target:
            return i + 1
    return math.inf


def epochs_to_levels(curves: dict, levels) -> tuple[list, dict]:
    """Compare runs at every level they all reached: errors or losses, lower is better.

    ``curves`` maps a label to its runs' per-epoch values, e.g. ``{"relu": [[...], [...]]}``.
    A level is kept if every run gets to it, and no run is already there after its first
    epoch (there the epoch count says nothing). Returns the kept levels, in the order given,
    and ``{level: {label: [epochs to reach it, one per run]}}``.
    """
    runs = [c for cs in curves.values() for c in cs]
    if not runs:
        return [], {}
    first = min(c[0] for c in runs)
    kept = [t for t in levels if t < first and all(not math.isinf(epochs_to_reach(c, t)) for c in runs)]
    return kept, {t: {label: [epochs_to_reach(c, t) for c in cs] for label, cs in curves.items()} for t in kept}


#: the training errors :func:`comparison_epochs` tries to match, 90% down to 5%
MATCH_LEVELS = tuple(k / 100 for k in range(90, 0, -5))


def is_flat(loss, last: int = 5, within: float = 0.02) -> bool:
    """Converged: over its last ``last`` epochs the loss fell by less than ``within`` of itself."""
    loss = list(loss)
    return len(loss) > last and loss[-last - 1] - min(loss[-last:]) < within * loss[-last - 1]


def comparison_epochs(errors: dict, losses: dict, levels=MATCH_LEVELS) -> tuple[dict, str, float | None]:
    """Where to compare nets that fit their training set at different speeds (a regulariser
    against none), fixed before the runs: at the end if every run's training loss is flat
    (:func:`is_flat`); else at the lowest training error of ``levels`` that every run reached,
    each run at the first epoch it got there; else at the end, saying so.

    ``errors`` and ``losses`` map a label to its runs' per-epoch training errors and losses.
    Returns ``{label: [epoch (1-based), one per run]}``, the words that say which, and the
    matched level (None unless matched)."""
    ends = {label: [len(run) for run in runs] for label, runs in errors.items()}
    if all(is_flat(run) for runs in losses.values() for run in runs):
        return ends, "after both nets converged (training loss flat)", None
    kept, at = epochs_to_levels(errors, levels)
    if not kept:
        return ends, "at the end of training (no level every run reached)", None
    level = kept[-1]
    return at[level], ("at matched training error (the first epoch each net's training error fell to "
                       f"{level:.0%})"), level


def matched_readings(runs: dict, train: str, test: str, loss: str) -> tuple[dict, str, float | None]:
    """Each arm's runs read at the epochs of :func:`comparison_epochs` (the same rule for every
    chapter that compares a regulariser against none). ``runs`` maps an arm to its runs (each
    with ``column(key)``, one value per epoch); ``train``, ``test`` and ``loss`` name the columns
    of the training error, the held-out error and the training loss.

    Returns ``{arm: {"epoch": [...], train: [...], test: [...], "gap": [test - train]}}``, one
    value per run, the words that say where the runs are compared, and the matched level."""
    epochs, when, level = comparison_epochs({a: [r.column(train) for r in rs] for a, rs in runs.items()},
                                            {a: [r.column(loss) for r in rs] for a, rs in runs.items()})
    rows = {}
    for arm, rs in runs.items():
        row = {"epoch": epochs[arm]}
        for key in (train, test):
            row[key] = [r.column(key)[e - 1] for r, e in zip(rs, epochs[arm])]
        row["gap"] = [v - t for v, t in zip(row[test], row[train])]
        rows[arm] = row
    return rows, when, level


# ----------------------------------------------------- learned weights and features (§6.1)
def kernel_chroma(weight: torch.Tensor) -> torch.Tensor:
    """How colour-specific each kernel is: the share of its norm that is colour, not grey.

    ``weight`` is (K, 3, h, w), e.g. conv1's. At every pixel a kernel's grey part is the mean
    of its R, G and B weights (what it does to brightness); the rest sums to zero over R, G, B
    and is its colour part. The two parts are orthogonal, so (grey share)² + chroma² = 1, with

        chroma = |w − grey| / |w|      (norms over all 3·h·w weights of the kernel).

    0: a colour-agnostic kernel (equal R, G, B weights everywhere). 1: a pure opponent kernel
    (R, G, B weights summing to zero everywhere, e.g. red minus green). Independent random
    weights give about sqrt(2/3) ≈ 0.82. Returns a (K,) float tensor.
    """
    if weight.dim() != 4 or weight.shape[1] != 3:
        raise ValueError(f"kernel_chroma expects RGB kernels of shape (K, 3, h, w), got {tuple(weight.shape)}")
    w = weight.detach().float().cpu().flatten(2)  # (K, 3, h*w)
    colour = w - w.mean(dim=1, keepdim=True)
    return colour.flatten(1).norm(dim=1) / w.flatten(1).norm(dim=1).clamp_min(1e-12)


def nearest_neighbours(queries: torch.Tensor, keys: torch.Tensor, k: int = 5, chunk: int = 256):
    """The k keys nearest to each query by Euclidean distance, nearest first.

    ``queries`` (Q, ...) and ``keys`` (N, ...) are flattened to vectors; any dtype (uint8
    pixels are converted a chunk of keys at a time, so large pixel sets fit in memory).
    Returns (distances, indices), both (Q, k).
    """
    q = queries.flatten(1).double()  # double: pixel distances are sums of ~10^5 squares
    best_d = torch.full((len(q), 0), float("inf"), dtype=torch.float64)
    best_i = torch.zeros((len(q), 0), dtype=torch.int64)
    for start in range(0, len(keys), chunk):
        block = keys[start : start + chunk].flatten(1).double()
        d = torch.cdist(q, block)
        d, i = (
            torch.cat([best_d, d], 1),
            torch.cat([best_i, torch.arange(start, start + len(block)).expand(len(q), -1)], 1),
        )
        order = d.argsort(dim=1, stable=True)[:, :k]
        best_d, best_i = d.gather(1, order), i.gather(1, order)
    return best_d.float(), best_i
