"""Detect objects in image files with a detection model: boxes in each original image's pixels, and an overlay.

The network sees the image at the dataset's size (its resize mode; detection builds letterbox by default); its
boxes are mapped back onto the original image by the inverse of that placement (deepyard.datasets.boxes), so a
box is in the same pixels as the file the user gave. A box is kept when its score reaches its class's threshold
(the best F1 on validation, calibrated when the model is loaded) or the one threshold the caller gives. Each image
gets `<stem>_boxes.png`, the original with the kept boxes drawn and labelled (a small image drawn a whole number of
times larger, at least 256 px on its long side, for its labels to be legible; a folder's images in its sub-folders,
so that two files of one name never share an overlay); `predictions.json` holds every row.
A file that cannot be read gets a row with its error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepyard.config import Settings
from deepyard.datasets.boxes import placement, to_original
from deepyard.datasets.images import ImageSkipped, load_image
from deepyard.datasets.sources import walk_images
from deepyard.errors import InvalidValueError, SourceError
from deepyard.files import write_bytes_atomic, write_json_atomic
from deepyard.infer.model import TrainedModel, open_model, parse_model_ref
from deepyard.infer.predict import output_stems
from deepyard.pictures import png
from deepyard.tasks.boxmetrics import PALETTE, draw_boxes
from deepyard.tasks.boxreport import above, class_thresholds

OVERLAY_SIDE = 256  # an overlay's long side at least, in pixels: a smaller image is scaled up by a whole factor


def model_task(settings: Settings, ref: str) -> str | None:
    """The task of the run `ref` names (None for an archive or what is not a run): cheap, no weights loaded."""
    from deepyard.datasets import get_dataset
    from deepyard.train import runs

    if ref.endswith(".zip"):
        return None
    try:
        run_id, _ = parse_model_ref(ref)
        return get_dataset(settings, runs.get_run(settings, run_id)["dataset"]).task
    except Exception:  # what is not a readable run is left to the verb's own loader to report
        return None


def detect_file(
    clf: TrainedModel, path: str, folder: Path, threshold: float | None = None, stem: str | None = None
) -> dict[str, Any]:
    """Detect in one image file; boxes in its original pixels; writes `<stem>_boxes.png` under `folder` (`stem`:
    the file's own stem by default; one of `output_stems`, sub-folders included, for a folder's images).
    `threshold`: the score every box needs (None: its class's calibrated threshold)."""
    pre = clf.preprocessing
    original = np.asarray(load_image(path, pre.geometry))  # raises ImageSkipped
    size = (int(original.shape[1]), int(original.shape[0]))
    rows = clf.outputs([pre.load_pixels(original)])[0].numpy()  # (D, 6) at the dataset's size
    rows = above(rows, class_thresholds({**clf.stats, "threshold": threshold}, len(clf.classes)))
    boxes = to_original(rows[:, :4], placement(size, pre.geometry), size)
    found = [{"class": clf.classes[int(r[5])], "score": round(float(r[4]), 4), "box": [round(float(v), 2) for v in b]}
             for r, b in zip(rows, boxes, strict=True)]  # fmt: skip
    drawn = [{"box": f["box"], "label": f"{f['class']} {f['score']:.2f}", "colour": PALETTE[int(r[5]) % 10]}
             for f, r in zip(found, rows, strict=True)]  # fmt: skip
    overlay = folder / f"{stem or Path(path).stem}_boxes.png"
    overlay.parent.mkdir(parents=True, exist_ok=True)
    scale = max(1, -(-OVERLAY_SIDE // max(size)))  # a small image is drawn larger, for its labels to be legible
    write_bytes_atomic(overlay, png(draw_boxes(original, drawn, scale=scale)))
    counts: dict[str, int] = {}
    for f in found:
        counts[str(f["class"])] = counts.get(str(f["class"]), 0) + 1
    summary = ", ".join(f"{n} {c}" for c, n in counts.items()) or (
        f"no object above {threshold:g}" if threshold is not None else "no object above its class's threshold"
    )
    return {"source": path, "size": list(size), "boxes": found, "overlay": str(overlay), "summary": summary,
            "error": None}  # fmt: skip


def detect_images(
    settings: Settings,
    model: str,
    inputs: Path,
    out: Path | None = None,
    snapshot: str | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Detect in an image file or every image under a folder; overlays and predictions.json go to `out`
    (default: the run's `predictions/<name>/`). `threshold`: the score every box needs (None: each class's
    calibrated threshold)."""
    from deepyard.infer.tasks import output_folder

    if threshold is not None and not 0 <= threshold <= 1:
        raise InvalidValueError(f"threshold {threshold} must lie between 0 and 1")
    clf = open_model(settings, model, snapshot)
    if clf.task.name != "detection":
        raise InvalidValueError(f"model {model!r} is a {clf.task.name} model; it detects no boxes")
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
            rows.append(detect_file(clf, path, folder, threshold, stem))
        except ImageSkipped as exc:
            rows.append({"source": path, "error": exc.reason})
    cuts = class_thresholds({**clf.stats, "threshold": threshold}, len(clf.classes))
    doc = {"model": clf.info, "folder": str(folder), "threshold": threshold,
           "thresholds": dict(zip(clf.classes, cuts.tolist(), strict=True)), "predictions": rows}  # fmt: skip
    write_json_atomic(folder / "predictions.json", doc)
    return doc
