"""Start weights for detection: COCO weights through torchvision's own loader (offline: a state dict the test writes
into the hub cache under the weights' file name), the class-specific layers reset for the dataset's classes and
everything else loaded as written; and the body of one of our own classification runs as a detector's backbone."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import torchvision  # type: ignore[import-untyped]

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.networks import build_network
from deepyard.networks.detection import DETECTORS, detector_heads
from deepyard.train import make_config, train
from deepyard.train.config import FinetuneConfig
from deepyard.transfer import describe_torchvision
from deepyard.transfer.finetune import load_start
from deepyard.transfer.sources import load_pretrained
from tests.conftest import make_class_folders
from tests.transfer.test_weights import offline_hub  # noqa: F401  (fixture)

NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"


def test_coco_weights_load_through_torchvision_with_the_head_reset(
    settings: Settings,
    offline_hub: Path,  # noqa: F811
) -> None:
    torch.manual_seed(0)
    coco = torchvision.models.get_model(NAME, weights=None, weights_backbone=None, num_classes=91).state_dict()
    offline_hub.mkdir(parents=True)
    torch.save(coco, offline_hub / Path(urlparse(describe_torchvision(NAME)["url"]).path).name)
    start = load_pretrained(settings, f"pretrained:{NAME}")  # torchvision's loader, from its cache
    assert start.labels is not None and len(start.labels) == 91 and start.network == {"ref": f"torchvision:{NAME}",
                                                                                       "spec": None}  # fmt: skip
    model = build_network(NAME, (3, 64, 64), 4)  # three classes and the background
    report = load_start(settings, model, start.record(), (3, 64, 64), ["Disc", "Square", "bar"], FinetuneConfig(),
                        start)  # fmt: skip
    reset = {k for k in report.reinitialised if not k.endswith("num_batches_tracked")}
    assert reset == {f"roi_heads.box_predictor.{layer}.{p}" for layer in ("cls_score", "bbox_pred")
                     for p in ("weight", "bias")}  # fmt: skip
    state = model.state_dict()
    assert len(report.loaded) == len(coco) - 4
    for key in ("backbone.body.0.0.weight", "backbone.fpn.layer_blocks.0.0.weight", "rpn.head.conv.0.0.weight",
                "roi_heads.box_head.fc7.weight", "backbone.body.4.block.2.fc1.weight"):  # fmt: skip
        assert torch.equal(state[key], coco[key]), key
    assert state["roi_heads.box_predictor.cls_score.weight"].shape == (4, 1024)


@pytest.mark.parametrize("name", ["fcos_small", "fasterrcnn_small",
                                  "ssdlite320_mobilenet_v3_large"])  # fmt: skip
def test_every_family_declares_its_class_layers(name: str) -> None:
    assert name in DETECTORS
    model = build_network(name, (3, 64, 64) if not name.startswith("ssd") else (3, 320, 320), 3)
    heads = model.declared_heads()  # type: ignore[operator]
    assert heads == detector_heads(model) and heads
    assert all("classification_head" in h or "box_predictor" in h for h in heads)
    assert not any("backbone" in h for h in heads)


def test_a_detector_takes_the_body_of_our_own_classification_run(settings: Settings, tmp_path: Path) -> None:
    """A MobileNetV3 classifier trained here (a run) starts a Faster R-CNN: its features become the detector's
    backbone body; the FPN, RPN and box heads, which the classifier has not, start fresh."""
    make_class_folders(tmp_path / "classes", {"a": 6, "b": 6}, size=(32, 32))
    spec = make_spec(
        name="ab", width=32, height=32, val_pct=25, source={"kind": "folder", "train": tmp_path / "classes"}
    )
    dataset = create_dataset(settings, spec).id
    config = make_config(epochs=1, batch_size=4, precision="fp32", device="cpu")
    run_id = train(settings, dataset, "mobilenet_v3_large", config).run_id
    start = load_pretrained(settings, f"run:{run_id}")
    model = build_network("fasterrcnn_mobilenet_v3_large_fpn", (3, 64, 64), 4)
    report = load_start(settings, model, start.record(), (3, 64, 64), ["Disc", "Square", "bar"], FinetuneConfig(),
                        start)  # fmt: skip
    assert report.adapted["(names)"].startswith("backbone weights features under backbone.body.")
    body = [k for k in model.state_dict() if k.startswith("backbone.body.")]
    assert set(body) <= set(report.loaded) and len(body) > 300
    state = model.state_dict()
    assert torch.equal(state["backbone.body.0.0.weight"], start.state["features.0.0.weight"])
    assert torch.equal(state["backbone.body.16.1.running_var"], start.state["features.16.1.running_var"])
    assert all(not k.startswith("backbone.body.") for k in report.reinitialised)
    assert "rpn.head.conv.0.0.weight" in report.reinitialised and "classifier.3.weight" in report.skipped
