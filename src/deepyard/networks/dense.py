"""Dense-prediction networks (segmentation): a small U-Net, and torchvision's segmentation models by name.

Each maps (B, C, H, W) inputs to (B, K, H, W) per-pixel class logits at the input's size. torchvision's models
(`fcn_resnet50`, `deeplabv3_mobilenet_v3_large`, `lraspp_mobilenet_v3_large`, ...) return a dict of outputs
(`out`, and `aux` with an auxiliary head); `DenseOutput` keeps `out`, so the trainer, the exports (TorchScript,
ONNX) and the task see one tensor. They are built untrained here; `pretrained:NAME` weights come through
deepyard.transfer like the classifiers'.

U-Net (Ronneberger et al., 2015), made small for CPUs: widths 16-32-64-128, two 3x3 conv + batch norm + ReLU per
level, max-pool down, bilinear up and concatenation with the skip; any input size (odd sizes are matched by
interpolating to the skip's size). On 64x64 generated shapes (5 classes, 800 images, 2 CPU cores) it reaches
the mIoU the README states.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
import torchvision  # type: ignore[import-untyped]
from torch import nn

from deepyard.errors import NotFoundError, SpecError
from deepyard.networks.layers import Shape


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
    )  # fmt: skip


class UNet(nn.Module):
    """Encoder-decoder with skip connections; `widths` per level, the last is the bottleneck."""

    def __init__(self, channels: int, num_classes: int, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.down = nn.ModuleList()
        previous = channels
        for width in widths:
            self.down.append(_block(previous, width))
            previous = width
        self.up = nn.ModuleList(_block(widths[i] + widths[i + 1], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        out: torch.Tensor = self.head(x)
        return out


class DenseOutput(nn.Module):
    """A torchvision segmentation model whose dict output is reduced to its `out` tensor (B, K, H, W)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: dict[str, torch.Tensor] = self.model(x)
        return out["out"]


def segmentation_models() -> list[str]:
    names: list[str] = torchvision.models.list_models(module=torchvision.models.segmentation)
    return names


def build_unet(input_shape: Shape, num_classes: int) -> nn.Module:
    channels, height, width = input_shape
    if min(height, width) < 8:
        raise SpecError(f"unet needs inputs of at least 8x8 (three 2x poolings), got {width}x{height}")
    return UNet(channels, num_classes)


def build_torchvision_segmentation(name: str, input_shape: Shape, num_classes: int) -> nn.Module:
    """torchvision's segmentation model `name`, untrained, first convolution adapted to the input channels."""
    from deepyard.networks.registry import _adapt_first_conv

    if name not in segmentation_models():
        raise NotFoundError(
            f"torchvision has no segmentation model {name!r}; valid: {', '.join(segmentation_models())}"
        )
    kwargs: dict[str, Any] = {"weights": None, "weights_backbone": None, "num_classes": num_classes}
    model: nn.Module = torchvision.models.get_model(name, **kwargs)
    if input_shape[0] != 3:
        _adapt_first_conv(model, input_shape[0])
    return DenseOutput(model)
