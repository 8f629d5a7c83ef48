"""Using a trained text classifier: load it (a run's snapshot or an exported archive) with its tokenizer, classify
texts, evaluate it on a split.

`open_text_classifier(settings, "RUN[@best|@last|@STEP]" or "model.zip")` gives the model (eval mode), the
tokenizer, the stored length and the classes; `classify_texts` the top classes with probabilities of each text;
`predict_inputs` reads what `deepyard predict` is given (a text, a file, a folder); `evaluate_text_classifier`
the task's report with the trainer's own meter (the same top-1 as training logged), its examples shown as texts.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepyard.config import Settings
from deepyard.datasets import Manifest, get_dataset, open_split
from deepyard.datasets.catalog import dataset_dir
from deepyard.errors import InvalidValueError, SourceError, choices
from deepyard.files import read_json, write_bytes_atomic, write_json_atomic
from deepyard.infer.model import checkpoint_path, parse_model_ref
from deepyard.tasks import EvalContext, get_task
from deepyard.text.corpus import Skipped
from deepyard.text.labelled import TEXT_SUFFIXES, Labelled, _read_text, read_labelled
from deepyard.text.sequences import encode_rows
from deepyard.text.tokenizer import Tokenizer, load_tokenizer, tokenizer_from_json
from deepyard.train import runs
from deepyard.train.checkpoint import load_checkpoint

TASK = "text-classification"
MAX_TEXTS = 10_000  # texts per `predict` call
SHOWN = 300  # characters of a text kept in predictions and reports


@dataclass
class TextClassifier:
    model: nn.Module
    tokenizer: Tokenizer
    length: int  # tokens per text the network was trained on
    classes: list[str]
    network: str
    info: dict[str, Any] = field(default_factory=dict)
    manifest: Manifest | None = None

    @torch.inference_mode()
    def logits(self, texts: list[str]) -> torch.Tensor:
        rows, _, _ = encode_rows(self.tokenizer, texts, self.length)
        out: torch.Tensor = self.model(torch.from_numpy(rows.astype(np.int64))).float()
        return out


def is_text_classifier_ref(settings: Settings, ref: str) -> bool:
    """Whether `ref` is a text-classification run or archive (False for anything else, even a bad ref)."""
    from deepyard.errors import DeepyardError

    if ref.endswith(".zip"):
        try:
            with zipfile.ZipFile(ref) as z:
                return bool(json.loads(z.read("task.json")).get("task") == TASK)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return False
    try:
        return get_dataset(settings, runs.get_run(settings, parse_model_ref(ref)[0])["dataset"]).task == TASK
    except DeepyardError:
        return False


def open_text_classifier(settings: Settings, ref: str) -> TextClassifier:
    if ref.endswith(".zip"):
        from deepyard.text.classexport import read_archive

        return read_archive(Path(ref))
    run_id, snap = parse_model_ref(ref)
    info = runs.get_run(settings, run_id)
    manifest = get_dataset(settings, info["dataset"])
    if manifest.task != TASK:
        raise InvalidValueError(f"run {info['id']!r} is a {manifest.task} model, not a text classifier")
    path = checkpoint_path(settings, info["id"], snap)
    length, _, vocab = manifest.shape
    model = runs.build_run_model(info, (vocab, length, 1), len(manifest.classes), settings)
    data = load_checkpoint(path)
    model.load_state_dict(data["model"])
    state = data.get("state", {})
    details = {"run": info["id"], "snapshot": path.stem.removeprefix("step-").lstrip("0") or path.stem,
               "step": state.get("step"), "dataset": manifest.id, "metrics": state.get("last_val", {})}  # fmt: skip
    tokenizer = load_tokenizer(dataset_dir(settings, manifest.id))
    return TextClassifier(model.eval(), tokenizer, length, list(manifest.classes), str(info["network"]["ref"]),
                          details, manifest)  # fmt: skip


def classify_texts(clf: TextClassifier, texts: list[tuple[str, str, str | None]], k: int = 5) -> list[dict[str, Any]]:
    """Per (source, text, true label or None): the top `k` classes with probabilities, and whether it is right."""
    if len(texts) > MAX_TEXTS:
        raise InvalidValueError(f"{len(texts):,} texts at once; give at most {MAX_TEXTS:,}")
    task = get_task(TASK)
    rows = []
    for start in range(0, len(texts), 256):
        chunk = texts[start : start + 256]
        predicted = task.predict(clf.logits([t for _, t, _ in chunk]), clf.classes, {}, k)
        for (source, text, label), p in zip(chunk, predicted, strict=True):
            rows.append({"source": source, "text": _short(text), "label": label,
                         "correct": None if label is None else p["predicted"] == label, **p})  # fmt: skip
    return rows


def predict_inputs(given: str, classes: list[str]) -> tuple[list[tuple[str, str, str | None]], list[Skipped]]:
    """What `deepyard predict` classifies: a folder (every .txt file; a class sub-folder's name is the file's
    true label), a CSV/TSV/JSONL file (its `text` column, and `label` when it has one), a text file, or else the
    argument itself as the text."""
    path = Path(given)
    try:
        exists = path.exists()
    except (OSError, ValueError):  # too long for a file name: a text
        exists = False
    if not exists:
        return [("text", given, None)], []
    if path.is_dir():
        return _folder_inputs(path, classes)
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl"):
        found = read_labelled(path, labels=False)  # a `label` column, where there is one, gives the true class
        return [(e.name, e.text, e.label if e.label in classes else None) for e in found.examples], found.skipped
    found = Labelled()
    text = _read_text(path, found, None)
    return ([(str(path), text, None)] if text is not None and text.strip() else []), found.skipped or (
        [] if text and text.strip() else [Skipped(str(path), "no text (only white space)")])  # fmt: skip


def _folder_inputs(root: Path, classes: list[str]) -> tuple[list[tuple[str, str, str | None]], list[Skipped]]:
    found = Labelled()
    texts: list[tuple[str, str, str | None]] = []
    for file in sorted(p for p in root.rglob("*") if p.is_file() and not any(s.startswith(".") for s in
                                                                              p.relative_to(root).parts)):  # fmt: skip
        if file.suffix.lower() not in TEXT_SUFFIXES:
            continue
        text = _read_text(file, found, None)
        if text is None or not text.strip():
            found.skipped += [] if text is None else [Skipped(str(file), "no text (only white space)")]
            continue
        top = file.relative_to(root).parts
        texts.append((str(file), text, top[0] if len(top) > 1 and top[0] in classes else None))
    if not texts and not found.skipped:
        raise SourceError(f"folder {str(root)!r} has no .txt file")
    return texts, found.skipped


@torch.inference_mode()
def evaluate_text_classifier(
    settings: Settings, ref: str, split: str = "val", top_n: int = 9, out: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None, tag: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The task's report over `split`, written in `out` (default: `runs/<id>/evaluations/<split>-<snapshot>
    [-<tag>]/`) with the confusion matrix; `on_progress(texts done, texts)`."""
    clf = open_text_classifier(settings, ref)
    if clf.manifest is None:
        raise InvalidValueError("evaluate a run (its dataset's split), not an archive")
    if split not in clf.manifest.splits:
        raise InvalidValueError(f"split {split!r} is not one of {choices(clf.manifest.splits)}")
    task = get_task(TASK)
    store: Any = open_split(settings, clf.manifest, split)
    sources_file = dataset_dir(settings, clf.manifest.id) / split / "sources.json"
    sources = (
        [str(s) for s in read_json(sources_file)] if sources_file.is_file() else [str(i) for i in range(len(store))]
    )
    meter = task.meter(clf.classes, {})
    criterion = task.criterion(task.losses[0], clf.classes, {}, None)
    chunks = []
    for start in range(0, len(store), 256):
        idx = np.arange(start, min(len(store), start + 256))
        outputs = clf.model(torch.from_numpy(store.get_batch(idx))).float()
        targets = torch.from_numpy(np.asarray(store.targets[idx], np.int64))
        meter.update(outputs, targets, criterion(outputs, targets)["cross_entropy"])
        chunks.append(outputs)
        if on_progress is not None:
            on_progress(int(idx[-1]) + 1, len(store))
    everything = torch.cat(chunks).double().numpy()
    report = task.evaluate(everything, np.asarray(store.targets), EvalContext(clf.classes, {}, sources, _none, top_n))
    doc = report.doc
    for example in doc["top_losses"] + [e for per in doc["top_per_class"].values() for e in per]:
        example["text"] = _short(store.text(example["index"]))
    name = f"{split}-{clf.info['snapshot']}" + (f"-{tag}" if tag else "")
    folder = out or runs.run_dir(settings, clf.info["run"]) / "evaluations" / name
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in report.pictures.items():
        write_bytes_atomic(folder / name, data)
    metrics = {k.removeprefix("val_"): v for k, v in meter.compute(meter.sums()).items()}
    result = {"description": f"{clf.manifest.name} ({split})", "task": TASK, "model": clf.info, "count": len(store),
              "metrics": metrics, **doc, "skipped": [],
              "files": {"json": str(folder / "evaluation.json"),
                        "confusion": str(folder / "confusion.png")}}  # fmt: skip
    write_json_atomic(folder / "evaluation.json", result)
    return result


def _none(ix: np.ndarray) -> np.ndarray:
    return np.zeros((len(ix), 1, 1, 3), np.uint8)


def _short(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def archive_parts(clf: TextClassifier) -> dict[str, str]:
    """The JSON members of an archive besides the weights."""
    return {"tokenizer.json": json.dumps(clf.tokenizer.to_json()),
            "network.json": json.dumps({"ref": clf.network, "length": clf.length, "classes": clf.classes}),
            "task.json": json.dumps({"task": TASK}), "info.json": json.dumps(clf.info)}  # fmt: skip


def tokenizer_of(data: dict[str, Any]) -> Tokenizer:
    return tokenizer_from_json(data)
