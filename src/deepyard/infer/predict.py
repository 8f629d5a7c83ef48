"""Classify images: one (a path, an upload's bytes or a URL) or many (a folder or a list file), top-k each.

A file that cannot be read or decoded gets a row with its error; it never stops a batch.
"""

from __future__ import annotations

import csv
import io
import os
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepyard.datasets.images import ImageSkipped
from deepyard.datasets.sources import walk_images
from deepyard.errors import InvalidValueError, SourceError
from deepyard.infer.model import Classifier

MAX_URL_BYTES = 50 << 20


@dataclass(frozen=True)
class Labelled:
    """An image to classify and, when known, its true class name."""

    source: str
    label: str | None = None


@dataclass
class Prediction:
    source: str
    top: list[tuple[str, float]] = field(default_factory=list)  # (class, probability), most likely first
    label: str | None = None  # the true class, when given
    error: str | None = None

    @property
    def predicted(self) -> str | None:
        return self.top[0][0] if self.top else None

    @property
    def correct(self) -> bool | None:
        return None if self.label is None or self.error else self.predicted == self.label

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "label": self.label, "predicted": self.predicted, "correct": self.correct,
                "top": [{"class": c, "probability": p} for c, p in self.top], "error": self.error}  # fmt: skip


def top_k(probs: torch.Tensor, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    """(B, classes) probabilities → per row the k most likely (class, probability)."""
    values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
    rows = zip(values.tolist(), indices.tolist(), strict=True)
    return [[(classes[i], float(v)) for v, i in zip(vs, ix, strict=True)] for vs, ix in rows]


def classify_one(clf: Classifier, source: str | Path | bytes, k: int = 5, name: str | None = None) -> Prediction:
    """Top-k for one image: a path, the bytes of a file, or an http(s) URL. Bad images raise ImageSkipped."""
    data: str | bytes
    if isinstance(source, bytes):
        data, shown = source, name or "upload"
    elif str(source).startswith(("http://", "https://")):
        data, shown = fetch_url(str(source)), str(source)
    else:
        data, shown = str(source), name or str(source)
    pixels = clf.preprocessing.load_pixels(data)
    probs = clf.logits([pixels]).softmax(dim=1)
    return Prediction(shown, top_k(probs, clf.classes, k)[0])


def classify_many(
    clf: Classifier,
    items: Sequence[Labelled],
    k: int = 5,
    batch_size: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Prediction]:
    """Top-k for each item, in batches. Unreadable files get a row with their error and no prediction."""
    results: list[Prediction] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        rows = [Prediction(it.source, label=it.label) for it in chunk]
        pixels: list[np.ndarray] = []
        good: list[Prediction] = []
        for item, row in zip(chunk, rows, strict=True):
            try:
                pixels.append(clf.preprocessing.load_pixels(item.source))
                good.append(row)
            except ImageSkipped as exc:
                row.error = exc.reason
        if pixels:
            for row, top in zip(good, top_k(clf.logits(pixels).softmax(dim=1), clf.classes, k), strict=True):
                row.top = top
        results.extend(rows)
        if on_progress:
            on_progress(len(results), len(items))
    return results


def read_inputs(path: Path, base: Path | None = None, classes: Sequence[str] = ()) -> list[Labelled]:
    """The images to classify from a folder or a list file.

    A folder: every image under it; when it holds class sub-folders named after the model's classes, an image's
    class is its top folder's name. A list file: one `path [label]` per line (label: a class name or index; blank
    lines and `#` comments skipped), paths relative to `base` (default: the list file's folder).
    """
    if path.is_dir():
        files, _ = walk_images(path)
        return [Labelled(f, _folder_label(path, f, classes)) for f in files]
    if not path.is_file():
        raise SourceError(f"{str(path)!r} is neither a folder of images nor a list file")
    root = base if base is not None else path.parent
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="surrogateescape").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.strip().rsplit(None, 1)
        label = _list_label(parts[1], classes, path, number) if len(parts) == 2 else None
        items.append(Labelled(os.path.join(root, parts[0]), label))
    return items


def _folder_label(root: Path, file: str, classes: Sequence[str]) -> str | None:
    top = Path(file).relative_to(root).parts
    return top[0] if len(top) > 1 and top[0] in classes else None


def _list_label(token: str, classes: Sequence[str], path: Path, number: int) -> str:
    if token in classes:
        return token
    if token.isdigit() and int(token) < len(classes):
        return classes[int(token)]
    raise SourceError(
        f"list file {str(path)!r}, line {number}: label {token!r} is neither a class name nor an index below "
        f"{len(classes)}; classes: {', '.join(classes)}"
    )


def fetch_url(url: str, max_bytes: int = MAX_URL_BYTES, timeout: float = 20.0) -> bytes:
    """Download an image (http or https only), refusing bodies over `max_bytes`."""
    if not url.startswith(("http://", "https://")):
        raise InvalidValueError(f"URL {url!r} must start with http:// or https://")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data: bytes = response.read(max_bytes + 1)
    except OSError as exc:
        raise SourceError(f"cannot download {url!r}: {exc}") from None
    if len(data) > max_bytes:
        raise InvalidValueError(f"{url!r} is larger than the {max_bytes >> 20} MiB limit for one image")
    return data


def predictions_csv(rows: Sequence[Prediction], k: int) -> str:
    """One line per image: source, true label, predicted, correct, then class/probability pairs, then error."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    head = ["source", "label", "predicted", "correct"]
    for i in range(1, k + 1):
        head += [f"top{i}", f"top{i}_probability"]
    writer.writerow([*head, "error"])
    for row in rows:
        pairs = [x for c, p in row.top for x in (c, f"{p:.6f}")]
        pairs += [""] * (2 * k - len(pairs))
        correct = "" if row.correct is None else str(row.correct).lower()
        writer.writerow([row.source, row.label or "", row.predicted or "", correct, *pairs, row.error or ""])
    return buf.getvalue()
