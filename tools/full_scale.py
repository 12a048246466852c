"""The book's runs at the paper's scale: each one a command of the library's CLI, several at once,
every one resumable, their logs written where the chapters read them (``book/results/full_scale``).

    python tools/full_scale.py --list                          # the runs, and how far each has got
    python tools/full_scale.py --group cifar --jobs 2 --threads 1 --minutes 120   # what a 2-core CPU can do
    python tools/full_scale.py --device cuda --jobs 20 --minutes 9                # one GPU: everything

A call starts the runs in the order listed (the first seeds of every comparison first), at most
``--jobs`` at once, each ``--resume``-d from its checkpoints in ``runs/full_scale/<name>`` where
an earlier call stopped it. At ``--minutes`` every run still training is asked to stop (SIGTERM:
it saves a checkpoint after the current step), so a later call continues exactly where this one
stopped. A run whose log already holds all its epochs is skipped; an Imagenette run that has
finished is then evaluated with ten crops (``<name>.eval.json``). Every call appends its device,
wall time and what each run did to ``calls.json``.

``--tiny`` runs the same commands on a few hundred images for one epoch (smoke mode), into
``--results`` and ``--runs`` folders of your choice: the way to test this script before
spending a GPU's time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from alexnet_lib import recorded  # noqa: E402
from alexnet_lib.checkpoint import checkpoint_paths  # noqa: E402

RESULTS = ROOT / "book" / "results" / recorded.FOLDER
RUNS = ROOT / "runs" / "full_scale"


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


def epochs_logged(log: Path) -> int:
    try:
        return len(json.loads(log.read_text())["epochs"])
    except (OSError, ValueError, KeyError):
        return 0


def has_checkpoint(folder: Path) -> bool:
    return bool(checkpoint_paths(folder))


def train_command(spec: Spec, args) -> list:
    out, log = args.runs / spec.name, args.results / f"{spec.name}.json"
    argv = list(spec.argv)
    if args.tiny:  # the same command on a few hundred images, one epoch
        argv[argv.index("--epochs") + 1] = "1"
        argv += ["--limit", "300", "--mode", "smoke"]
    else:
        argv += ["--mode", "full"]
    argv += ["--out", str(out), "--log", str(log), "--no-progress"]
    if args.device:
        argv += ["--device", args.device]
    if args.device and args.device.startswith("cuda") and spec.group == "imagenette":
        argv += ["--amp", "--channels-last"] if args.fast else []
    if has_checkpoint(out):
        argv += ["--resume"]
    return [sys.executable, "-m", "alexnet_lib", "train", *argv]


def evaluate_command(spec: Spec, args) -> list:
    cmd = [sys.executable, "-m", "alexnet_lib", "evaluate", "--checkpoint", str(args.runs / spec.name),
           "--ten-crop", "--save", str(args.results / f"{spec.name}.eval.json")]
    return cmd + (["--device", args.device] if args.device else [])


def wanted(spec: Spec, args) -> bool:
    return (not args.group or spec.group in args.group) and (not args.only or spec.name in args.only)


def state_of(spec: Spec, args) -> str:
    done = epochs_logged(args.results / f"{spec.name}.json")
    epochs = 1 if args.tiny else spec.epochs
    if done >= epochs:
        needs_eval = spec.ten_crop and not (args.results / f"{spec.name}.eval.json").exists()
        return "to evaluate" if needs_eval else "done"
    return f"{done}/{epochs} epochs" if done else "not started"


class Pool:
    """At most ``jobs`` child processes; each spec trains, then (Imagenette) evaluates."""

    def __init__(self, args):
        self.args, self.running, self.report = args, {}, {}

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
        print(f"started {spec.name}: {stage} ({state_of(spec, self.args)})", flush=True)

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
            entry["state"] = state_of(spec, self.args)
            print(f"{name}: {stage} ended with exit code {proc.returncode} after {seconds:.0f} s; "
                  f"{entry['state']}", flush=True)
            if stage == "train" and proc.returncode == 0 and entry["state"] == "to evaluate":
                ended.append(spec)
        return ended

    def stop_all(self) -> None:
        for _, proc, *_ in self.running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # a checkpoint after the current step, then exit 130


def run(args) -> dict:
    """Start the runs, at most --jobs at once, until all are done or --minutes have passed (or
    Ctrl-C / SIGTERM): then every run still training is asked to stop, once, and waited for."""
    queue = [s for s in specs() if wanted(s, args) and state_of(s, args) != "done"]
    pool, t0 = Pool(args), time.monotonic()
    deadline = [t0 + 60 * args.minutes]

    def stop_now(signum, frame):
        print("stopping: each run saves a checkpoint after its current step, then ends", flush=True)
        deadline[0] = 0

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, stop_now)
    evaluations = [s for s in queue if state_of(s, args) == "to evaluate"]
    queue = [s for s in queue if s not in evaluations]
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
            if state_of(spec, args) == "to evaluate":
                pool.start(spec, evaluate_command(spec, args), "evaluate")
            else:
                pool.start(spec, train_command(spec, args), "train")
        time.sleep(0.5)
    return {"wall_seconds": round(time.monotonic() - t0, 1), "runs": pool.report}


def describe_device(name: str | None) -> str:
    import torch

    if name and name.startswith("cuda") or (name is None and torch.cuda.is_available()):
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def record_call(args, result: dict) -> None:
    calls = args.results / "calls.json"
    history = json.loads(calls.read_text()) if calls.exists() else []
    history.append({"started": time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() - result["wall_seconds"])),
                    "command": " ".join(sys.argv), "device": describe_device(args.device), "jobs": args.jobs,
                    "threads_per_run": args.threads, **result})
    tmp = calls.with_suffix(".tmp")
    tmp.write_text(json.dumps(history, indent=1) + "\n")
    tmp.replace(calls)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--list", action="store_true", help="list the runs and their state, run nothing")
    p.add_argument("--group", nargs="*", choices=("cifar", "imagenette"), help="only these groups")
    p.add_argument("--only", nargs="*", help="only these runs (names as --list prints them)")
    p.add_argument("--jobs", type=int, default=2, help="runs at once")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per run (0: PyTorch's default)")
    p.add_argument("--minutes", type=float, default=60.0, help="stop every run (with a checkpoint) after this")
    p.add_argument("--device", help="cpu, cuda, ... (default: a GPU if there is one)")
    p.add_argument("--fast", action="store_true", help="on a GPU: bf16 autocast and channels_last")
    p.add_argument("--tiny", action="store_true", help="one epoch on 300 images each, to test the script")
    p.add_argument("--results", type=Path, default=RESULTS, help="where the logs go (default: %(default)s)")
    p.add_argument("--runs", type=Path, default=RUNS, help="where the checkpoints go (default: %(default)s)")
    args = p.parse_args(argv)
    names = {s.name for s in specs()}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        p.error(f"no run named {', '.join(unknown)}; `--list` shows the names")
    if args.jobs < 1 or args.minutes <= 0:
        p.error("--jobs must be at least 1 and --minutes positive")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    if args.list:
        for s in specs():
            if wanted(s, args):
                print(f"{s.name:32} {s.group:11} {state_of(s, args)}")
        return 0
    result = run(args)
    record_call(args, result)
    failed = [n for n, r in result["runs"].items() if r.get("train_exit") not in (0, 130, -15, None)
              or r.get("evaluate_exit") not in (0, None)]
    print(f"wall time {result['wall_seconds']:.0f} s; " + (f"failed: {', '.join(failed)} (see their console.txt)"
                                                          if failed else "no run failed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
