"""Segment images with a segmentation model: a class-index mask at each image's original size, and an overlay.

The network sees the image at the dataset's size (its resize mode: squash, crop, fill, half_crop); its logits
are mapped back onto the original pixels by the inverse of that geometry (bilinear on the logits, then argmax),
so the mask has the original width and height. Pixels the network never saw (cut off by `crop`) are 255,
ignore. The mask is written as a palette PNG: each pixel's value is its class index (read it as a grayscale
index) and the palette holds the dataset's class colours (any viewer shows it in colour). The overlay is the
image with the class colours laid over it at `opacity`. A file that cannot be read gets a row with its error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from deepyard.config import Settings
from deepyard.datasets.images import ImageSkipped, load_image
from deepyard.datasets.sources import walk_images
from deepyard.datasets.spec import ResizeMode
from deepyard.errors import InvalidValueError, SourceError
from deepyard.files import write_bytes_atomic, write_json_atomic
from deepyard.infer.model import TrainedModel, open_model
from deepyard.infer.predict import output_stems
from deepyard.infer.preprocess import Preprocessing
from deepyard.pictures import png
from deepyard.tasks.segreport import blend

IGNORE = 255


def to_original(logits: torch.Tensor, size: tuple[int, int], pre: Preprocessing) -> np.ndarray:
    """(K, H, W) logits at the network's size -> (h0, w0) uint8 classes at the original (w0, h0) size."""
    w0, h0 = size
    _, height, width = logits.shape
    if pre.resize_mode == ResizeMode.squash.value:
        sx, sy = width / w0, height / h0
    else:
        rx, ry = pre.width / w0, pre.height / h0
        s = {"crop": max(rx, ry), "fill": min(rx, ry), "half_crop": (rx + ry) / 2}[pre.resize_mode]
        sx = sy = s
    scaled_w, scaled_h = (
        (width, height) if pre.resize_mode == "squash" else (max(1, round(w0 * sx)), max(1, round(h0 * sy)))
    )
    sx, sy = scaled_w / w0, scaled_h / h0
    off_x = (width - scaled_w) // 2 if scaled_w <= width else -((scaled_w - width) // 2)
    off_y = (height - scaled_h) // 2 if scaled_h <= height else -((scaled_h - height) // 2)
    xs = (torch.arange(w0, dtype=torch.float32) + 0.5) * sx + off_x  # canvas coordinates of pixel centres
    ys = (torch.arange(h0, dtype=torch.float32) + 0.5) * sy + off_y
    gx, gy = xs / width * 2 - 1, ys / height * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1).unsqueeze(0)  # (1, h0, w0, 2)
    sampled = F.grid_sample(logits.unsqueeze(0).float(), grid, mode="bilinear", align_corners=False)
    classes = sampled[0].argmax(0).to(torch.uint8).numpy()
    outside = ((gx.abs() > 1)[None, :] | (gy.abs() > 1)[:, None]).numpy()
    classes[outside] = IGNORE
    return classes


def mask_png(classes: np.ndarray, colours: list[list[int]]) -> bytes:
    img = Image.fromarray(classes, mode="P")
    flat = [c for rgb in colours for c in rgb][: 3 * 255]
    img.putpalette(flat + [0, 0, 0] * (255 - len(flat) // 3) + [255, 255, 255])  # 255: ignore, white
    return png(img)


def segment_file(clf: TrainedModel, path: str, folder: Path, opacity: float, stem: str | None = None) -> dict[str, Any]:
    """Segment one image file; write `<stem>_mask.png` and `<stem>_overlay.png` under `folder` (`stem`: the
    file's own stem by default; one of `output_stems`, sub-folders included, for a folder's images)."""
    pre = clf.preprocessing
    original = np.asarray(load_image(path, pre.geometry))  # raises ImageSkipped
    logits = clf.outputs([pre.load_pixels(original)])
    classes = to_original(logits[0], (original.shape[1], original.shape[0]), pre)
    colours = clf.stats.get("colours") or [[(37 * i) % 256, (97 * i) % 256, (181 * i) % 256] for i in clf.classes]
    stem = stem or Path(path).stem
    mask_file, overlay_file = folder / f"{stem}_mask.png", folder / f"{stem}_overlay.png"
    mask_file.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(mask_file, mask_png(classes, colours))
    write_bytes_atomic(overlay_file, png(Image.fromarray(blend(original, classes, colours, opacity))))
    counts = np.bincount(classes.ravel(), minlength=256)
    total = max(int(counts[: len(clf.classes)].sum()), 1)
    areas = [
        {"class": n, "fraction": float(counts[i] / total), "pixels": int(counts[i])} for i, n in enumerate(clf.classes)
    ]
    (result,) = clf.predict(logits, 1)
    return {"source": path, "size": [int(original.shape[1]), int(original.shape[0])], "mask": str(mask_file),
            "overlay": str(overlay_file), "areas": areas, "summary": result["summary"], "error": None}  # fmt: skip


def segment_images(
    settings: Settings,
    model: str,
    inputs: Path,
    out: Path | None = None,
    snapshot: str | None = None,
    opacity: float = 0.5,
) -> dict[str, Any]:
    """Segment an image file or every image under a folder; masks and overlays go to `out` (default: the run's
    `predictions/<name>/`), with predictions.json."""
    from deepyard.infer.tasks import output_folder

    if not 0 <= opacity <= 1:
        raise InvalidValueError(f"opacity {opacity} must lie between 0 and 1")
    clf = open_model(settings, model, snapshot)
    if clf.task.name != "segmentation":
        raise InvalidValueError(f"model {model!r} is a {clf.task.name} model; `predict` writes segmentation masks")
    if inputs.is_dir():
        files, _ = walk_images(inputs)
    elif inputs.is_file():
        files = [str(inputs)]
    else:
        raise SourceError(f"{str(inputs)!r} is neither an image file nor a folder of images")
    folder = output_folder(settings, clf, "predictions", inputs.stem or "images", out)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for path, stem in zip(files, output_stems(files, inputs if inputs.is_dir() else None), strict=True):
        try:
            rows.append(segment_file(clf, path, folder, opacity, stem))
        except ImageSkipped as exc:
            rows.append({"source": path, "error": exc.reason})
    doc = {"model": clf.info, "folder": str(folder), "predictions": rows}
    write_json_atomic(folder / "predictions.json", doc)
    return doc
