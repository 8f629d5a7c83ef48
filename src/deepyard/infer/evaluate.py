"""Evaluate a model on a split of its dataset, another dataset with the same outputs, or labelled images.

The model runs over the data; the task's validation meter (the one the trainer uses) gives the headline
metrics, and the task's `evaluate` the rest of the report and its pictures (classification: top-1/top-5, the
confusion matrix, per-class precision/recall/F1, most-confused pairs, top losses, top N per class; multi-label:
per-label AP and F1; regression: MAE, RMSE, R² and scatter plots). `write_pictures` writes them. A task
whose outputs are large per example (segmentation) streams its report batch by batch (`Task.eval_stream`), so
the evaluation holds what the report needs (the pixel confusion matrix, the worst images' masks), not every
example's outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepyard.config import Settings
from deepyard.datasets import get_dataset, open_split
from deepyard.datasets.catalog import dataset_dir
from deepyard.datasets.images import ImageSkipped
from deepyard.errors import InvalidValueError, SourceError
from deepyard.files import read_json, write_bytes_atomic, write_json_atomic
from deepyard.infer.model import TrainedModel
from deepyard.infer.predict import Labelled
from deepyard.tasks import EvalContext

Pixels = Callable[[np.ndarray], np.ndarray]  # indices → (B, H, W, C) uint8 at the model's size


@dataclass
class EvalData:
    """Examples with known targets, ready for the model."""

    description: str
    targets: np.ndarray  # (N, ...) in the model's output order (classification: class indices)
    sources: list[str]  # what to call each image (its original file where known)
    pixels: Pixels
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return self.targets


def split_data(settings: Settings, clf: TrainedModel, dataset: str, split: str = "val") -> EvalData:
    """A split of a built dataset of the model's task whose output names are the model's (any order)."""
    manifest = get_dataset(settings, dataset)
    if manifest.task != clf.task.name:
        raise InvalidValueError(f"dataset {manifest.name!r} is a {manifest.task} dataset; the model is {clf.task.name}")
    store = open_split(settings, manifest, split)
    mapping = _class_mapping(manifest.classes, clf.classes, manifest.name)
    targets = _reorder(clf, store.targets, mapping)
    sources_file = dataset_dir(settings, manifest.id) / split / "sources.json"
    sources = read_json(sources_file) if sources_file.is_file() else [f"{split}#{i}" for i in range(len(store))]
    pre = clf.preprocessing
    same_size = tuple(manifest.shape) == (pre.height, pre.width, pre.channels)

    def pixels(indices: np.ndarray) -> np.ndarray:
        batch = store.get_batch(indices)
        return batch if same_size else np.stack([pre.load_pixels(_squeeze(img)) for img in batch])

    return EvalData(f"{manifest.name} ({split})", targets, [str(s) for s in sources], pixels)


def _reorder(clf: TrainedModel, targets: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Targets of a dataset whose output names are the model's in another order, in the model's order."""
    if np.array_equal(mapping, np.arange(len(mapping))):  # the same order (a dense mask has no column per output)
        return targets
    if targets.ndim == 1:  # class indices
        return mapping[targets.astype(np.int64)]
    out = np.zeros_like(targets)
    out[:, mapping] = targets
    return out


def labelled_data(clf: TrainedModel, items: Sequence[Labelled], description: str) -> EvalData:
    """Image files with known classes (a folder of class folders or a labelled list). Bad files are skipped."""
    unlabelled = [it.source for it in items if it.label is None]
    if unlabelled:
        raise SourceError(f"{len(unlabelled)} images have no target (first: {unlabelled[0]!r}); evaluation needs one")
    decoded, labels, sources, skipped = [], [], [], []
    for item in items:
        try:
            decoded.append(clf.preprocessing.load_pixels(item.source))
        except ImageSkipped as exc:
            skipped.append({"source": item.source, "error": exc.reason})
            continue
        labels.append(item.label)
        sources.append(item.source)
    if not decoded:
        raise SourceError(f"no readable image in {description}")
    array = np.stack(decoded)
    return EvalData(description, _targets(clf, labels), sources, lambda ix: array[ix], skipped)


def _targets(clf: TrainedModel, labels: list[Any]) -> np.ndarray:
    """Targets as written in a labelled list (class names, label names, values) → the stored form."""
    return clf.task.target_array([clf.task.target_of(str(x), clf.classes) for x in labels], clf.classes)


def _class_mapping(theirs: Sequence[str], ours: Sequence[str], name: str) -> np.ndarray:
    if set(theirs) != set(ours):
        missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        raise InvalidValueError(
            f"dataset {name!r} does not have the model's classes (missing: {', '.join(missing) or 'none'}; "
            f"not in the model: {', '.join(extra) or 'none'})"
        )
    return np.array([list(ours).index(c) for c in theirs], np.int64)


def _squeeze(img: np.ndarray) -> np.ndarray:
    return img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img


@dataclass
class Evaluation:
    """A whole evaluation: the task's report (JSON-ready) and pictures, and the raw outputs."""

    description: str
    task: str
    count: int
    metrics: dict[str, float]  # the validation meter's figures, named without `val_` (loss, top1, map, r2, ...)
    doc: dict[str, Any]
    pictures: dict[str, bytes] = field(repr=False)
    skipped: list[dict[str, str]]
    outputs: np.ndarray = field(repr=False)  # every example's kept outputs; empty where the task streams
    targets: np.ndarray = field(repr=False)
    data: EvalData = field(repr=False)

    def __getattr__(self, name: str) -> Any:  # the report's figures as attributes: result.top1, result.r2
        doc = self.__dict__.get("doc", {})
        if name in doc:
            return doc[name]
        raise AttributeError(name)

    def to_json(self) -> dict[str, Any]:
        return {"description": self.description, "task": self.task, "count": self.count, "metrics": self.metrics,
                **self.doc, "skipped": self.skipped}  # fmt: skip


def evaluate(
    clf: TrainedModel,
    data: EvalData,
    top_n: int = 9,
    batch_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Run the model over `data` and compute every metric of its task."""
    n = len(data.targets)
    if n == 0:
        raise SourceError(f"{data.description} has no images to evaluate")
    criterion = clf.task.criterion(clf.task.losses[0], clf.classes, clf.stats, None)  # the task's default loss
    meter = clf.task.meter(clf.classes, clf.stats)
    ctx = EvalContext(list(clf.classes), clf.stats, data.sources, data.pixels, top_n)
    stream = clf.task.eval_stream(ctx)  # segmentation: the report per batch, no outputs kept
    chunks = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        outputs = clf.outputs(torch.from_numpy(data.pixels(idx)).permute(0, 3, 1, 2))
        batch = np.ascontiguousarray(data.targets[idx])
        targets = torch.from_numpy(batch)
        meter.update(outputs, targets, torch.stack(list(criterion(outputs, targets).values())).sum())
        if stream is not None:
            stream.update(outputs, batch, idx)
        else:
            chunks.append(clf.task.eval_outputs(outputs))
        if on_progress:
            on_progress(int(idx[-1]) + 1, n)
    figures = {k.removeprefix("val_"): v for k, v in meter.compute(meter.sums()).items()}
    if stream is not None:
        everything, report = np.zeros((0,), np.float64), stream.report()
    else:
        kept = torch.cat(chunks)
        everything = (kept.double() if kept.is_floating_point() else kept).numpy()
        report = clf.task.evaluate(everything, data.targets, ctx)
    return Evaluation(data.description, clf.task.name, n, figures, report.doc, report.pictures, data.skipped,
                      everything, data.targets, data)  # fmt: skip


def write_pictures(result: Evaluation, folder: Path) -> dict[str, Path]:
    """The task's pictures (classification: confusion.png, top_losses.png, top_per_class.png) and
    evaluation.json in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in result.pictures.items():
        out[name.removesuffix(".png")] = folder / name
        write_bytes_atomic(folder / name, data)
    out["json"] = folder / "evaluation.json"
    write_json_atomic(out["json"], result.to_json())
    return out
