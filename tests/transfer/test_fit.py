"""deepyard.transfer.fit: a source's input channels and size against a dataset's, told without loading weights."""

from __future__ import annotations

import pytest
import torch

from deepyard.config import Settings
from deepyard.errors import InvalidValueError, SpecError
from deepyard.networks import get_network, load_spec
from deepyard.transfer import save_model
from deepyard.transfer.fit import check_fit, size_dependent, source_input


def test_store_entries_and_library_weights_say_what_they_were_trained_on(settings: Settings) -> None:
    spec = load_spec("lenet")
    save_model(settings, "four", {"x": torch.zeros(1)}, {"ref": "lenet", "spec": spec.to_data()}, ["a", "b"],
               (4, 28, 28), {}, {"kind": "test"})  # fmt: skip
    assert source_input(settings, "store:four") == (4, (4, 28, 28))
    assert source_input(settings, "pretrained:resnet18") == (3, None)  # RGB at any size
    assert source_input(settings, "/data/w.safetensors") == (None, None)  # a bare file: only loading tells
    with pytest.raises(
        InvalidValueError,
        match=r"'store:four' was trained on 4-channel images and dataset 'g' has 1 "
        r"channel\(s\): the first convolution adapts 3 -> 1 and 1 -> 3",
    ):
        check_fit(settings, "store:four", spec, (1, 28, 28), 2, "g")
    check_fit(settings, "pretrained:resnet18", "resnet18", (1, 64, 64), 2)  # 3 -> 1 is adapted; any size


def test_a_fixed_size_network_is_refused_another_size_and_an_adaptive_one_is_not(settings: Settings) -> None:
    spec = load_spec("lenet")
    assert size_dependent(settings, spec, (1, 28, 28), (1, 32, 32), 10) == (
        "layers.ip1.1.weight", "shape (500, 800) in the weights, (500, 1250) in the network")  # fmt: skip
    assert size_dependent(settings, spec, (1, 28, 28), (1, 28, 28), 10) is None
    assert get_network("resnet18") and size_dependent(settings, "resnet18", (3, 32, 32), (3, 64, 64), 10) is None
    save_model(settings, "lenet28", {"x": torch.zeros(1)}, {"ref": "lenet", "spec": spec.to_data()}, ["a", "b"],
               (1, 28, 28), {}, {"kind": "test"})  # fmt: skip
    with pytest.raises(SpecError, match="trained on 1x28x28 inputs and this dataset gives 3x32x32"):
        check_fit(settings, "store:lenet28", spec, (3, 32, 32), 2)
