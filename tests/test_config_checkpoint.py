"""The net's one description (its config) and checkpoints that hold data only.

- ``layer_table`` against Figure 2 counted by hand;
- configs refuse bad options by name;
- a checkpoint loads with ``weights_only=True``, names its model by config, and one that carries
  code (a ``__reduce__`` payload) or was written in the old, pickled format is refused unopened;
- the resume rules live on ``TrainConfig``'s fields.
"""

import dataclasses
import math
import pickle

import pytest
import torch

from alexnet_lib.checkpoint import UnsafeCheckpointError, load_checkpoint, load_latest_checkpoint, resume_rules
from alexnet_lib.model import AlexNet, AlexNetConfig, count_parameters, layer_table
from alexnet_lib.recipes import build_model, config_from_dict, model_config
from alexnet_lib.small_nets import CifarNet, CifarNetConfig
from alexnet_lib.train import TrainConfig
from alexnet_lib.transforms import Augment

from .helpers import make_trainer


# ------------------------------------------------------------------ Figure 2 from the config
def test_layer_table_is_figure_2_counted_by_hand():
    rows = {r["layer"]: r for r in layer_table(AlexNetConfig())}
    # (out channels per tower, in channels a tower's share reads, kernel side), paper Figure 2
    by_hand = {"conv1": (48, 3, 11), "conv2": (128, 48, 5), "conv3": (192, 256, 3), "conv4": (192, 192, 3),
               "conv5": (128, 192, 3), "fc6": (2048, 256 * 6 * 6, 1), "fc7": (2048, 4096, 1),
               "fc8": (500, 4096, 1)}
    for name, (out, inp, k) in by_hand.items():
        assert rows[name]["params_per_tower"] == [out * inp * k * k + out] * 2, name
    assert [rows[n]["output"] for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [
        (96, 55, 55), (256, 27, 27), (384, 13, 13), (384, 13, 13), (256, 13, 13)]
    assert [rows[n]["reads"] for n in rows] == ["input", "own", "all", "own", "own", "all", "all", "all"]
    assert sum(r["params"] for r in rows.values()) == 60_965_224  # the paper's net, REFERENCE §1
    dense = layer_table(AlexNetConfig(tower_isolation=False))
    assert sum(r["params"] for r in dense) == 62_378_344


@pytest.mark.parametrize("options", [dict(num_classes=10, width=0.25, activation="prelu"),
                                     dict(towers=1, activation="prelu-shared"), dict(input_size=227)])
def test_layer_table_adds_up_to_the_built_nets_parameters(options):
    config = AlexNetConfig(**options)
    assert sum(r["params"] for r in layer_table(config)) == count_parameters(AlexNet(config))


@pytest.mark.parametrize("bad, words", [
    (dict(width=math.nan), "width"), (dict(width=-1), "width"), (dict(towers=3), "towers"),
    (dict(num_classes=0), "num_classes"), (dict(input_size=40), "input_size=40 is too small"),
    (dict(pooling="avg"), "pooling"), (dict(dropout=1.0), "dropout"),
])
def test_alexnet_config_names_the_bad_option(bad, words):
    with pytest.raises(ValueError, match=words):
        AlexNetConfig(**bad)


def test_cifar_config_names_the_bad_option():
    with pytest.raises(ValueError, match="width"):
        CifarNetConfig("fig1", width=math.nan)
    with pytest.raises(ValueError, match="kind"):
        CifarNetConfig("resnet")
    with pytest.raises(ValueError, match="num_classes"):
        build_model("cifar-fig1", -3)


def test_a_model_keeps_its_config_and_is_rebuilt_from_it_as_plain_data():
    config = model_config("cifar-lrn-pair", 10, lrn=False, input_size=24, pool_rounding="ceil")
    model = build_model(config)
    assert isinstance(model, CifarNet) and model.config == config
    blob = {"family": "cifar", **dataclasses.asdict(config)}
    assert config_from_dict(blob) == config
    with pytest.raises(ValueError, match="does not know: colour"):
        config_from_dict({**blob, "colour": True})
    assert AlexNet(num_classes=10, width=0.25).config == AlexNetConfig(num_classes=10, width=0.25)


# ------------------------------------------------------------------ checkpoints hold data only
def _trained_checkpoint(tmp_path):
    make_trainer(tmp_path, epochs=1).fit()
    return load_latest_checkpoint(tmp_path / "ckpt")


def test_a_checkpoint_loads_with_weights_only_and_names_its_model_by_config(tmp_path):
    state, path = _trained_checkpoint(tmp_path)
    plain = torch.load(path, weights_only=True)  # PyTorch's own safe loader reads it, nothing else needed
    assert plain["format"] == 2
    assert plain["model_description"]["config"] == {"family": "cifar",
                                                    **dataclasses.asdict(CifarNetConfig("fig1", width=0.25))}
    assert plain["evaluation"]["augment"]["crop"] == 32


class Payload:
    """An object whose unpickling would run code: here, write a file."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_a_checkpoint_that_carries_code_is_refused_unopened(tmp_path):
    state, _ = _trained_checkpoint(tmp_path)
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil" / "ckpt-e0001-s0000000.pt"
    evil.parent.mkdir()
    torch.save({**state, "history": Payload(marker)}, evil)
    with pytest.raises(UnsafeCheckpointError, match="holds code, not only data.*it is not loaded"):
        load_checkpoint(evil)
    with pytest.raises(UnsafeCheckpointError, match="holds code"):
        load_latest_checkpoint(evil.parent)  # not skipped as merely unreadable
    assert not marker.exists()
    # the same object, pickled plainly, does run: the refusal is what kept it from running
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_a_checkpoint_of_the_old_pickled_format_says_what_to_do(tmp_path):
    state, _ = _trained_checkpoint(tmp_path)
    old = tmp_path / "old.pt"
    kit = {"augment": Augment(crop=32, mean=torch.zeros(3, 1, 1))}  # the old format pickled library objects
    torch.save({k: v for k, v in state.items() if k != "format"} | {"evaluation": kit}, old)
    with pytest.raises(UnsafeCheckpointError, match="older version of alexnet_lib.*the version that wrote it"):
        load_checkpoint(old)


# ------------------------------------------------------------------ resume rules on the fields
def test_resume_rules_are_the_fields_metadata():
    rules = resume_rules(TrainConfig())
    # written out: what decides every step must match; how long and how the run goes may change
    assert set(rules["same"]) == {"batch_size", "momentum", "weight_decay", "optimizer", "schedule", "milestones",
                                  "plateau_patience", "max_lr_drops", "seed", "eval_every", "mode", "recipe"}
    assert {"lr", "epochs", "device", "stop_at_train_error", "channels_last"} <= set(rules["may change"])
    assert not {"checkpoint_dir", "log_path", "progress", "label"} & set(rules["same"] + rules["may change"])
