"""The datasets under a home: their manifests, ids, and list / get / delete.

A dataset is a folder `<home>/datasets/<id>/` that holds `manifest.json`; the manifest is written last and the
folder appears under its final name only by an atomic rename, so a folder without a manifest, or one whose name
starts with a dot (a build in progress, or one being deleted), is never listed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from deepyard.config import Settings
from deepyard.datasets.spec import DatasetSpec
from deepyard.errors import IntegrityError, NotFoundError
from deepyard.files import read_json

MANIFEST, REPORT = "manifest.json", "report.json"
MEAN_ARRAY, MEAN_IMAGE = "mean.npy", "mean.png"
BUILD_PREFIX, DELETE_PREFIX = ".build-", ".deleting-"


class SplitInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    count: int
    per_class: list[int]  # images per class, in class order


class Manifest(BaseModel):
    """What a built dataset is. Paths inside the dataset are relative to its folder."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    created: str  # ISO 8601, UTC
    build_seconds: float
    deepyard_version: str
    spec: DatasetSpec
    encoding: str  # resolved: raw, png or jpeg
    shape: tuple[int, int, int]  # (height, width, channels)
    classes: list[str]
    splits: dict[str, SplitInfo]  # only the non-empty splits
    skipped: int  # files skipped (see the report for each path and reason)
    dropped_classes: list[dict[str, object]]
    duplicates: dict[str, dict[str, int]]
    content_hash: str  # sha256 over classes, labels and stored pixels
    size_bytes: int


def dataset_dir(settings: Settings, dataset_id: str) -> Path:
    return settings.datasets_dir / dataset_id


def list_datasets(settings: Settings) -> list[Manifest]:
    """Every complete dataset, oldest first."""
    root = settings.datasets_dir
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or not os.path.isfile(os.path.join(entry.path, MANIFEST)):
            continue
        found.append(load_manifest(Path(entry.path)))
    return found


def load_manifest(folder: Path) -> Manifest:
    try:
        return Manifest.model_validate(read_json(folder / MANIFEST))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"dataset {folder.name!r} has an unreadable manifest: {exc}") from None


def find_dataset(settings: Settings, ref: str) -> Manifest | None:
    """The dataset whose id is `ref`, else the newest one named `ref`, else None."""
    folder = dataset_dir(settings, ref)
    if not ref.startswith(".") and "/" not in ref and (folder / MANIFEST).is_file():
        return load_manifest(folder)
    named = [m for m in list_datasets(settings) if m.name == ref]
    return named[-1] if named else None


def get_dataset(settings: Settings, ref: str) -> Manifest:
    """Like `find_dataset`, but raises NotFoundError naming the datasets that do exist."""
    found = find_dataset(settings, ref)
    if found is None:
        known = [f"{m.id} ({m.name})" for m in list_datasets(settings)]
        raise NotFoundError(f"no dataset with id or name {ref!r}; existing: {', '.join(known) or 'none'}")
    return found


def delete_dataset(settings: Settings, ref: str) -> Manifest:
    """Remove a dataset: first renamed out of the listing (atomic), then its files."""
    manifest = get_dataset(settings, ref)
    folder = dataset_dir(settings, manifest.id)
    doomed = folder.with_name(DELETE_PREFIX + manifest.id)
    os.rename(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    return manifest


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
