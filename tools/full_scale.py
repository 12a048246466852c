"""The book's runs at the paper's scale: each one a command of the library's CLI, several at once,
every one resumable, their logs written where the chapters read them (``book/results/full_scale``).

    python tools/full_scale.py --list                          # the runs, how far each got, and how it was made
    python tools/full_scale.py --group cifar --jobs 2 --threads 1 --minutes 120   # what a 2-core CPU can do
    python tools/full_scale.py --device cuda --jobs 20 --minutes 9                # one GPU: everything

A call starts the runs in the order listed (the first seeds of every comparison first), at most
``--jobs`` at once, each ``--resume``-d from its checkpoints in ``<runs root>/full_scale/<name>``
(``$ALEXNET_RUNS``, else ``~/.cache/alexnet_lib/runs``: outside the project, so that a fresh
checkout finds them again; ``--runs`` names another folder). At ``--minutes`` every run still training is asked to stop
(SIGTERM: it saves a checkpoint after the current step), so a later call continues exactly where
this one stopped. A run whose log already holds all its epochs is skipped; an Imagenette run that
has finished is then evaluated with ten crops (``<name>.eval.json``). Every call appends its
device, wall time and what each run did to ``calls.json``.

A log or checkpoint counts for a run only when it was made by the run's own options in full mode
on all the images (``alexnet_lib.recorded.Provenance``). One made otherwise (by ``--tiny``, with
``--limit``, by an earlier definition of the arm), one whose provenance is unknown, and a damaged
log are never resumed: the run is left alone, and the call says why and what to do. A run whose
log is here but whose checkpoints are gone starts again; its old log is kept as
``<name>.lost-<n>.json``.

``--tiny`` runs the same commands on 300 images for one epoch (smoke mode), in a temporary folder
(or ``--results`` and ``--runs`` folders you name, never the full-scale ones): the way to test
this script before spending a GPU's time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from alexnet_lib import recorded  # noqa: E402
from alexnet_lib.checkpoint import checkpoint_paths  # noqa: E402
from alexnet_lib.util import display_path, runs_root  # noqa: E402

RESULTS = ROOT / "book" / "results" / recorded.FOLDER
OLD_RUNS = ROOT / "runs" / "full_scale"  # where the run folders were kept before the runs root
TINY_LIMIT, TINY_EPOCHS = 300, 1
ADVICE = {
    "damaged": "Repair it or move it away; until then this run is left alone.",
    "unknown": "Move it into superseded/ (saying why in its README) or away; until then this run is left alone.",
    "other": "Move it away to start this run; until then it is left alone.",
}


class CallError(Exception):
    """Something found before any run starts; said in at most three lines, exit code 2."""


@dataclass
class Spec:
    """One run: an arm of alexnet_lib.recorded.ARMS with its seed."""

    name: str
    group: str  # "cifar": feasible on a CPU over a few sessions; "imagenette": needs a GPU
    argv: list
    ten_crop: bool = False

    @property
    def epochs(self) -> int:
        return recorded.planned_epochs(recorded.arm_of(self.name))


def specs() -> list:
    """Every run, in the order a call starts them: seed 0 of every arm first."""
    out = []
    for name in recorded.run_names():
        arm, seed = recorded.arm_of(name), name.rsplit("_s", 1)[1]
        group, argv = recorded.ARMS[arm]
        out.append(Spec(name, group, argv + ["--seed", seed], ten_crop=group == "imagenette"))
    return out


def run_argv(spec: Spec, args) -> list:
    """The run's options: the arm's and --seed (--tiny: one epoch)."""
    argv = list(spec.argv)
    if args.tiny:
        argv[argv.index("--epochs") + 1] = str(TINY_EPOCHS)
    return argv


def wanted_provenance(spec: Spec, args) -> recorded.Provenance:
    """What a log or checkpoint of this run must record: the run's options, in full mode on all the
    images (--tiny: smoke mode, --limit 300)."""
    if args.tiny:
        return recorded.Provenance(tuple(run_argv(spec, args)), "smoke", TINY_LIMIT)
    return recorded.planned_provenance(spec.name)


@dataclass
class State:
    """A run as this call finds it, and what the call does with it: ``action`` is train (resume
    if ``resumable``), evaluate, skip (done), restart (its checkpoints are gone) or leave (alone,
    for ``problem``)."""

    log: recorded.RunLog
    planned: int
    done: int = 0  # epochs in the log (in the checkpoint, where there is no log)
    resumable: bool = False
    action: str = "train"
    problem: str = ""

    def __str__(self) -> str:
        return {"skip": "done", "evaluate": "to evaluate", "leave": f"LEFT ALONE: {self.problem}",
                "restart": f"{self.done}/{self.planned} epochs logged, but its checkpoints are gone: "
                           "a call starts it again"}.get(self.action) or (
            f"{self.done}/{self.planned} epochs" if self.done or self.resumable else "not started")

    def leave(self, problem: str) -> State:
        self.action, self.problem = "leave", problem
        return self


def checkpoint_state(folder: Path, spec: Spec, args) -> tuple:
    """('none' | 'ok' | what is wrong, epochs in the newest readable checkpoint's history)."""
    paths = checkpoint_paths(folder)
    if not paths:
        return "none", 0
    move, alone = f"move {display_path(folder)} away", "until then this run is left alone"
    for path in paths:
        try:  # mmap: the history is read, the tensors are not
            state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
            meta, epochs = state["history"]["meta"], state["history"]["epochs"]
        except Exception:
            continue
        found = recorded.provenance_of(meta)
        if found is None:
            return (f"{display_path(path)} does not record its command, mode and --limit (provenance unknown). "
                    f"To start the run again, {move}; {alone}."), 0
        differ = recorded.provenance_differences(found, wanted_provenance(spec, args))
        if differ:
            return f"{display_path(path)} is not this run: {'; '.join(differ)}. To start this run, {move}; {alone}.", 0
        return "ok", len(epochs)
    return f"no checkpoint in {display_path(folder)} can be read: restore a copy, or {move}; {alone}.", 0


def inspect(spec: Spec, args) -> State:
    """What the run's log and checkpoints say, and so what this call does with the run."""
    log = recorded.check_log(args.results / f"{spec.name}.json", spec.name, wanted_provenance(spec, args))
    st = State(log, TINY_EPOCHS if args.tiny else spec.epochs)
    if log.kind not in ("ok", "missing"):
        return st.leave(f"{log.describe()}. {ADVICE[log.kind]}")
    checkpoint, epochs = checkpoint_state(args.runs / spec.name, spec, args)
    if checkpoint not in ("ok", "none"):
        return st.leave(checkpoint)
    st.resumable, st.done = checkpoint == "ok", len(log.history.epochs) if log.history else epochs
    old = OLD_RUNS / spec.name
    if not st.resumable and args.runs_by_default and checkpoint_state(old, spec, args)[0] == "ok":
        return st.leave(f"its checkpoints are in {display_path(old)}, where run folders were kept before: move that "
                        f"folder into {display_path(args.runs)} to resume it, or pass --runs {display_path(OLD_RUNS)}")
    if st.done >= st.planned:
        st.action = "evaluate" if spec.ten_crop and not (args.results / f"{spec.name}.eval.json").exists() else "skip"
        if st.action == "evaluate" and not st.resumable:
            return st.leave(f"finished, but its checkpoints are gone from {display_path(args.runs / spec.name)}, "
                            "so it cannot be evaluated with ten crops")
    elif log.counted and not st.resumable:
        st.action = "restart"
    return st


def set_aside(log: Path) -> Path:
    """Move a run's log (and its conv1 kernels) aside as <name>.lost-<n>.json, the first n free."""
    n = 1
    while log.with_name(f"{log.stem}.lost-{n}.json").exists():
        n += 1
    kept = log.with_name(f"{log.stem}.lost-{n}.json")
    log.replace(kept)
    kernels = log.with_suffix(".conv1.pt")
    if kernels.exists():
        kernels.replace(log.with_name(f"{log.stem}.lost-{n}.conv1.pt"))
    return kept


def train_command(spec: Spec, args) -> list:
    out, log = args.runs / spec.name, args.results / f"{spec.name}.json"
    argv = run_argv(spec, args)
    argv += ["--limit", str(TINY_LIMIT), "--mode", "smoke"] if args.tiny else ["--mode", "full"]
    argv += ["--out", str(out), "--log", str(log), "--no-progress"]
    if args.device:
        argv += ["--device", args.device]
    if args.device and args.device.startswith("cuda") and spec.group == "imagenette":
        argv += ["--amp", "--channels-last"] if args.fast else []
    elif spec.group == "cifar":  # how the run goes, not what it computes: 1.1-1.2x a step (bench_cifar_epoch.py)
        argv += ["--channels-last"]
    if checkpoint_paths(out):
        argv += ["--resume"]
    return [sys.executable, "-m", "alexnet_lib", "train", *argv]


def evaluate_command(spec: Spec, args) -> list:
    cmd = [sys.executable, "-m", "alexnet_lib", "evaluate", "--checkpoint", str(args.runs / spec.name),
           "--ten-crop", "--save", str(args.results / f"{spec.name}.eval.json")]
    return cmd + (["--device", args.device] if args.device else [])


def wanted(spec: Spec, args) -> bool:
    return (not args.group or spec.group in args.group) and (not args.only or spec.name in args.only)


class Pool:
    """At most ``jobs`` child processes; each spec trains, then (Imagenette) evaluates."""

    def __init__(self, args, report: dict):
        self.args, self.running, self.report = args, {}, report

    def start(self, spec: Spec, cmd: list, stage: str) -> None:
        folder = self.args.runs / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        console = open(folder / "console.txt", "a")
        console.write(f"\n$ {' '.join(map(str, cmd))}\n")
        console.flush()
        env = dict(os.environ, OMP_NUM_THREADS=str(self.args.threads)) if self.args.threads else None
        # a session of its own: Ctrl-C in the terminal reaches this script only, which then asks
        # each run once to stop (a second signal would stop a run before its checkpoint)
        proc = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                start_new_session=True)
        self.running[spec.name] = (spec, proc, stage, time.monotonic(), console)
        print(f"started {spec.name}: {stage} ({inspect(spec, self.args)})", flush=True)

    def reap(self) -> list:
        """The specs whose process has ended: their training is over (for now), or evaluated."""
        ended = []
        for name, (spec, proc, stage, t0, console) in list(self.running.items()):
            if proc.poll() is None:
                continue
            console.close()
            del self.running[name]
            seconds = time.monotonic() - t0
            entry = self.report.setdefault(name, {"seconds": 0.0})
            entry["seconds"] = round(entry["seconds"] + seconds, 1)
            entry[f"{stage}_exit"] = proc.returncode
            state = inspect(spec, self.args)
            entry["state"] = str(state)
            print(f"{name}: {stage} ended with exit code {proc.returncode} after {seconds:.0f} s; "
                  f"{entry['state']}", flush=True)
            if stage == "train" and proc.returncode == 0 and state.action == "evaluate":
                ended.append(spec)
        return ended

    def stop_all(self) -> None:
        for _, proc, *_ in self.running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # a checkpoint after the current step, then exit 130


def plan(args) -> tuple:
    """(runs to evaluate, runs to train, report): a run left alone is said here, once, and
    reported; one whose checkpoints are gone has its log set aside and starts again."""
    evaluations, queue, report = [], [], {}
    for spec in (s for s in specs() if wanted(s, args)):
        state = inspect(spec, args)
        if state.action == "leave":
            print(f"{spec.name}: left alone: {state.problem}", flush=True)
            report[spec.name] = {"state": str(state)}
        elif state.action == "restart":
            kept = set_aside(state.log.path)
            print(f"{spec.name}: its checkpoints are gone from {display_path(args.runs / spec.name)} (its log had "
                  f"{state.done} of {state.planned} epochs): starting it again; the old log is kept as {kept.name}",
                  flush=True)
            report[spec.name] = {"seconds": 0.0, "restarted": f"checkpoints gone; old log kept as {kept.name}"}
            queue.append(spec)
        elif state.action != "skip":
            (evaluations if state.action == "evaluate" else queue).append(spec)
    return evaluations, queue, report


def run(args) -> dict:
    """Start the runs, at most --jobs at once, until all are done or --minutes have passed (or
    Ctrl-C / SIGTERM): then every run still training is asked to stop, once, and waited for."""
    evaluations, queue, report = plan(args)
    pool, t0 = Pool(args, report), time.monotonic()
    deadline = [t0 + 60 * args.minutes]

    def stop_now(signum, frame):
        print("stopping: each run saves a checkpoint after its current step, then ends", flush=True)
        deadline[0] = 0

    before = {s: signal.signal(s, stop_now) for s in (signal.SIGINT, signal.SIGTERM)}
    stopping = False
    while queue or evaluations or pool.running:
        evaluations += pool.reap()
        if not stopping and time.monotonic() > deadline[0]:
            if deadline[0]:
                print(f"--minutes {args.minutes:g} reached: stopping the runs (each saves a checkpoint)", flush=True)
            pool.stop_all()
            stopping, queue, evaluations = True, [], []
        while not stopping and len(pool.running) < args.jobs and (evaluations or queue):
            spec = evaluations.pop(0) if evaluations else queue.pop(0)
            if inspect(spec, args).action == "evaluate":
                pool.start(spec, evaluate_command(spec, args), "evaluate")
            else:
                pool.start(spec, train_command(spec, args), "train")
        time.sleep(0.5)
    for s, handler in before.items():
        signal.signal(s, handler)
    return {"wall_seconds": round(time.monotonic() - t0, 1), "runs": report}


def describe_device(name: str | None) -> str:
    if name and name.startswith("cuda") or (name is None and torch.cuda.is_available()):
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def read_calls(calls: Path) -> list:
    """The calls recorded so far; CallError if the file is damaged (before any run starts, so
    that no call goes unrecorded)."""
    if not calls.exists():
        return []
    history, damage = None, None
    try:
        history = json.loads(calls.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        damage = getattr(e, "strerror", None) or getattr(e, "msg", None) or type(e).__name__
    if damage or not isinstance(history, list):
        what = f"is damaged ({damage})" if damage else "is not a list of calls"
        raise CallError(f"{display_path(calls)} {what}; no run was started, so that this call is not left "
                        "unrecorded.\nRepair it, or move it away (a new one is begun).") from None
    return history


def record_call(args, result: dict) -> None:
    calls = args.results / "calls.json"
    try:
        history = read_calls(calls)  # again: another call may have added its own meanwhile
    except CallError:
        kept = calls.with_name(f"calls.damaged-{os.getpid()}.json")
        calls.replace(kept)
        print(f"{display_path(calls)} was damaged during this call: it is kept as {kept.name}, and a new one begun")
        history = []
    history.append({"started": time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() - result["wall_seconds"])),
                    "command": " ".join(sys.argv), "device": describe_device(args.device), "jobs": args.jobs,
                    "threads_per_run": args.threads, **result})
    tmp = calls.with_suffix(".tmp")
    tmp.write_text(json.dumps(history, indent=1) + "\n")
    tmp.replace(calls)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--list", action="store_true", help="list the runs, how far each got and how it was made")
    p.add_argument("--group", nargs="*", choices=("cifar", "imagenette"), help="only these groups")
    p.add_argument("--only", nargs="*", help="only these runs (names as --list prints them)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per run (0: PyTorch's default)")
    p.add_argument("--minutes", type=float, default=60.0, help="stop every run (with a checkpoint) after this")
    p.add_argument("--device", help="cpu, cuda, ... (default: a GPU if there is one)")
    p.add_argument("--fast", action="store_true", help="on a GPU: bf16 autocast and channels_last")
    p.add_argument("--tiny", action="store_true", help="one epoch on 300 images each, to test the script, in a "
                                                       "temporary folder (or --results and --runs)")
    p.add_argument("--results", type=Path, help=f"where the logs go (default: {display_path(RESULTS)})")
    p.add_argument("--runs", type=Path, help="where the run folders (checkpoints) go (default: the runs root's "
                                             "full_scale/: $ALEXNET_RUNS, else ~/.cache/alexnet_lib/runs)")
    args = p.parse_args(argv)
    unknown = sorted(set(args.only or ()) - {s.name for s in specs()})
    if unknown:
        p.error(f"no run named {', '.join(unknown)}; `--list` shows the names")
    if args.jobs < 1 or args.threads < 0:
        p.error(f"--jobs {args.jobs} --threads {args.threads}: --jobs must be at least 1, --threads at least 0")
    if not (math.isfinite(args.minutes) and args.minutes > 0):
        p.error(f"--minutes {args.minutes:g}: give a positive number of minutes, after which every run is "
                "stopped with a checkpoint")
    args.runs_by_default = args.runs is None and not args.tiny
    if not args.tiny:
        args.results, args.runs = args.results or RESULTS, args.runs or runs_root() / "full_scale"
    return args


def tiny_folders(args) -> None:
    """--tiny writes into a temporary folder, or folders the user names, never the full-scale ones."""
    real_runs = runs_root() / "full_scale"
    for option, folder, real in (("--results", args.results, RESULTS), ("--runs", args.runs, real_runs)):
        if folder is not None and folder.resolve() == real.resolve():
            raise CallError(f"--tiny {option} {display_path(folder)}: that folder holds the full-scale runs, and --tiny"
                            f" makes smoke runs of {TINY_LIMIT} images.\nName another folder, or leave {option} out "
                            "for a temporary one.")
    if args.results is None or args.runs is None:
        if args.list:
            raise CallError("--list --tiny: name the --results and --runs folders of the tiny call to list")
        tmp = Path(tempfile.mkdtemp(prefix="full_scale-tiny-"))
        args.results, args.runs = args.results or tmp / "results", args.runs or tmp / "runs"
        print(f"--tiny: in a temporary folder, {tmp}", flush=True)


def list_runs(args) -> None:
    for s in specs():
        if wanted(s, args):
            state = inspect(s, args)
            h = state.log.history
            made = f"  [{made_by(h)}]" if h is not None and state.action != "leave" else ""
            print(f"{s.name:32} {s.group:11} {state}{made}")
    superseded = recorded.superseded_rows() if args.results.resolve() == RESULTS.resolve() else []
    if superseded:
        print(f"superseded (in {display_path(RESULTS / recorded.SUPERSEDED)}: never resumed or judged):")
    for row in superseded:
        print(f"{row['run']:32} {row['epochs']} epochs, test error {row['test error now']}; {row['superseded']}")


def made_by(h) -> str:
    """How a run was made: mode, images, device, commit (and the last resume's)."""
    found = recorded.provenance_of(h.meta)
    resumed = [r.get("commit") for r in h.meta.get("resumes", []) if isinstance(r, dict)]
    commit = h.meta.get("commit", "?") + (f", last resumed at {resumed[-1]}" if resumed else "")
    images = "all images" if found.limit is None else f"--limit {found.limit}"
    return f"{found.mode} mode, {images}, {recorded.device_of(h)}, commit {commit}"


def main(argv=None) -> int:
    args = parse(argv)
    try:
        if args.tiny:
            tiny_folders(args)
        print(f"logs in {display_path(args.results)}, run folders in {display_path(args.runs)}", flush=True)
        if args.list:
            list_runs(args)
            return 0
        args.results.mkdir(parents=True, exist_ok=True)
        read_calls(args.results / "calls.json")
    except CallError as e:
        print(f"full_scale.py: {e}", file=sys.stderr)
        return 2
    result = run(args)
    record_call(args, result)
    runs = result["runs"]
    failed = [n for n, r in runs.items() if r.get("train_exit") not in (0, 130, -15, None)
              or r.get("evaluate_exit") not in (0, None)]
    left = [n for n, r in runs.items() if r.get("state", "").startswith("LEFT ALONE")]
    print(f"wall time {result['wall_seconds']:.0f} s; " + (f"failed: {', '.join(failed)} (see their console.txt)"
                                                          if failed else "no run failed")
          + (f"; left alone: {', '.join(left)} (see above)" if left else ""))
    return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main())
