"""The runs recorded at the paper's scale: what each one is, which claim it measures, and their
logs read back, arm by arm and seed by seed.

``tools/full_scale.py`` runs them (several at once, each resumable) and writes their logs to
``book/results/full_scale/<arm>_s<seed>.json``; the chapters read them with :func:`arm_logs`
and :func:`progress_of`, and judge a finished comparison with :func:`judge_full_scale`.

Two groups: ``cifar`` (cuda-convnet's LRN pair of §3.3 and the pooling pair of §3.4 on all of
CIFAR-10), which a CPU can train over a few sittings, and ``imagenette`` (the full-width net,
90 epochs, one change per arm), which needs a GPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from .checkpoint import History
from .claims import judge
from .experiments import recorded_logs
from .stats import Regime
from .util import results_dir

FOLDER = "full_scale"
SEEDS = (0, 1, 2)

# cuda-convnet's layers-conv-local-13pct / -11pct pair (§3.3): 24x24 random crops of the 32x32
# images with flips, pooling windows kept whole at the edge as cuda-convnet does
LRN_PAIR = ["--dataset", "cifar10", "--model", "cifar-lrn-pair", "--crop", "24", "--pool-rounding", "ceil",
            "--no-pca", "--lr", "0.0003", "--weight-decay", "0.0005", "--schedule", "step", "--epochs", "60",
            "--milestones", "40", "52"]
# the pooling pair of §3.4 as chapter 5 trains it (no augmentation, no weight decay), on all of CIFAR-10
POOLING_PAIR = ["--dataset", "cifar10", "--model", "cifar-fig1", "--pool-rounding", "ceil", "--no-pca", "--no-flip",
                "--lr", "0.001", "--weight-decay", "0", "--schedule", "constant", "--epochs", "60"]
# the recipe of chapter 8's recorded 90-epoch run (He init on unit-variance inputs, lr/10 after
# 4 epochs without progress); each arm makes one change
IMAGENETTE = ["--dataset", "imagenette", "--model", "alexnet", "--epochs", "90", "--init", "kaiming", "--scale", "64",
              "--patience", "4"]

#: every arm: (group, command-line options without --seed); its runs are <arm>_s<seed>
ARMS = {
    "lrn_cifar_without": ("cifar", LRN_PAIR + ["--no-lrn"]),
    "lrn_cifar_with": ("cifar", LRN_PAIR),
    "pool_cifar_nonoverlapping": ("cifar", POOLING_PAIR + ["--pooling", "non-overlapping"]),
    "pool_cifar_overlapping": ("cifar", POOLING_PAIR),
    "alexnet": ("imagenette", IMAGENETTE),
    "one_tower": ("imagenette", IMAGENETTE + ["--towers", "1"]),
    "nonoverlapping": ("imagenette", IMAGENETTE + ["--pooling", "non-overlapping"]),
    "no_crops_flips": ("imagenette", IMAGENETTE + ["--no-random-crop", "--no-flip"]),
    "no_pca": ("imagenette", IMAGENETTE + ["--no-pca"]),
    "no_dropout": ("imagenette", IMAGENETTE + ["--dropout", "0"]),
    # §5's own recipe: N(0, 0.01) weights, biases of 1, raw pixels; one seed (does it leave chance?)
    "paper_init": ("imagenette", ["--dataset", "imagenette", "--model", "alexnet", "--epochs", "90",
                                  "--init", "paper"]),
}
SEEDS_OF = {"paper_init": (0,)}

#: how far the Imagenette runs are from the paper's: its net and recipe, not its data
IMAGENETTE_REGIME = Regime(False, "the paper's full-width net and 90-epoch recipe, but on Imagenette (10 classes, "
                                  "3,000 training images), not ILSVRC (1000 classes, 1.2 million): only the direction "
                                  "of the effect carries over")


@dataclass(frozen=True)
class FullScale:
    """A claim measured at the paper's scale: the arm without the paper's choice against the arm
    with it, paired by seed, on the final validation (test) top-1 error."""

    claim: str  # the key of the chapter's claim (book/results/claims/<claim>.json)
    baseline: str
    variant: str
    paper_says: str = "lower"
    paper_value: float | None = None


COMPARISONS = {
    "lrn_cifar": FullScale("lrn_cifar", "lrn_cifar_without", "lrn_cifar_with", paper_value=-0.02),
    "overlapping_pooling_cifar": FullScale("overlapping_pooling_error", "pool_cifar_nonoverlapping",
                                           "pool_cifar_overlapping", paper_value=-0.004),
    "two_towers": FullScale("two_towers", "one_tower", "alexnet", paper_value=-0.017),
    "overlapping_pooling_imagenette": FullScale("overlapping_pooling_error", "nonoverlapping", "alexnet",
                                                paper_value=-0.004),
    "augmentation_crops_flips": FullScale("augmentation_crops_flips", "no_crops_flips", "alexnet"),
    "pca_colour": FullScale("pca_colour", "no_pca", "alexnet", paper_value=-0.01),
    "dropout_overfitting": FullScale("dropout_overfitting", "no_dropout", "alexnet"),
}


def run_names() -> list:
    """Every run, seed 0 of every arm first, so a call stopped early leaves whole pairs."""
    seeds = sorted({s for arm in ARMS for s in SEEDS_OF.get(arm, SEEDS)})
    return [f"{arm}_s{seed}" for seed in seeds for arm in ARMS if seed in SEEDS_OF.get(arm, SEEDS)]


def arm_of(run: str) -> str:
    return run.rsplit("_s", 1)[0]


def planned_epochs(arm: str) -> int:
    argv = ARMS[arm][1]
    return int(argv[argv.index("--epochs") + 1])


def arm_logs(arm: str) -> dict:
    """{seed: History} of the arm's recorded runs (finished or not)."""
    if arm not in ARMS:
        raise KeyError(f"no arm named {arm!r}; the arms are {', '.join(ARMS)}")
    return {h.meta["seed"]: h for _, h in recorded_logs(FOLDER, f"{arm}_s[0-9]*.json")}


def ten_crop_results(arm: str) -> dict:
    """{seed: evaluation} of the arm's finished runs, evaluated with centre and ten crops."""
    folder = results_dir() / FOLDER
    return {int(p.name.split("_s")[-1].split(".")[0]): json.loads(p.read_text())
            for p in sorted(folder.glob(f"{arm}_s[0-9]*.eval.json"))}


def device_of(h: History) -> str:
    device = h.meta.get("device", "?")
    threads = h.meta.get("cpu_threads")
    return f"{device} ({threads} thread{'s' * (threads != 1)})" if device.startswith("cpu") and threads else device


def progress_of(comparison: FullScale) -> dict:
    """How far a comparison's runs have got: per arm, {seed: epochs logged}; the planned
    epochs; the seeds finished in both arms; the devices; the hours of training so far."""
    arms = {a: arm_logs(a) for a in (comparison.baseline, comparison.variant)}
    planned = planned_epochs(comparison.baseline)
    finished = sorted(set.intersection(*({s for s, h in logs.items() if len(h.epochs) >= planned}
                                          for logs in arms.values())))
    histories = [h for logs in arms.values() for h in logs.values()]
    return {
        "epochs": {a: {s: len(h.epochs) for s, h in sorted(logs.items())} for a, logs in arms.items()},
        "planned": planned,
        "finished_pairs": finished,
        "devices": sorted({device_of(h) for h in histories}),
        "train_hours": sum(e.get("train_seconds", 0) + e.get("val_seconds", 0) for h in histories
                           for e in h.epochs) / 3600,
    }


def runs_rows(comparison: FullScale, labels: tuple = ("baseline", "variant")) -> list:
    """One row per recorded run of the comparison's two arms: how far it got, its test error
    now, its training error in the last epoch, hours, device and commit; for a table."""
    rows, planned = [], planned_epochs(comparison.baseline)
    for label, arm in zip(labels, (comparison.baseline, comparison.variant)):
        for seed, h in sorted(arm_logs(arm).items()):
            last = h.epochs[-1] if h.epochs else {}
            rows.append({"net": label, "seed": seed, "epochs": f"{len(h.epochs)} of {planned}",
                         "test error now": f"{100 * last['val_top1']:.1f}%" if last else "",
                         "training error (last epoch)": f"{100 * last['train_top1']:.1f}%" if last else "",
                         "hours": f"{sum(e['train_seconds'] + e.get('val_seconds', 0) for e in h.epochs) / 3600:.1f}",
                         "device": device_of(h), "commit": h.meta.get("commit", "?")})
    return rows


def final_errors(arm: str, seeds, key: str = "val_top1") -> list:
    logs = arm_logs(arm)
    return [logs[s].epochs[-1][key] for s in seeds]


def judge_full_scale(name: str, regime: Regime | None = None):
    """The comparison's verdict on its finished seed pairs (None while fewer than two are
    finished): the final test top-1 error, variant minus baseline, paired by seed, judged as the
    claim it measures (``claims.REGISTRY``) and recorded as ``<name>_full``. ``regime``: how far
    the runs are from the paper's (default: the claim's)."""
    c = COMPARISONS[name]
    p = progress_of(c)
    seeds = p["finished_pairs"]
    if len(seeds) < 2:
        return None
    scale = (f"the paper's scale: {len(seeds)} seeds per arm, {p['planned']} epochs, on "
             + ", ".join(p["devices"]))
    claim = judge(c.claim, final_errors(c.baseline, seeds), final_errors(c.variant, seeds), scale=scale, regime=regime)
    return replace(claim, key=f"{name}_full", measures=c.claim, source="paper scale", baseline_label=c.baseline,
                   variant_label=c.variant, metric="final test top-1 error (fraction), paired by seed")


NEEDS_GPU = "needs a GPU (`tools/full_scale.py --group imagenette`); not recorded yet, for want of one"
#: the claims without a comparison of their own above, and where their full-scale measurement is
ELSEWHERE = {
    "relu_speedup": "measured at the paper's scale already: all of CIFAR-10, 5 seeds per net, on an H100 "
                    "(chapter 2's recorded runs)",
    "ten_crop": "the ten-crop evaluations of the alexnet_s* runs; " + NEEDS_GPU,
    "tower_colour_specialisation": "the conv1 kernels of the alexnet_s* runs; " + NEEDS_GPU,
    "dropout_iterations": "the epochs to converge of the no_dropout_s* and alexnet_s* runs; " + NEEDS_GPU,
    "fc7_neighbours": "a full-width net trained 90 epochs: the alexnet_s* runs; " + NEEDS_GPU,
    "he_vs_xavier": "He et al.'s 22- and 30-layer nets on ImageNet-1k take GPU-weeks, beyond this book's budget; "
                    "chapter 11 measures deep plain nets on CIFAR-10 instead",
    "prelu_vs_relu": "He et al.'s 14-layer ImageNet-1k model takes GPU-weeks, beyond this book's budget",
    "overlapping_pooling_gap": "the final train and test errors of the pooling runs above",
}


def describe_progress(comparison: FullScale) -> str:
    p = progress_of(comparison)
    group = ARMS[comparison.baseline][0]
    if not any(p["epochs"].values()):
        return "not started" + ("; " + NEEDS_GPU if group == "imagenette" else "")
    per_arm = "; ".join(f"{arm}: " + ", ".join(f"seed {s} {e}/{p['planned']}" for s, e in seeds.items())
                        for arm, seeds in p["epochs"].items())
    return (f"{len(p['finished_pairs'])} of {len(SEEDS)} seed pairs finished ({per_arm} epochs), "
            f"{p['train_hours']:.1f} h of training on {', '.join(p['devices'])}")


def status_rows(claims: dict) -> list:
    """One row per claim of chapter 9: what measures it at the paper's scale, and how far that got
    (or why nothing can here). ``claims``: key -> Claim, as ``experiments.load_claims()`` gives."""
    rows = []
    for key, claim in claims.items():
        if key.endswith("_full"):
            continue
        mine = [(name, c) for name, c in COMPARISONS.items() if c.claim == key]
        for name, c in mine:
            full = claims.get(f"{name}_full")
            rows.append({"claim": claim.claim, "at the paper's scale": f"{c.variant} against {c.baseline}",
                         "so far": describe_progress(c) + (f"; verdict: {full.verdict}" if full else "")})
        if not mine:
            rows.append({"claim": claim.claim, "at the paper's scale": "",
                         "so far": ELSEWHERE.get(key, "no full-scale design yet")})
    return rows
