"""Time to accuracy: when a run first reached each validation milestone of its monitored metric.

A milestone is a validation that beat every earlier one (a new best of the run's monitor); each records the value,
the step, the epoch, the wall time since the run first started (stopped time excluded: a resumed run continues
its clock) and the images seen (steps x batch size x accumulation x processes). Read from metrics.jsonl, where
every validation point is written with its step and wall time, so every run has them, old ones included.
`time_to` answers "how long until it reached X": the first milestone at least as good as X.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deepyard.train.metricsfile import METRICS, parse_lines


@dataclass(frozen=True)
class Milestone:
    value: float
    step: int
    epoch: float
    wall: float  # seconds
    images: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_milestones(folder: Path, info: dict[str, Any], higher_is_better: bool) -> list[Milestone]:
    """The milestones of the run in `folder` (its run.json record `info`) for its monitor."""
    config = info.get("config") or {}
    monitor = str(config.get("monitor", "val_loss"))
    per_step = int(config.get("batch_size", 1)) * int(config.get("batch_accumulation", 1))
    per_step *= int((info.get("placement") or {}).get("world", 1))
    try:
        points, _ = parse_lines((folder / METRICS).read_bytes())
    except OSError:
        return []
    return milestones(points, monitor, higher_is_better, per_step)


def milestones(points: list[dict[str, Any]], monitor: str, higher_is_better: bool, per_step: int) -> list[Milestone]:
    found: list[Milestone] = []
    for point in points:
        value = point.get(monitor)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if found and (value <= found[-1].value if higher_is_better else value >= found[-1].value):
            continue
        step = int(point["step"])
        found.append(Milestone(float(value), step, float(point["epoch"]), float(point.get("wall", 0.0)),
                               step * per_step))  # fmt: skip
    return found


def time_to(found: list[Milestone], target: float, higher_is_better: bool) -> Milestone | None:
    """The first milestone at least as good as `target`, None when the run never got there."""
    for stone in found:
        if (stone.value >= target) if higher_is_better else (stone.value <= target):
            return stone
    return None
