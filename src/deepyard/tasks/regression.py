"""Regression: one or more real values per image (an angle, a brightness, a count, a position).

Targets: a float32 vector per image, stored as `targets.npy` (N, K). Sources: a list file of `path value
[value ...]` (paths relative to `base`), or a CSV with a header naming the target columns. A value that is not a
finite number, or a line with another number of values than the first, is skipped and reported. The network
learns standardised targets (the training split's mean and std, kept in the manifest), so any scale trains with
the same learning rate; predictions are mapped back. Losses: mse, l1 (MAE), smooth_l1 (Huber). Validation
metrics in the targets' units: loss, R², MAE, RMSE. Evaluation: the same per target, a predicted-vs-true scatter
plot per target, and the largest errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from deepyard.errors import InvalidValueError, SourceError, choices
from deepyard.tasks.base import Criterion, EvalContext, Meter, MetricInfo, Report, Task, register_task

if TYPE_CHECKING:
    import torch

    from deepyard.datasets.sources import Listing, Readable
    from deepyard.datasets.spec import DatasetSpec


def _scale(stats: dict[str, Any], k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    mean = stats.get("mean") or [0.0] * k
    std = stats.get("std") or [1.0] * k
    return torch.tensor(mean, device=device), torch.tensor(std, device=device)


class RegressionMeter(Meter):
    """Loss sum, count, sum |e|, sum e², then per target sum y and sum y² (R² about each target's own mean)."""

    def __init__(self, stats: dict[str, Any], k: int) -> None:
        self.stats, self.k = stats, k
        self._sums: torch.Tensor | None = None

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        import torch

        mean, std = _scale(self.stats, self.k, outputs.device)
        predicted, true = (outputs.double() * std + mean), targets.double()
        error = predicted - true
        count = torch.tensor([float(len(targets))], device=outputs.device, dtype=torch.float64)
        batch = torch.cat([loss.double().reshape(1) * count, count, error.abs().sum().reshape(1),
                           (error**2).sum().reshape(1), true.sum(0), (true**2).sum(0)])  # fmt: skip
        self._sums = batch if self._sums is None else self._sums + batch

    def sums(self) -> torch.Tensor:
        import torch

        return self._sums if self._sums is not None else torch.zeros(4 + 2 * self.k, dtype=torch.float64)

    def compute(self, sums: torch.Tensor) -> dict[str, float]:
        loss, n, abs_sum, sq_sum = sums[:4].tolist()
        n = max(n, 1.0)
        y, y2 = sums[4 : 4 + self.k], sums[4 + self.k :]
        total = float((y2 - y**2 / n).sum())
        values = n * self.k
        return {"val_loss": loss / n, "val_r2": 1 - sq_sum / total if total > 0 else 0.0,
                "val_mae": abs_sum / values, "val_rmse": math.sqrt(sq_sum / values)}  # fmt: skip


class Regression(Task):
    name = "regression"
    title = "Regression"
    target_format = "one or more real values per image (float32 vector)"
    sources = "list 'path value [value ...]'; CSV with a header naming the target columns"
    losses = ("mse", "l1", "smooth_l1")
    exact = False  # a prediction is near its value, never "correct"
    label_tokens = None
    metrics = (
        MetricInfo("val_loss", "val loss", higher_is_better=False),
        MetricInfo("val_r2", "val R²"),
        MetricInfo("val_mae", "val MAE", higher_is_better=False),
        MetricInfo("val_rmse", "val RMSE", higher_is_better=False),
    )

    def list_source(self, spec: DatasetSpec, readable: Readable | None) -> Listing:
        from deepyard.datasets import tabular
        from deepyard.datasets.sources import Item, Listing, Skipped

        skipped: list[Skipped] = []
        columns, given = tabular.read_rows(spec, readable, skipped)
        width = len(columns) or next((len(r.tokens) for rows in given.values() for r in rows if r.tokens), 0)
        if width == 0:
            raise SourceError("the source gives no value: write each image's values after its path")
        names = columns or (["value"] if width == 1 else [f"value{i + 1}" for i in range(width)])
        splits: dict[str, list[Item]] = {}
        for split, rows in tabular.hold_out(given, spec).items():
            items = []
            for row in rows:
                try:
                    items.append(Item(row.path, _values(row.tokens, width), row.path))
                except SourceError as exc:
                    skipped.append(Skipped(f"{row.path} ({row.where})", str(exc)))
            splits[split] = items
        return Listing(classes=names, splits=splits, skipped=skipped)

    def check_source(self, spec: DatasetSpec) -> None:
        from deepyard.datasets.tabular import check_rows_source

        if spec.source.kind not in ("list", "csv"):
            raise SourceError(f"regression reads list files or CSV files, not a {spec.source.kind} source")
        check_rows_source(spec)

    def target_array(self, targets: Sequence[Any], names: Sequence[str]) -> np.ndarray:
        return np.asarray(targets, dtype=np.float32).reshape(len(targets), len(names))

    def target_stats(self, train: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        std = train.std(axis=0)
        return {"mean": train.mean(axis=0).tolist(), "std": np.where(std > 1e-8, std, 1.0).tolist()}

    def caption(self, target: np.ndarray, names: Sequence[str]) -> str:
        return ", ".join(f"{n} {v:.4g}" for n, v in zip(names, target.tolist(), strict=True))

    def having(self, targets: np.ndarray, output: int) -> np.ndarray:
        return np.ones(len(targets), dtype=bool)  # values have no classes to filter by

    def criterion(self, loss: str, names: Sequence[str], stats: dict[str, Any], config: Any) -> Criterion:
        import torch.nn.functional as F

        functions = {"mse": F.mse_loss, "l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss}
        if loss not in functions:
            raise InvalidValueError(f"loss {loss!r} does not apply to regression; use {choices(self.losses)}")
        fn, k = functions[loss], len(names)

        def criterion(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
            mean, std = _scale(stats, k, x.device)
            return {loss: fn(x.float(), (y.float() - mean) / std)}

        return criterion

    def meter(self, names: Sequence[str], stats: dict[str, Any]) -> Meter:
        return RegressionMeter(stats, len(names))

    def values(self, outputs: torch.Tensor | np.ndarray, stats: dict[str, Any], k: int) -> np.ndarray:
        """Network outputs -> values in the targets' units."""
        mean, std = np.array(stats.get("mean") or [0.0] * k), np.array(stats.get("std") or [1.0] * k)
        out: np.ndarray = np.asarray(outputs, dtype=np.float64) * std + mean
        return out

    def predict(
        self, outputs: torch.Tensor, names: Sequence[str], stats: dict[str, Any], k: int
    ) -> list[dict[str, Any]]:
        rows = []
        for row in self.values(outputs.float().numpy(), stats, len(names)):
            pairs = [{"name": n, "value": float(v)} for n, v in zip(names, row.tolist(), strict=True)]
            rows.append({"predicted": ", ".join(f"{v:.4g}" for v in row.tolist()), "values": pairs,
                         "summary": ", ".join(f"{p['name']} = {p['value']:.4g}" for p in pairs)})  # fmt: skip
        return rows

    def target_of(self, text: str, names: Sequence[str]) -> Any:
        return _values(tuple(text.split()), len(names))

    def agreement(self, expected: np.ndarray, exported: np.ndarray, stats: dict[str, Any]) -> tuple[str, float]:
        std = np.array(stats.get("std") or [1.0] * expected.shape[1])
        close = np.abs(expected - exported) * std <= 1e-3 * std  # outputs are standardised: 0.001 std
        return "values within 0.001 std", float(close.mean())

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
        from deepyard.tasks.labelmetrics import regression_report

        k = len(ctx.names)
        return regression_report(self.values(outputs, ctx.stats, k), targets.astype(np.float64).reshape(-1, k), ctx)


def _values(tokens: Sequence[str], width: int) -> tuple[float, ...]:
    if len(tokens) != width:
        raise SourceError(f"expected {width} value(s), got {len(tokens)}: {' '.join(tokens) or 'nothing'}")
    values = []
    for token in tokens:
        try:
            value = float(token)
        except ValueError:
            raise SourceError(f"value {token!r} is not a number") from None
        if not math.isfinite(value):
            raise SourceError(f"value {token!r} is not a finite number")
        values.append(value)
    return tuple(values)


REGRESSION = register_task(Regression())
