"""What pages and the API show of a run, read from its folder: metrics by offset, progress, ETA, snapshots.

Metrics are read from `metrics.jsonl` by byte offset, so a client (or the live stream) asks only for the points
it has not seen. A resumed run truncates the file to its checkpoint; an offset past the end then means "start
again from 0" (`reset: true`). A half-written last line is left for the next read; a line that is not a metric
point is skipped and counted (`skipped`). Listings take their figures from `metric_figures`, which reads only what
was appended since the last listing (deepyard.train.metricsfile).
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deepyard.config import Settings
from deepyard.errors import InvalidValueError
from deepyard.jobs import run_status
from deepyard.stored import FileCache, keep
from deepyard.tasks import DEFAULT_TASK, get_task
from deepyard.train.metricsfile import METRICS, Figures, metric_figures, parse_lines


def read_metrics(folder: Path, offset: int = 0, max_bytes: int = 8 << 20) -> dict[str, Any]:
    """Points appended since `offset` (bytes): `{"points": [...], "offset": next, "reset": bool, "skipped": n}`."""
    path = folder / METRICS
    if not path.is_file():
        return {"points": [], "offset": 0, "reset": offset > 0, "skipped": 0}
    size = path.stat().st_size
    reset = offset > size
    start = 0 if reset else offset
    with path.open("rb") as fp:
        fp.seek(start)
        data = fp.read(max_bytes)
    end = data.rfind(b"\n") + 1  # only whole lines
    points, bad = parse_lines(data[:end])
    return {"points": points, "offset": start + end, "reset": reset, "skipped": len(bad)}


def progress(info: dict[str, Any], figures: Figures) -> dict[str, Any]:
    """Progress (0-1), epoch, ETA in seconds (DIGITS' (1 - p) * elapsed / p) and the key metrics."""
    epochs = float(info["config"]["epochs"])
    fraction = 1.0 if info["status"] == "done" else min(1.0, figures.epoch / epochs) if epochs > 0 else 0.0
    running = info["status"] == "running"
    eta = (1 - fraction) * figures.wall / fraction if running and 0 < fraction < 1 else None
    return {
        "progress": round(fraction, 4),
        "epoch": figures.epoch,
        "epochs": epochs,
        "elapsed": figures.wall,
        "eta": eta,
        "train_loss": figures.train_loss,
        "val_loss": figures.val_loss,
        "val_top1": figures.val_top1,  # in %
        "best_top1": figures.best_top1,
        "last_val": figures.last_val,  # every metric of the task's last validation
        "spark": list(figures.spark),
        "warning": figures.warning,  # lines of metrics.jsonl skipped, if any
        "advice": [str(a) for a in info.get("advice") or []],  # what the trainer told the user (train.advice)
    }


def headline(task_name: str | None, last_val: dict[str, float]) -> dict[str, Any] | None:
    """The task's headline metric (classification: val top-1, multi-label: mAP, regression: R²) of the last
    validation: `{name, label, unit, value}`; None for a task this version does not know."""
    try:
        metric = get_task(task_name).metrics[1]
    except InvalidValueError:
        return None
    value = last_val.get(metric.name)
    return {"name": metric.name, "label": metric.label, "unit": metric.unit, "value": value}


def snapshots(folder: Path) -> list[dict[str, Any]]:
    """Checkpoints as (file, step), plus best.pt when there is one."""
    found = []
    for path in sorted((folder / "checkpoints").glob("*.pt")):
        match = re.fullmatch(r"step-(\d+)\.pt", path.name)
        found.append({"file": path.name, "step": int(match.group(1)) if match else None, "bytes": path.stat().st_size})
    return found


def _build_summary(info: dict[str, Any], status: str, figures: Figures) -> dict[str, Any]:
    config = info["config"]
    return {
        "id": info["id"],
        "name": info["name"],
        "created": info["created"],
        "status": status,
        "dataset": info["dataset"],
        "network": info["network"]["ref"],
        "lr": config["solver"]["lr"],
        "batch_size": config["batch_size"],
        "solver": config["solver"]["type"],
        "error": info.get("error"),
        "task": info.get("task") or DEFAULT_TASK,
        "headline": headline(info.get("task"), figures.last_val),
        **progress({**info, "status": status}, figures),
    }


@dataclass(frozen=True)
class _Summary:
    """A run's listing row, and its JSON with an owner and group, as last made; valid while its inputs are."""

    info: dict[str, Any]
    status: str
    figures: Figures
    row: dict[str, Any]  # shared: copied before it leaves
    extra: tuple[str | None, str | None] | None = None  # (owner, group) that `text` was made with
    text: str = ""


class _Summaries:
    """Listing rows kept per run while run.json (compared by value: cheap, the file cache hands out the same
    objects), the status and the metrics' `Figures` (the same object while metrics.jsonl is unchanged) stay the
    same, so a listing of unchanged runs builds and encodes no row again. Thread-safe."""

    def __init__(self) -> None:
        self._made: dict[str, _Summary] = {}
        self._lock = threading.Lock()

    def get(self, settings: Settings, info: dict[str, Any]) -> _Summary:
        folder = os.path.join(settings.home, "runs", info["id"])  # not run_dir: Paths cost here
        figures, status = metric_figures(folder), run_status(settings, info)
        with self._lock:
            made = self._made.get(folder)
        if made is not None and made.figures is figures and made.status == status and made.info == info:
            return made
        return self._keep(folder, _Summary(info, status, figures, _build_summary(info, status, figures)))

    def text(self, settings: Settings, info: dict[str, Any], owner: str | None, group: str | None) -> str:
        made = self.get(settings, info)
        if made.extra == (owner, group):
            return made.text
        text = json.dumps({**made.row, "owner": owner, "group": group}, ensure_ascii=False, allow_nan=False)
        self._keep(os.path.join(settings.home, "runs", info["id"]), replace(made, extra=(owner, group), text=text))
        return text

    def _keep(self, key: str, made: _Summary) -> _Summary:
        if FileCache.enabled:
            with self._lock:
                keep(self._made, key, made)
        return made


_SUMMARIES = _Summaries()


def run_summary(settings: Settings, info: dict[str, Any]) -> dict[str, Any]:
    """A run's listing row: identity, settings in brief, status (as `run_status` tells it) and progress."""
    return dict(_SUMMARIES.get(settings, info).row)


def summary_json(settings: Settings, info: dict[str, Any], owner: str | None, group: str | None) -> str:
    """`run_summary` with its owner and group, as JSON (kept while nothing changes)."""
    return _SUMMARIES.text(settings, info, owner, group)
