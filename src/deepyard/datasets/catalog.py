"""The datasets under a home: their manifests, ids, and list / get / delete.

A dataset is a folder `<home>/datasets/<id>/` that holds `manifest.json`; the manifest is written last and the
folder appears under its final name only by an atomic rename, so a folder without a manifest, or one whose name
starts with a dot (a build in progress, or one being deleted), is never listed. A dataset whose manifest cannot be
used (truncated, not JSON, not a manifest) is `Damaged`: listed as such by `scan_datasets`, left out of
`list_datasets` and `find_dataset`, refused by `get_dataset` with the reason, and deletable. Listings keep each
parsed manifest until the file changes (see deepyard.stored).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from deepyard.config import Settings
from deepyard.datasets.spec import DatasetSpec
from deepyard.errors import IntegrityError, NotFoundError
from deepyard.files import read_json
from deepyard.stored import Damaged, DamagedError, FileCache
from deepyard.tasks.base import DEFAULT_TASK

MANIFEST, REPORT = "manifest.json", "report.json"
MEAN_ARRAY, MEAN_IMAGE = "mean.npy", "mean.png"
BUILD_PREFIX, DELETE_PREFIX = ".build-", ".deleting-"


class SplitInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int
    per_class: list[int]  # images per class (label), in class order; [] for tasks without classes


class Manifest(BaseModel):
    """What a built dataset is. Paths inside the dataset are relative to its folder."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    created: str  # ISO 8601, UTC
    build_seconds: float
    deepyard_version: str
    spec: DatasetSpec
    task: str = DEFAULT_TASK  # datasets built before tasks existed are classification
    target_stats: dict[str, Any] = {}  # what the task keeps about the training targets (regression: mean, std)
    encoding: str  # resolved: raw, png or jpeg
    shape: tuple[int, int, int]  # (height, width, channels)
    classes: list[str]  # the output names: classes, labels, or regression targets
    splits: dict[str, SplitInfo]  # only the non-empty splits
    skipped: int  # files skipped (see the report for each path and reason)
    dropped_classes: list[dict[str, object]]
    duplicates: dict[str, dict[str, int]]
    content_hash: str  # sha256 over classes, labels and stored pixels
    size_bytes: int


def dataset_dir(settings: Settings, dataset_id: str) -> Path:
    return settings.datasets_dir / dataset_id


def _parse_manifest(path: Path) -> Manifest | Damaged:
    """The manifest at `path`, or why it cannot be used."""
    dataset_id = path.parent.name

    def damaged(problem: str) -> Damaged:
        return Damaged("dataset", dataset_id, MANIFEST, f"{MANIFEST} {problem}")

    try:
        manifest = Manifest.model_validate(read_json(path))
    except OSError as exc:
        return damaged(f"cannot be read: {exc.strerror or exc}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        return damaged(f"is not a dataset manifest: {where}: {first['msg']} ({exc.error_count()} problem(s))")
    except (ValueError, RecursionError) as exc:  # truncated, not JSON, not ASCII
        return damaged(f"is not valid JSON: {exc}")
    if manifest.id != dataset_id:
        return damaged(f"names the dataset {manifest.id!r}, not its folder's name")
    return manifest


_MANIFESTS = FileCache(_parse_manifest)


def scan_datasets(settings: Settings) -> list[Manifest | Damaged]:
    """Every complete dataset, oldest first: its manifest, or its damage."""
    root = settings.datasets_dir
    if not root.is_dir():
        return []
    found: list[Manifest | Damaged] = []
    for name in sorted(os.listdir(root)):
        if not name.startswith("."):
            found.extend(_load(root / name))
    return found


def _load(folder: Path) -> list[Manifest | Damaged]:
    """[the folder's manifest or damage], or [] when it has no manifest (not a dataset)."""
    try:
        return [_MANIFESTS.get(folder / MANIFEST)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        return [Damaged("dataset", folder.name, MANIFEST, f"{MANIFEST} cannot be read: {exc.strerror or exc}")]


def list_datasets(settings: Settings) -> list[Manifest]:
    """Every complete, usable dataset, oldest first; damaged ones are left out (see `scan_datasets`)."""
    return [m for m in scan_datasets(settings) if isinstance(m, Manifest)]


def load_manifest(folder: Path) -> Manifest:
    """The manifest in `folder`; IntegrityError when it cannot be used."""
    found = _parse_manifest(folder / MANIFEST)
    if isinstance(found, Damaged):
        raise IntegrityError(f"dataset {folder.name!r} has an unusable manifest: {found.reason}")
    return found


def load_dataset(settings: Settings, ref: str) -> Manifest | Damaged:
    """The dataset whose id is `ref` (damaged or not), else the newest usable one named `ref`; NotFoundError naming
    the datasets that do exist."""
    by_id = _load(dataset_dir(settings, ref)) if ref and not ref.startswith(".") and "/" not in ref else []
    if by_id:
        return by_id[0]
    named = [m for m in list_datasets(settings) if m.name == ref]
    if named:
        return named[-1]
    known = [f"{m.id} ({m.name})" if isinstance(m, Manifest) else f"{m.id} (damaged)" for m in scan_datasets(settings)]
    raise NotFoundError(f"no dataset with id or name {ref!r}; existing: {', '.join(known) or 'none'}")


def read_report(folder: Path) -> dict[str, Any]:
    """A dataset's report.json (skipped files, dropped classes, duplicate groups). A missing or damaged one gives
    empty lists and `damaged`, the reason, so the dataset stays usable and its page and `dataset show` still work."""
    empty: dict[str, Any] = {"skipped": [], "dropped_classes": [], "duplicates": []}
    try:
        data = json.loads((folder / REPORT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {**empty, "damaged": f"{REPORT} is missing"}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {**empty, "damaged": f"{REPORT} cannot be read: {exc}"}
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in empty):
        return {**empty, "damaged": f"{REPORT} does not hold the lists {', '.join(empty)}"}
    return data


def find_dataset(settings: Settings, ref: str) -> Manifest | None:
    """The dataset whose id is `ref`, else the newest one named `ref`, else None (also when it is damaged)."""
    try:
        found = load_dataset(settings, ref)
    except NotFoundError:
        return None
    return found if isinstance(found, Manifest) else None


def get_dataset(settings: Settings, ref: str) -> Manifest:
    """Like `find_dataset`, but raises NotFoundError naming the datasets that do exist, and DamagedError (a
    NotFoundError) with the reason for a damaged one."""
    found = load_dataset(settings, ref)
    if isinstance(found, Damaged):
        raise DamagedError(found, f"delete it with `deepyard dataset delete {found.id}`")
    return found


def delete_dataset(settings: Settings, ref: str) -> Manifest | Damaged:
    """Remove a dataset, damaged or not: first renamed out of the listing (atomic), then its files. It does not
    ask whether runs use it (datasets know nothing of runs): the CLI and the server delete through
    `deepyard.train.runs.delete_unused_dataset`, which refuses then."""
    found = load_dataset(settings, ref)
    folder = dataset_dir(settings, found.id)
    doomed = folder.with_name(DELETE_PREFIX + found.id)
    os.rename(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    return found


def remove_stale_builds(settings: Settings) -> None:
    """Remove the leftovers of builds whose process is gone (killed) and of interrupted deletions."""
    root = settings.datasets_dir
    if not root.is_dir():
        return
    for entry in os.scandir(root):
        if entry.name.startswith(DELETE_PREFIX) or (
            entry.name.startswith(BUILD_PREFIX) and not _owner_alive(Path(entry.path))
        ):
            shutil.rmtree(entry.path, ignore_errors=True)


def _owner_alive(folder: Path) -> bool:
    try:
        pid = int((folder / ".pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True
