"""torchvision's object detectors by name, built for a detection dataset's size and classes.

Every family of `torchvision.models.detection` is reachable by its name (`fasterrcnn_mobilenet_v3_large_320_fpn`,
..., or `torchvision:NAME` for any other detector). The model includes its own input normalisation and takes a
list of (3, H, W) float images in 0..1; in training mode `model(images, targets)` returns its named losses, in
evaluation mode a list of `{boxes, labels, scores}` per image (deepyard.tasks.detection calls it so).

Built for a dataset: `num_classes` counts the background (class 0), and the model's own resize is set to the
dataset's size (torchvision's defaults resize to 800 px or 320/300 px; a dataset is stored at its size already).
Start weights: random, or COCO weights through torchvision's own loader (`weights="DEFAULT"`: online), with the
box predictor replaced for the dataset's classes.
"""

from __future__ import annotations

from typing import Any

import torch
import torchvision  # type: ignore[import-untyped]
from torch import nn

from deepyard.errors import NotFoundError, SpecError

DETECTORS: dict[str, str] = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": "Faster R-CNN, MobileNetV3-Large FPN, low resolution (Ren et al., 2015)",
    "fasterrcnn_mobilenet_v3_large_fpn": "Faster R-CNN, MobileNetV3-Large FPN (Ren et al., 2015)",
    "fasterrcnn_resnet50_fpn_v2": "Faster R-CNN v2, ResNet-50 FPN (Li et al., 2021)",
    "retinanet_resnet50_fpn_v2": "RetinaNet v2, ResNet-50 FPN, focal loss (Lin et al., 2017)",
    "fcos_resnet50_fpn": "FCOS, ResNet-50 FPN, anchor-free (Tian et al., 2019)",
    "ssdlite320_mobilenet_v3_large": "SSDlite, MobileNetV3-Large (Sandler et al., 2018)",
    "ssd300_vgg16": "SSD300, VGG-16 (Liu et al., 2016)",
}
DEFAULT_DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"


def detector_names() -> list[str]:
    """Every detection model torchvision has (the listed families first)."""
    found = torchvision.models.list_models(module=torchvision.models.detection)
    return [*DETECTORS, *sorted(n for n in found if n not in DETECTORS)]


def is_detector(name: str) -> bool:
    return name in DETECTORS or name in torchvision.models.list_models(module=torchvision.models.detection)


def build_detector(name: str, input_shape: tuple[int, ...], num_classes: int, weights: str | None = None) -> nn.Module:
    """A detector for (C, H, W) inputs and `num_classes` outputs including the background.

    `weights`: None (random), or a torchvision weights name ("DEFAULT": COCO), whose head is then rebuilt for
    `num_classes`; downloading needs the network."""
    if not is_detector(name):
        raise NotFoundError(f"torchvision has no detection model {name!r}; valid: {', '.join(detector_names())}")
    _, height, width = input_shape
    kwargs: dict[str, Any] = {}
    if not name.startswith("ssd"):
        kwargs.update(min_size=min(height, width), max_size=max(height, width))
    try:
        if weights is None:
            model: nn.Module = torchvision.models.get_model(name, weights=None, weights_backbone=None,
                                                            num_classes=num_classes, **kwargs)  # fmt: skip
        else:
            model = torchvision.models.get_model(name, weights=weights, **kwargs)
            replace_head(model, num_classes)
    except (ValueError, AssertionError, TypeError) as exc:
        raise SpecError(f"{name} cannot be built for {width}x{height} inputs: {exc}") from None
    transform = getattr(model, "transform", None)
    if name.startswith("ssd") and transform is not None:  # SSD resizes to a fixed 300/320: use the dataset's size
        transform.min_size, transform.max_size, transform.fixed_size = (min(height, width),), max(height, width), (
            width, height)  # fmt: skip
    return model


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Rebuild the class-predicting layers of a pretrained detector for `num_classes` (background included)."""
    from torchvision.models.detection import faster_rcnn, fcos, retinanet  # type: ignore[import-untyped]

    roi = getattr(model, "roi_heads", None)
    if roi is not None:
        features = roi.box_predictor.cls_score.in_features
        roi.box_predictor = faster_rcnn.FastRCNNPredictor(features, num_classes)
        return
    head = getattr(model, "head", None)
    cls = getattr(head, "classification_head", None)
    if isinstance(cls, retinanet.RetinaNetClassificationHead | fcos.FCOSClassificationHead):
        conv = cls.cls_logits
        anchors = conv.out_channels // cls.num_classes
        cls.num_classes = num_classes
        cls.cls_logits = nn.Conv2d(conv.in_channels, anchors * num_classes, 3, padding=1)
        torch.nn.init.normal_(cls.cls_logits.weight, std=0.01)
        torch.nn.init.constant_(cls.cls_logits.bias, -4.59511985)  # prior 0.01, as torchvision
        return
    raise SpecError(f"{type(model).__name__}: no known head to replace for {num_classes} classes; train from random")
