"""Exporting a language model: an archive (weights, tokenizer, network, info) and ONNX of the forward pass, each
checked against PyTorch.

The archive (`.zip`) holds `model.safetensors` (tied weights stored under both names), `tokenizer.json`,
`network.json` (`{"ref", "context", "vocab_size"}`) and `info.json` (run, snapshot, metrics). The ONNX model takes
(B, T) int64 token ids, T up to the context, with dynamic batch and length, and returns (B, T, V) logits. Parity:
the largest |Δlogit| over validation blocks, and greedy generation of `GREEDY` tokens from the same prompt with
the export and with PyTorch, which must give the same text.
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
from deepyard.text.generate import generate
from deepyard.text.use import LanguageModelRun, open_language_model

FORMATS = ("archive", "onnx")
GREEDY = 64  # tokens generated greedily by both for the parity check
TOLERANCE = 1e-3  # largest |Δlogit| allowed


def export_language_model(
    settings: Settings, ref: str, formats: list[str], out: Path,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Each format written in `out` and checked; `on_progress(formats done, formats)` after each."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InvalidValueError(f"format {bad[0]!r} does not apply to a language model; use {choices(FORMATS)}")
    lm = open_language_model(settings, ref)
    out.mkdir(parents=True, exist_ok=True)
    split = "val" if "val" in lm.manifest.splits else "train"
    store: Any = open_split(settings, lm.manifest, split)
    blocks = torch.from_numpy(np.stack([store.block(i * lm.context, lm.context) for i in range(4)]))  # (4, T)
    prompt = blocks[0, :16].tolist()
    reports = []
    for fmt in formats:
        if fmt == "archive":
            path = out / "model.zip"
            write_bytes_atomic(path, _archive(lm))
            again = read_archive_model(path)
        else:
            path = out / "model.onnx"
            again = _onnx(lm, path, blocks)
        reports.append(_parity(fmt, path, lm, again, blocks, prompt))
        if on_progress is not None:
            on_progress(len(reports), len(formats))
    return {"model": lm.info, "reports": reports, "ok": all(r["ok"] for r in reports)}


def export_folder(settings: Settings, ref: str, tag: str | None) -> Path:
    """Where a run's text model is exported by default: `runs/<id>/exports/`, or `exports/<tag>/` for a job."""
    from deepyard.infer.model import parse_model_ref
    from deepyard.train import runs

    folder = runs.run_dir(settings, runs.get_run(settings, parse_model_ref(ref)[0])["id"]) / "exports"
    return folder / tag if tag else folder


def _archive(lm: LanguageModelRun) -> bytes:
    from safetensors.torch import save

    state = {k: v.detach().clone().contiguous() for k, v in lm.model.state_dict().items()}  # tied: two copies
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.safetensors", save(state))
        z.writestr("tokenizer.json", json.dumps(lm.tokenizer.to_json()))
        z.writestr("network.json", json.dumps({"ref": lm.network, "context": lm.context,
                                               "vocab_size": lm.tokenizer.vocab_size}))  # fmt: skip
        z.writestr("task.json", json.dumps({"task": "language-model"}))
        z.writestr("info.json", json.dumps(lm.info))
    return buf.getvalue()


def read_archive_model(path: Path) -> torch.nn.Module:
    """The network of an archive with its weights (safetensors and JSON only: nothing runs code)."""
    from safetensors.torch import load

    from deepyard.text.networks import build_text_network

    with zipfile.ZipFile(path) as z:
        network = json.loads(z.read("network.json"))
        weights = load(z.read("model.safetensors"))
    model = build_text_network(network["ref"], (1, network["context"], 1), network["vocab_size"])
    model.load_state_dict(weights)
    return model.eval()


class _OnnxModel(torch.nn.Module):
    """onnxruntime behind the forward of a module, so the same greedy generation drives both."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime as ort  # type: ignore[import-untyped]

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"tokens": idx.cpu().numpy()})[0])


def _onnx(lm: LanguageModelRun, path: Path, blocks: torch.Tensor) -> torch.nn.Module:
    axes = {"tokens": {0: "batch", 1: "time"}, "logits": {0: "batch", 1: "time"}}
    partial = path.with_name(path.name + ".partial")
    with warnings.catch_warnings():  # the TorchScript-based exporter's deprecation and RNN notes
        warnings.simplefilter("ignore")
        torch.onnx.export(lm.model, (blocks[:2],), str(partial), input_names=["tokens"], output_names=["logits"],
                          dynamic_axes=axes, dynamo=False)  # fmt: skip
    os.replace(partial, path)  # atomic: a reader sees the whole model or none
    return _OnnxModel(path)


@torch.no_grad()
def _parity(fmt: str, path: Path, lm: LanguageModelRun, other: torch.nn.Module, blocks: torch.Tensor,
            prompt: list[int]) -> dict[str, Any]:  # fmt: skip
    expected = lm.model(blocks).float()
    started = time.perf_counter()
    got = other(blocks).float()
    seconds = time.perf_counter() - started
    diff = float((expected - got).abs().max())
    same_argmax = float((expected.argmax(-1) == got.argmax(-1)).float().mean())
    ours = generate(lm.model, prompt, GREEDY, lm.context, temperature=0)
    theirs = generate(other, prompt, GREEDY, lm.context, temperature=0)
    text_ours, text_theirs = lm.tokenizer.decode(ours), lm.tokenizer.decode(theirs)
    ok = diff <= TOLERANCE and text_ours == text_theirs
    summary = (f"{fmt}: max |Δlogit| {diff:.2e} (allowed {TOLERANCE:g}), next-token agreement {same_argmax:.1%}, "
               f"greedy text {'the same' if text_ours == text_theirs else 'DIFFERENT'}")  # fmt: skip
    return {"format": fmt, "file": str(path), "path": str(path), "size_bytes": path.stat().st_size,
            "max_abs_diff": diff, "agreement": same_argmax, "greedy_same": text_ours == text_theirs,
            "greedy_pytorch": text_ours, "greedy_export": text_theirs, "ms_per_batch": round(seconds * 1000, 2),
            "ok": ok, "summary": summary}  # fmt: skip
