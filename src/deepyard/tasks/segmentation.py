"""Semantic segmentation: a class per pixel.

Targets: a uint8 mask per image at the dataset's size (class indices, 255 = ignore), stored per split as one
memory-mapped (N, H, W) array, `masks.npy`, like raw images. Sources (`MaskSource`): a folder with `images/` and
`masks/` (pairs by file stem) or a list file of `image mask` lines; masks as palette PNGs, grayscale indices or
RGB colours through a classes file of `name r g b` lines (deepyard.datasets.masks reads them and reports every
bad pair), or a COCO JSON file's polygons and RLE, rasterised (deepyard.datasets.cocomasks). Masks are resized
with nearest neighbour only, with the images' resize mode. The manifest keeps the mask kinds found, the colours
shown, pixels and images per class and suggested class weights.

Training: augmentation moves image and mask together (torchvision.transforms.v2 with tv_tensors.Mask: flips,
quarter turns, rotation and scale; the photometric ones touch the pixels only). Losses: cross-entropy (ignore
255), cross-entropy with the dataset's suggested class weights, Dice, focal, cross-entropy + Dice. Validation
metrics from one pixel confusion matrix (DDP-reducible): loss, mIoU, pixel accuracy, mean Dice, in %.
Networks: `unet` (the default), torchvision's fcn_*, deeplabv3_*, lraspp_* by name (deepyard.networks.dense).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepyard.errors import InvalidValueError, SourceError, choices
from deepyard.tasks.base import Criterion, EvalContext, EvalStream, Meter, MetricInfo, Report, Task, register_task

if TYPE_CHECKING:
    import torch

    from deepyard.datasets.sources import Listing, Readable
    from deepyard.datasets.spec import DatasetSpec

IGNORE = 255
MASKS_FILE = "masks.npy"


class Segmentation(Task):
    network_output = "pixel"
    name = "segmentation"
    title = "Semantic segmentation"
    target_format = "a class index per pixel (uint8 mask at the image's size, 255 = ignore)"
    sources = (
        "a folder with images/ and masks/ (pairs by stem); list 'image mask'; palette, index or RGB masks; "
        "a COCO JSON file (polygons, RLE)"
    )
    targets_file = MASKS_FILE
    losses = ("cross_entropy", "weighted_cross_entropy", "dice", "focal", "ce_dice")
    metrics = (
        MetricInfo("val_loss", "val loss", higher_is_better=False),
        MetricInfo("val_miou", "val mIoU", "%"),
        MetricInfo("val_pixel_acc", "val pixel acc", "%"),
        MetricInfo("val_dice", "val Dice", "%"),
    )
    # dataset: the boxes/masks panel and gallery; infer: the run page's Detect/Segment one (both in vision.js)
    template_names = ("predict.html", "evaluate.html", "dataset.html", "infer.html")

    # ---- datasets

    def list_source(self, spec: DatasetSpec, readable: Readable | None) -> Listing:
        from deepyard.datasets.segsource import list_masks

        return list_masks(spec, readable)

    def check_source(self, spec: DatasetSpec) -> None:
        from deepyard.datasets.spec import MaskSource

        src = spec.source
        if not isinstance(src, MaskSource):
            raise SourceError(
                f"segmentation reads images with masks (a folder with images/ and masks/, or a list file of "
                f"`image mask` lines), not a {src.kind} source"
            )
        for key, path in src:
            if isinstance(path, Path) and not path.exists():
                raise SourceError(f"source.{key}: {str(path)!r} does not exist")

    def target_array(self, targets: Sequence[Any], names: Sequence[str]) -> np.ndarray:
        raise InvalidValueError("segmentation targets are masks: give them as mask files beside the images")

    def store_targets(self, folder: Path, targets: Sequence[Any], names: Sequence[str], spec: DatasetSpec) -> None:
        from deepyard.datasets.segsource import store_masks

        store_masks(folder / MASKS_FILE, targets, spec)

    def load_targets(self, folder: Path) -> np.ndarray:
        masks: np.ndarray = np.load(folder / MASKS_FILE, mmap_mode="c")  # copy-on-write: torch takes it as is
        return masks

    def per_output(self, targets: np.ndarray, names: Sequence[str]) -> list[int]:
        counts: list[int] = class_pixels(targets, len(names))[2].tolist()
        return counts

    def target_stats(self, train: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        pixels, ignored, images = class_pixels(train, len(names))
        return {"pixels": pixels.tolist(), "ignored_pixels": ignored, "images_per_class": images.tolist(),
                "class_weights": suggested_weights(pixels)}  # fmt: skip

    def caption(self, target: np.ndarray, names: Sequence[str]) -> str:
        return areas_text(np.bincount(np.asarray(target).ravel(), minlength=256)[: len(names)], names)

    def having(self, targets: np.ndarray, output: int) -> np.ndarray:
        return np.array([bool((np.asarray(m) == output).any()) for m in targets], dtype=bool)

    def transform(
        self, preprocess: Callable[..., torch.Tensor], pixels: torch.Tensor, targets: torch.Tensor, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from deepyard.tasks.segaugment import joint_transform

        return joint_transform(preprocess, pixels, targets, train)

    # ---- networks and training

    def criterion(self, loss: str, names: Sequence[str], stats: dict[str, Any], config: Any) -> Criterion:
        import torch
        import torch.nn.functional as F

        from deepyard.tasks.segmetrics import dice_loss, focal_loss

        if loss not in self.losses:
            raise InvalidValueError(f"loss {loss!r} does not apply to segmentation; use {choices(self.losses)}")
        given = stats.get("class_weights")
        weights = given if loss == "weighted_cross_entropy" and isinstance(given, list) else None

        def ce(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            w = None if weights is None else torch.tensor(weights, dtype=torch.float32, device=x.device)
            return F.cross_entropy(x.float(), y.long(), weight=w, ignore_index=IGNORE)

        def criterion(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
            if loss == "dice":
                return {"dice": dice_loss(x, y)}
            if loss == "focal":
                return {"focal": focal_loss(x, y, None)}
            if loss == "ce_dice":
                return {"cross_entropy": ce(x, y), "dice": dice_loss(x, y)}
            return {loss: ce(x, y)}

        return criterion

    def meter(self, names: Sequence[str], stats: dict[str, Any]) -> Meter:
        from deepyard.tasks.segmetrics import ConfusionMeter

        return ConfusionMeter(len(names))

    def default_network(self, shape: tuple[int, int, int]) -> tuple[str, str]:
        height, width, _ = shape
        return "unet", f"segmentation of {width}x{height} images: the small U-Net"

    # ---- inference

    def predict(
        self, outputs: torch.Tensor, names: Sequence[str], stats: dict[str, Any], k: int
    ) -> list[dict[str, Any]]:
        rows = []
        for classes in outputs.float().argmax(1).numpy():
            counts = np.bincount(classes.ravel(), minlength=len(names))[: len(names)]
            areas = [
                {"class": n, "fraction": float(c / max(classes.size, 1))} for n, c in zip(names, counts, strict=True)
            ]
            rows.append({"predicted": areas_text(counts, names), "areas": areas,
                         "summary": areas_text(counts, names), "mask_shape": list(classes.shape)})  # fmt: skip
        return rows

    def confidence(self, predicted: dict[str, Any]) -> float | None:
        return None

    def agreement(self, expected: np.ndarray, exported: np.ndarray, stats: dict[str, Any]) -> tuple[str, float]:
        return "per-pixel classes", float((expected.argmax(1) == exported.argmax(1)).mean())

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
        from deepyard.tasks.segreport import segmentation_report

        return segmentation_report(outputs, targets, ctx)

    def eval_stream(self, ctx: EvalContext) -> EvalStream:
        from deepyard.tasks.segreport import SegmentationStream

        return SegmentationStream(ctx)  # the matrix and the top_n worst masks, never every image's

    def target_of(self, text: str, names: Sequence[str]) -> Any:
        raise InvalidValueError("a segmentation target is a mask file, not text after a path")


def areas_text(counts: np.ndarray, names: Sequence[str], top: int = 4) -> str:
    """`circle 23.1%, background 70.2%`: the largest classes by area."""
    total = max(int(counts.sum()), 1)
    order = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0][:top]
    return ", ".join(f"{names[i]} {100 * counts[i] / total:.1f}%" for i in order) or "(all ignored)"


def class_pixels(masks: np.ndarray, k: int, chunk: int = 256) -> tuple[np.ndarray, int, np.ndarray]:
    """(pixels per class, ignored pixels, images per class) of (N, H, W) masks, read in chunks (memory maps)."""
    pixels, images, ignored = np.zeros(k, np.int64), np.zeros(k, np.int64), 0
    for start in range(0, len(masks), chunk):
        block = np.asarray(masks[start : start + chunk]).reshape(-1, int(np.prod(masks.shape[1:])))
        counts = np.bincount(block.ravel(), minlength=256)
        pixels += counts[:k]
        ignored += int(counts[IGNORE])
        offsets = block.astype(np.int64) + 256 * np.arange(len(block))[:, None]
        present = np.bincount(offsets.ravel(), minlength=256 * len(block)).reshape(len(block), 256)[:, :k] > 0
        images += present.sum(0)
    return pixels, ignored, images


def suggested_weights(pixels: np.ndarray) -> list[float]:
    """Median-frequency balancing (Eigen and Fergus, 2015): median(freq) / freq_c; 1 for an absent class."""
    freq = pixels / max(int(pixels.sum()), 1)
    seen = freq > 0
    if not seen.any():
        return [1.0] * len(pixels)
    median = float(np.median(freq[seen]))
    return [round(median / f, 4) if f > 0 else 1.0 for f in freq.tolist()]


SEGMENTATION = register_task(Segmentation())
