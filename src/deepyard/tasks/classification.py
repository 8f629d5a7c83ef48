"""Image classification: one class per image (DIGITS' first task).

Targets: one int64 class index per image, stored as `labels.npy`. Sources: class folders, list files of
`path label_index` with a labels file, IDX arrays (see deepyard.datasets.sources). Losses: cross-entropy (with
label smoothing), multi-class hinge, mse or bce against one-hot targets. Metrics: loss, top-1 and top-5 accuracy
in %. Evaluation: confusion matrix, per-class precision/recall/F1, most-confused pairs, top losses, top N per
class. Export parity: top-1 agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from deepyard.errors import InvalidValueError, SourceError, choices
from deepyard.tasks.base import Criterion, EvalContext, Meter, MetricInfo, Report, Task, register_task

if TYPE_CHECKING:
    import torch

    from deepyard.datasets.sources import Listing, Readable
    from deepyard.datasets.spec import DatasetSpec


class AccuracyMeter(Meter):
    """Loss sum, top-1 hits, top-5 hits, count, then the count of images predicted as each class (for
    `val_majority`: the share of the most predicted class, which says when a model has collapsed to one)."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self._sums: torch.Tensor | None = None

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        import torch

        k = min(5, outputs.shape[1])
        hits = outputs.float().topk(k, dim=1).indices == targets[:, None]
        count = torch.tensor(len(targets), device=outputs.device, dtype=torch.float64)
        batch = torch.stack([loss.double() * count, hits[:, 0].sum().double(), hits.any(1).sum().double(), count])
        predicted = torch.bincount(outputs.argmax(dim=1), minlength=self.classes).double()
        batch = torch.cat([batch, predicted])
        self._sums = batch if self._sums is None else self._sums + batch

    def sums(self) -> torch.Tensor:
        import torch

        return self._sums if self._sums is not None else torch.zeros(4 + self.classes, dtype=torch.float64)

    def compute(self, sums: torch.Tensor) -> dict[str, float]:
        loss, top1, top5, count = sums[:4].tolist()
        count = max(count, 1.0)
        majority = 100 * float(sums[4:].max()) / count if len(sums) > 4 else 0.0
        return {"val_loss": loss / count, "val_top1": 100 * top1 / count, "val_top5": 100 * top5 / count,
                "val_majority": majority}  # fmt: skip


class Classification(Task):
    name = "classification"
    title = "Image classification"
    target_format = "one class per image (int64 index)"
    sources = "class folders; list files of 'path label_index' + a labels file; IDX arrays (MNIST)"
    targets_file = "labels.npy"
    losses = ("cross_entropy", "hinge", "mse", "bce")
    metrics = (
        MetricInfo("val_loss", "val loss", higher_is_better=False),
        MetricInfo("val_top1", "val top-1", "%"),
        MetricInfo("val_top5", "val top-5", "%"),
    )

    def list_source(self, spec: DatasetSpec, readable: Readable | None) -> Listing:
        from deepyard.datasets.sources import list_source

        return list_source(spec, readable)

    def check_source(self, spec: DatasetSpec) -> None:
        from deepyard.datasets.sources import check_source

        if spec.source.kind == "list" and spec.source.labels is None:
            raise SourceError("a classification list source needs a labels file (one class name per line)")
        if spec.source.kind == "csv":
            raise SourceError("classification reads class folders, list files or IDX files, not CSV")
        check_source(spec)

    def target_array(self, targets: Sequence[Any], names: Sequence[str]) -> np.ndarray:
        return np.asarray(targets, dtype=np.int64).reshape(-1)

    def per_output(self, targets: np.ndarray, names: Sequence[str]) -> list[int]:
        counts: list[int] = np.bincount(targets, minlength=len(names)).tolist()
        return counts

    def caption(self, target: np.ndarray, names: Sequence[str]) -> str:
        return names[int(target)]

    def having(self, targets: np.ndarray, output: int) -> np.ndarray:
        mask: np.ndarray = targets == output
        return mask

    def criterion(self, loss: str, names: Sequence[str], stats: dict[str, Any], config: Any) -> Criterion:
        import torch.nn.functional as F

        n, smoothing = len(names), float(getattr(config, "label_smoothing", 0.0))
        if loss == "cross_entropy":
            return lambda x, y: {"cross_entropy": F.cross_entropy(x.float(), y, label_smoothing=smoothing)}
        if loss == "hinge":
            return lambda x, y: {"hinge": F.multi_margin_loss(x.float(), y)}
        if loss == "mse":
            return lambda x, y: {"mse": F.mse_loss(x.float(), F.one_hot(y, n).float())}
        if loss == "bce":
            return lambda x, y: {"bce": F.binary_cross_entropy_with_logits(x.float(), F.one_hot(y, n).float())}
        raise InvalidValueError(f"loss {loss!r} does not apply to classification; use {choices(self.losses)}")

    def meter(self, names: Sequence[str], stats: dict[str, Any]) -> Meter:
        return AccuracyMeter(len(names))

    def predict(
        self, outputs: torch.Tensor, names: Sequence[str], stats: dict[str, Any], k: int
    ) -> list[dict[str, Any]]:
        probs = outputs.float().softmax(dim=1)
        values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
        rows = []
        for vs, ix in zip(values.tolist(), indices.tolist(), strict=True):
            top = [{"class": names[i], "probability": float(v)} for v, i in zip(vs, ix, strict=True)]
            rows.append({"predicted": top[0]["class"], "top": top,
                         "summary": ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in top)})  # fmt: skip
        return rows

    def target_of(self, text: str, names: Sequence[str]) -> Any:
        token = text.strip()
        if token in names:
            return list(names).index(token)
        if token.isdigit() and int(token) < len(names):
            return int(token)
        raise SourceError(f"label {token!r} is neither a class name nor an index below {len(names)}")

    def agreement(self, expected: np.ndarray, exported: np.ndarray, stats: dict[str, Any]) -> tuple[str, float]:
        return "top-1", float((expected.argmax(axis=1) == exported.argmax(axis=1)).mean())

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
        from deepyard.tasks import classmetrics as m

        shifted = outputs - outputs.max(axis=1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        labels, classes = targets.astype(np.int64), ctx.names
        confusion = m.confusion_matrix(labels, probs.argmax(axis=1), len(classes))
        losses = m.cross_entropy(probs, labels)

        def example(i: int) -> dict[str, Any]:
            pred = int(probs[i].argmax())
            return {"index": int(i), "source": ctx.sources[i], "label": classes[labels[i]],
                    "predicted": classes[pred], "probability": float(probs[i, pred]),
                    "true_probability": float(probs[i, labels[i]]), "loss": float(losses[i])}  # fmt: skip

        tops = [example(i) for i in m.top_losses(probs, labels, ctx.top_n)]
        per = {c: [{**example(i), "class_probability": float(probs[i, k])} for i in idx]
               for k, (c, idx) in enumerate(zip(classes, m.top_per_class(probs, ctx.top_n), strict=True))}  # fmt: skip
        doc = {
            "classes": list(classes), "top1": 100 * m.topk_accuracy(probs, labels, 1),
            "top5": 100 * m.topk_accuracy(probs, labels, 5), "loss": float(losses.mean()),
            "confusion": confusion.tolist(), "per_class": [asdict(s) for s in m.per_class(confusion, list(classes))],
            "most_confused": [asdict(c) for c in m.most_confused(confusion, list(classes))],
            "top_losses": tops, "top_per_class": per,
            "sheets": {"top_losses": len(tops), "top_per_class": max(map(len, per.values()), default=1)},
        }  # fmt: skip
        return Report(doc, _pictures(doc, probs, ctx))


def _pictures(doc: dict[str, Any], probs: np.ndarray, ctx: EvalContext) -> dict[str, bytes]:
    from deepyard import pictures

    def images(indices: list[int]) -> list[np.ndarray]:
        return list(ctx.pictures(np.array(indices, np.int64))) if indices else []

    losses = doc["top_losses"]
    captions = [f"{e['label']} → {e['predicted']}\n{e['probability']:.0%} sure" for e in losses]
    indices, per_captions = [], []
    for c, examples in enumerate(doc["top_per_class"].values()):
        for e in examples:
            indices.append(e["index"])
            per_captions.append(f"{doc['classes'][c]} {probs[e['index'], c]:.0%}\ntrue: {e['label']}")
    per_row = max((len(v) for v in doc["top_per_class"].values()), default=1)
    return {
        "confusion.png": pictures.confusion_png(np.array(doc["confusion"]), doc["classes"]),
        "top_losses.png": pictures.grid_png(images([e["index"] for e in losses]), captions, empty="no wrong answers"),
        "top_per_class.png": pictures.grid_png(images(indices), per_captions, columns=per_row),
        # the same images without captions, one row per list: the page captions them in HTML (`sheets`: columns)
        "top_losses_sheet.png": pictures.sheet_png(images([e["index"] for e in losses]), len(losses)),
        "top_per_class_sheet.png": pictures.sheet_png(images(indices), per_row),
    }


CLASSIFICATION = register_task(Classification())
