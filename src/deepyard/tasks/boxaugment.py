"""Box-aware augmentation of detection batches (deepyard.tasks.detection's training transform), through
torchvision.transforms.v2 on tv_tensors.BoundingBoxes: flips (on the whole batch at once when alone), scale and
shift, SSD's IoU crop and zoom-out, photometric; every image keeps the batch's size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deepyard.errors import InvalidValueError

if TYPE_CHECKING:
    import torch


def augment_boxes(
    x: torch.Tensor, targets: torch.Tensor, aug: Any, fill: list[float] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Box-aware augmentation of a (B, C, H, W) float batch in pixel units and its (B, M, 6) targets; `fill`: the
    zoom-out canvas's colour per channel in pixel units (None: 0). Every image keeps the batch's size (a crop or
    a zoom-out is resized back), so the batch still stacks; an image whose boxes all leave the picture (or shrink
    under a pixel) stays in the batch as a negative."""
    if aug is None:
        return x, targets
    ops = _ops(aug, x.shape[1])
    crop = _iou_crop(aug, x.shape[2], x.shape[3])
    zooms = getattr(aug, "zoom_out", 1) > 1
    if not ops and crop is None and not zooms:
        return x, targets
    if crop is None and not zooms and all(type(op).__name__ in ("RandomHorizontalFlip", "RandomVerticalFlip")
                                          for op in ops):  # fmt: skip
        return _flips(x, targets, [type(op).__name__ == "RandomHorizontalFlip" for op in ops])
    import torch
    from torchvision import tv_tensors  # type: ignore[import-untyped]
    from torchvision.transforms import v2  # type: ignore[import-untyped]

    size = (x.shape[2], x.shape[3])
    zoom = [v2.RandomZoomOut(fill=[v / 255.0 for v in fill] if fill else 0.0, side_range=(1.0, aug.zoom_out))]
    head, tail = [op for op in ops if _photometric(op)], [op for op in ops if not _photometric(op)]
    # SSD's order: colours, zoom out, IoU crop, then flips and scale; an image without a box is never IoU-cropped
    # (no crop can keep a box of it: torchvision would draw crops until its "leave as is" option came up)
    before = head + (zoom if zooms else [])
    plain = v2.Compose(before + tail or [v2.Identity()])
    cropped = v2.Compose(before + ([crop] if crop is not None else []) + tail or [v2.Identity()])
    out_x, out_t = torch.empty_like(x), torch.zeros_like(targets)
    out_t[:, :, 4] = -1
    for i in range(len(x)):
        t = targets[i]
        keep = t[:, 4] >= 0
        boxes = tv_tensors.BoundingBoxes(t[keep, :4], format="XYXY", canvas_size=size)
        image, boxes = (cropped if keep.any() else plain)(tv_tensors.Image(x[i] / 255.0), boxes)
        if tuple(image.shape[-2:]) != size:  # zoomed out or cropped: back to the batch's size, boxes along
            image, boxes = v2.functional.resize(image, list(size)), v2.functional.resize(boxes, list(size))
        boxes = v2.functional.clamp_bounding_boxes(boxes)
        rows = torch.cat([boxes.as_subclass(torch.Tensor), t[keep, 4:]], dim=1)
        rows = rows[(rows[:, 2] - rows[:, 0] >= 1) & (rows[:, 3] - rows[:, 1] >= 1)]  # a crop's lost boxes: 0 wide
        out_x[i] = image.as_subclass(torch.Tensor).clamp(0, 1) * 255.0
        out_t[i, : len(rows)] = rows
    return out_x, out_t


def _photometric(op: Any) -> bool:
    return type(op).__name__ == "ColorJitter"


def _iou_crop(aug: Any, height: int, width: int) -> Any:
    """SSD's IoU crop (torchvision's RandomIoUCrop) applied with probability `augment.iou_crop`: a crop of 0.3 to
    1 of each side whose overlap with some box is at least an IoU drawn from 0, 0.1, 0.3, 0.5, 0.7, 0.9; the boxes
    whose centres it leaves out are dropped, the others cut to it. Its shape is within 2x of the image's aspect
    either way, so resizing it back to the batch's size stretches no more than SSD's square crops do. None: off."""
    if not getattr(aug, "iou_crop", 0):
        return None
    from torchvision.transforms import v2

    aspect = width / height
    crop = v2.RandomIoUCrop(min_aspect_ratio=aspect / 2, max_aspect_ratio=aspect * 2,
                            sampler_options=[0.0, 0.1, 0.3, 0.5, 0.7, 0.9])  # fmt: skip
    return v2.RandomApply([crop], p=aug.iou_crop)


def zoom_fill(preprocess: Any) -> list[float] | None:
    """The zoom-out canvas's colour: the run's mean colour (per channel, pixel units), which its mean subtraction
    then turns to 0; None (black) for a run without mean subtraction."""
    mean = getattr(preprocess, "mean", None)
    if mean is None:
        return None
    values: list[float] = mean.float().mean(dim=(1, 2)).tolist()
    return values


def _flips(x: torch.Tensor, targets: torch.Tensor, horizontal: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """Flips alone, on the whole batch at once (each image flipped with probability 0.5 per flip, as the
    per-image pipeline does, without its per-image cost): the pixels and the box corners mirrored."""
    import torch

    x, targets = x.clone(), targets.clone()
    for across in horizontal:
        pick = torch.rand(len(x), device=x.device) < 0.5
        side, (lo, hi) = (x.shape[3], (0, 2)) if across else (x.shape[2], (1, 3))
        x[pick] = x[pick].flip(3 if across else 2)
        t = targets[pick]
        valid = t[:, :, 4:5] >= 0
        mirrored = t.clone()
        mirrored[:, :, lo], mirrored[:, :, hi] = side - t[:, :, hi], side - t[:, :, lo]
        targets[pick] = torch.where(valid, mirrored, t)
    return x, targets


def _ops(aug: Any, channels: int) -> list[Any]:
    from torchvision.transforms import v2

    refused = [k for k in ("rot90", "rotation", "invert", "noise") if getattr(aug, k) not in (0, "none")]
    if refused:
        raise InvalidValueError(
            f"augment.{refused[0]} does not apply to detection; use flip, scale, iou_crop, zoom_out, contrast, hsv_*"
        )
    ops: list[Any] = []
    if aug.flip in ("lr", "lrud"):
        ops.append(v2.RandomHorizontalFlip(0.5))
    if aug.flip in ("ud", "lrud"):
        ops.append(v2.RandomVerticalFlip(0.5))
    if aug.scale:
        ops.append(v2.RandomAffine(degrees=0.0, translate=(0.1, 0.1), scale=(1 - 2 * aug.scale, 1 + 2 * aug.scale)))
    if aug.contrast or (channels == 3 and (aug.hsv_s or aug.hsv_v or aug.hsv_h)):
        ops.append(v2.ColorJitter(brightness=min(1.0, 4 * aug.hsv_v), contrast=min(1.0, aug.contrast),
                                  saturation=min(1.0, 4 * aug.hsv_s), hue=min(0.5, 4 * aug.hsv_h)))  # fmt: skip
    return ops
