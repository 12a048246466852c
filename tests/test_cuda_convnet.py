"""cuda-convnet's CIFAR-10 recipe against the numbers of its files (REFERENCE §2), written out here.

layers-conv-local-13pct.cfg: initW conv1 0.0001, conv2 0.01, local3 0.04, local4 0.04, fc10 0.01.
layers-18pct.cfg (the Figure 1 net): initW conv1 0.0001, conv2 0.01, conv3 0.01, fc10 0.01.
layer-params-conv-local-13pct.cfg: epsW 0.001, epsB 0.002, mom 0.9, wc 0 / 0 / 0.004 / 0.004 / 0.004.
Methodology: 100 epochs with batch 5 held out, to 140 on all, ÷10 to 150, ÷10 to 160.
convdata.py: nine 24x24 test crops at offsets 0, 4, 8 each way, no flips.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from alexnet_lib.cuda_convnet import (
    SCHEDULES,
    evaluate_multiview,
    holdout_split,
    init_cuda_convnet,
    lr_factor_at,
    make_scheduler,
    multiview_crops,
    multiview_probs,
    multiview_windows,
    parameter_groups,
    phase_at,
    total_epochs,
    uses_holdout_at,
)
from alexnet_lib.optim import PaperSGD
from alexnet_lib.small_nets import CifarNet


def lrn_pair(lrn=True):
    return CifarNet("lrn-pair", lrn=lrn, input_size=24, pool_rounding="ceil")


def layer_params(net):
    """(weight, bias) of conv1, conv2, local3, local4, fc10, picked out by position by hand."""
    f = net.features
    return {"conv1": f[0], "conv2": f[4], "local3": f[8], "local4": f[10], "fc10": net.classifier}


def test_the_layers_are_found_where_the_net_keeps_them():
    net = lrn_pair(lrn=False)
    groups = parameter_groups(net)
    by_layer = {(g["layer"], g["kind"]): g["params"][0] for g in groups}
    for name, module in layer_params(net).items():
        assert by_layer[name, "weight"] is module.weight
        assert by_layer[name, "bias"] is module.bias
    assert len(groups) == 10


def test_weight_decay_and_rates_are_the_layer_params_file():
    groups = parameter_groups(lrn_pair())
    wc = {g["layer"]: g["weight_decay"] for g in groups if g["kind"] == "weight"}
    assert wc["conv1"] == 0.0 and wc["conv2"] == 0.0  # exactly zero on the convolutions
    assert wc == {"conv1": 0.0, "conv2": 0.0, "local3": 0.004, "local4": 0.004, "fc10": 0.004}
    for g in groups:
        if g["kind"] == "bias":
            assert g["weight_decay"] == 0.0 and g["lr"] == 0.002
        else:
            assert g["lr"] == 0.001
        assert g["momentum"] == 0.9
    assert groups[0]["kind"] == "weight"  # param_groups[0]["lr"], what the trainer logs, is epsW


def test_init_stds_measured_on_a_built_net():
    torch.manual_seed(0)
    net = init_cuda_convnet(lrn_pair())
    expected = {"conv1": 1e-4, "conv2": 1e-2, "local3": 4e-2, "local4": 4e-2, "fc10": 1e-2}
    for name, module in layer_params(net).items():
        w = module.weight.detach().double().flatten()
        n, sigma = w.numel(), expected[name]
        # sampling error of a Gaussian's std and mean from n draws: sigma/sqrt(2n) and sigma/sqrt(n)
        assert abs(w.std().item() - sigma) < 5 * sigma / math.sqrt(2 * n), name
        assert abs(w.mean().item()) < 5 * sigma / math.sqrt(n), name
        assert torch.count_nonzero(module.bias) == 0, name


def test_figure1_net_starts_from_layers_18pct_init_and_the_default_is_untouched():
    torch.manual_seed(0)
    net = CifarNet("fig1", activation="tanh", init="cuda-convnet")
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(32, 3, 5, 5), (32, 32, 5, 5), (64, 32, 5, 5)]
    expected = [(convs[0], 1e-4), (convs[1], 1e-2), (convs[2], 1e-2), (net.classifier, 1e-2)]
    for i, (module, sigma) in enumerate(expected):
        w = module.weight.detach().double().flatten()
        n = w.numel()
        assert abs(w.std().item() - sigma) < 5 * sigma / math.sqrt(2 * n), i
        assert abs(w.mean().item()) < 5 * sigma / math.sqrt(n), i
        assert torch.count_nonzero(module.bias) == 0, i
    # PyTorch's default: uniform on ±1/sqrt(fan-in), std 1/sqrt(3 fan-in); conv1's fan-in is 3·5·5 = 75
    w = CifarNet("fig1", activation="tanh").features[0].weight.detach().double()
    assert abs(w.std().item() - 1 / math.sqrt(3 * 75)) < 0.1 / math.sqrt(3 * 75)
    assert w.abs().max().item() <= 1 / math.sqrt(75)


def test_the_recipe_refuses_other_nets():
    with pytest.raises(ValueError, match="lrn-pair"):
        parameter_groups(CifarNet("fig1"))
    with pytest.raises(ValueError, match="relu"):
        parameter_groups(CifarNet("lrn-pair", activation="prelu", input_size=24))


def test_paper_sgd_steps_with_the_groups_written_out_by_hand():
    torch.manual_seed(0)
    net = lrn_pair()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p))  # unit weights: the decay term eps·wc·w is far above float rounding
    opt = PaperSGD(parameter_groups(net), lr=0.001, momentum=0.9, weight_decay=0.0)
    # a conv weight (wc 0, epsW), a local weight (wc 0.004, epsW) and a bias (no wc, epsB)
    watched = {"conv1": (net.features[0].weight, 0.001, 0.0), "local3": (net.features[8].weight, 0.001, 0.004),
               "local3 bias": (net.features[8].bias, 0.002, 0.0)}
    w = {k: p.detach().clone() for k, (p, _, _) in watched.items()}
    v = {k: torch.zeros_like(p) for k, (p, _, _) in watched.items()}
    for _ in range(2):  # the second step carries the first one's momentum
        for p in net.parameters():
            p.grad = torch.randn_like(p)
        g = {k: p.grad.clone() for k, (p, _, _) in watched.items()}
        opt.step()
        for k, (p, eps, wc) in watched.items():
            v[k] = 0.9 * v[k] - eps * (wc * w[k] + g[k])  # cuda-convnet: inc = mom inc - eps (wc w + grad)
            w[k] = w[k] + v[k]  # w = w + inc
            assert torch.allclose(opt.state[p]["velocity"], v[k], rtol=1e-5, atol=1e-9), k
            assert torch.allclose(p, w[k], rtol=1e-6, atol=1e-7), k


def test_the_schedules_as_the_methodology_gives_them():
    assert total_epochs("13pct") == 160  # 100 + 40 + 10 + 10
    assert total_epochs("11pct") == 470  # 300 + 150 + 10 + 10
    # 0-based epochs: 0..99 without the hold-out, 100..139 on all, 140..149 at /10, 150..159 at /100
    assert [uses_holdout_at("13pct", e) for e in (0, 99, 100, 159)] == [True, True, False, False]
    assert [lr_factor_at("13pct", e) for e in (0, 139, 140, 149, 150, 159)] == [1, 1, 0.1, 0.1, 0.01, 0.01]
    assert phase_at("11pct", 299).train_set == "without-holdout" and phase_at("11pct", 300).train_set == "all"
    assert lr_factor_at("11pct", 450) == 0.1 and lr_factor_at("11pct", 469) == 0.01
    with pytest.raises(ValueError, match="outside"):
        phase_at("13pct", 160)
    assert SCHEDULES["13pct"][0].epochs == 100


@pytest.mark.parametrize("divide_eps_b", [False, True])
def test_the_scheduler_divides_eps_w_and_eps_b_only_when_asked(divide_eps_b):
    net = lrn_pair()
    opt = PaperSGD(parameter_groups(net, divide_eps_b=divide_eps_b), lr=0.001, momentum=0.9, weight_decay=0.0)
    scheduler = make_scheduler(opt, "13pct")
    seen = []
    for _ in range(160):
        seen.append({g["kind"]: g["lr"] for g in opt.param_groups})
        opt.step()  # no gradients: changes nothing, keeps the order the trainer uses
        scheduler.step()
    weight = [0.001] * 140 + [0.0001] * 10 + [0.00001] * 10
    bias = [0.002] * 140 + ([0.0002] * 10 + [0.00002] * 10 if divide_eps_b else [0.002] * 20)
    assert [s["weight"] for s in seen] == pytest.approx(weight, rel=1e-9)
    assert [s["bias"] for s in seen] == pytest.approx(bias, rel=1e-9)


def test_the_nine_windows_are_offsets_0_4_8_each_way():
    assert multiview_windows() == [(0, 0), (0, 4), (0, 8), (4, 0), (4, 4), (4, 8), (8, 0), (8, 4), (8, 8)]
    x = torch.arange(2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    crops = multiview_crops(x)
    assert crops.shape == (2, 9, 3, 24, 24)
    assert torch.equal(crops[:, 0], x[:, :, 0:24, 0:24])
    assert torch.equal(crops[:, 2], x[:, :, 0:24, 8:32])
    assert torch.equal(crops[:, 4], x[:, :, 4:28, 4:28])
    assert torch.equal(crops[:, 6], x[:, :, 8:32, 0:24])
    assert torch.equal(crops[:, 8], x[:, :, 8:32, 8:32])
    assert multiview_windows(12, 8) == [(t, s) for t in (0, 2, 4) for s in (0, 2, 4)]  # crop_border 2
    with pytest.raises(ValueError, match="offsets"):
        multiview_windows(32, 24, offsets=(0, 9))


def tiny_net():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 22 * 22, 10))
    with torch.no_grad():
        net[0].weight.mul_(0.01)  # logits of a few units on 0..255 pixels: no softmax saturates
    return net


@pytest.mark.parametrize("mean_window", ["same", "centre"])
def test_multiview_is_the_average_of_nine_softmaxes_written_out(mean_window):
    net = tiny_net()
    torch.manual_seed(2)
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    mean = torch.rand(3, 32, 32) * 255
    probs = multiview_probs(net, images, mean, mean_window=mean_window, batch_size=2)
    total = 0
    for top in (0, 4, 8):
        for left in (0, 4, 8):
            m = mean[:, top : top + 24, left : left + 24] if mean_window == "same" else mean[:, 4:28, 4:28]
            x = images[:, :, top : top + 24, left : left + 24].float() - m
            total = total + F.softmax(net(x), dim=1)
    assert torch.allclose(probs, total / 9, atol=1e-6)
    labels = torch.tensor([0, 1, 2, 3, 4])
    result = evaluate_multiview(net, images, labels, mean, mean_window=mean_window)
    expected = total / 9
    assert result["top1"] == pytest.approx((expected.argmax(1) != labels).float().mean().item())
    assert result["loss"] == pytest.approx(-expected[torch.arange(5), labels].log().mean().item(), rel=1e-5)


def cifar_like_labels():
    g = torch.Generator().manual_seed(3)
    return (torch.arange(50_000) % 10)[torch.randperm(50_000, generator=g)]


def test_the_holdout_is_balanced_disjoint_and_covers_everything():
    labels = cifar_like_labels()
    train, held = holdout_split(labels)
    assert len(held) == 10_000 and len(train) == 40_000
    assert torch.equal(torch.bincount(labels[held], minlength=10), torch.full((10,), 1000))
    assert torch.equal(torch.bincount(labels[train], minlength=10), torch.full((10,), 4000))
    assert len(set(train.tolist()) & set(held.tolist())) == 0
    assert torch.equal(torch.cat([train, held]).sort().values, torch.arange(50_000))


def test_the_holdout_is_fixed_by_its_seed():
    labels = cifar_like_labels()
    assert torch.equal(holdout_split(labels, seed=0)[1], holdout_split(labels, seed=0)[1])
    assert not torch.equal(holdout_split(labels, seed=0)[1], holdout_split(labels, seed=1)[1])
    with pytest.raises(ValueError, match="multiple"):
        holdout_split(labels, size=10_005)
