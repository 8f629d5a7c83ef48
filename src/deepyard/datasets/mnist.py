"""MNIST: find (or download and verify) the four IDX files, optionally write them out as class folders of PNGs,
and build the dataset from the arrays.

The class-folder layout (`train/0/00001.png`, `test/7/00001.png`; the number is the image's 1-based index in
its IDX file) is the one the classic "Getting started" lab points DIGITS at.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from deepyard.config import Settings
from deepyard.datasets.build import ProgressFn, create_dataset
from deepyard.datasets.catalog import Manifest
from deepyard.datasets.idx import read_idx_pair
from deepyard.datasets.spec import DatasetSpec, IdxSource, make_spec
from deepyard.errors import IntegrityError, NotFoundError, SourceError
from deepyard.files import write_bytes_atomic

# The published MD5 of each original file (also checked by torchvision's MNIST class).
FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def find_mnist_files(folder: Path) -> dict[str, Path]:
    """Locate the four files in `folder`, gzipped or not, with '-idx3-' or '.idx3-' spellings."""
    found = {}
    for key, (name, _) in FILES.items():
        stem = name.removesuffix(".gz")
        candidates = [name, stem, stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
        path = next((folder / c for c in candidates if (folder / c).is_file()), None)
        if path is None:
            raise NotFoundError(
                f"MNIST file {name!r} not found in {str(folder)!r}; expected the four files "
                f"{', '.join(n for n, _ in FILES.values())} (or pass --download)"
            )
        found[key] = path
    return found


def download_mnist(folder: Path, mirrors: tuple[str, ...] = MIRRORS, timeout: float = 60) -> dict[str, Path]:
    """Fetch any missing file from the first mirror that answers, checking its published MD5."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, md5 in FILES.values():
        target = folder / name
        if target.is_file() and _md5(target.read_bytes()) == md5:
            continue
        errors = []
        for mirror in mirrors:
            try:
                with urllib.request.urlopen(mirror + name, timeout=timeout) as response:
                    data = response.read()
            except (urllib.error.URLError, OSError) as exc:
                errors.append(f"{mirror}: {exc}")
                continue
            if _md5(data) != md5:
                errors.append(f"{mirror}: MD5 {_md5(data)} differs from the published {md5}")
                continue
            write_bytes_atomic(target, data)
            break
        else:
            raise IntegrityError(f"could not download {name}: " + "; ".join(errors))
    return find_mnist_files(folder)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def import_mnist(
    settings: Settings,
    folder: Path,
    download: bool = False,
    export_to: Path | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    reuse: bool = False,
    **options: object,
) -> Manifest:
    """Build MNIST (train → train, t10k → val) into a dataset; `options` are DatasetSpec fields to override."""
    files = download_mnist(folder) if download else find_mnist_files(folder)
    if export_to is not None:
        export_class_folders(files, export_to, progress)
    return create_dataset(settings, mnist_spec(files, **options), progress=progress, workers=workers, reuse=reuse)


def mnist_spec(files: dict[str, Path], **options: object) -> DatasetSpec:
    """MNIST's DatasetSpec from its four files (`find_mnist_files`; train → train, t10k → val): 28x28 grey, raw
    encoding, unless `options` (DatasetSpec fields) say otherwise. The web's import builds it as a dataset job."""
    fields: dict[str, object] = {"name": "mnist", "channels": 1, "width": 28, "height": 28, "encoding": "raw"}
    fields.update(options)
    fields["source"] = IdxSource(
        train_images=files["train_images"],
        train_labels=files["train_labels"],
        val_images=files["test_images"],
        val_labels=files["test_labels"],
    )
    return make_spec(**fields)


def export_class_folders(files: dict[str, Path], target: Path, progress: ProgressFn | None = None) -> Path:
    """Write `target/{train,test}/<digit>/<nnnnn>.png`; the folder appears only when complete."""
    if target.exists():
        raise SourceError(f"export folder {str(target)!r} already exists; choose a new path or remove it")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    report: Callable[[str, int, int], None] = progress or (lambda stage, done, total: None)
    try:
        for split in ("train", "test"):
            images, labels = read_idx_pair(files[f"{split}_images"], files[f"{split}_labels"])
            for digit in np.unique(labels):
                (partial / split / str(digit)).mkdir(parents=True)
            for i, (img, label) in enumerate(zip(images, labels, strict=True)):
                Image.fromarray(img).save(partial / split / str(label) / f"{i + 1:05d}.png", compress_level=1)
                if i % 1000 == 0:
                    report(f"writing {split} PNGs", i, len(images))
            report(f"writing {split} PNGs", len(images), len(images))
        os.rename(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target
