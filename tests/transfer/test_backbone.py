"""Start weights for segmentation: a classifier's weights as a dense network's backbone (renamed, fc reshaped to
conv), from one of our own classification runs through the trainer, and torchvision's segmentation weights
through its loader (offline: a state dict the test writes into the hub cache under the weights' file name)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision  # type: ignore[import-untyped]

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.networks import build_network, spec_from_data
from deepyard.train import get_run, make_config, train
from deepyard.transfer import describe_torchvision
from deepyard.transfer.start import train_from
from deepyard.transfer.surgery import load_matching
from tests.tasks.segdata import write_scenes
from tests.transfer.test_weights import offline_hub  # noqa: F401  (fixture)

QUICK = {"epochs": 1, "batch_size": 4, "precision": "fp32", "device": "cpu"}


def test_fcn_alexnet_takes_alexnets_body_and_its_fc_layers_as_convolutions() -> None:
    torch.manual_seed(0)
    alexnet = build_network("alexnet", (3, 227, 227), 10)
    fcn = build_network("fcn_alexnet", (3, 64, 64), 4)
    report = load_matching(fcn, alexnet.state_dict(), reset_heads=True, source_input=(3, 227, 227),
                           target_input=(3, 64, 64))  # fmt: skip
    assert report.adapted["layers.fc6.weight"] == "linear (4096, 9216) reshaped to a 6x6 convolution"
    assert report.adapted["layers.fc7.weight"] == "linear (4096, 4096) reshaped to a 1x1 convolution"
    assert "layers.score_fr.weight" in report.reinitialised and "layers.fc8.weight" in report.skipped
    assert all(f"layers.conv{i}.weight" in report.loaded for i in range(1, 6))
    features = torch.randn(2, 256, 6, 6)  # pool5's output: the conv on the one 6x6 window is the linear layer
    linear = alexnet.layers["fc6"](features)  # type: ignore[index]
    conv = fcn.layers["fc6"](features)  # type: ignore[index]
    assert torch.allclose(conv.flatten(1), linear, atol=1e-4)


def test_resnet50_classifier_weights_are_fcn_resnet50s_backbone() -> None:
    resnet = torchvision.models.resnet50(weights=None).state_dict()
    fcn = build_network("fcn_resnet50", (3, 64, 64), 4)
    report = load_matching(fcn, resnet, reset_heads=True)
    assert report.adapted["(names)"].startswith("backbone weights under model.backbone.")
    assert "model.backbone.layer4.2.conv3.weight" in report.loaded and "fc.weight" in report.skipped
    assert torch.equal(fcn.state_dict()["model.backbone.layer3.5.bn2.running_var"], resnet["layer3.5.bn2.running_var"])
    assert all(k.startswith("model.classifier.") for k in report.reinitialised)


def _shapes(settings: Settings, root: Path) -> str:
    write_scenes(root, 8, "palette", seed=2, size=32)
    spec = make_spec(name="shapes", task="segmentation", width=32, height=32, val_pct=25,
                     source={"kind": "masks", "train": root})  # fmt: skip
    return create_dataset(settings, spec).id


def test_a_segmentation_run_starts_from_our_own_classification_run(
    settings: Settings, tmp_path: Path, tiny: str
) -> None:
    classifier = spec_from_data({"name": "tinycls", "layers": [
        {"name": "conv", "type": "conv", "out_channels": 6, "kernel": 3}, {"name": "relu", "type": "relu"},
        {"name": "pool", "type": "max_pool", "kernel": 2},
        {"name": "fc1", "type": "linear", "out_features": 8}, {"name": "relu1", "type": "relu"},
        {"name": "fc2", "type": "linear", "out_features": "num_classes"}]})  # fmt: skip
    source = train(settings, tiny, classifier, make_config(**QUICK)).run_id
    fcn = spec_from_data({"name": "tinyfcn", "layers": [
        {"name": "conv", "type": "conv", "out_channels": 6, "kernel": 3}, {"name": "relu", "type": "relu"},
        {"name": "pool", "type": "max_pool", "kernel": 2},
        {"name": "fc1", "type": "conv", "out_channels": 8, "kernel": 5}, {"name": "relu1", "type": "relu"},
        {"name": "score", "type": "conv", "out_channels": "num_classes", "kernel": 1},
        {"name": "up", "type": "conv_transpose", "out_channels": "num_classes", "kernel": 16, "stride": 4,
         "groups": "num_classes", "bias": False, "init": "bilinear"},
        {"name": "crop", "type": "crop", "inputs": ["up", "input"]}]})  # fmt: skip
    result = train_from(settings, _shapes(settings, tmp_path / "shapes"), fcn, make_config(**QUICK),
                        source=f"run:{source}")  # fmt: skip
    report = get_run(settings, result.run_id)["source"]["report"]
    assert report["adapted"]["layers.fc1.weight"] == "linear (8, 150) reshaped to a 5x5 convolution"
    assert report["loaded"] == 4 and "layers.score.weight" in report["reinitialised"]
    assert result.steps >= 1 and "val_miou" in result.last_val


def test_torchvision_segmentation_weights_through_its_loader(
    settings: Settings,
    tmp_path: Path,
    offline_hub: Path,  # noqa: F811
) -> None:
    torch.manual_seed(0)
    made = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                      num_classes=21)  # fmt: skip
    url = describe_torchvision("lraspp_mobilenet_v3_large")["url"]
    offline_hub.mkdir(parents=True)
    torch.save(made.state_dict(), offline_hub / Path(urlparse(url).path).name)  # where torchvision caches it
    result = train_from(settings, _shapes(settings, tmp_path / "shapes"), None, make_config(**QUICK),
                        source="pretrained:lraspp_mobilenet_v3_large")  # fmt: skip
    info = get_run(settings, result.run_id)
    report = info["source"]["report"]
    assert info["network"]["ref"] == "lraspp_mobilenet_v3_large" and report["loaded"] > 300
    assert report["adapted"]["(names)"].startswith("backbone weights under model.")
    assert set(report["reinitialised"]) == {
        f"model.classifier.{h}_classifier.{p}" for h in ("low", "high") for p in ("weight", "bias")
    }  # the 21 VOC classes' heads, reset
    assert result.steps >= 1 and "val_miou" in result.last_val
