"""The comparison table of the lab's last step: test images by models, each cell the model's prediction for the
image through its task (classification: the class and its probability; multi-label: the labels above their
thresholds; regression: the values), with the image's true target when it comes from a dataset split.

Images are files (a path: an image, a folder or a list file, as `deepyard classify` reads them), uploaded bytes,
or stored images of a dataset split (the first N, or chosen indices). Every model classifies them through
`classify_many`, so each goes through its own run's preprocessing; a split's stored pixels are used as they are
by a model trained at their size. Not here: loading the models (the CLI opens runs and archives, the server its
cached run models) and the limits on what a request may send (the server's).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepyard.config import Settings
from deepyard.datasets import get_dataset, open_split
from deepyard.datasets.images import EXTENSIONS
from deepyard.errors import InvalidValueError
from deepyard.infer.model import TrainedModel
from deepyard.infer.predict import Labelled, Prediction, classify_many, read_inputs
from deepyard.tasks import get_task

DEFAULT_COUNT = 10  # images taken from a split when neither a count nor indices are given


@dataclass(frozen=True)
class Origin:
    """Where a dataset image is stored: dataset id, split, index in the split."""

    dataset: str
    split: str
    index: int

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "split": self.split, "index": self.index}


@dataclass(frozen=True)
class TableImage:
    """One row's image: what the models are given (a file path, bytes or stored pixels, and the true target when
    known) and, for a dataset image, where it is stored."""

    item: Labelled
    origin: Origin | None = None


@dataclass(frozen=True)
class Column:
    """One model of the table: its run (or archive), snapshot, task and its metrics when it was saved."""

    info: dict[str, Any]  # TrainedModel.info: run, run_name, snapshot, step, dataset, metrics, task
    title: str  # the column's heading: the run's name, with its id when another column has the same name

    def to_json(self) -> dict[str, Any]:
        task = get_task(self.info.get("task"))
        metrics = self.info.get("metrics") or {}
        return {"title": self.title, "run": self.info.get("run"), "name": self.info.get("run_name"),
                "snapshot": self.info.get("snapshot"), "task": task.name, "dataset": self.info.get("dataset"),
                "headline": {"label": task.metrics[1].label, "text": task.headline(metrics)}}  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """One model's prediction for one image, and how sure it is where its task says (else None)."""

    prediction: Prediction
    confidence: float | None

    @property
    def text(self) -> str:
        """The cell as the table shows it: `7 98.1%` where the task has a confidence, else the task's summary."""
        p = self.prediction
        if p.error:
            return f"error: {p.error}"
        if self.confidence is not None:
            return f"{p.predicted} {100 * self.confidence:.1f}%"
        return str(p.result.get("summary", p.predicted or ""))

    def to_json(self) -> dict[str, Any]:
        p = self.prediction
        return {"text": self.text, "predicted": p.predicted, "confidence": self.confidence, "correct": p.correct,
                "summary": p.result.get("summary"), "error": p.error, "result": p.result}  # fmt: skip


@dataclass(frozen=True)
class Row:
    image: TableImage
    cells: list[Cell]

    @property
    def error(self) -> str | None:
        """The first cell's error: an image that cannot be read fails for every model."""
        return next((c.prediction.error for c in self.cells if c.prediction.error), None)

    def to_json(self) -> dict[str, Any]:
        origin = self.image.origin
        return {"image": self.image.item.source, "label": self.image.item.label,
                "origin": origin.to_json() if origin else None, "error": self.error,
                "cells": [c.to_json() for c in self.cells]}  # fmt: skip


@dataclass(frozen=True)
class PredictionTable:
    """Rows are images, columns are models; `rows[i].cells[j]` is model j's prediction for image i."""

    columns: list[Column]
    rows: list[Row]

    def right(self, column: int) -> tuple[int, int]:
        """(right, labelled): how many of the images with a true target the model predicts right."""
        judged = [r.cells[column].prediction.correct for r in self.rows]
        known = [c for c in judged if c is not None]
        return sum(known), len(known)

    def to_json(self) -> dict[str, Any]:
        columns = []
        for j, col in enumerate(self.columns):
            right, labelled = self.right(j)
            columns.append({**col.to_json(), "right": right, "labelled": labelled})
        return {"columns": columns, "rows": [r.to_json() for r in self.rows]}

    def to_csv(self) -> str:
        """One line per image: image, true target, then per model its prediction, confidence, whether it is
        right and the task's summary; last, the image's error. Confidences are fractions (0..1)."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        head = ["image", "label"]
        for col in self.columns:
            head += [f"{col.title} {what}" for what in ("predicted", "confidence", "correct", "summary")]
        writer.writerow([*head, "error"])
        for row in self.rows:
            line = [row.image.item.source, row.image.item.label or ""]
            for cell in row.cells:
                p = cell.prediction
                line += [p.predicted or "", "" if cell.confidence is None else f"{cell.confidence:.6f}",
                         "" if p.correct is None else str(p.correct).lower(), p.result.get("summary", "")]  # fmt: skip
            writer.writerow([*line, row.error or ""])
        return buf.getvalue()


def predict_table(models: Sequence[TrainedModel], images: Sequence[TableImage]) -> PredictionTable:
    """Each model's prediction for each image, through its task: the comparison table."""
    if not models:
        raise InvalidValueError("a comparison needs at least one model (a run id)")
    if not images:
        raise InvalidValueError("a comparison needs at least one image: upload some, or pick them from a dataset split")
    items = [image.item for image in images]
    by_model = [classify_many(clf, items, k=1) for clf in models]
    cells = [[Cell(p, clf.task.confidence(p.result) if p.error is None else None) for p in predictions]
             for clf, predictions in zip(models, by_model, strict=True)]  # fmt: skip
    rows = [Row(image, [column[i] for column in cells]) for i, image in enumerate(images)]
    return PredictionTable(_columns(models), rows)


def _columns(models: Sequence[TrainedModel]) -> list[Column]:
    names = [str(clf.info.get("run_name") or clf.info.get("run") or "model") for clf in models]
    titles = []
    for clf, name in zip(models, names, strict=True):
        same = names.count(name) > 1
        snap = clf.info.get("snapshot")
        titles.append(f"{name} ({clf.info.get('run')}@{snap})" if same and snap else name)
    return [Column(clf.info, title) for clf, title in zip(models, titles, strict=True)]


def split_images(
    settings: Settings,
    dataset: str,
    split: str = "val",
    count: int | None = None,
    offset: int = 0,
    indices: Sequence[int] | None = None,
) -> list[TableImage]:
    """Stored images of a dataset split with their true targets: `indices`, or the `count` images from `offset`
    (default DEFAULT_COUNT; at most what the split holds)."""
    if count is not None and indices is not None:
        raise InvalidValueError("give either a count or indices of the images to take from the split, not both")
    manifest = get_dataset(settings, dataset)
    store = open_split(settings, manifest, split)
    size = len(store)
    if indices is None:
        if count is not None and count < 1:
            raise InvalidValueError(f"count {count} must be at least 1")
        if not 0 <= offset < size:
            raise InvalidValueError(
                f"offset {offset} is out of range; split {split!r} has {size} images (0..{size - 1})"
            )
        chosen = list(range(offset, min(size, offset + (count or DEFAULT_COUNT))))
    else:
        bad = [i for i in indices if not 0 <= i < size]
        if bad:
            raise InvalidValueError(f"image index {bad[0]} is out of range; split {split!r} of dataset "
                                    f"{manifest.name!r} has {size} images (0..{size - 1})")  # fmt: skip
        chosen = list(indices)
    task, targets = get_task(manifest.task), store.targets
    return [TableImage(Labelled(f"{manifest.name}/{split}/{i}", task.caption(targets[i], manifest.classes),
                                store.get(i)), Origin(manifest.id, split, i)) for i in chosen]  # fmt: skip


def upload_image(name: str, data: bytes) -> TableImage:
    """An uploaded image file's bytes, shown under its file name."""
    return TableImage(Labelled(name, None, data))


def file_images(paths: Sequence[Path], model: TrainedModel, base: Path | None = None) -> list[TableImage]:
    """Image files, folders of images and list files (as `deepyard classify` reads them: class sub-folders and
    list-file targets give the true target, in `model`'s output names)."""
    found: list[TableImage] = []
    for path in paths:
        if path.is_file() and path.suffix.lower() in EXTENSIONS:
            found.append(TableImage(Labelled(str(path))))
        else:
            found += [TableImage(item) for item in read_inputs(path, base, model.classes, model.task)]
    return found
