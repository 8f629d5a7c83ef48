"""What listing a source gives: the items to decode (`Item`), the files skipped and why (`Skipped`), and the
whole `Listing` (classes, the items of each split, what was dropped or warned about). Plain records shared by
every source reader (deepyard.datasets.sources and the tasks' own readers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(slots=True)
class Item:
    """One image to decode: a file path, or pixels already in memory (IDX)."""

    source: str | np.ndarray
    target: Any  # what the task stores for it: a class index (classification), label indices, values
    name: str  # what reports show: the path, or `file#index`


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class Listing:
    classes: list[str]
    splits: dict[str, list[Item]]
    skipped: list[Skipped] = field(default_factory=list)
    dropped_classes: list[dict[str, object]] = field(default_factory=list)
    warnings: list[Skipped] = field(default_factory=list)  # kept files with a problem (a JPEG mask)
    stats: dict[str, Any] = field(default_factory=dict)  # what the task found while listing, for the manifest
