"""Whole tasks as the CLI, the job system and the server run them: open the model, do the work, write the files.

Each returns a JSON-ready document and writes its pictures and reports under the run's folder by default
(`runs/<id>/evaluations/<name>/`, `runs/<id>/exports/`, `runs/<id>/inspections/<name>/`), or under `out`.
Evaluate and export go through the run's task: a task with `own_inference` (texts: language models, text
classifiers) does the work itself (`Task.evaluate_run`, `Task.export_run`); the others go the image way here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deepyard.config import Settings
from deepyard.datasets import find_dataset
from deepyard.errors import InvalidValueError
from deepyard.infer.evaluate import evaluate, labelled_data, split_data, write_pictures
from deepyard.infer.export import FORMATS, export_all, validation_sample
from deepyard.infer.inspect import inspect_image
from deepyard.infer.model import TrainedModel, open_model, parse_model_ref
from deepyard.infer.predict import read_inputs
from deepyard.tasks import Task, get_task
from deepyard.train.runs import get_run, run_dir

Progress = Callable[[int, int], None]


def output_folder(settings: Settings, clf: TrainedModel, kind: str, name: str, out: Path | None) -> Path:
    """`out` when given, else `<run>/<kind>/<name>` for a run's model, else `<home>/<kind>/<archive>/<name>`."""
    if out is not None:
        return out
    if "run" in clf.info and "archive" not in clf.info:
        return run_dir(settings, str(clf.info["run"])) / kind / name
    return settings.home / kind / Path(str(clf.info.get("archive", "model"))).stem / name


def evaluate_model(
    settings: Settings,
    model: str,
    dataset: str | None = None,
    split: str = "val",
    images: Path | None = None,
    top_n: int = 9,
    out: Path | None = None,
    snapshot: str | None = None,
    on_progress: Progress | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """Evaluate `model` on labelled `images` (a folder of class folders or a list file), or on a split of
    `dataset` (default: the model's own dataset); write the pictures and evaluation.json. A `tag` (a job's id)
    gives the evaluation a folder of its own; without one, evaluating the same thing again replaces it."""
    own = own_task(settings, model)
    if own is not None:
        if images is not None or dataset is not None:
            raise InvalidValueError(f"a {own.title.lower()} is evaluated on a split of its own dataset; images and "
                                    "another dataset are for image models")  # fmt: skip
        return own.evaluate_run(settings, _ref(model, snapshot), split, top_n, out, on_progress, tag)
    clf = open_model(settings, model, snapshot)
    if images is not None:
        data = labelled_data(clf, read_inputs(images, classes=clf.classes, task=clf.task), str(images))
        name = images.name or "images"
    else:
        ref = dataset or str(clf.info.get("dataset", {}).get("id", ""))
        if not ref:
            raise InvalidValueError("this model names no dataset: give --dataset or --images")
        data = split_data(settings, clf, ref, split)
        name = f"{split}-{clf.info.get('snapshot', 'model')}" if dataset is None else f"{ref}-{split}"
    result = evaluate(clf, data, top_n=top_n, on_progress=on_progress)
    folder = output_folder(settings, clf, "evaluations", f"{name}-{tag}" if tag else name, out)
    files = write_pictures(result, folder)
    return {**result.to_json(), "model": clf.info, "files": {k: str(v) for k, v in files.items()}}


def export_model(
    settings: Settings,
    model: str,
    formats: list[str] | None = None,
    out: Path | None = None,
    samples: int = 64,
    snapshot: str | None = None,
    tag: str | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Export to each format (default: all the task's) and check each against PyTorch on a validation sample; a
    `tag` (a job's id) gives the export a folder of its own; `on_progress(formats done, formats)`."""
    own = own_task(settings, model)
    if own is not None:
        wanted = formats or list(own.export_formats)
        return own.export_run(settings, _ref(model, snapshot), wanted, out, samples, on_progress, tag)
    clf = open_model(settings, model, snapshot)
    sample, origin = _sample(settings, clf, samples)
    folder = output_folder(settings, clf, "exports", tag or "", out)
    stem = f"{clf.info.get('run', 'model')}-{clf.info.get('snapshot', 'model')}"
    reports = export_all(clf, formats or list(FORMATS), folder, sample, stem=stem)
    if on_progress is not None:
        on_progress(len(reports), len(reports))
    return {"model": clf.info, "sample": origin, "ok": all(r.ok for r in reports),
            "reports": [r.to_json() for r in reports]}  # fmt: skip


def own_task(settings: Settings, model: str) -> Task | None:
    """The task of run `model` when it evaluates and exports its models itself (`own_inference`); None for an
    image task's run and for an archive."""
    from deepyard.infer.model import is_archive_ref

    if is_archive_ref(model):  # an archive, however it is named (as open_model reads it)
        return None
    task = get_task(get_run(settings, parse_model_ref(model)[0]).get("task"))
    return task if task.own_inference else None


def _ref(model: str, snapshot: str | int | None) -> str:
    """`model` at `snapshot` as one reference (RUN@SNAPSHOT); `snapshot` wins over one in `model`."""
    return model if snapshot is None else f"{parse_model_ref(model)[0]}@{snapshot}"


def _sample(settings: Settings, clf: TrainedModel, n: int) -> tuple[np.ndarray, str]:
    """A validation sample from the model's dataset; random pixels (seeded) when that dataset is not here."""
    dataset_id = str(clf.info.get("dataset", {}).get("id", ""))
    if dataset_id and find_dataset(settings, dataset_id) is not None:
        return validation_sample(settings, dataset_id, n), f"dataset {dataset_id}"
    c, h, w = clf.preprocessing.channels, clf.preprocessing.height, clf.preprocessing.width
    pixels = np.random.default_rng(0).integers(0, 256, (n, h, w, c), dtype=np.uint8)
    return pixels, "random pixels (the model's dataset is not in this home)"


def inspect_model(
    settings: Settings,
    model: str,
    image: str | Path | bytes,
    target: str | None = None,
    layer: str | None = None,
    out: Path | None = None,
    snapshot: str | None = None,
    name: str = "image",
) -> dict[str, Any]:
    """Activations, weights and Grad-CAM for one image, written as pictures with inspect.json."""
    clf = open_model(settings, model, snapshot)
    source = image if isinstance(image, bytes) else str(image)
    pixels = clf.preprocessing.load_pixels(source)
    label = Path(str(image)).stem if not isinstance(image, bytes) else name
    folder = output_folder(settings, clf, "inspections", label, out)
    doc = inspect_image(clf, pixels, folder, target, layer)
    return {**doc, "model": clf.info, "folder": str(folder)}
