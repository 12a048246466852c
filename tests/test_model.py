"""The two-tower AlexNet against counts done by hand and gradients that prove connectivity."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from alexnet_lib.model import AlexNet, count_parameters
from alexnet_lib.parallel import TowerParallel
from alexnet_lib.small_nets import CifarNet

from .helpers import close_relative


def conv(cin, cout, k):
    return cout * cin * k * k + cout


def fc(nin, nout):
    return nin * nout + nout


def test_parameter_count_two_towers_by_hand():
    # Per tower: conv1 sees RGB, conv2/4/5 their own tower, conv3 both; fc layers dense.
    towers = 2 * (conv(3, 48, 11) + conv(48, 128, 5) + conv(256, 192, 3) + conv(192, 192, 3) + conv(192, 128, 3))
    dense = fc(6 * 6 * 256, 4096) + fc(4096, 4096) + fc(4096, 1000)
    assert towers + dense == 60_965_224
    assert count_parameters(AlexNet()) == 60_965_224


def test_parameter_count_dense_and_one_tower_by_hand():
    dense = conv(3, 96, 11) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3) + conv(384, 256, 3)
    fcs = fc(9216, 4096) + fc(4096, 4096) + fc(4096, 1000)
    assert dense + fcs == 62_378_344
    assert count_parameters(AlexNet(tower_isolation=False)) == 62_378_344
    # §3.2 footnote: half the kernels in conv1..conv4, the full conv5 and fc layers.
    one = conv(3, 48, 11) + conv(48, 128, 5) + conv(128, 192, 3) + conv(192, 192, 3) + conv(192, 256, 3)
    assert count_parameters(AlexNet(towers=1)) == one + fcs == 59_798_312


@pytest.mark.parametrize("size", [224, 227])
def test_shapes_at_every_stage(size):
    model = AlexNet(input_size=size).eval()
    acts = model.activations(torch.zeros(1, 3, size, size))
    expected = {
        "conv1": (96, 55, 55), "lrn1": (96, 55, 55), "pool1": (96, 27, 27),
        "conv2": (256, 27, 27), "lrn2": (256, 27, 27), "pool2": (256, 13, 13),
        "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13), "pool5": (256, 6, 6),
        "fc6": (4096,), "fc7": (4096,), "fc8": (1000,),
    }
    for name, shape in expected.items():
        assert tuple(acts[name].shape[1:]) == shape, name
    assert acts["pool5"].flatten(1).shape[1] == 9216
    assert model.input_pad == (3 if size == 224 else 0)


def test_ceil_rule_pads_right_and_bottom_only():
    """A 224 input padded by 3 px of zeros right/bottom gives the same conv1 as feeding
    that 227 image to an unpadded (227) model with the same weights."""
    m224, m227 = AlexNet(input_size=224).eval(), AlexNet(input_size=227).eval()
    m227.load_state_dict(m224.state_dict())
    x = torch.randn(1, 3, 224, 224)
    x227 = torch.nn.functional.pad(x, (0, 3, 0, 3))
    assert torch.equal(m224.activations(x)["conv1"], m227.activations(x227)["conv1"])


def _grad_of(out, inp, channels):
    (g,) = torch.autograd.grad(out[:, channels].sum(), inp, retain_graph=True)
    return g


def test_tower_isolation_proven_by_gradients():
    torch.manual_seed(0)
    model = AlexNet(dropout=0.0, init="kaiming").eval()
    a = model.activations(torch.randn(2, 3, 224, 224))
    A, B = slice(0, 48), slice(48, 96)  # conv1 maps of tower A and B
    g = _grad_of(a["conv2"], a["pool1"], slice(0, 128))  # tower A's conv2
    assert g[:, B].abs().max() == 0 and g[:, A].abs().max() > 0
    g = _grad_of(a["conv2"], a["pool1"], slice(128, 256))  # tower B's conv2
    assert g[:, A].abs().max() == 0 and g[:, B].abs().max() > 0
    g = _grad_of(a["conv4"], a["conv3"], slice(0, 192))
    assert g[:, 192:].abs().max() == 0 and g[:, :192].abs().max() > 0
    g = _grad_of(a["conv5"], a["conv4"], slice(128, 256))
    assert g[:, :192].abs().max() == 0 and g[:, 192:].abs().max() > 0
    # conv3 and fc6 mix the towers: tower A's units depend on tower B's maps.
    g = _grad_of(a["conv3"], a["pool2"], slice(0, 192))
    assert g[:, 128:].abs().max() > 0 and g[:, :128].abs().max() > 0
    g = _grad_of(a["fc6"], a["pool5"], slice(0, 2048))
    assert g[:, 128:].abs().max() > 0
    # LRN stays inside a tower: tower A's normalised maps do not depend on tower B's.
    g = _grad_of(a["lrn1"], a["conv1"], A)
    assert g[:, B].abs().max() == 0


def test_dense_variant_mixes_towers_everywhere():
    torch.manual_seed(0)
    model = AlexNet(dropout=0.0, tower_isolation=False, init="kaiming").eval()
    a = model.activations(torch.randn(1, 3, 224, 224))
    g = _grad_of(a["conv4"], a["conv3"], slice(0, 192))
    assert g[:, 192:].abs().max() > 0


def test_paper_init_std_and_biases():
    torch.manual_seed(0)
    model = AlexNet()
    for tower in model.towers:
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
            layer = getattr(tower, name)
            assert abs(layer.weight.std().item() - 0.01) < 0.001, name
            assert abs(layer.weight.mean().item()) < 0.001, name
            expected_bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
            assert torch.all(layer.bias == expected_bias), name
    caffe = AlexNet(init="caffe")
    assert torch.all(caffe.towers[0].conv2.bias == 0.1) and torch.all(caffe.towers[0].conv1.bias == 0)


def test_kaiming_and_xavier_std_from_fan_in():
    torch.manual_seed(0)
    he, xavier = AlexNet(init="kaiming"), AlexNet(init="xavier")
    fan_in = 48 * 5 * 5  # conv2 of one tower sees 48 maps through 5x5 kernels
    assert abs(he.towers[0].conv2.weight.std().item() - (2 / fan_in) ** 0.5) < 0.002
    assert abs(xavier.towers[0].conv2.weight.std().item() - (1 / fan_in) ** 0.5) < 0.002
    prelu = AlexNet(init="kaiming", activation="prelu")
    fan_in = 256 * 3 * 3
    assert abs(prelu.towers[0].conv3.weight.std().item() - (2 / (1.0625 * fan_in)) ** 0.5) < 0.002


def test_one_tower_control_shapes():
    model = AlexNet(towers=1).eval()
    a = model.activations(torch.zeros(1, 3, 224, 224))
    assert a["conv1"].shape[1] == 48 and a["conv4"].shape[1] == 192 and a["conv5"].shape[1] == 256
    assert a["fc6"].shape[1] == 4096


def test_width_and_small_input():
    model = AlexNet(num_classes=10, width=0.25, input_size=128)
    assert model(torch.zeros(2, 3, 128, 128)).shape == (2, 10)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"towers": 3}, "towers must be 1 or 2"),
        ({"activation": "gelu"}, "'relu', 'tanh'"),
        ({"lrn_alpha_convention": "torch"}, "'cuda-convnet', 'paper-literal'"),
        ({"pooling": "average"}, "'overlapping', 'non-overlapping'"),
        ({"init": "he"}, "'paper', 'caffe', 'xavier', 'kaiming'"),
        ({"dropout": 1.0}, "[0, 1)"),
        ({"dropout": -0.1}, "[0, 1)"),
        ({"input_size": 40}, "too small"),
    ],
)
def test_bad_options_list_valid_values(kwargs, words):
    with pytest.raises(ValueError, match=__import__("re").escape(words)):
        AlexNet(**kwargs)


def test_wrong_input_size_says_what_is_expected():
    model = AlexNet()
    with pytest.raises(ValueError, match=r"expects a batch of shape \(N, 3, 224, 224\).*ceil rule.*227"):
        model(torch.zeros(1, 3, 256, 256))


def test_prelu_model_runs_and_shared_has_one_coefficient_per_layer():
    shared = AlexNet(activation="prelu-shared", num_classes=10, width=0.25, input_size=128)
    assert shared.towers[0].act["conv1"].weight.numel() == 1
    wise = AlexNet(activation="prelu", num_classes=10, width=0.25, input_size=128)
    assert wise.towers[0].act["conv1"].weight.numel() == wise.towers[0].conv1.out_channels
    for m in (shared, wise):
        assert m(torch.randn(2, 3, 128, 128)).shape == (2, 10)


def test_tower_parallel_equals_single_device_forward_and_gradients():
    torch.manual_seed(0)
    model = AlexNet(dropout=0.0, init="kaiming", num_classes=10, width=0.5)
    x = torch.randn(2, 3, 224, 224)
    ref = model(x)
    ref.square().sum().backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    par = TowerParallel(model)
    out = par(x)
    out.square().sum().backward()
    assert close_relative(out, ref)
    for (name, p), g in zip(model.named_parameters(), ref_grads):
        assert close_relative(p.grad, g), name
    # Exchanged bytes: conv3 input (pool2 maps), fc6 input (pool5), fc7, fc8 inputs, each way.
    n, f = 2, 4
    per_way = (64 * 13 * 13 + 64 * 6 * 6 + 1024 + 1024) * n * f
    assert par.bytes_transferred() == 2 * per_way + 5 * n * f


class QueuedMasks(nn.Module):
    """Dropout whose masks the test draws beforehand: each call takes the next mask in the
    queue and keeps the masked units, scaled by 1/(1-p) as inverted dropout does."""

    def __init__(self, masks, p=0.5):
        super().__init__()
        self.masks, self.p = list(masks), p

    def forward(self, x):
        mask = self.masks.pop(0)
        assert mask.shape == x.shape, (mask.shape, x.shape)
        return x * mask / (1 - self.p)


def test_tower_parallel_equals_fused_model_with_dropout_on():
    """With the same dropout masks, the towers run apart give the fused model's outputs and
    gradients: the parallel path puts dropout where the paper does (fc6 and fc7 outputs)."""
    torch.manual_seed(0)
    model = AlexNet(num_classes=10, width=0.25, input_size=99, init="kaiming").double()
    x = torch.randn(3, 3, 99, 99, dtype=torch.double)
    half = model.towers[0].fc6.out_features
    m6, m7 = (torch.rand(3, 2 * half, dtype=torch.double) < 0.5).double(), (torch.rand(3, 2 * half) < 0.5).double()
    model.train()
    model.drop = QueuedMasks([m6, m7])
    ref = model(x)
    ref.square().sum().backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    # apart, each tower drops its own half of the units: tower A's half first, as it runs first
    model.drop = QueuedMasks([m6[:, :half], m6[:, half:], m7[:, :half], m7[:, half:]])
    out = TowerParallel(model)(x)
    out.square().sum().backward()
    assert not model.drop.masks, "every mask was used"
    assert close_relative(out, ref, rel=1e-12)
    for (name, p), g in zip(model.named_parameters(), ref_grads):
        assert close_relative(p.grad, g, rel=1e-12), name
    # and dropout really acted: the same net without it gives other outputs
    model.drop = nn.Identity()
    assert not close_relative(model(x), ref, rel=1e-3)


def test_cifar_nets():
    for kind in ("fig1", "lrn-pair"):
        for act in ("relu", "tanh"):
            net = CifarNet(kind, activation=act, lrn=(kind == "lrn-pair"))
            assert net(torch.zeros(3, 3, 32, 32)).shape == (3, 10)
    with_lrn, without = CifarNet("lrn-pair", lrn=True), CifarNet("lrn-pair", lrn=False)
    assert count_parameters(with_lrn) == count_parameters(without)  # LRN has no parameters
    assert sum(type(m).__name__ == "LocalResponseNorm" for m in with_lrn.modules()) == 2


def test_split_tower_convolutions_equal_the_grouped_ones_outputs_and_gradients():
    """tower_convs="split" runs conv2/4/5 as one convolution per tower: the same function."""
    torch.manual_seed(0)
    grouped = AlexNet(num_classes=10, width=0.25, input_size=67, dropout=0.0).double()
    split = AlexNet(num_classes=10, width=0.25, input_size=67, dropout=0.0, tower_convs="split").double()
    split.load_state_dict(grouped.state_dict())
    x = torch.randn(3, 3, 67, 67, dtype=torch.double)
    ya, yb = grouped(x), split(x)
    # float64, the same sums split differently: 1e-10 of each tensor's scale is far above rounding
    assert close_relative(yb, ya, rel=1e-10)
    ya.square().sum().backward()
    yb.square().sum().backward()
    for (name, p), q in zip(grouped.named_parameters(), split.parameters()):
        assert close_relative(q.grad, p.grad, rel=1e-10), name
    with pytest.raises(ValueError, match="'grouped', 'split'"):
        AlexNet(tower_convs="dense")


def test_ceil_rounded_pooling_gives_both_cifar_poolings_the_same_maps():
    """32 -> 16 -> 8 -> 4 for z=3, s=2 with cuda-convnet's ceil rule (ceil(29/2) + 1 = 16, then
    ceil(13/2) + 1 = 8, ceil(5/2) + 1 = 4), as for z=2, s=2: 64 x 4 x 4 = 1024 classifier inputs."""
    for pooling in ("overlapping", "non-overlapping"):
        net = CifarNet("fig1", pooling=pooling, pool_rounding="ceil")
        x, sizes = torch.zeros(1, 3, 32, 32), []
        for layer in net.features:
            x = layer(x)
            if isinstance(layer, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)):
                sizes.append(x.shape[-1])
        assert sizes == [16, 8, 4] and net.classifier.in_features == 1024, pooling
    assert CifarNet("fig1", pooling="overlapping").classifier.in_features == 64 * 3 * 3  # floor: 15, 7, 3
    with pytest.raises(ValueError, match="'floor', 'ceil'"):
        CifarNet(pool_rounding="round")


def _poolings(net):
    return [(type(m).__name__, m.kernel_size, m.stride) for m in net.features
            if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]


def test_the_pooling_switch_changes_the_max_poolings_only():
    """§3.4 compares max poolings, z=3, s=2 against z=2, s=2. Counted by hand from the nets'
    definitions: the Figure 1 net pools max, average, average (cuda-convnet's layers-18pct), and
    only its max pooling follows ``pooling``; the lrn-pair net's two poolings are both max."""
    assert _poolings(CifarNet("fig1")) == [("MaxPool2d", 3, 2), ("AvgPool2d", 3, 2), ("AvgPool2d", 3, 2)]
    assert _poolings(CifarNet("fig1", pooling="non-overlapping")) == [
        ("MaxPool2d", 2, 2), ("AvgPool2d", 3, 2), ("AvgPool2d", 3, 2)]
    assert _poolings(CifarNet("lrn-pair")) == [("MaxPool2d", 3, 2)] * 2
    assert _poolings(CifarNet("lrn-pair", pooling="non-overlapping")) == [("MaxPool2d", 2, 2)] * 2
    # floor rule: 32 -> (32 - 2) // 2 + 1 = 16 -> (16 - 3) // 2 + 1 = 7 -> (7 - 3) // 2 + 1 = 3
    assert CifarNet("fig1", pooling="non-overlapping").classifier.in_features == 64 * 3 * 3


def test_the_non_overlapping_figure_1_net_computes_max_2_2_then_average_3_2():
    """The forward pass written out with torch.nn.functional: conv, ReLU, max pooling 2/2, conv,
    ReLU, average pooling 3/2, conv, ReLU, average pooling 3/2 (cuda-convnet's ceil rule), fc10."""
    torch.manual_seed(0)
    net = CifarNet("fig1", pooling="non-overlapping", pool_rounding="ceil").double()
    conv1, conv2, conv3 = [m for m in net.features if isinstance(m, nn.Conv2d)]
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    h = F.max_pool2d(F.relu(F.conv2d(x, conv1.weight, conv1.bias, padding=2)), 2, 2, ceil_mode=True)
    h = F.avg_pool2d(F.relu(F.conv2d(h, conv2.weight, conv2.bias, padding=2)), 3, 2, ceil_mode=True)
    h = F.avg_pool2d(F.relu(F.conv2d(h, conv3.weight, conv3.bias, padding=2)), 3, 2, ceil_mode=True)
    assert h.shape[1:] == (64, 4, 4)
    expected = F.linear(h.flatten(1), net.classifier.weight, net.classifier.bias)
    assert close_relative(net(x), expected, rel=1e-12)


def test_the_lrn_pair_on_24x24_crops_has_cuda_convnets_map_sizes():
    # 24x24 crops: conv 5x5 pad 2 keeps 24; a 3/2 pooling that keeps the last partial window gives
    # ceil((24 - 3) / 2) + 1 = 12, then 6 (cuda-convnet's rule); the local layers keep 6x6
    net = CifarNet("lrn-pair", lrn=True, input_size=24, pool_rounding="ceil").eval()
    shapes = []
    for layer in net.features:
        layer.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    assert net(torch.zeros(2, 3, 24, 24)).shape == (2, 10)
    pools = [s for s, layer in zip(shapes, net.features) if isinstance(layer, torch.nn.MaxPool2d)]
    assert pools == [(64, 12, 12), (64, 6, 6)]
    assert net.classifier.in_features == 32 * 6 * 6
    with pytest.raises(ValueError, match=r"expects a batch of shape \(N, 3, 24, 24\)"):
        net(torch.zeros(1, 3, 32, 32))
