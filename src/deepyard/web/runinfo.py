"""What pages and the API show of a run, read from its folder: metrics by offset, progress, ETA, snapshots.

Metrics are read from `metrics.jsonl` by byte offset, so a client (or the live stream) asks only for the points
it has not seen. A resumed run truncates the file to its checkpoint; an offset past the end then means "start
again from 0" (`reset: true`). A half-written last line is left for the next read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from deepyard.config import Settings
from deepyard.jobs import run_status
from deepyard.train.runs import run_dir

METRICS = "metrics.jsonl"
SPARK_POINTS = 40


def read_metrics(folder: Path, offset: int = 0, max_bytes: int = 8 << 20) -> dict[str, Any]:
    """Points appended since `offset` (bytes): `{"points": [...], "offset": next, "reset": bool}`."""
    path = folder / METRICS
    if not path.is_file():
        return {"points": [], "offset": 0, "reset": offset > 0}
    size = path.stat().st_size
    reset = offset > size
    start = 0 if reset else offset
    with path.open("rb") as fp:
        fp.seek(start)
        data = fp.read(max_bytes)
    end = data.rfind(b"\n") + 1  # only whole lines
    points = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return {"points": points, "offset": start + end, "reset": reset}


def progress(info: dict[str, Any], points: list[dict[str, Any]]) -> dict[str, Any]:
    """Progress (0-1), epoch, ETA in seconds (DIGITS' (1 - p) * elapsed / p) and the key metrics."""
    epochs = float(info["config"]["epochs"])
    last_epoch = max((p["epoch"] for p in points), default=0.0)
    wall = max((p.get("wall", 0.0) for p in points), default=0.0)
    fraction = 1.0 if info["status"] == "done" else min(1.0, last_epoch / epochs)
    running = info["status"] == "running"
    eta = (1 - fraction) * wall / fraction if running and 0 < fraction < 1 else None
    vals = [p for p in points if "val_loss" in p]
    trains = [p for p in points if "train_loss" in p]
    return {
        "progress": round(fraction, 4),
        "epoch": last_epoch,
        "epochs": epochs,
        "elapsed": wall,
        "eta": eta,
        "train_loss": trains[-1]["train_loss"] if trains else None,
        "val_loss": vals[-1]["val_loss"] if vals else None,
        "val_top1": vals[-1].get("val_top1") if vals else None,  # in %
        "best_top1": max((p.get("val_top1", 0.0) for p in vals), default=None),
        "spark": _spark([p["train_loss"] for p in trains]),
    }


def _spark(values: list[float]) -> list[float]:
    if len(values) <= SPARK_POINTS:
        return [round(v, 5) for v in values]
    step = len(values) / SPARK_POINTS
    return [round(values[int(i * step)], 5) for i in range(SPARK_POINTS)] + [round(values[-1], 5)]


def snapshots(folder: Path) -> list[dict[str, Any]]:
    """Checkpoints as (file, step), plus best.pt when there is one."""
    found = []
    for path in sorted((folder / "checkpoints").glob("*.pt")):
        match = re.fullmatch(r"step-(\d+)\.pt", path.name)
        found.append({"file": path.name, "step": int(match.group(1)) if match else None, "bytes": path.stat().st_size})
    return found


def run_summary(settings: Settings, info: dict[str, Any]) -> dict[str, Any]:
    """A run's listing row: identity, settings in brief, status (as `run_status` tells it) and progress."""
    folder = run_dir(settings, info["id"])
    points = read_metrics(folder)["points"]
    config = info["config"]
    status = run_status(settings, info)
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
        **progress({**info, "status": status}, points),
    }
