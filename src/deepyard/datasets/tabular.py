"""Sources whose lines carry targets beside a path: list files (`path token ...`), CSV files with a header, and
folders per label. The task turns each row's tokens into its target (deepyard.tasks.multilabel, regression).

Paths are resolved against `base` (default: the list's folder) and confined exactly as class folders are: with a
`readable` check, a path outside the data roots is skipped as "outside the data roots" and never opened. A
split with no source of its own is held out from train at random (seeded), `val_pct` and `test_pct` of it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepyard.datasets.sources import OUTSIDE, Readable, Skipped, walk_images
from deepyard.datasets.spec import SPLITS, CsvSource, DatasetSpec, FolderSource, ListSource
from deepyard.errors import SourceError


@dataclass(frozen=True)
class Row:
    path: str
    tokens: tuple[str, ...]  # the target as written: label names, or numbers
    where: str  # `file:line`, for reports


def read_rows(
    spec: DatasetSpec, readable: Readable | None, skipped: list[Skipped]
) -> tuple[list[str], dict[str, list[Row]]]:
    """(column names, rows per given split) of a list or CSV source; names are [] for list files."""
    src = spec.source
    if not isinstance(src, ListSource | CsvSource):
        raise SourceError(f"a {src.kind} source has no per-image targets; give a list file or a CSV file")
    for key, path in src:
        if isinstance(path, Path) and readable is not None and not readable(str(path)):
            raise SourceError(f"source.{key} {str(path)!r} is {OUTSIDE}")
    names: list[str] = []
    given: dict[str, list[Row]] = {}
    for split in SPLITS:
        path = getattr(src, split)
        if path is None:
            continue
        base = src.base or path.parent
        if isinstance(src, CsvSource):
            names, rows = _read_csv(path, base, src)
        else:
            rows = _read_list(path, base)
        given[split] = _confined(rows, readable, skipped)
    return names, given


def _read_list(path: Path, base: Path) -> list[Row]:
    rows = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        rows.append(Row(os.path.join(base, parts[0]), tuple(parts[1:]), f"{path.name}:{number}"))
    return rows


def _read_csv(path: Path, base: Path, src: CsvSource) -> tuple[list[str], list[Row]]:
    reader = csv.reader(_lines(path))
    header = [h.strip() for h in next(reader, [])]
    if len(header) < 2:
        raise SourceError(f"CSV file {str(path)!r} needs a header with an image column and target columns")
    image = src.image_column or header[0]
    targets = list(src.target_columns or [h for h in header if h != image])
    missing = [c for c in [image, *targets] if c not in header]
    if missing:
        raise SourceError(f"CSV file {str(path)!r} has no column {missing[0]!r}; its columns: {', '.join(header)}")
    at = [header.index(c) for c in targets]
    rows = []
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise SourceError(
                f"CSV file {str(path)!r}, line {number}: {len(cells)} cells, the header has {len(header)}"
            )
        rows.append(Row(os.path.join(base, cells[header.index(image)].strip()), tuple(cells[i].strip() for i in at),
                        f"{path.name}:{number}"))  # fmt: skip
    return targets, rows


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig", errors="surrogateescape").splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None


def _confined(rows: list[Row], readable: Readable | None, skipped: list[Skipped]) -> list[Row]:
    if readable is None:
        return rows
    kept = []
    for row in rows:
        if readable(row.path):
            kept.append(row)
        else:
            skipped.append(Skipped(row.path, OUTSIDE))
    return kept


def folder_labels(src: FolderSource, split: str, readable: Readable | None, skipped: list[Skipped]) -> list[Row]:
    """A folder per label; an image's labels are every folder holding a file of its name (relative path)."""
    root = getattr(src, split)
    if root is None:
        return []
    merged: dict[str, tuple[str, list[str]]] = {}
    try:
        labels = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError as exc:
        raise SourceError(f"cannot read folder {str(root)!r}: {exc.strerror or exc}") from None
    if not labels:
        raise SourceError(f"folder {str(root)!r} has no label sub-folders; put each label's images in one")
    for label in labels:
        files, bad = walk_images(Path(root) / label, readable)
        skipped.extend(bad)
        for file in files:
            key = os.path.relpath(file, Path(root) / label)
            merged.setdefault(key, (file, []))[1].append(label)
    return [Row(path, tuple(names), key) for key, (path, names) in sorted(merged.items())]


def hold_out(given: dict[str, list[Row]], spec: DatasetSpec) -> dict[str, list[Row]]:
    """Every split's rows: given ones as they are, the others drawn at random from train (seeded)."""
    out = {s: list(given.get(s, [])) for s in SPLITS}
    held = [s for s in ("val", "test") if s not in given and {"val": spec.val_pct, "test": spec.test_pct}[s] > 0]
    if not held:
        return out
    train = given.get("train", [])
    order = np.random.default_rng(spec.seed).permutation(len(train))
    start = 0
    for split in held:
        n = round(len(train) * (spec.val_pct if split == "val" else spec.test_pct) / 100)
        out[split] = [train[i] for i in sorted(order[start : start + n])]
        start += n
    out["train"] = [train[i] for i in sorted(order[start:])]
    return out


def check_rows_source(spec: DatasetSpec) -> None:
    """At submit: every file and folder the source names exists."""
    for key, path in spec.source:
        if not isinstance(path, Path):
            continue
        if key == "base" or isinstance(spec.source, FolderSource):
            if not path.is_dir():
                raise SourceError(f"source.{key}: folder {str(path)!r} does not exist or is not a folder")
        elif not path.is_file():
            raise SourceError(f"source.{key}: file {str(path)!r} does not exist or is not a file")


def token_error(tokens: Sequence[str], what: str) -> str:
    return f"{what} (got {' '.join(tokens) or 'nothing'})"
