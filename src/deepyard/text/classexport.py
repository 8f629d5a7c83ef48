"""Exporting a text classifier: an archive (weights, tokenizer, network, info) and ONNX, each checked against
PyTorch on validation texts.

The archive (`.zip`) holds `model.safetensors`, `tokenizer.json`, `network.json` (`{"ref", "length",
"classes"}`), `task.json` and `info.json`; reading it runs no code (safetensors and JSON), and `deepyard predict
model.zip TEXT` uses it as it uses the run. The ONNX model takes (B, L) int64 ids (dynamic batch, the dataset's
length L) and returns (B, K) logits. Parity: the largest difference of any class probability and the top-1
agreement over up to `samples` validation texts; both must hold (`TOLERANCE`, 100%).
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepyard.config import Settings
from deepyard.datasets import open_split
from deepyard.errors import InvalidValueError, choices
from deepyard.files import write_bytes_atomic
from deepyard.text.classify import TextClassifier, archive_parts, open_text_classifier, tokenizer_of
from deepyard.text.export import _OnnxModel  # onnxruntime behind a forward: (B, L) ids in
from deepyard.text.sequences import vocabulary

FORMATS = ("archive", "onnx")
TOLERANCE = 1e-4  # largest |Δprobability| allowed


def export_text_classifier(
    settings: Settings, ref: str, formats: list[str], out: Path, samples: int = 64,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Each format written in `out` and checked; `on_progress(formats done, formats)` after each."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InvalidValueError(f"format {bad[0]!r} does not apply to a text classifier; use {choices(FORMATS)}")
    clf = open_text_classifier(settings, ref)
    if clf.manifest is None:
        raise InvalidValueError("export a run, not an archive")
    split = "val" if "val" in clf.manifest.splits else "train"
    store: Any = open_split(settings, clf.manifest, split)
    rows = torch.from_numpy(store.get_batch(np.arange(min(samples, len(store)))))  # (N, L)
    out.mkdir(parents=True, exist_ok=True)
    reports = []
    for fmt in formats:
        if fmt == "archive":
            path = out / "model.zip"
            write_bytes_atomic(path, _archive(clf))
            other = read_archive(path).model
        else:
            path = out / "model.onnx"
            other = _onnx(clf, path, rows)
        reports.append(_parity(fmt, path, clf.model, other, rows))
        if on_progress is not None:
            on_progress(len(reports), len(formats))
    return {"model": clf.info, "split": split, "samples": len(rows), "reports": reports,
            "ok": all(r["ok"] for r in reports)}  # fmt: skip


def _archive(clf: TextClassifier) -> bytes:
    from safetensors.torch import save

    state = {k: v.detach().clone().contiguous() for k, v in clf.model.state_dict().items()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.safetensors", save(state))
        for name, text in archive_parts(clf).items():
            z.writestr(name, text)
    return buf.getvalue()


def read_archive(path: Path) -> TextClassifier:
    """The classifier of an archive (safetensors and JSON only: nothing runs code)."""
    from safetensors.torch import load

    from deepyard.text.classifiers import build_text_classifier

    try:
        with zipfile.ZipFile(path) as z:
            network = json.loads(z.read("network.json"))
            tokenizer = tokenizer_of(json.loads(z.read("tokenizer.json")))
            info = json.loads(z.read("info.json"))
            weights = load(z.read("model.safetensors"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InvalidValueError(f"{str(path)!r} is not a text-classifier archive: {exc}") from None
    classes = [str(c) for c in network["classes"]]
    model = build_text_classifier(network["ref"], (vocabulary(tokenizer), int(network["length"]), 1), len(classes))
    model.load_state_dict(weights)
    return TextClassifier(model.eval(), tokenizer, int(network["length"]), classes, network["ref"],
                          {**info, "archive": str(path)})  # fmt: skip


def _onnx(clf: TextClassifier, path: Path, rows: torch.Tensor) -> torch.nn.Module:
    partial = path.with_name(path.name + ".partial")
    with warnings.catch_warnings():  # the TorchScript-based exporter's deprecation and RNN notes
        warnings.simplefilter("ignore")
        torch.onnx.export(clf.model, (rows[:2],), str(partial), input_names=["tokens"], output_names=["logits"],
                          dynamic_axes={"tokens": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)  # fmt: skip
    os.replace(partial, path)
    return _OnnxModel(path)


@torch.no_grad()
def _parity(fmt: str, path: Path, model: torch.nn.Module, other: torch.nn.Module, rows: torch.Tensor) -> dict[str, Any]:
    expected = model(rows).float().softmax(-1)
    started = time.perf_counter()
    got = other(rows).float().softmax(-1)
    seconds = time.perf_counter() - started
    diff = float((expected - got).abs().max()) if len(rows) else 0.0
    agree = float((expected.argmax(-1) == got.argmax(-1)).float().mean()) if len(rows) else 1.0
    summary = f"{fmt}: max |Δprobability| {diff:.2e} (allowed {TOLERANCE:g}), top-1 agreement {agree:.1%}"
    return {"format": fmt, "file": str(path), "path": str(path), "size_bytes": path.stat().st_size,
            "max_prob_diff": diff, "top1_agreement": agree, "ms_per_batch": round(seconds * 1000, 2),
            "ok": diff <= TOLERANCE and agree == 1.0, "summary": summary}  # fmt: skip
