"""Per-layer costs, tower memory and wiring of AlexNet (§3.2), and the deep plain nets of
He et al. 2015, against counts done by hand and the variance formula of their §2.2."""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from alexnet_lib import viz  # noqa: E402
from alexnet_lib.anatomy import connectivity, layer_costs, stage_functions, time_stages, tower_memory  # noqa: E402
from alexnet_lib.layers import PReLU  # noqa: E402
from alexnet_lib.model import AlexNet, count_parameters  # noqa: E402
from alexnet_lib.optim import parameter_groups  # noqa: E402
from alexnet_lib.parallel import TowerParallel  # noqa: E402
from alexnet_lib.small_nets import PlainNet, plain_init_std  # noqa: E402


# ------------------------------------------------------------------------ AlexNet
def test_multiply_adds_and_parameters_per_layer_by_hand():
    # multiply-adds per image: output positions x output maps x (input maps seen x k x k)
    by_hand = {
        "conv1": 55 * 55 * 96 * (3 * 11 * 11),
        "conv2": 27 * 27 * 256 * (48 * 5 * 5),
        "conv3": 13 * 13 * 384 * (256 * 3 * 3),
        "conv4": 13 * 13 * 384 * (192 * 3 * 3),
        "conv5": 13 * 13 * 256 * (192 * 3 * 3),
        "fc6": 9216 * 4096,
        "fc7": 4096 * 4096,
        "fc8": 4096 * 1000,
    }
    params = {
        "conv1": 96 * 3 * 121 + 96, "conv2": 256 * 48 * 25 + 256, "conv3": 384 * 256 * 9 + 384,
        "conv4": 384 * 192 * 9 + 384, "conv5": 256 * 192 * 9 + 256, "fc6": 9216 * 4096 + 4096,
        "fc7": 4096 * 4096 + 4096, "fc8": 4096 * 1000 + 1000,
    }
    rows = {r["layer"]: r for r in layer_costs(AlexNet())}
    for name in by_hand:
        assert rows[name]["macs"] == by_hand[name], name
        assert rows[name]["params"] == params[name], name
    assert sum(by_hand.values()) == 724_406_816
    assert sum(params.values()) == 60_965_224


def test_one_tower_control_costs_by_hand():
    rows = {r["layer"]: r for r in layer_costs(AlexNet(towers=1))}
    assert rows["conv3"]["params"] == 192 * 128 * 9 + 192  # sees 128 maps, not 256
    assert rows["conv5"]["params"] == 256 * 192 * 9 + 256  # the full conv5
    assert rows["conv3"]["macs"] == 13 * 13 * 192 * 128 * 9


def test_connectivity_read_from_the_weights():
    assert connectivity(AlexNet()) == {
        "conv1": "input", "conv2": "own", "conv3": "all", "conv4": "own", "conv5": "own",
        "fc6": "all", "fc7": "all", "fc8": "all",
    }
    dense = connectivity(AlexNet(tower_isolation=False, width=0.25, input_size=128))
    assert all(v == "all" for k, v in dense.items() if k != "conv1")
    one = connectivity(AlexNet(towers=1, width=0.25, input_size=128))
    assert all(v == "own" for k, v in one.items() if k != "conv1")


def test_tower_parallel_exchanges_exactly_where_the_weights_read_all():
    model = AlexNet(width=0.25, input_size=128, num_classes=10).eval()
    par = TowerParallel(model)
    par(torch.zeros(1, 3, 128, 128))
    exchanged = {layer for layer, *_ in par.transfers if layer != "logits"}
    assert exchanged == {k for k, v in connectivity(model).items() if v == "all"}


def test_tower_memory_by_hand():
    batch = 128
    (a, b) = tower_memory(AlexNet(), batch_size=batch)
    params = (48 * 3 * 121 + 48) + (128 * 48 * 25 + 128) + (192 * 256 * 9 + 192) + (192 * 192 * 9 + 192) \
        + (128 * 192 * 9 + 128) + (9216 * 2048 + 2048) + (4096 * 2048 + 2048) + (4096 * 500 + 500)
    # conv1, lrn1, pool1, conv2, lrn2, pool2, conv3, conv4, conv5, pool5, fc6, fc7, fc8 of one tower
    kept = 2 * 48 * 55 * 55 + 48 * 27 * 27 + 2 * 128 * 27 * 27 + 128 * 13 * 13 + 192 * 169 + 192 * 169 \
        + 128 * 169 + 128 * 6 * 6 + 2048 + 2048 + 500
    for row in (a, b):
        assert row["weights"] == row["weight_gradients"] == row["momentum"] == 4 * params
        assert row["activations"] == row["activation_gradients"] == 4 * batch * kept
        assert row["input"] == 4 * batch * 3 * 224 * 224
    assert a["weights"] + b["weights"] == 4 * 60_965_224


def test_stage_functions_reproduce_the_forward_pass():
    torch.manual_seed(0)
    model = AlexNet(width=0.25, input_size=128, num_classes=10).eval()
    x = torch.randn(2, 3, 128, 128)
    acts = model.activations(x)
    acts["padded"] = torch.nn.functional.pad(x, (0, model.input_pad, 0, model.input_pad))
    # the same operations on the same inputs in the same process: bit for bit equal
    for name, source, fn in stage_functions(model):
        torch.testing.assert_close(fn(acts[source]), acts[name], rtol=0, atol=0, msg=name)
    seconds = time_stages(model, x, repeats=1)
    assert list(seconds) == [n for n, *_ in stage_functions(model)] and all(s >= 0 for s in seconds.values())


def test_tower_diagram_draws_the_crossings_from_the_model():
    def red_arrows(model):
        ax = viz.tower_diagram(model)
        crimson = tuple(round(c, 3) for c in matplotlib.colors.to_rgb("crimson"))
        n = sum(1 for p in ax.patches if type(p).__name__ == "FancyArrowPatch"
                and tuple(round(c, 3) for c in p.get_edgecolor()[:3]) == crimson)
        matplotlib.pyplot.close(ax.figure)
        return n

    assert red_arrows(AlexNet(width=0.25, input_size=128)) == 2 * 4  # conv3, fc6, fc7, fc8: A->B and B->A
    assert red_arrows(AlexNet(width=0.25, input_size=128, towers=1)) == 0
    assert red_arrows(AlexNet(width=0.25, input_size=128, tower_isolation=False)) == 2 * 7


# ---------------------------------------------------------------------- PlainNet
def test_plain_net_structure_and_parameters_by_hand():
    net = PlainNet(depth=7, width=4, stages=3, num_classes=10)
    # 6 convolutions in 3 stages of 2: widths 4, 4 | 8, 8 | 16, 16, then fc 16 -> 10
    expected = (4 * 3 * 9 + 4) + (4 * 4 * 9 + 4) + (8 * 4 * 9 + 8) + (8 * 8 * 9 + 8) \
        + (16 * 8 * 9 + 16) + (16 * 16 * 9 + 16) + (16 * 10 + 10)
    assert count_parameters(net) == expected
    ys = net.pre_activations(torch.zeros(2, 3, 32, 32))
    shapes = [(4, 16, 16), (4, 16, 16), (8, 8, 8), (8, 8, 8), (16, 4, 4), (16, 4, 4), (10,)]
    assert [tuple(y.shape[1:]) for y in ys] == shapes
    assert len(PlainNet(depth=30).convs) == 29


def test_plain_init_std_is_the_papers_formula():
    assert plain_init_std("kaiming", 9 * 64) == math.sqrt(2 / (9 * 64))
    assert plain_init_std("xavier", 9 * 64) == math.sqrt(1 / (9 * 64))
    assert plain_init_std("kaiming", 100, prelu_a=0.25) == math.sqrt(2 / (1.0625 * 100))
    torch.manual_seed(0)
    net = PlainNet(depth=4, width=64, stages=1, init="kaiming", activation="prelu")
    w = net.convs[1].weight
    assert abs(w.std().item() - math.sqrt(2 / (1.0625 * 64 * 9))) < 0.002
    assert all(bool(torch.all(c.bias == 0)) for c in net.convs)


@pytest.mark.parametrize("init, gain", [("kaiming", 1.0), ("xavier", 0.5)])
def test_variance_recursion_of_he_et_al(init, gain):
    """Var[y_L] = Var[y_2] Π_{l=3..L} (n_l / 2) Var[w_l]: the factor is 1 per layer for He
    and 1/2 for Xavier. Averaged over 32 nets (the formula is an expectation over weights),
    with circular padding so every output sees its k²·c inputs."""
    depth, ratios = 8, []
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    for seed in range(32):
        torch.manual_seed(seed)
        net = PlainNet(depth=depth, width=32, stages=1, first_stride=1, init=init, padding_mode="circular")
        with torch.no_grad():
            ys = net.pre_activations(x)[:-1]
        ratios.append((ys[-1].pow(2).mean() / ys[1].pow(2).mean()).item())
    predicted = gain ** (len(ys) - 2)
    measured = sum(ratios) / len(ratios)
    assert 0.8 < measured / predicted < 1.25, (measured, predicted)


def test_plain_net_prelu_coefficients_and_no_weight_decay():
    net = PlainNet(depth=5, width=4, activation="prelu", stages=2)
    coefs = net.prelu_coefficients()
    assert [c.numel() for c in coefs] == [4, 4, 8, 8] and all(torch.all(c == 0.25) for c in coefs)
    shared = PlainNet(depth=5, width=4, activation="prelu-shared", stages=2)
    assert [c.numel() for c in shared.prelu_coefficients()] == [1, 1, 1, 1]
    prelu_ids = {id(m.weight) for m in net.modules() if isinstance(m, PReLU)}
    groups = parameter_groups(net, 5e-4)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert prelu_ids and not prelu_ids & decayed


@pytest.mark.parametrize("kwargs, words", [
    ({"depth": 1}, "depth"), ({"init": "he"}, "'kaiming', 'xavier'"),
    ({"padding_mode": "reflect"}, "'zeros', 'circular'"),
    ({"depth": 3, "stages": 5}, "stages"),
])
def test_plain_net_bad_options(kwargs, words):
    with pytest.raises(ValueError, match=__import__("re").escape(words)):
        PlainNet(**kwargs)
