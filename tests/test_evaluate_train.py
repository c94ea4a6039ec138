"""Trained evaluators: real (tiny) training on digits, settings validation, dataset inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import require_module

torch = require_module("torch")

from hwnas.evaluate.base import Evaluator  # noqa: E402
from hwnas.evaluate.train import PROXY_DEFAULTS, ProxyEvaluator, TrainEvaluator, TrainSettings  # noqa: E402
from hwnas.space import MacroSpace, NB201Space  # noqa: E402

TINY = TrainSettings(epochs=1, channels=4, cells=1, subsample=0.3, lr=1e-2, batch_size=16)
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


pytestmark = pytest.mark.usefixtures("torch_one_thread")



@pytest.fixture(scope="module")
def nb201() -> NB201Space:
    return NB201Space()


def test_conv_cell_learns_and_none_cell_is_at_chance(digits, nb201) -> None:
    ev = TrainEvaluator(nb201, digits, dataclasses.replace(TINY, epochs=2))
    assert isinstance(ev, Evaluator) and ev.name == "train"
    conv, none = ev.evaluate(nb201.parse(CONV)), ev.evaluate(nb201.parse(NONE))
    # The all-none cell zeroes its input, so the output does not depend on the image: at most the
    # majority class of the validation split (~10%). A conv cell is far above that.
    assert none.accuracy < 15.0
    assert conv.accuracy > 40.0  # 67-81% over seeds 0-2
    assert conv.source == "train:digits" and conv.cost_s > 0
    extra = conv.extra
    assert extra["n_val"] == 360 and extra["n_train"] == pytest.approx(0.3 * 1437, abs=10)
    assert (extra["epochs"], extra["channels"], extra["cells"], extra["resolution"]) == (2, 4, 1, 8)
    assert extra["device"] == "cpu" and extra["params"] > 0 and extra["train_loss"] > 0 and extra["val_loss"] > 0


def test_same_seed_same_metrics_and_global_rng_untouched(digits, nb201) -> None:
    arch = nb201.parse(CONV)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    threads = torch.get_num_threads()
    a = TrainEvaluator(nb201, digits, TINY).evaluate(arch)
    b = TrainEvaluator(nb201, digits, TINY).evaluate(arch)
    assert torch.equal(torch.get_rng_state(), before) and torch.get_num_threads() == threads
    assert a.accuracy == b.accuracy and a.extra["train_loss"] == b.extra["train_loss"]
    c = TrainEvaluator(nb201, digits, dataclasses.replace(TINY, seed=1)).evaluate(arch)
    assert c.extra["train_loss"] != a.extra["train_loss"]


def test_proxy_knobs_are_recorded_and_combine(digits, nb201) -> None:
    assert ProxyEvaluator(nb201, digits).settings == PROXY_DEFAULTS
    messages: list[str] = []
    knobs = TrainSettings(epochs=2, subsample=0.2, resolution=12, channels=4, cells=2, batch_size=32)
    m = ProxyEvaluator(nb201, digits, knobs, progress=messages.append).evaluate(nb201.parse(CONV))
    assert m.source == "proxy:digits"
    e = m.extra
    assert (e["epochs"], e["subsample"], e["resolution"], e["channels"], e["cells"]) == (2, 0.2, 12, 4, 2)
    assert e["n_train"] == pytest.approx(0.2 * 1437, abs=10) and e["batch_size"] == 32
    assert len(messages) == 3 and "epoch 2/2" in messages[1] and "val accuracy" in messages[2]
    wider = ProxyEvaluator(nb201, digits, dataclasses.replace(knobs, channels=8, epochs=1)).evaluate(nb201.parse(CONV))
    assert wider.extra["params"] > e["params"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"subsample": 1.5}, r"subsample must be a fraction in \(0, 1\]"),
        ({"subsample": 0}, "subsample"),
        ({"resolution": 0}, "resolution must be None"),
        ({"channels": 0}, "channels must be None"),
        ({"cells": -1}, "cells must be None"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"optimizer": "rmsprop"}, "optimizer must be adam or sgd"),
        ({"device": "tpu"}, "device must be 'cpu', 'cuda' or 'cuda:N'"),
        ({"seed": -3}, "seed"),
    ],
)
def test_bad_settings_say_what_to_fix(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        TrainSettings(**change)
    assert "\n" not in str(err.value)


def test_cuda_when_unavailable_and_bad_inputs(digits, nb201) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch.cuda.is_available.. is False"):
            TrainEvaluator(nb201, digits, dataclasses.replace(TINY, device="cuda"))
    macro = MacroSpace()
    other = macro.parse("128|16:k3e1|24:k3e1|48:k3e1|72:k3e1|120:k3e1|240:k3e1")
    with pytest.raises(ValueError, match="cannot train an architecture of space 'macro'"):
        TrainEvaluator(nb201, digits, TINY).evaluate(other)
    with pytest.raises(ValueError, match="dataset pair"):
        TrainEvaluator(nb201, ([1, 2], [3], [4]), TINY)
    with pytest.raises(ValueError, match="use digits, cifar10"):
        TrainEvaluator(nb201, "no-such-dataset", TINY)
    with pytest.raises(ValueError, match="resolution must be a multiple of 4, got 10"):
        TrainEvaluator(nb201, digits, dataclasses.replace(TINY, resolution=10))


def test_macro_architecture_trains_downscaled(digits) -> None:
    space = MacroSpace()
    arch = space.parse("224|24:k3e3-k5e3|32:k3e1-skip|64:k3e3|96:k5e1|160:k3e3|320:k3e1")
    ev = TrainEvaluator(space, digits, dataclasses.replace(TINY, channels=8, resolution=16))
    m = ev.evaluate(arch)
    assert 0.0 <= m.accuracy <= 100.0 and m.extra["channels"] == 8 and m.extra["resolution"] == 16
    full = sum(p.numel() for p in space.to_torch(arch, num_classes=10).parameters())
    assert 0 < m.extra["params"] < full / 10


def test_torch_dataset_pair(digits, nb201) -> None:
    from torch.utils.data import TensorDataset

    train = TensorDataset(torch.from_numpy(digits.x_train), torch.from_numpy(digits.y_train))
    val = TensorDataset(torch.from_numpy(digits.x_val), torch.from_numpy(digits.y_val))
    settings = dataclasses.replace(TINY, resolution=12)
    m = TrainEvaluator(nb201, (train, val), settings).evaluate(nb201.parse(CONV))
    assert m.source == "train:TensorDataset" and m.extra["resolution"] == 12
    assert m.extra["n_val"] == len(val) and m.extra["n_train"] == pytest.approx(0.3 * len(train), abs=10)
    # Same data as arrays (same subsample, same batch order): the same training.
    same = TrainEvaluator(nb201, digits, settings).evaluate(nb201.parse(CONV))
    assert m.accuracy == same.accuracy and m.extra["train_loss"] == pytest.approx(same.extra["train_loss"])


def test_npz_dataset_uint8_nhwc(tmp_path, nb201) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.integers(0, 60, size=(len(y), 8, 8, 3), dtype=np.uint8)
    x[np.arange(len(y)), :, :, y] += 180  # the label is the brightest colour channel
    path = tmp_path / "toy.npz"
    np.savez(path, x=x, y=y)
    ev = ProxyEvaluator(nb201, path, dataclasses.replace(TINY, subsample=1.0, epochs=3))
    m = ev.evaluate(nb201.parse(CONV))
    assert m.source == "proxy:toy.npz" and ev.num_classes == 3 and m.extra["n_val"] == 24
    assert m.accuracy > 34.0


def test_last_batch_of_one_is_dropped(tmp_path) -> None:
    # 96 training images in batches of 19 leave one over; the macro net ends at 1x1 on 8x8
    # images, where BatchNorm cannot train on a single image.
    rng = np.random.default_rng(1)
    path = tmp_path / "ones.npz"
    np.savez(path, x=rng.random((120, 8, 8), dtype=np.float32), y=np.repeat(np.arange(3), 40))
    space = MacroSpace()
    arch = space.parse("128|16:k3e1|24:k3e1|48:k3e1|72:k3e1|120:k3e1|240:k3e1")
    m = TrainEvaluator(space, path, dataclasses.replace(TINY, subsample=1.0, batch_size=19, channels=4)).evaluate(arch)
    assert m.extra["n_train"] == 96 and m.extra["train_loss"] is not None
