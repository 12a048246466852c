"""The paper's update rule unrolled by hand, the trainer's resume, its errors and its metrics."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from alexnet_lib.analysis import epochs_to_reach
from alexnet_lib.evaluate import topk_errors
from alexnet_lib.optim import PaperSGD, parameter_groups
from alexnet_lib.train import TrainConfig, TrainingDivergedError

from .helpers import close_relative, make_trainer


def test_paper_rule_two_steps_by_hand():
    w = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = PaperSGD([w], lr=0.1, momentum=0.9, weight_decay=0.5)
    g1, g2 = torch.tensor([0.3, 0.4]), torch.tensor([-0.2, 0.1])
    # step 1: v1 = 0.9·0 − 0.5·0.1·w0 − 0.1·g1 ; w1 = w0 + v1
    w0 = torch.tensor([1.0, -2.0])
    v1 = -0.5 * 0.1 * w0 - 0.1 * g1
    w1 = w0 + v1
    w.grad = g1.clone()
    opt.step()
    # the same arithmetic in another order (fused foreach kernels): a few float32 ulps of |w| ~ 2
    assert close_relative(w.data, w1, rel=1e-6)
    # step 2: v2 = 0.9·v1 − 0.5·0.1·w1 − 0.1·g2
    v2 = 0.9 * v1 - 0.5 * 0.1 * w1 - 0.1 * g2
    w.grad = g2.clone()
    opt.step()
    assert close_relative(w.data, w1 + v2, rel=1e-6)


def _pair(seed=0):
    torch.manual_seed(seed)
    a = nn.Linear(4, 3)
    b = nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    return a, b


def _steps(model, opt, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def test_paper_rule_equals_torch_sgd_at_constant_lr():
    a, b = _pair()
    _steps(a, PaperSGD(a.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4), 20)
    _steps(b, torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4), 20)
    # equal algebra, different rounding (v = -lr b): 20 steps of float32 rounding, 1e-5 of the scale
    for p, q in zip(a.parameters(), b.parameters()):
        assert close_relative(p, q, rel=1e-5)


def test_paper_rule_differs_after_lr_change_by_the_algebra():
    """After ε goes from ε1 to ε2, torch's step carries m·(ε2/ε1)·v where the paper's carries m·v.
    So one step after the change, w_torch − w_paper = m·v·(ε2/ε1 − 1), with v the velocity before."""
    lr1, lr2, m = 0.05, 0.005, 0.9
    a, b = _pair()
    pa = PaperSGD(a.parameters(), lr=lr1, momentum=m, weight_decay=0.0)
    pb = torch.optim.SGD(b.parameters(), lr=lr1, momentum=m, weight_decay=0.0)
    _steps(a, pa, 5)
    _steps(b, pb, 5)
    velocity = [pa.state[p]["velocity"].clone() for p in a.parameters()]
    for opt in (pa, pb):
        for group in opt.param_groups:
            group["lr"] = lr2
    _steps(a, pa, 1, seed=7)
    _steps(b, pb, 1, seed=7)
    for p, q, v in zip(a.parameters(), b.parameters(), velocity):
        # q - p is a difference of weights of size ~1, so it carries their rounding (~1e-7 absolute):
        # compare it relative to its own scale (~1e-3 here), to 1e-3 of that
        assert close_relative(q - p, m * v * (lr2 / lr1 - 1), rel=1e-3)
        assert (q - p).abs().max() > 1e-5  # they really do differ


def test_weight_decay_skips_biases_and_prelu():
    from alexnet_lib.model import AlexNet

    model = AlexNet(activation="prelu", num_classes=10, width=0.25, input_size=128)
    decay, no_decay = parameter_groups(model, 5e-4)
    prelu_ids = {id(m.weight) for m in model.modules() if type(m).__name__ == "PReLU"}
    assert prelu_ids and prelu_ids <= {id(p) for p in no_decay["params"]}
    assert all(p.dim() > 1 for p in decay["params"])
    assert no_decay["weight_decay"] == 0 and decay["weight_decay"] == 5e-4


def test_resume_after_epoch_equals_uninterrupted(tmp_path):
    full = make_trainer(tmp_path / "a", epochs=3)
    full.fit()
    first = make_trainer(tmp_path / "b", epochs=2)
    first.fit()
    second = make_trainer(tmp_path / "b", epochs=3, seed=0)
    second.fit(resume=True)
    for p, q in zip(full.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(p, q)
    log = json.loads((tmp_path / "b" / "log.json").read_text())
    assert [r["epoch"] for r in log["epochs"]] == [1, 2, 3]
    assert [r["train_loss"] for r in log["epochs"]] == full.history.column("train_loss")


def test_resume_mid_epoch_equals_uninterrupted(tmp_path):
    full = make_trainer(tmp_path / "a", epochs=2, checkpoint_every_steps=2)
    full.fit()

    interrupted = make_trainer(tmp_path / "b", epochs=2, checkpoint_every_steps=2)
    real_step = interrupted.train_step

    def crash_at_step_9(x, y):
        if interrupted.global_step == 9:  # mid epoch 2 (6 steps an epoch), after a checkpoint at step 2
            raise KeyboardInterrupt
        return real_step(x, y)

    interrupted.train_step = crash_at_step_9
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    resumed = make_trainer(tmp_path / "b", epochs=2, checkpoint_every_steps=2, seed=0)
    resumed.fit(resume=True)
    for p, q in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(p, q)
    assert [r["epoch"] for r in resumed.history.epochs] == [1, 2]
    assert resumed.history.column("train_loss") == full.history.column("train_loss")
    assert len(list((tmp_path / "b" / "ckpt").glob("*.pt"))) == 2  # keeps the last two


def test_nan_loss_stops_with_step_and_causes(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2)
    with torch.no_grad():
        trainer.model.classifier.weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, step 1.*learning rate too high"):
        trainer.fit()
    assert not list((tmp_path / "ckpt").glob("*.pt"))  # the NaN state was not saved


@pytest.mark.parametrize(
    "kw, words",
    [({"batch_size": 0}, "batch_size must be at least 1"), ({"lr": -0.1}, "lr must be positive"),
     ({"optimizer": "adam"}, "'paper', 'sgd'"), ({"schedule": "cosine"}, "'plateau', 'step', 'constant'")],
)
def test_bad_hyperparameters(kw, words):
    with pytest.raises(ValueError, match=__import__("re").escape(words)):
        TrainConfig(**kw).validate()


def test_plateau_schedule_divides_lr_by_ten(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1, schedule="plateau", plateau_patience=0)
    sched = trainer.scheduler
    sched.step(0.5)
    sched.step(0.6)  # no improvement, patience 0 -> lr / 10
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)


def test_topk_errors_by_hand():
    logits = torch.tensor([[0.1, 0.9, 0.0, 0.0, 0.0, 0.0],
                           [0.9, 0.1, 0.0, 0.0, 0.0, 0.0],
                           [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    targets = torch.tensor([1, 1, 0])
    # row 0: top-1 hit; row 1: top-1 miss, top-5 hit; row 2: class 0 is the lowest: miss both
    assert topk_errors(logits, targets) == {"top1": pytest.approx(2 / 3), "top5": pytest.approx(1 / 3)}


def test_epochs_to_reach():
    assert epochs_to_reach([0.9, 0.5, 0.24, 0.2], 0.25) == 3
    assert epochs_to_reach([0.9, 0.5], 0.25) == float("inf")


def test_channels_last_trains_the_same_net(tmp_path):
    plain = make_trainer(tmp_path / "a", epochs=2)
    plain.fit()
    nhwc = make_trainer(tmp_path / "b", epochs=2, channels_last=True)
    assert nhwc.model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    nhwc.fit()
    # NHWC convolutions sum in another order: after 12 steps the weights differ by the rounding of
    # each step, amplified a little by training; 1e-4 of each tensor's scale, on any CPU's kernels
    for (name, p), q in zip(plain.model.state_dict().items(), nhwc.model.state_dict().values()):
        assert close_relative(q, p, rel=1e-4), name


def test_resumed_log_records_each_resume(tmp_path):
    make_trainer(tmp_path, epochs=1).fit()
    second = make_trainer(tmp_path, epochs=2)
    second.fit(resume=True)
    meta = json.loads((tmp_path / "log.json").read_text())["meta"]
    assert meta["resumed"] is True
    assert [(r["at_epoch"], r["epochs"]) for r in meta["resumes"]] == [(1, 2)]
    assert meta["config"]["epochs"] == 1  # the first command's settings stay as they were


def test_epochs_to_levels_counts_by_hand():
    from alexnet_lib.analysis import epochs_to_levels

    curves = {"a": [[0.9, 0.6, 0.4, 0.3], [0.88, 0.7, 0.5, 0.45]], "b": [[0.95, 0.9, 0.85, 0.5]]}
    # 0.9: run a0 is there after its first epoch -> dropped. 0.85: a0 at epoch 2, a1 at 2, b at 3.
    # 0.5: a0 at 3, a1 at 3, b at 4. 0.45: b never gets there -> dropped.
    levels, at = epochs_to_levels(curves, [0.9, 0.85, 0.5, 0.45])
    assert levels == [0.85, 0.5]
    assert at[0.85] == {"a": [2, 2], "b": [3]}
    assert at[0.5] == {"a": [3, 3], "b": [4]}
    assert epochs_to_levels({}, [0.5]) == ([], {})


def test_metrics_read_back_every_few_steps_add_up_to_the_same_epoch(tmp_path):
    """On a GPU the trainer reads its running sums back every 50 steps instead of every step;
    the epoch's loss and errors must not depend on how often (here forced on the CPU)."""
    every = make_trainer(tmp_path / "a", epochs=2)
    every.fit()
    batched = make_trainer(tmp_path / "b", epochs=2)
    batched.sync_every = 4
    batched.fit()
    for key in ("train_loss", "train_top1", "train_top5"):
        assert batched.history.column(key) == pytest.approx(every.history.column(key), rel=1e-12)


def test_nan_found_at_a_deferred_read_back_names_the_steps_and_saves_nothing(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2)
    trainer.sync_every = 3
    with torch.no_grad():
        trainer.model.classifier.weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, one of steps 1-3"):
        trainer.fit()
    assert not list((tmp_path / "ckpt").glob("*.pt"))


def test_stop_at_train_error_ends_after_the_first_epoch_at_or_below_it(tmp_path):
    run = make_trainer(tmp_path / "a", epochs=4)
    run.fit()
    errors = run.history.column("train_top1")
    # the same run, told to stop at the third epoch's error, ends at the first epoch that got there
    level = errors[2]
    stopped = make_trainer(tmp_path / "b", epochs=4, stop_at_train_error=level)
    stopped.fit()
    assert stopped.stopped_early and len(stopped.history.epochs) == epochs_to_reach(errors, level) <= 3
    assert stopped.history.column("train_top1") == errors[: len(stopped.history.epochs)]
    always = make_trainer(tmp_path / "c", epochs=4, stop_at_train_error=1.0)  # every epoch is at or below 100%
    always.fit()
    assert always.stopped_early and len(always.history.epochs) == 1
    never = make_trainer(tmp_path / "d", epochs=2, stop_at_train_error=0.0)
    never.fit()
    assert not never.stopped_early and len(never.history.epochs) == 2
    with pytest.raises(ValueError, match="stop_at_train_error"):
        TrainConfig(stop_at_train_error=25).validate()


def test_keep_freed_memory_stops_the_page_faults_of_reallocated_large_buffers():
    """Counted by the kernel: minor page faults while a 64 MB buffer is allocated, filled and
    freed five times, before and after keep_freed_memory() (in a fresh process: the setting is
    process-wide). glibc's default maps each such buffer afresh, 16,384 pages a time."""
    import subprocess
    import sys

    code = """
import resource, torch
from alexnet_lib.util import keep_freed_memory
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        t = torch.empty(16 * 2**20)  # 64 MB of float32
        t.fill_(1.0)
        del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults()
default = faults()
kept = keep_freed_memory()
faults(), faults()  # the heap grows until it holds enough freed blocks of this size (alignment varies)
print(default, kept, faults())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    out = proc.stdout.split()
    default, kept, after = int(out[0]), out[1] == "True", int(out[2])
    if not kept:
        pytest.skip("not glibc: keep_freed_memory() does not apply")
    # Every fresh 64 MB buffer faults once per page: 16,384 pages of 4 KB, or only 32 where the
    # kernel backs it with 2 MB transparent huge pages (THP "always"). Both counts are asserted as
    # what they are; what holds everywhere is that reused buffers fault (almost) never.
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    huge_pages = thp.exists() and "[always]" in thp.read_text()
    pages_per_buffer = 64 * 2**20 // (2 * 2**20 if huge_pages else 4096)
    assert default >= 5 * pages_per_buffer * 0.9  # every buffer page-faulted again
    assert after <= 0.05 * default  # the freed buffer is reused


def test_recorded_logs_reads_training_logs_and_leaves_evaluations_out(tmp_path, monkeypatch):
    from alexnet_lib import experiments
    from alexnet_lib.checkpoint import History

    monkeypatch.setenv("ALEXNET_RESULTS", str(tmp_path))
    (tmp_path / "runs").mkdir()
    for name, seed in (("b_seed1.json", 1), ("a_seed0.json", 0)):
        (tmp_path / "runs" / name).write_text(json.dumps(History({"seed": seed}, [{"epoch": 1}]).to_json()))
    (tmp_path / "runs" / "a.eval.json").write_text("{}")
    logs = experiments.recorded_logs("runs")
    assert [p.name for p, _ in logs] == ["a_seed0.json", "b_seed1.json"]
    assert [h.meta["seed"] for _, h in logs] == [0, 1]
    assert experiments.recorded_logs("missing") == []


def test_plateau_divides_the_learning_rate_at_most_three_times(tmp_path):
    """§5: the rate was divided by 10 three times over the run; the schedule stops there."""
    trainer = make_trainer(tmp_path, epochs=1, schedule="plateau", plateau_patience=0)  # lr 0.01
    lrs = []
    for _ in range(8):  # a validation error that never improves
        trainer.scheduler.step(0.5)
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
    # the first epoch sets the best error so far; each later one, without improvement, divides
    assert lrs[:4] == pytest.approx([1e-2, 1e-3, 1e-4, 1e-5]) and lrs[4:] == pytest.approx([1e-5] * 4)
