"""Datasets of every task: folders, list files, CSVs or IDX arrays → an immutable, atomically written dataset.

Public API (the CLI, the job system and the web server call these):
`create_dataset`, `import_mnist`, `list_datasets`, `get_dataset`, `find_dataset`, `delete_dataset`,
`open_split`, and the spec types in `spec`.
"""

from __future__ import annotations

from deepyard.config import Settings
from deepyard.datasets.build import create_dataset
from deepyard.datasets.catalog import (
    Manifest,
    dataset_dir,
    delete_dataset,
    find_dataset,
    get_dataset,
    list_datasets,
)
from deepyard.datasets.mnist import import_mnist
from deepyard.datasets.spec import DatasetSpec, FolderSource, IdxSource, ListSource, make_spec
from deepyard.datasets.store import ImageStore
from deepyard.errors import NotFoundError
from deepyard.tasks import get_input_kind, get_task


def open_split(settings: Settings, manifest: Manifest, split: str, in_memory: bool = False) -> ImageStore:
    """Open one split of a dataset for reading (memory-mapped, or loaded into RAM with `in_memory`)."""
    if split not in manifest.splits:
        raise NotFoundError(f"dataset {manifest.id!r} has no {split!r} split; it has {', '.join(manifest.splits)}")
    folder = dataset_dir(settings, manifest.id) / split
    task = get_task(manifest.task)
    store: ImageStore = get_input_kind(task.input_kind).open_store(folder, manifest.shape, task.load_targets(folder),
                                                                   in_memory)  # fmt: skip
    return store


__all__ = [
    "DatasetSpec",
    "FolderSource",
    "IdxSource",
    "ImageStore",
    "ListSource",
    "Manifest",
    "create_dataset",
    "delete_dataset",
    "find_dataset",
    "get_dataset",
    "import_mnist",
    "list_datasets",
    "make_spec",
    "open_split",
]
