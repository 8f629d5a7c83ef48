"""Evaluation reports of the multi-label and regression tasks: exact metrics (torchmetrics) and pictures."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import binary_average_precision

from deepyard import pictures
from deepyard.tasks.base import EvalContext, Report


def multilabel_report(outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext, cut: np.ndarray) -> Report:
    """Per label: AP (exact), precision, recall and F1 at its threshold; mAP; examples with the largest loss."""
    scores = 1 / (1 + np.exp(-outputs))
    truth = targets > 0
    decided = scores >= cut
    per_label: list[dict[str, Any]] = []
    for j, name in enumerate(ctx.names):
        tp = int((decided[:, j] & truth[:, j]).sum())
        fp = int((decided[:, j] & ~truth[:, j]).sum())
        support = int(truth[:, j].sum())
        ap = None
        if support:
            ap = 100 * float(
                binary_average_precision(torch.from_numpy(scores[:, j]), torch.from_numpy(truth[:, j].astype(np.int64)))
            )
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / support if support else 0.0
        per_label.append({"name": name, "ap": ap, "precision": p, "recall": r,
                          "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": support,
                          "threshold": float(cut[j])})  # fmt: skip
    aps = [x["ap"] for x in per_label if x["ap"] is not None]
    losses = -(truth * np.log(np.clip(scores, 1e-12, 1)) + ~truth * np.log(np.clip(1 - scores, 1e-12, 1))).mean(1)
    worst = np.argsort(-losses, kind="stable")[: ctx.top_n]

    def names(row: np.ndarray) -> str:
        return " ".join(ctx.names[i] for i in np.flatnonzero(row)) or "(none)"

    examples = [{"index": int(i), "source": ctx.sources[i], "true": names(truth[i]), "predicted": names(decided[i]),
                 "loss": float(losses[i])} for i in worst]  # fmt: skip
    doc = {
        "labels": list(ctx.names), "map": float(np.mean(aps)) if aps else None,
        "f1": 100 * float(np.mean([float(x["f1"]) for x in per_label if x["support"]] or [0.0])),
        "exact_match": 100 * float((decided == truth).all(axis=1).mean()), "loss": float(losses.mean()),
        "per_label": per_label, "top_losses": examples,
    }  # fmt: skip
    captions = [f"true: {e['true']}\npred: {e['predicted']}" for e in examples]
    grid = pictures.grid_png(_images(ctx, [e["index"] for e in examples]), captions, empty="nothing to show")
    return Report(doc, {"top_losses.png": grid})


def regression_report(predicted: np.ndarray, true: np.ndarray, ctx: EvalContext) -> Report:
    """MAE, RMSE and R² per target and over all; predicted-vs-true scatter plots; the largest errors."""
    error = predicted - true
    per_target, plots = [], {}
    for j, name in enumerate(ctx.names):
        per_target.append({"name": name, **_figures(predicted[:, j], true[:, j])})
        plots[f"scatter_{j}.png"] = pictures.scatter_png(true[:, j], predicted[:, j], f"{name}: predicted vs true")
    size = np.abs(error).max(axis=1)
    worst = np.argsort(-size, kind="stable")[: ctx.top_n]
    examples = [{"index": int(i), "source": ctx.sources[i], "true": true[i].tolist(),
                 "predicted": predicted[i].tolist(), "error": float(size[i])} for i in worst]  # fmt: skip
    overall = _figures(predicted.reshape(-1), true.reshape(-1), per_column=(predicted, true))
    doc = {"targets": list(ctx.names), **overall,
           "per_target": per_target, "largest_errors": examples,
           "scatter": [f"scatter_{j}.png" for j in range(len(ctx.names))]}  # fmt: skip
    captions = [f"true {_fmt(e['true'])}\npred {_fmt(e['predicted'])}" for e in examples]
    plots["largest_errors.png"] = pictures.grid_png(_images(ctx, [e["index"] for e in examples]), captions)
    return Report(doc, plots)


def _figures(p: np.ndarray, t: np.ndarray, per_column: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    e = p - t
    if per_column is not None:  # R² over several targets: each target's variance about its own mean
        pc, tc = per_column
        residual, total = float(((pc - tc) ** 2).sum()), float(((tc - tc.mean(axis=0)) ** 2).sum())
    else:
        residual, total = float((e**2).sum()), float(((t - t.mean()) ** 2).sum())
    r2 = 1 - residual / total if total > 0 else None
    return {"mae": float(np.abs(e).mean()), "rmse": float(np.sqrt((e**2).mean())), "r2": r2}


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


def _images(ctx: EvalContext, indices: list[int]) -> list[np.ndarray]:
    return list(ctx.pictures(np.array(indices, np.int64))) if indices else []
