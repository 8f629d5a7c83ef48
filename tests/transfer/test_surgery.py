"""Head replacement on spec networks and torchvision families, channel adaptation, matching loads and their errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision  # type: ignore[import-untyped]
from torch import nn

from deepyard.errors import InvalidValueError, SpecError
from deepyard.networks import build_network
from deepyard.transfer import adapt_conv_weight, find_heads, load_matching, replace_head

FAMILIES = {
    "resnet18": ["fc"],
    "vgg11": ["classifier.6"],
    "alexnet": ["classifier.6"],
    "mobilenet_v3_small": ["classifier.3"],
    "efficientnet_b0": ["classifier.1"],
    "convnext_tiny": ["classifier.2"],
    "vit_b_16": ["heads.head"],
    "googlenet": ["aux1.fc2", "aux2.fc2", "fc"],
    "inception_v3": ["AuxLogits.fc", "fc"],
    "squeezenet1_0": ["classifier.1"],
    "densenet121": ["classifier"],
    "swin_t": ["head"],
}


@pytest.mark.parametrize("name", FAMILIES)
def test_head_of_torchvision_families_is_found_and_replaced(name: str) -> None:
    extra = {"init_weights": True} if name in ("googlenet", "inception_v3") else {}
    with torch.device("meta"):  # shapes only: no memory for ViT's 86 M weights
        model = torchvision.models.get_model(name, weights=None, num_classes=1000, **extra)
        assert find_heads(model) == FAMILIES[name]
        assert replace_head(model, 7) == FAMILIES[name]
        size = 299 if name == "inception_v3" else 224
        out = model.eval()(torch.empty(2, 3, size, size))
    assert out.shape == (2, 7)
    assert find_heads(model, 7) == FAMILIES[name]


def test_head_of_a_spec_network_is_its_last_linear_layer() -> None:
    model = build_network("lenet", (1, 28, 28), 10)
    assert find_heads(model) == ["layers.ip2"]
    replace_head(model, 3)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    assert model.layers["ip2"].in_features == 500


def test_grey_adapted_conv_equals_rgb_conv_on_the_replicated_image() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 5, padding=2)
    grey = torch.rand(2, 1, 16, 16)
    adapted = adapt_conv_weight(conv.weight.detach(), 1)
    assert adapted.shape == (8, 1, 5, 5)
    torch.testing.assert_close(F.conv2d(grey, adapted, conv.bias, padding=2), conv(grey.repeat(1, 3, 1, 1)))


def test_rgb_adapted_conv_equals_grey_conv_on_the_channel_mean() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 8, 3)
    rgb = torch.rand(2, 3, 10, 10)
    adapted = adapt_conv_weight(conv.weight.detach(), 3)
    torch.testing.assert_close(F.conv2d(rgb, adapted, conv.bias), conv(rgb.mean(dim=1, keepdim=True)))
    with pytest.raises(InvalidValueError, match=r"3 -> 1 .* 1 -> 3"):
        adapt_conv_weight(conv.weight.detach().repeat(1, 2, 1, 1), 3)


def test_load_matching_adapts_channels_resets_the_head_and_reports() -> None:
    torch.manual_seed(0)
    source = build_network("resnet18", (3, 64, 64), 10)
    target = build_network("resnet18", (1, 64, 64), 4)
    report = load_matching(target, source.state_dict(), reset_heads=False, target_input=(1, 64, 64))
    assert report.adapted == {"conv1.weight": "3 -> 1 input channels"}
    assert set(report.reinitialised) == {"fc.weight", "fc.bias"}
    assert set(report.skipped) == {"fc.weight", "fc.bias"}  # 10 vs 4 outputs
    assert "shape (10, 512) in the weights, (4, 512) in the network" in report.reinitialised["fc.weight"]
    state = target.state_dict()
    torch.testing.assert_close(state["conv1.weight"], source.conv1.weight.detach().sum(1, keepdim=True))
    assert torch.equal(state["layer4.1.bn2.running_var"], source.state_dict()["layer4.1.bn2.running_var"])
    assert len(report.loaded) == len(state) - 2
    grey = torch.rand(2, 1, 64, 64)
    body = nn.Sequential(*list(target.children())[:-1]).eval()
    source_body = nn.Sequential(*list(source.children())[:-1]).eval()
    torch.testing.assert_close(body(grey), source_body(grey.repeat(1, 3, 1, 1)))  # other sizes: adaptive pooling


def test_a_fixed_size_spec_network_refuses_another_input_size_naming_both() -> None:
    source = build_network("lenet", (1, 28, 28), 10)
    target = build_network("lenet", (1, 32, 32), 10)
    expected = r"trained on 1x28x28 inputs and this dataset gives 1x32x32; layers.ip1.1.weight has shape \(500, 800\)"
    with pytest.raises(SpecError, match=expected):
        load_matching(target, source.state_dict(), False, (1, 28, 28), (1, 32, 32))


def test_weights_of_another_network_are_refused() -> None:
    source = build_network("resnet18", (3, 32, 32), 10)
    with pytest.raises(InvalidValueError, match="none of the pretrained weights fit this network"):
        load_matching(build_network("lenet", (1, 28, 28), 10), source.state_dict(), True)
