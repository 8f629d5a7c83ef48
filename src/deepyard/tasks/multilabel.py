"""Multi-label classification: any number of labels per image (Kaggle's Planet layout, tagging).

Targets: a multi-hot uint8 vector per image, stored as `targets.npy` (N, L). Sources: a CSV of `image,labels`
with the labels separated by spaces (images under `base`), a list file of `path label label ...` (label names, or
indices into a labels file when one is given), or a folder per label where the same file may appear in several.
An image with no label is kept (a negative). Losses: sigmoid cross-entropy (bce) or sigmoid focal loss.
Validation metrics (DDP-reducible: per-label score histograms): loss, mAP over labels and macro F1 at 0.5, in %.
Calibration picks each label's threshold on the validation split (best F1); prediction shows every label above
its threshold; evaluation gives exact per-label AP, precision, recall and F1 at those thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from deepyard.errors import InvalidValueError, SourceError, choices
from deepyard.tasks.base import Criterion, EvalContext, Meter, MetricInfo, Report, Task, register_task

if TYPE_CHECKING:
    import torch

    from deepyard.datasets.sources import Listing, Readable
    from deepyard.datasets.spec import DatasetSpec

BINS = 512  # score histogram bins of the validation meter (AP at this resolution)


class HistogramMeter(Meter):
    """Loss sum, count, then per label a histogram of sigmoid scores of its positives and of its negatives."""

    def __init__(self, labels: int) -> None:
        self.labels = labels
        self._sums: torch.Tensor | None = None

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        import torch

        scores = torch.sigmoid(outputs.float())
        bins = (scores * BINS).long().clamp_(0, BINS - 1) + BINS * torch.arange(self.labels, device=scores.device)
        positive = targets > 0
        pos = torch.bincount(bins[positive], minlength=self.labels * BINS).double()
        neg = torch.bincount(bins[~positive], minlength=self.labels * BINS).double()
        count = torch.tensor([float(len(targets))], device=outputs.device, dtype=torch.float64)
        batch = torch.cat([loss.double().reshape(1) * count, count, pos, neg])
        self._sums = batch if self._sums is None else self._sums + batch

    def sums(self) -> torch.Tensor:
        import torch

        return self._sums if self._sums is not None else torch.zeros(2 + 2 * self.labels * BINS, dtype=torch.float64)

    def compute(self, sums: torch.Tensor) -> dict[str, float]:
        loss, count = sums[0].item(), max(sums[1].item(), 1.0)
        pos = sums[2 : 2 + self.labels * BINS].view(self.labels, BINS).numpy()
        neg = sums[2 + self.labels * BINS :].view(self.labels, BINS).numpy()
        tp, fp = np.cumsum(pos[:, ::-1], axis=1), np.cumsum(neg[:, ::-1], axis=1)  # at thresholds high -> low
        total = tp[:, -1]
        has = total > 0
        precision = tp / np.maximum(tp + fp, 1e-12)
        recall = tp / np.maximum(total[:, None], 1e-12)
        steps = np.diff(recall, axis=1, prepend=0.0)
        ap = (steps * precision).sum(axis=1)
        half = BINS // 2 - 1  # index (from the top) of the last bin at or above 0.5
        p, r = precision[:, half], recall[:, half]
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
        return {"val_loss": loss / count, "val_map": 100 * float(ap[has].mean()) if has.any() else 0.0,
                "val_f1": 100 * float(f1[has].mean()) if has.any() else 0.0}  # fmt: skip


class MultiLabel(Task):
    name = "multilabel"
    title = "Multi-label classification"
    target_format = "any number of labels per image (multi-hot uint8 vector)"
    sources = "CSV 'image,labels' (labels separated by spaces); list 'path label label ...'; a folder per label"
    losses = ("bce", "focal")
    metrics = (
        MetricInfo("val_loss", "val loss", higher_is_better=False),
        MetricInfo("val_map", "val mAP", "%"),
        MetricInfo("val_f1", "val F1 (0.5)", "%"),
    )
    calibrated = True
    label_tokens = None

    def list_source(self, spec: DatasetSpec, readable: Readable | None) -> Listing:
        from deepyard.datasets import tabular
        from deepyard.datasets.sources import Item, Listing, Skipped
        from deepyard.datasets.spec import FolderSource, ListSource

        skipped: list[Skipped] = []
        src = spec.source
        if isinstance(src, FolderSource):
            given = {s: tabular.folder_labels(src, s, readable, skipped) for s in ("train", "val", "test")}
            given = {s: rows for s, rows in given.items() if rows or s == "train"}
        else:
            _, given = tabular.read_rows(spec, readable, skipped)
            if spec.source.kind == "csv":  # one column of labels separated by spaces
                given = {s: [tabular.Row(r.path, tuple(" ".join(r.tokens).split()), r.where) for r in rows]
                         for s, rows in given.items()}  # fmt: skip
        fixed = _read_names(src.labels) if isinstance(src, ListSource) and src.labels is not None else None
        names = fixed or sorted({t for rows in given.values() for r in rows for t in r.tokens})
        if not names:
            raise SourceError("the source names no label at all; write each image's labels after its path")
        index = {n: i for i, n in enumerate(names)}
        splits: dict[str, list[Item]] = {}
        for split, rows in tabular.hold_out(given, spec).items():
            items = []
            for row in rows:
                try:
                    items.append(Item(row.path, _indices(row.tokens, index, fixed is not None), row.path))
                except SourceError as exc:
                    skipped.append(Skipped(f"{row.path} ({row.where})", str(exc)))
            splits[split] = items
        return Listing(classes=names, splits=splits, skipped=skipped)

    def check_source(self, spec: DatasetSpec) -> None:
        from deepyard.datasets.tabular import check_rows_source

        if spec.source.kind == "idx":
            raise SourceError("IDX files hold one class per image; multi-label reads CSV, list files or folders")
        check_rows_source(spec)

    def target_array(self, targets: Sequence[Any], names: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(targets), len(names)), np.uint8)
        for row, labels in enumerate(targets):
            out[row, list(labels)] = 1
        return out

    def per_output(self, targets: np.ndarray, names: Sequence[str]) -> list[int]:
        counts: list[int] = targets.sum(axis=0).astype(int).tolist()
        return counts

    def caption(self, target: np.ndarray, names: Sequence[str]) -> str:
        return " ".join(names[int(i)] for i in np.flatnonzero(target)) or "(no label)"

    def having(self, targets: np.ndarray, output: int) -> np.ndarray:
        mask: np.ndarray = targets[:, output] > 0
        return mask

    def criterion(self, loss: str, names: Sequence[str], stats: dict[str, Any], config: Any) -> Criterion:
        import torch.nn.functional as F

        if loss == "bce":
            return lambda x, y: {"bce": F.binary_cross_entropy_with_logits(x.float(), y.float())}
        if loss == "focal":
            from torchvision.ops import sigmoid_focal_loss  # type: ignore[import-untyped]

            return lambda x, y: {"focal": sigmoid_focal_loss(x.float(), y.float(), reduction="mean")}
        raise InvalidValueError(f"loss {loss!r} does not apply to multilabel; use {choices(self.losses)}")

    def meter(self, names: Sequence[str], stats: dict[str, Any]) -> Meter:
        return HistogramMeter(len(names))

    def calibrate(self, outputs: np.ndarray, targets: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        """Each label's threshold with the best F1 on these (validation) outputs; 0.5 for a label never seen."""
        scores = 1 / (1 + np.exp(-outputs))
        return {"thresholds": [_best_threshold(scores[:, j], targets[:, j] > 0) for j in range(len(names))]}

    def predict(
        self, outputs: torch.Tensor, names: Sequence[str], stats: dict[str, Any], k: int
    ) -> list[dict[str, Any]]:
        import torch

        probs = torch.sigmoid(outputs.float()).numpy()
        cut = np.array(_thresholds(stats, len(names)))
        rows = []
        for p in probs:
            order = np.argsort(-p, kind="stable")
            above = [int(i) for i in order if p[i] >= cut[i]]
            shown = [int(i) for i in order[: max(k, len(above))]]
            rows.append({
                "predicted": " ".join(names[i] for i in sorted(above)) or "(no label)",
                "labels": [{"label": names[i], "probability": float(p[i]), "threshold": float(cut[i]),
                            "above": bool(p[i] >= cut[i])} for i in shown],
                "summary": ", ".join(f"{names[i]} {100 * p[i]:.1f}%" for i in above) or "no label above its threshold",
            })  # fmt: skip
        return rows

    def target_of(self, text: str, names: Sequence[str]) -> Any:
        index = {n: i for i, n in enumerate(names)}
        return _indices(tuple(text.split()), index, False)

    def agreement(self, expected: np.ndarray, exported: np.ndarray, stats: dict[str, Any]) -> tuple[str, float]:
        logit_cut = _logits(np.array(_thresholds(stats, expected.shape[1])))
        same = (expected >= logit_cut) == (exported >= logit_cut)
        return "label decisions", float(same.mean())

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
        from deepyard.tasks.labelmetrics import multilabel_report

        return multilabel_report(outputs, targets, ctx, np.array(_thresholds(ctx.stats, len(ctx.names))))


def _read_names(path: Any) -> list[str]:
    from deepyard.datasets.sources import _read_labels

    return _read_labels(path)


def _indices(tokens: Sequence[str], index: dict[str, int], numeric: bool) -> tuple[int, ...]:
    found = []
    for token in tokens:
        if token in index:
            found.append(index[token])
        elif numeric and token.isdigit() and int(token) < len(index):
            found.append(int(token))
        else:
            raise SourceError(f"label {token!r} is not in the label list ({len(index)} labels)")
    return tuple(sorted(set(found)))


def _thresholds(stats: dict[str, Any], n: int) -> list[float]:
    found = stats.get("thresholds")
    return [float(t) for t in found] if isinstance(found, list) and len(found) == n else [0.5] * n


def _logits(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    out: np.ndarray = np.log(p / (1 - p))
    return out


def _best_threshold(scores: np.ndarray, truth: np.ndarray) -> float:
    if not truth.any():
        return 0.5
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(truth[order])
    fp = np.cumsum(~truth[order])
    f1 = 2 * tp / (tp + fp + truth.sum())
    best = int(np.argmax(f1))
    below = scores[order[best + 1]] if best + 1 < len(order) else 0.0
    return float((scores[order[best]] + below) / 2)  # midway to the next score: robust to tiny export differences


MULTILABEL = register_task(MultiLabel())
