"""Use a model on images: one (a path, an upload's bytes or a URL) or many (a folder or a list file), through its
task (classification: top-k classes; multi-label: the labels above their thresholds; regression: values).

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

from deepyard.datasets.images import ImageSkipped
from deepyard.datasets.sources import walk_images
from deepyard.errors import InvalidValueError, SourceError
from deepyard.infer.model import TrainedModel
from deepyard.tasks import Task, get_task

MAX_URL_BYTES = 50 << 20


@dataclass(frozen=True)
class Labelled:
    """An image to use the model on and, when known, its target as text (a class name, labels, values). `source`
    is the file's path, or only its name when `data` holds the image itself (an upload's bytes, or stored (H, W, C)
    uint8 pixels of a dataset)."""

    source: str
    label: str | None = None
    data: bytes | np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass
class Prediction:
    source: str
    result: dict[str, Any] = field(
        default_factory=dict
    )  # the task's prediction (predicted, summary, top/labels/values)
    label: str | None = None  # the true target as text, when given
    error: str | None = None
    exact: bool = True  # whether the task's predictions can be right or wrong

    @property
    def predicted(self) -> str | None:
        value = self.result.get("predicted")
        return None if value is None else str(value)

    @property
    def top(self) -> list[tuple[str, float]]:
        """Classification's (class, probability) pairs, most likely first."""
        return [(t["class"], t["probability"]) for t in self.result.get("top", [])]

    @property
    def correct(self) -> bool | None:
        return None if self.label is None or self.error or not self.exact else self.predicted == self.label

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "label": self.label, "correct": self.correct, **self.result,
                "predicted": self.predicted, "error": self.error}  # fmt: skip


def classify_one(clf: TrainedModel, source: str | Path | bytes, k: int = 5, name: str | None = None) -> Prediction:
    """The model's prediction for one image: a path, the bytes of a file, or an http(s) URL. Bad images raise
    ImageSkipped."""
    data: str | bytes
    if isinstance(source, bytes):
        data, shown = source, name or "upload"
    elif str(source).startswith(("http://", "https://")):
        data, shown = fetch_url(str(source)), str(source)
    else:
        data, shown = str(source), name or str(source)
    pixels = clf.preprocessing.load_pixels(data)
    return Prediction(shown, clf.predict(clf.outputs([pixels]), k)[0], exact=clf.task.exact)


def classify_many(
    clf: TrainedModel,
    items: Sequence[Labelled],
    k: int = 5,
    batch_size: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Prediction]:
    """The prediction for each item, in batches. Unreadable files get a row with their error and no prediction."""
    results: list[Prediction] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        rows = [Prediction(it.source, label=it.label, exact=clf.task.exact) for it in chunk]
        pixels: list[np.ndarray] = []
        good: list[Prediction] = []
        for item, row in zip(chunk, rows, strict=True):
            try:
                pixels.append(clf.preprocessing.load_pixels(item.source if item.data is None else item.data))
                good.append(row)
            except ImageSkipped as exc:
                row.error = exc.reason
        if pixels:
            for row, result in zip(good, clf.predict(clf.outputs(pixels), k), strict=True):
                row.result = result
        results.extend(rows)
        if on_progress:
            on_progress(len(results), len(items))
    return results


def read_inputs(
    path: Path, base: Path | None = None, classes: Sequence[str] = (), task: Task | None = None
) -> list[Labelled]:
    """The images to use the model on, from a folder or a list file.

    A folder: every image under it; when it holds class sub-folders named after the model's classes, an image's
    class is its top folder's name. A list file: one `path [target]` per line (classification: a class name or
    index; multi-label: label names; regression: values; blank lines and `#` comments skipped), paths relative
    to `base` (default: the list file's folder).
    """
    task = task or get_task(None)
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
        parts = line.strip().rsplit(None, 1) if task.label_tokens == 1 else line.strip().split(None, 1)
        label = _list_label(task, parts[1], classes, path, number) if len(parts) == 2 else None
        items.append(Labelled(os.path.join(root, parts[0]), label))
    return items


def _folder_label(root: Path, file: str, classes: Sequence[str]) -> str | None:
    top = Path(file).relative_to(root).parts
    return top[0] if len(top) > 1 and top[0] in classes else None


def _list_label(task: Task, text: str, classes: Sequence[str], path: Path, number: int) -> str:
    """The target as the task writes it (a class name; label names in output order; values)."""
    try:
        stored = task.target_array([task.target_of(text, classes)], classes)[0]
    except SourceError as exc:
        raise SourceError(f"list file {str(path)!r}, line {number}: {exc}; outputs: {', '.join(classes)}") from None
    return task.caption(stored, classes) if task.exact else text


def output_stems(files: Sequence[str], root: Path | None) -> list[str]:
    """Each image's name for the files written about it (a detector's `<stem>_boxes.png`, a segmenter's
    `<stem>_mask.png`), distinct for every file: its path under `root` without the extension, so that `a/cat.png`
    and `b/cat.png` write `a/cat_...` and `b/cat_...` (sub-folders as the inputs have them); a name an earlier
    file has taken, case aside (`cat.png`, then `Cat.jpg`), gets its extension too (`Cat_jpg`), then a number.
    `root` None: the file names alone."""
    taken: set[str] = set()
    out = []
    for file in files:
        rel = Path(file).relative_to(root) if root is not None else Path(Path(file).name)
        stem = rel.with_suffix("").as_posix()
        name, n = stem, 1
        while name.lower() in taken:
            n += 1
            name = f"{stem}_{rel.suffix[1:]}" + (f"-{n - 1}" if n > 2 else "")
        taken.add(name.lower())
        out.append(name)
    return out


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
    """One line per image: source, true target, predicted, correct, the task's summary, then (classification)
    class/probability pairs, then error."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    ranked = any(row.top for row in rows)
    head = ["source", "label", "predicted", "correct", "summary"]
    for i in range(1, k + 1 if ranked else 1):
        head += [f"top{i}", f"top{i}_probability"]
    writer.writerow([*head, "error"])
    for row in rows:
        pairs = [x for c, p in row.top for x in (c, f"{p:.6f}")]
        pairs += [""] * ((2 * k if ranked else 0) - len(pairs))
        correct = "" if row.correct is None else str(row.correct).lower()
        writer.writerow([row.source, row.label or "", row.predicted or "", correct, row.result.get("summary", ""),
                         *pairs, row.error or ""])  # fmt: skip
    return buf.getvalue()
