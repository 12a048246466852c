"""The runs recorded at the paper's scale: what each one is, which claim it measures, and their
logs read back, arm by arm and seed by seed.

``tools/full_scale.py`` runs them (several at once, each resumable) and writes their logs to
``book/results/full_scale/<arm>_s<seed>.json``; the chapters read them with :func:`arm_logs`
and :func:`progress_of`, and judge a finished comparison with :func:`judge_full_scale`.

A log counts for its run only when its provenance is the run's (:class:`Provenance`): started by
the arm's own options and ``--seed``, in full mode, on all the images. A log made in smoke mode,
with ``--limit`` (as ``tools/full_scale.py --tiny`` makes them), by another definition of the arm,
a log whose meta does not say (provenance unknown) and a damaged file are never counted: they
are listed, each with why (:func:`not_counted`). Changing an arm's options is a new definition:
the older logs stop counting, so give the arm a new name or move them to ``superseded/``, where
:func:`superseded_logs` and :func:`superseded_rows` show them, labelled, never judged.

Two groups: ``cifar`` (cuda-convnet's LRN pair of §3.3 and the pooling pair of §3.4 on all of
CIFAR-10), which a CPU can train over a few sittings, and ``imagenette`` (the full-width net,
90 epochs, one change per arm), which needs a GPU.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .checkpoint import History
from .claims import judge
from .stats import Scale
from .util import display_path, results_dir

FOLDER = "full_scale"
SEEDS = (0, 1, 2)

# cuda-convnet's layers-conv-local-13pct / -11pct pair (§3.3), both on the 13% net's own recipe
# (module cuda_convnet: per-layer init, rates and weight costs, the hold-out folded in after 100
# epochs, ÷10 at 140 and 150, the nine-crop test): 24x24 random crops of the 32x32 images with
# flips, pooling windows kept whole at the edge as cuda-convnet does
LRN_PAIR = ["--dataset", "cifar10", "--model", "cifar-lrn-pair", "--recipe", "cuda-convnet-13pct", "--crop", "24",
            "--pool-rounding", "ceil", "--no-pca", "--epochs", "160", "--eval-every", "4"]
# the pooling pair of §3.4 as chapter 5 trains it (no augmentation, no weight decay), on all of CIFAR-10
POOLING_PAIR = ["--dataset", "cifar10", "--model", "cifar-fig1", "--pool-rounding", "ceil", "--no-pca", "--no-flip",
                "--lr", "0.001", "--weight-decay", "0", "--schedule", "constant", "--epochs", "60"]
# the recipe of chapter 8's recorded 90-epoch run (He init on unit-variance inputs, lr/10 after
# 4 epochs without progress); each arm makes one change
IMAGENETTE = ["--dataset", "imagenette", "--model", "alexnet", "--epochs", "90", "--init", "kaiming", "--scale", "64",
              "--patience", "4"]

#: every arm: (group, command-line options without --seed); its runs are <arm>_s<seed>. These
#: options are the arm's definition: a log started with others does not count for it
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

#: what the runs of each group are, for the regime rule (``stats.regime``): the LRN pair is
#: cuda-convnet's own nets and recipe on all of CIFAR-10; the pooling pair is chapter 5's net and
#: recipe on all of CIFAR-10; the Imagenette arms are the paper's net and 90 epochs, on Imagenette
CIFAR_LRN_RUNS = Scale(data="CIFAR-10", images=50_000, net="cifar-lrn-pair", recipe="cuda-convnet-13pct", epochs=160)
CIFAR_POOLING_RUNS = Scale(data="CIFAR-10", images=50_000, net="cifar-fig1",
                           recipe="chapter 5's recipe (lr 0.001, no augmentation or weight decay)", epochs=60)
IMAGENETTE_RUNS = Scale(data="Imagenette", images=3_000, net="AlexNet", epochs=90,
                        recipe="the paper's §5 recipe with He init and lr/10 after 4 epochs without progress")


@dataclass(frozen=True)
class FullScale:
    """A claim measured at the paper's scale: the arm without the paper's choice against the arm
    with it, paired by seed, on the final validation (test) top-1 error."""

    claim: str  # the key of the chapter's claim (book/results/claims/<claim>.json)
    baseline: str
    variant: str
    paper_says: str = "lower"
    paper_value: float | None = None
    key: str = "val_top1"  # what the last epoch's record gives as the run's test error
    runs: Scale = IMAGENETTE_RUNS  # what the runs are, for the regime rule


COMPARISONS = {
    "lrn_cifar": FullScale("lrn_cifar", "lrn_cifar_without", "lrn_cifar_with", paper_value=-0.02,
                           key="val_multiview_top1", runs=CIFAR_LRN_RUNS),
    "overlapping_pooling_cifar": FullScale("overlapping_pooling_error", "pool_cifar_nonoverlapping",
                                           "pool_cifar_overlapping", paper_value=-0.004, runs=CIFAR_POOLING_RUNS),
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


# ------------------------------------------------------------------ what a run is
@dataclass(frozen=True)
class Provenance:
    """What makes a log a run's, besides its file name: the options its command started with
    (the arm's, then ``--seed``), the run mode and ``--limit`` (None: all the images)."""

    options: tuple
    mode: str = "full"
    limit: int | None = None


def planned_provenance(run: str) -> Provenance:
    """The provenance a full-scale run must have: its arm's options and seed, full mode, all images."""
    arm, seed = arm_of(run), run.rsplit("_s", 1)[1]
    return Provenance(tuple(ARMS[arm][1]) + ("--seed", seed))


def provenance_of(meta) -> Provenance | None:
    """The provenance a log's meta (or a checkpoint's history meta) records: the words of its
    command after ``train``, ``mode`` and ``cli_args.limit``; None where it does not say (a log
    of an older version, or one the Trainer wrote without the command line)."""
    if not isinstance(meta, dict):
        return None
    command, cli, mode = meta.get("command"), meta.get("cli_args"), meta.get("mode")
    if not (isinstance(command, str) and isinstance(cli, dict) and "limit" in cli and isinstance(mode, str)):
        return None
    words = command.split()
    if "train" not in words:
        return None
    return Provenance(tuple(words[words.index("train") + 1:]), mode, cli["limit"])


def _images(limit) -> str:
    return "all the images" if limit is None else f"--limit {limit} images"


def provenance_differences(found: Provenance, wanted: Provenance) -> list:
    """How ``found`` differs from the ``wanted`` provenance, in words; [] when it is the same run
    (its command may go on after the run's options: --mode, --out, --device, ...)."""
    out = []
    if found.mode != wanted.mode:
        out.append(f"made in {found.mode} mode, not {wanted.mode}")
    if found.limit != wanted.limit:
        out.append(f"trained on {_images(found.limit)}, not {_images(wanted.limit)}")
    n = len(wanted.options)
    if found.options[:n] != wanted.options:
        i = next((i for i, (a, b) in enumerate(zip(found.options, wanted.options)) if a != b), len(found.options))
        i -= i > 0 and not wanted.options[i].startswith("--")  # a value: show its option too
        has = " ".join(found.options[i:i + 2]) or "nothing more"
        out.append(f"another definition of the run: its command has `{has}` where the run's has "
                   f"`{' '.join(wanted.options[i:i + 2])}`")
    return out


# ------------------------------------------------------------------ logs read back
_JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true or false",
               type(None): "null"}


def read_log(path) -> tuple:
    """(History, None) for a training log; (None, what is wrong with the file) for a damaged one."""
    try:
        blob = json.loads(Path(path).read_text())
    except OSError as e:
        return None, f"cannot be read ({e.strerror})"
    except UnicodeDecodeError:
        return None, "is not text"
    except json.JSONDecodeError as e:
        return None, f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
    if not isinstance(blob, dict):
        kind = _JSON_KINDS.get(type(blob), "a value")
        return None, f"holds {kind}, not a training log (an object with meta and epochs)"
    missing = [k for k in ("meta", "epochs") if k not in blob]
    if missing:
        return None, f"lacks {' and '.join(missing)}: it is not a whole training log"
    meta, epochs = blob["meta"], blob["epochs"]
    if not isinstance(meta, dict) or not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        return None, "has a meta that is not an object, or epochs that are not a list of epoch records"
    # a run may score its test set every few epochs (--eval-every): the last record of such a run,
    # stopped between two scorings, has none, and a run not yet at its first scoring has none at
    # all; a log of that many epochs or more in which no record has one is damaged
    config = meta.get("config")
    every = config.get("eval_every", 1) if isinstance(config, dict) else 1
    every = every if isinstance(every, int) and every > 0 else 1
    if len(epochs) >= every and not any(isinstance(e.get("val_top1"), (int, float)) for e in epochs):
        return None, f"none of its {len(epochs)} epoch records has a test error (val_top1)"
    return History(meta, epochs), None


@dataclass
class RunLog:
    """A run's log as found, and whether it counts: ``kind`` is ok, missing, damaged, unknown
    (provenance unknown) or other (another mode, --limit or definition); ``problem`` says why."""

    run: str
    path: Path
    history: History | None = None
    kind: str = "ok"
    problem: str = ""

    @property
    def counted(self) -> bool:
        return self.kind == "ok"

    @property
    def seed(self) -> int:
        return int(self.run.rsplit("_s", 1)[1])

    def describe(self) -> str:
        """'<path> <problem>', for a message or a table."""
        return f"{display_path(self.path)}: {self.problem}"


UNKNOWN = ("provenance unknown: its meta does not record the command, mode and --limit it was made with "
           "(an older log), so it is not judged")


def check_log(path, run: str, wanted: Provenance | None = None) -> RunLog:
    """The log at ``path`` read as run ``run``'s; it counts only with the ``wanted`` provenance
    (default: the run's own at full scale, :func:`planned_provenance`)."""
    path = Path(path)
    if not path.exists():
        return RunLog(run, path, kind="missing", problem="no log")
    history, damage = read_log(path)
    if history is None:
        return RunLog(run, path, kind="damaged", problem=f"damaged: the file {damage}")
    found = provenance_of(history.meta)
    if found is None:
        return RunLog(run, path, history, "unknown", UNKNOWN)
    differ = provenance_differences(found, wanted or planned_provenance(run))
    if differ:
        return RunLog(run, path, history, "other", "not this run: " + "; ".join(differ))
    return RunLog(run, path, history)


_RUN_FILE = re.compile(r"(?P<arm>.+)_s(?P<seed>[0-9]+)\.json")


def logs_of(arm: str) -> list:
    """Every log of the arm in ``book/results/full_scale`` (``<arm>_s<seed>.json``), each a RunLog."""
    if arm not in ARMS:
        raise KeyError(f"no arm named {arm!r}; the arms are {', '.join(ARMS)}")
    out = []
    for path in sorted((results_dir() / FOLDER).glob(f"{arm}_s*.json")):
        m = _RUN_FILE.fullmatch(path.name)
        if m and m["arm"] == arm:
            out.append(check_log(path, f"{arm}_s{int(m['seed'])}"))
    return out


def arm_logs(arm: str) -> dict:
    """{seed: History} of the arm's recorded runs that count (finished or not)."""
    return {log.seed: log.history for log in logs_of(arm) if log.counted}


def not_counted(arm: str) -> list:
    """The arm's logs that do not count, each a RunLog whose ``describe()`` says why."""
    return [log for log in logs_of(arm) if not log.counted]


def ten_crop_results(arm: str) -> dict:
    """{seed: evaluation} of the arm's finished runs that count, evaluated with centre and ten crops."""
    out = {}
    for seed in arm_logs(arm):
        path = results_dir() / FOLDER / f"{arm}_s{seed}.eval.json"
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found = provenance_of(result.get("meta", {}).get("run_meta") if isinstance(result, dict) else None)
        if found is not None and not provenance_differences(found, planned_provenance(f"{arm}_s{seed}")):
            out[seed] = result
    return out


def device_of(h: History) -> str:
    device = h.meta.get("device", "?")
    threads = h.meta.get("cpu_threads")
    return f"{device} ({threads} thread{'s' * (threads != 1)})" if device.startswith("cpu") and threads else device


def progress_of(comparison: FullScale) -> dict:
    """How far a comparison's runs have got: per arm, {seed: epochs logged}; the planned
    epochs; the seeds finished in both arms; the devices; the hours of training so far; the logs
    that do not count (damaged, provenance unknown, another mode, --limit or definition), with why."""
    found = {a: logs_of(a) for a in (comparison.baseline, comparison.variant)}
    arms = {a: {log.seed: log.history for log in logs if log.counted} for a, logs in found.items()}
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
        "not_counted": [log.describe() for logs in found.values() for log in logs if not log.counted],
    }


def _row(h: History, planned: int) -> dict:
    """How far a run got: its newest test error (of the last epoch that evaluated; the nine-crop
    test's where the run ended with one), its last training error, hours, device, commit."""
    def percent(key):
        value = next((e[key] for e in reversed(h.epochs) if isinstance(e.get(key), (int, float))), None)
        return f"{100 * value:.1f}%" if value is not None else ""

    seconds = sum(e.get("train_seconds", 0) + e.get("val_seconds", 0) for e in h.epochs)
    row = {"epochs": f"{len(h.epochs)} of {planned}", "test error now": percent("val_top1"),
           "training error (last epoch)": percent("train_top1"), "hours": f"{seconds / 3600:.1f}",
           "device": device_of(h), "commit": h.meta.get("commit", "?")}
    if percent("val_multiview_top1"):
        row["nine-crop test error"] = percent("val_multiview_top1")
    return row


def runs_rows(comparison: FullScale, labels: tuple = ("baseline", "variant")) -> list:
    """One row per recorded run of the comparison's two arms: how far it got, its test error
    now, its training error in the last epoch, hours, device and commit; for a table. A log that
    does not count has a row that says why, and nothing else."""
    rows, planned = [], planned_epochs(comparison.baseline)
    for label, arm in zip(labels, (comparison.baseline, comparison.variant)):
        for log in logs_of(arm):
            row = _row(log.history, planned) if log.counted else {"epochs": f"not counted: {log.problem}"}
            rows.append({"net": label, "seed": log.seed, **row})
    return rows


def final_errors(arm: str, seeds, key: str = "val_top1") -> list:
    logs = arm_logs(arm)
    return [logs[s].epochs[-1][key] for s in seeds]


def judge_full_scale(name: str):
    """The comparison's verdict on its finished seed pairs (None while fewer than two are
    finished): the final test top-1 error, variant minus baseline, paired by seed, judged as the
    claim it measures (``claims.REGISTRY``, its labels kept, the arms' names in its details), its
    regime from the runs' scale (``FullScale.runs``), and recorded as ``<name>_full``."""
    c = COMPARISONS[name]
    p = progress_of(c)
    seeds = p["finished_pairs"]
    if len(seeds) < 2:
        return None
    scale = f"{len(seeds)} seeds per arm, on " + ", ".join(p["devices"])
    claim = judge(c.claim, final_errors(c.baseline, seeds, c.key), final_errors(c.variant, seeds, c.key),
                  runs=c.runs, scale=scale, details={"baseline_arm": c.baseline, "variant_arm": c.variant})
    return replace(claim, key=f"{name}_full", measures=c.claim, source="paper scale",
                   metric=f"final {'nine-crop ' * (c.key == 'val_multiview_top1')}test top-1 error (fraction), "
                          "paired by seed")


NEEDS_GPU = "needs a GPU (`tools/full_scale.py --group imagenette`); not recorded yet, for want of one"
#: the claims without a comparison of their own above, and where their full-scale measurement is
ELSEWHERE = {
    "relu_speedup": "chapter 2's recorded runs: all of CIFAR-10, 5 seeds per net, on an H100, but with learning "
                    "rates from a laptop sweep, not each net's fastest at full scale (Figure 1's recipe); a sweep "
                    "to 25% on all 50,000 images, on a GPU, would make them the paper's regime",
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
    per_arm = "; ".join(f"{arm}: " + ", ".join(f"seed {s} {e}/{p['planned']}" for s, e in seeds.items())
                        for arm, seeds in p["epochs"].items())
    set_aside = p["not_counted"]
    aside = (f"; {len(set_aside)} log{'s' * (len(set_aside) != 1)} not counted (tools/full_scale.py --list "
             "says why)") if set_aside else ""
    old = [r for r in superseded_logs() if arm_of(r) in (comparison.baseline, comparison.variant)]
    aside += f"; superseded, kept apart: {', '.join(old)} (an earlier definition of the arms)" if old else ""
    if not any(p["epochs"].values()):
        return "not started" + ("; " + NEEDS_GPU if group == "imagenette" else "") + aside
    return (f"{len(p['finished_pairs'])} of {len(SEEDS)} seed pairs finished ({per_arm} epochs), "
            f"{p['train_hours']:.1f} h of training on {', '.join(p['devices'])}" + aside)


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


# ------------------------------------------------------------------ superseded runs
SUPERSEDED = "superseded"
_LRN_60 = ("a 60-epoch recipe made up for this book (lr 0.0003, weight decay 0.0005 on every weight, /10 at "
           "epochs 40 and 52, centre-crop testing), replaced by cuda-convnet's own recipe; its checkpoints are gone")
#: runs of an earlier definition of their arm, kept in full_scale/superseded/, and why they were superseded
SUPERSEDED_WHY = {"lrn_cifar_without_s0": _LRN_60, "lrn_cifar_with_s0": _LRN_60}


def superseded_logs() -> dict:
    """{run: History} of the logs in ``book/results/full_scale/superseded/``: runs of an earlier
    definition of their arm, to be shown labelled as such; never resumed, counted or judged."""
    folder = results_dir() / FOLDER / SUPERSEDED
    found = {p.name.removesuffix(".json"): read_log(p)[0] for p in sorted(folder.glob("*.json"))
             if not p.name.endswith(".eval.json")}
    return {run: h for run, h in found.items() if h is not None}


def superseded_rows() -> list:
    """One row per superseded run: how far it got (of the epochs its own command planned), its
    errors, hours, device, commit, and why it was superseded; for a table."""
    rows = []
    for run, h in superseded_logs().items():
        planned = h.meta.get("cli_args", {}).get("epochs", "?")
        rows.append({"run": run, **_row(h, planned), "superseded": SUPERSEDED_WHY.get(run, "see superseded/README.md")})
    return rows
