"""Evaluate a model on a split of its dataset, another dataset with the same classes, or labelled images.

Gives top-1/top-5 accuracy, mean loss, the confusion matrix, per-class precision/recall/F1, the most-confused
pairs, top losses (wrong answers given with the highest confidence) and the N most confident images per class;
`write_pictures` draws the heat map and the image grids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
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
from deepyard.infer import metrics, pictures
from deepyard.infer.model import Classifier
from deepyard.infer.predict import Labelled

Pixels = Callable[[np.ndarray], np.ndarray]  # indices → (B, H, W, C) uint8 at the model's size


@dataclass
class EvalData:
    """Labelled images ready for the model."""

    description: str
    labels: np.ndarray  # (N,) indices into the model's classes
    sources: list[str]  # what to call each image (its original file where known)
    pixels: Pixels
    skipped: list[dict[str, str]] = field(default_factory=list)


def split_data(settings: Settings, clf: Classifier, dataset: str, split: str = "val") -> EvalData:
    """A split of a built dataset whose classes are the model's (same names, any order)."""
    manifest = get_dataset(settings, dataset)
    store = open_split(settings, manifest, split)
    mapping = _class_mapping(manifest.classes, clf.classes, manifest.name)
    labels = mapping[store.labels.astype(np.int64)]
    sources_file = dataset_dir(settings, manifest.id) / split / "sources.json"
    sources = read_json(sources_file) if sources_file.is_file() else [f"{split}#{i}" for i in range(len(store))]
    pre = clf.preprocessing
    same_size = tuple(manifest.shape) == (pre.height, pre.width, pre.channels)

    def pixels(indices: np.ndarray) -> np.ndarray:
        batch = store.get_batch(indices)
        return batch if same_size else np.stack([pre.load_pixels(_squeeze(img)) for img in batch])

    return EvalData(f"{manifest.name} ({split})", labels, [str(s) for s in sources], pixels)


def labelled_data(clf: Classifier, items: Sequence[Labelled], description: str) -> EvalData:
    """Image files with known classes (a folder of class folders or a labelled list). Bad files are skipped."""
    unlabelled = [it.source for it in items if it.label is None]
    if unlabelled:
        raise SourceError(f"{len(unlabelled)} images have no class (first: {unlabelled[0]!r}); evaluation needs one")
    index = {name: i for i, name in enumerate(clf.classes)}
    decoded, labels, sources, skipped = [], [], [], []
    for item in items:
        try:
            decoded.append(clf.preprocessing.load_pixels(item.source))
        except ImageSkipped as exc:
            skipped.append({"source": item.source, "error": exc.reason})
            continue
        labels.append(index[item.label or ""])
        sources.append(item.source)
    if not decoded:
        raise SourceError(f"no readable image in {description}")
    array = np.stack(decoded)
    return EvalData(description, np.array(labels, np.int64), sources, lambda ix: array[ix], skipped)


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
class Example:
    index: int
    source: str
    label: str
    predicted: str
    probability: float  # of the predicted class
    true_probability: float
    loss: float


@dataclass
class Evaluation:
    description: str
    classes: list[str]
    count: int
    top1: float
    top5: float
    loss: float
    confusion: np.ndarray
    per_class: list[metrics.ClassScores]
    confused: list[metrics.Confusion]
    top_losses: list[Example]
    top_per_class: dict[str, list[Example]]
    skipped: list[dict[str, str]]
    probs: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    data: EvalData = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description, "classes": self.classes, "count": self.count, "top1": self.top1,
            "top5": self.top5, "loss": self.loss, "confusion": self.confusion.tolist(),
            "per_class": [asdict(s) for s in self.per_class], "most_confused": [asdict(c) for c in self.confused],
            "top_losses": [asdict(e) for e in self.top_losses],
            "top_per_class": {c: [asdict(e) for e in v] for c, v in self.top_per_class.items()},
            "skipped": self.skipped,
        }  # fmt: skip


def evaluate(
    clf: Classifier,
    data: EvalData,
    top_n: int = 9,
    batch_size: int = 256,
    on_progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Run the model over `data` and compute every metric."""
    n = len(data.labels)
    if n == 0:
        raise SourceError(f"{data.description} has no images to evaluate")
    chunks = []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        chunks.append(clf.logits(torch.from_numpy(data.pixels(idx)).permute(0, 3, 1, 2)).softmax(dim=1))
        if on_progress:
            on_progress(int(idx[-1]) + 1, n)
    probs = torch.cat(chunks).double().numpy()
    labels = data.labels
    confusion = metrics.confusion_matrix(labels, probs.argmax(axis=1), clf.num_classes)
    losses = metrics.cross_entropy(probs, labels)

    def example(i: int) -> Example:
        pred = int(probs[i].argmax())
        return Example(int(i), data.sources[i], clf.classes[labels[i]], clf.classes[pred], float(probs[i, pred]),
                       float(probs[i, labels[i]]), float(losses[i]))  # fmt: skip

    return Evaluation(
        data.description, list(clf.classes), n, metrics.topk_accuracy(probs, labels, 1),
        metrics.topk_accuracy(probs, labels, 5), float(losses.mean()), confusion,
        metrics.per_class(confusion, clf.classes), metrics.most_confused(confusion, clf.classes),
        [example(i) for i in metrics.top_losses(probs, labels, top_n)],
        {c: [example(i) for i in idx] for c, idx in zip(clf.classes, metrics.top_per_class(probs, top_n), strict=True)},
        data.skipped, probs, labels, data,
    )  # fmt: skip


def write_pictures(result: Evaluation, folder: Path) -> dict[str, Path]:
    """confusion.png, top_losses.png, top_per_class.png (a row per class) and evaluation.json in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {"confusion": folder / "confusion.png", "top_losses": folder / "top_losses.png",
           "top_per_class": folder / "top_per_class.png", "json": folder / "evaluation.json"}  # fmt: skip
    write_bytes_atomic(out["confusion"], pictures.confusion_png(result.confusion, result.classes))
    losses = result.top_losses
    loss_captions = [f"{e.label} → {e.predicted}\n{e.probability:.0%} sure" for e in losses]
    loss_grid = pictures.grid_png(_images(result, [e.index for e in losses]), loss_captions, empty="no wrong answers")
    write_bytes_atomic(out["top_losses"], loss_grid)
    indices, captions = [], []
    for c, examples in enumerate(result.top_per_class.values()):
        for e in examples:
            indices.append(e.index)
            captions.append(f"{result.classes[c]} {result.probs[e.index, c]:.0%}\ntrue: {e.label}")
    per_row = max((len(v) for v in result.top_per_class.values()), default=1)
    write_bytes_atomic(out["top_per_class"], pictures.grid_png(_images(result, indices), captions, columns=per_row))
    write_json_atomic(out["json"], result.to_json())
    return out


def _images(result: Evaluation, indices: list[int]) -> list[np.ndarray]:
    if not indices:
        return []
    return list(result.data.pixels(np.array(indices, np.int64)))
