"""torchvision's object detectors by name, built for a detection dataset's size and classes.

Every family of `torchvision.models.detection` is reachable by its name (`fasterrcnn_mobilenet_v3_large_320_fpn`,
..., or `torchvision:NAME` for any other detector). The model includes its own input normalisation and takes a
list of (3, H, W) float images in 0..1; in training mode `model(images, targets)` returns its named losses, in
evaluation mode a list of `{boxes, labels, scores}` per image (deepyard.tasks.detection calls it so).

Built for a dataset: `num_classes` counts the background (class 0), and the model's own resize is set to the
dataset's size (torchvision's defaults resize to 800 px or 320/300 px; a dataset is stored at its size already).
Start weights: random, or COCO weights through torchvision's own loader (`weights="DEFAULT"`: online), with the
box predictor replaced for the dataset's classes. `deepyard train --from pretrained:NAME` loads them the
generic way (deepyard.transfer): every detector declares its class-specific layers (`declared_heads`), which a
start from other classes resets while the rest loads by name and shape.
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
    "fasterrcnn_small": "Faster R-CNN on a 4-block 64-channel backbone (stride 8), for small images on a CPU",
    "fcos_small": "FCOS, anchor-free, on a 5-block 64-channel backbone (stride 4), for small images on a CPU",
}
DEFAULT_DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"
OWN = ("fasterrcnn_small", "fcos_small")  # built here from torchvision's classes, not in its registry


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
    if name in OWN:
        own = (_small_faster_rcnn if name == "fasterrcnn_small" else _small_fcos)(height, width, num_classes)
        _declare_heads(own)
        return own
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
    _declare_heads(model)
    transform = getattr(model, "transform", None)
    if name.startswith("ssd") and transform is not None:  # SSD resizes to a fixed 300/320: use the dataset's size
        transform.min_size, transform.max_size, transform.fixed_size = (min(height, width),), max(height, width), (
            width, height)  # fmt: skip
    return model


def _block(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def small_backbone(strides: tuple[int, ...] = (2, 2, 1, 1, 1), width: int = 64) -> nn.Sequential:
    """Conv-BN-ReLU blocks (32 channels, then `width`), one feature map at the product of `strides`."""
    chans = [3, 32, *([width] * (len(strides) - 1))]
    layers = [m for i, s in enumerate(strides) for m in _block(chans[i], chans[i + 1], s)]
    backbone = nn.Sequential(*layers)
    backbone.out_channels = width  # type: ignore[assignment]
    return backbone


def _small_fcos(height: int, width: int, num_classes: int) -> nn.Module:
    """torchvision's FCOS (anchor-free: every feature-map cell near an object's centre predicts its class, its
    four distances to the box's sides and a centredness) on a small backbone: 5 blocks, one stride-4 map of 64
    channels (at 64x64 inputs, a 16x16 grid), torchvision's 4-conv heads with group norm; about 0.4 M parameters.
    One level takes every object size (torchvision's FCOS bounds the first level below and the last above)."""
    from torchvision.models.detection import FCOS  # type: ignore[import-untyped]
    from torchvision.models.detection.anchor_utils import AnchorGenerator  # type: ignore[import-untyped]

    model: nn.Module = FCOS(
        small_backbone(), num_classes, min_size=min(height, width), max_size=max(height, width),
        anchor_generator=AnchorGenerator(sizes=((4,),), aspect_ratios=((1.0,),)), score_thresh=0.05,
        topk_candidates=300,
    )  # fmt: skip
    return model


def _small_faster_rcnn(height: int, width: int, num_classes: int) -> nn.Module:
    """torchvision's Faster R-CNN with a small backbone: 4 conv-BN-ReLU blocks (32, 64, 64, 64 channels; stride 8),
    one feature map, anchors of 16-64 px at 3 aspects, and a 256-wide box head: about 1 M parameters."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import (  # type: ignore[import-untyped]
        FastRCNNPredictor,
        TwoMLPHead,
    )
    from torchvision.ops import MultiScaleRoIAlign  # type: ignore[import-untyped]

    backbone = small_backbone((2, 2, 2, 1))
    anchors = AnchorGenerator(sizes=((16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    model: nn.Module = FasterRCNN(
        backbone, None, min_size=min(height, width), max_size=max(height, width), rpn_anchor_generator=anchors,
        box_roi_pool=MultiScaleRoIAlign(["0"], 7, 2), box_head=TwoMLPHead(64 * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, num_classes), rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150, rpn_batch_size_per_image=128,
        box_batch_size_per_image=128, box_score_thresh=0.001,
    )  # fmt: skip
    return model


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Rebuild the class-predicting layers of a pretrained detector for `num_classes` (background included)."""
    from torchvision.models.detection import faster_rcnn, fcos, retinanet

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


HEAD_SUFFIXES = ("box_predictor.cls_score", "box_predictor.bbox_pred", "classification_head.cls_logits")


def detector_heads(model: nn.Module) -> list[str]:
    """The layers whose outputs are per class: Faster R-CNN's class scores and per-class box deltas, RetinaNet's
    and FCOS's class logits, SSD's class convolutions (the box regression of the one-stage families is
    class-agnostic and kept)."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    return [n for n in names if n.endswith(HEAD_SUFFIXES) or n.startswith("head.classification_head.module_list.")]


def _declare_heads(model: nn.Module) -> None:
    """What deepyard.transfer asks a model (`declared_heads`) when a start's classes differ from the dataset's."""
    heads = detector_heads(model)
    object.__setattr__(model, "declared_heads", lambda: list(heads))
