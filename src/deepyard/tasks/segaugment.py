"""Images and masks augmented together, then preprocessed: what segmentation's `Task.transform` does.

The geometric augmentations of the run's AugmentConfig (flips, quarter turns, rotation, scale) move each image
and its mask by the same random draw through torchvision.transforms.v2 (tv_tensors.Image and tv_tensors.Mask:
the mask is moved with nearest neighbour and the uncovered border of a mask becomes 255, ignore). The draws come
from the run's augmentation generator (saved in checkpoints), so a resumed run draws the same. The photometric
ones (noise, contrast, hsv, invert) change the pixels only. Then the run's preprocessor subtracts the mean and
scales; a centre crop (crop_size) is applied to the mask too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision import tv_tensors  # type: ignore[import-untyped]
from torchvision.transforms import v2  # type: ignore[import-untyped]

from deepyard.train.augment import augment
from deepyard.train.config import AugmentConfig

IGNORE = 255
GEOMETRIC = {"flip": "none", "rot90": "none", "rotation": 0, "scale": 0}


def geometric(aug: AugmentConfig) -> v2.Compose | None:
    """The joint transform of one (image, mask) pair, or None when the config asks for no geometric change."""
    ops: list[Any] = []
    if aug.flip in ("lr", "lrud"):
        ops.append(v2.RandomHorizontalFlip())
    if aug.flip in ("ud", "lrud"):
        ops.append(v2.RandomVerticalFlip())
    if aug.rot90 != "none":
        angles = {"rot90": [0, 90], "rot180": [0, 180], "rotall": [0, 90, 180, 270]}[aug.rot90]
        ops.append(v2.RandomChoice([v2.RandomRotation((a, a)) for a in angles]))
    if aug.rotation or aug.scale:
        low, high = max(0.1, 1 - 2 * aug.scale), 1 + 2 * aug.scale
        ops.append(v2.RandomAffine(degrees=aug.rotation, scale=(low, high),
                                   fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE}))  # fmt: skip
    return v2.Compose(ops) if ops else None


def joint_transform(
    preprocess: Callable[..., torch.Tensor], pixels: torch.Tensor, masks: torch.Tensor, train: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(model inputs (B, C, H, W) float, masks (B, H, W) int64) of a batch of uint8 pixels and masks."""
    aug: AugmentConfig | None = getattr(preprocess, "aug", None)
    x = pixels
    if train and aug is not None:
        joint = geometric(aug)
        if joint is not None:
            x, masks = _each(joint, x, masks, getattr(preprocess, "generator", None))
        photometric = aug.model_copy(update=GEOMETRIC)
        if photometric != AugmentConfig():
            x = augment(x.float(), photometric, preprocess.generator)  # type: ignore[attr-defined]
    out = preprocess(x, train=False)  # mean, crop, scale; the augmentation is done
    if out.shape[-2:] != masks.shape[-2:]:
        h, w = out.shape[-2:]
        top, left = (masks.shape[-2] - h) // 2, (masks.shape[-1] - w) // 2
        masks = masks[..., top : top + h, left : left + w]
    return out, masks.long()


def _each(
    joint: v2.Compose, pixels: torch.Tensor, masks: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The joint transform per example, each with its own draw seeded from the run's generator."""
    device = generator.device if generator is not None else None
    seeds = torch.randint(0, 2**62, (len(pixels),), generator=generator, device=device).tolist()
    images, moved = [], []
    with torch.random.fork_rng(devices=[]):
        for image, mask, seed in zip(pixels, masks, seeds, strict=True):
            torch.manual_seed(seed)
            a, b = joint(tv_tensors.Image(image), tv_tensors.Mask(mask))
            images.append(a.as_subclass(torch.Tensor))
            moved.append(b.as_subclass(torch.Tensor))
    return torch.stack(images), torch.stack(moved)
