"""Every standard network builds for 1 and 3 channels at its intended size (and 28x28 where that makes sense),
runs forward and backward without NaN, and every spec round-trips through YAML and JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deepyard.config import Settings
from deepyard.errors import InvalidValueError, NotFoundError, SpecError
from deepyard.networks import (
    build_network,
    check_spec,
    dump_json,
    dump_yaml,
    list_networks,
    load_spec,
    parse_spec,
)
from deepyard.networks.zoo import SPEC_NETWORKS

REPO = Path(__file__).resolve().parents[2]
SMALL_OK = {"lenet", "resnet18", "resnet50", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0"}
CASES = [
    (e.name, (channels, *size))
    for e in list_networks()
    if e.output == "class"  # per-pixel networks: tests/tasks/test_segmentation.py
    for channels in (1, 3)
    for size in [e.input[1:], *([(28, 28)] if e.name in SMALL_OK and e.input[1:] != (28, 28) else [])]
]


@pytest.mark.parametrize(("name", "shape"), CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in CASES])
def test_standard_network_trains_one_step(name: str, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = build_network(name, shape, num_classes=7)
    x = torch.randn(2, *shape)
    logits = model.train()(x)
    assert logits.shape == (2, 7)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 6]))
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", list(SPEC_NETWORKS))
def test_specs_round_trip_through_yaml_and_json(name: str) -> None:
    spec = load_spec(name)
    assert parse_spec(dump_yaml(spec)) == spec
    assert parse_spec(dump_json(spec)) == spec


@pytest.mark.parametrize("name", list(SPEC_NETWORKS))
def test_inferred_shapes_match_the_built_model(name: str) -> None:
    spec = load_spec(name)
    assert spec.input is not None
    checked = check_spec(spec, spec.input, num_classes=3)
    model = build_network(spec, spec.input, 3)
    seen: dict[str, tuple[int, ...]] = {}
    for layer_name, module in model.layers.items():  # type: ignore[union-attr]
        module.register_forward_hook(lambda m, i, o, n=layer_name: seen.__setitem__(n, tuple(o.shape[1:])))
    with torch.no_grad():
        model.eval()(torch.zeros(1, *spec.input))
    assert seen == {n.name: n.shape for n in checked.nodes}


def test_the_lab_modified_lenet_is_a_short_yaml_file_that_builds() -> None:
    path = REPO / "docs" / "networks" / "lenet-modified.yaml"
    assert len(path.read_text().splitlines()) <= 12
    spec = load_spec(str(path))
    checked = check_spec(spec, (1, 28, 28), num_classes=10)
    shapes = {n.name: n.shape for n in checked.nodes}
    assert shapes["conv1"] == (75, 24, 24) and shapes["conv2"] == (100, 8, 8)
    assert [n.name for n in checked.nodes][2] == "relu_pool1" and checked.nodes[2].kind.name == "relu"
    model = build_network(str(path), (1, 28, 28), 10)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_lenet_matches_the_caffe_lab() -> None:
    spec = load_spec("lenet")
    kinds = [
        (layer.type, layer.params.get("out_channels") or layer.params.get("out_features")) for layer in spec.layers
    ]
    assert kinds == [("conv", 20), ("max_pool", None), ("conv", 50), ("max_pool", None),
                     ("linear", 500), ("relu", None), ("linear", "num_classes")]  # fmt: skip
    model = build_network("lenet", (1, 28, 28), 10)
    assert sum(p.numel() for p in model.parameters()) == 431_080


def test_unknown_network_lists_the_valid_ones() -> None:
    with pytest.raises(NotFoundError, match=r"no standard network 'lenet5'; valid: lenet, alexnet, googlenet, vgg16"):
        build_network("lenet5", (1, 28, 28), 10)
    with pytest.raises(NotFoundError, match=r"torchvision has no classification model 'resnet7'; valid: alexnet"):
        build_network("torchvision:resnet7", (3, 64, 64), 10)


def test_any_torchvision_classifier_by_name() -> None:
    model = build_network("torchvision:squeezenet1_1", (1, 64, 64), 4)
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 4)


def test_too_small_input_for_a_torchvision_family_is_a_clear_error() -> None:
    with pytest.raises(SpecError, match=r"vit_b_16 cannot take input 3x28x28"):
        build_network("vit_b_16", (3, 28, 28), 10)


PY_NET = """
import torch.nn as nn

def create_model(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))
"""


def test_python_networks_are_refused_unless_allowed(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "mynet.py"
    path.write_text(PY_NET)
    with pytest.raises(InvalidValueError, match="runs arbitrary code; it is refused unless"):
        build_network(str(path), (1, 8, 8), 3, settings)
    allowed = settings.model_copy(update={"allow_python_networks": True})
    model = build_network(str(path), (1, 8, 8), 3, allowed)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
