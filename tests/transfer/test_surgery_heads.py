"""Heads are declared by the standard networks (and a spec's `num_classes` layers), guessed only for the rest."""

from __future__ import annotations

import pytest
from torch import nn

from deepyard.networks import build_network, spec_from_data
from deepyard.transfer.surgery import declared_heads, find_heads


@pytest.mark.parametrize(("name", "shape", "head"), [
    ("lenet", (1, 28, 28), "layers.ip2"), ("alexnet", (3, 227, 227), "layers.fc8"), ("resnet18", (3, 64, 64), "fc"),
    ("mobilenet_v3_small", (3, 64, 64), "classifier.3"), ("efficientnet_b0", (3, 64, 64), "classifier.1"),
])  # fmt: skip
def test_standard_networks_declare_their_head(name: str, shape: tuple[int, int, int], head: str) -> None:
    assert declared_heads(build_network(name, shape, 7)) == [head]


def test_a_spec_head_is_its_num_classes_layer_even_when_a_later_linear_exists() -> None:
    """The guess (the last Linear) would pick `proj`; the spec says `logits` is the head."""
    spec = spec_from_data({"name": "odd", "layers": [
        {"name": "conv", "type": "conv", "out_channels": 4, "kernel": 3},
        {"name": "logits", "type": "linear", "out_features": "num_classes"},
        {"name": "proj", "type": "linear", "out_features": 5},
    ]})  # fmt: skip
    assert find_heads(build_network(spec, (1, 8, 8), 3)) == ["layers.logits.1"]  # .1: after the flatten


def test_a_network_that_declares_nothing_falls_back_to_the_guess() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))
    assert declared_heads(model) == [] and find_heads(model) == ["3"]
