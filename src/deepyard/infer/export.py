"""Export a model (archive, ONNX, TorchScript) and check every export against the PyTorch model.

The ONNX and TorchScript models contain the input transform (mean subtraction, centre crop, 1/255): they take
resized pixels (B, C, H, W) as float32 in 0..255 and give logits; the batch size is dynamic. After writing, the
parity check runs the same validation sample through the export and through PyTorch and reports the largest
absolute difference in outputs, the task's agreement (classification: top-1; multi-label: label decisions at
the thresholds; regression: values within 0.001 std) and single-image latency of each; a failed check says so
loudly.

ONNX: torch's dynamo exporter first; where it fails (torchvision's detectors: pytorch/vision issues 9306, 9462)
the TorchScript-based exporter (`dynamo=False`, a trace); the report says which one wrote the file. A task whose
trace unrolls a loop over the batch (`Task.export_batch` = 1: detectors) is exported for one image and run image
by image.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepyard.config import Settings
from deepyard.datasets import get_dataset, open_split
from deepyard.errors import InvalidValueError, choices
from deepyard.files import write_bytes_atomic, write_json_atomic
from deepyard.infer.archive import read_archive, write_archive
from deepyard.infer.model import TrainedModel
from deepyard.infer.preprocess import InputTransform

FORMATS = ("archive", "onnx", "torchscript")
SUFFIX = {"archive": ".zip", "onnx": ".onnx", "torchscript": ".torchscript.pt"}
RTOL = 1e-4  # allowed output difference, relative to the largest logit magnitude (fp32 kernels differ a little)
Runner = Callable[[np.ndarray], np.ndarray]  # (B, C, H, W) float32 pixels → (B, K) outputs


class Deployable(nn.Module):
    """Input transform + network: resized pixels in 0..255 → logits."""

    def __init__(self, transform: InputTransform, model: nn.Module) -> None:
        super().__init__()
        self.transform, self.model = transform, model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(self.transform(pixels))  # type: ignore[no-any-return]


@dataclass
class ParityReport:
    format: str
    path: str
    size_bytes: int
    samples: int
    max_abs_diff: float
    tolerance: float
    agreement: float  # fraction of the task's decisions that agree (parity needs all of them)
    agreement_of: str  # what agrees: "top-1", "label decisions", ...
    latency_ms: dict[str, float]  # median single-image latency: {"pytorch": ..., format: ...}
    ok: bool
    exporter: str = ""  # what wrote the file: "dynamo", "torchscript (dynamo failed: ...)", "trace", "archive"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        by = f" ({self.exporter.split(' (')[0]} exporter)" if self.format == "onnx" and self.exporter else ""
        return (
            f"{self.format}{by}: parity {verdict}: max |Δlogit| {self.max_abs_diff:.2e} "
            f"(tolerance {self.tolerance:.2e}), "
            f"{self.agreement_of} agreement {self.agreement:.1%} on {self.samples} images"
        )


def validation_sample(settings: Settings, dataset: str, n: int = 64, seed: int = 0) -> np.ndarray:
    """Up to n images (B, H, W, C) uint8 from the dataset's val split (else train), seeded."""
    manifest = get_dataset(settings, dataset)
    split = "val" if "val" in manifest.splits else "train"
    store = open_split(settings, manifest, split)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(store), size=min(n, len(store)), replace=False))
    return store.get_batch(picked)


def export(clf: TrainedModel, fmt: str, path: Path, sample: np.ndarray) -> ParityReport:
    """Write `clf` in format `fmt` at `path`, then check it on `sample` ((B, H, W, C) uint8, at the model's size)."""
    if fmt not in FORMATS:
        raise InvalidValueError(f"export format {fmt!r} is not one of {choices(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    deployable = Deployable(clf.transform, clf.model).cpu().eval()
    pixels = torch.from_numpy(np.ascontiguousarray(sample)).permute(0, 3, 1, 2).float()
    exporter = {"archive": _write_archive, "onnx": _write_onnx, "torchscript": _write_torchscript}[fmt](
        clf, deployable, pixels, path
    )
    clf.model.to(clf.device)
    clf.transform.to(clf.device)
    report = check_parity(fmt, path, deployable, load_exported(fmt, path, clf.task.export_batch), pixels, clf)
    report.exporter = exporter
    return report


def load_exported(fmt: str, path: Path, batch: int | None = None) -> Runner:
    """Open an exported model for inference on the CPU: (B, C, H, W) float32 pixels in 0..255 → logits.
    `batch`: the fixed batch the model was traced at (None: any); larger inputs are run in pieces of it."""
    runner = _open_exported(fmt, path)
    if batch is None or fmt == "archive":
        return runner
    return lambda x: np.concatenate([runner(x[i : i + batch]) for i in range(0, len(x), batch)])


def _open_exported(fmt: str, path: Path) -> Runner:
    if fmt == "archive":
        loaded = read_archive(path)
        deployed = Deployable(loaded.transform, loaded.model).eval()
        return lambda x: _torch_run(deployed, x)
    if fmt == "onnx":
        import onnxruntime as ort  # type: ignore[import-untyped]

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: np.asarray(session.run(["logits"], {"pixels": x})[0])
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript is in maintenance mode and says so
            module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
        return lambda x: _torch_run(module, x)
    raise InvalidValueError(f"export format {fmt!r} is not one of {choices(FORMATS)}")


def _write_archive(clf: TrainedModel, deployable: Deployable, pixels: torch.Tensor, path: Path) -> str:
    write_archive(clf, path)
    return "archive"


def _example(clf: TrainedModel, pixels: torch.Tensor) -> torch.Tensor:
    return pixels[: clf.task.export_batch or min(2, len(pixels))]


def _write_onnx(clf: TrainedModel, deployable: Deployable, pixels: torch.Tensor, path: Path) -> str:
    """The dynamo exporter, else the TorchScript-based one; returns which wrote the file."""
    if clf.task.export_batch is None:
        try:
            _write_onnx_dynamo(deployable, _example(clf, pixels), path)
            return "dynamo"
        except Exception as exc:  # any failure of the new exporter: the older one may still work
            failed = f"dynamo failed: {type(exc).__name__}"
    else:
        failed = f"dynamo skipped: a {clf.task.name} model's trace is for a fixed batch"
    example = _example(clf, pixels)
    dynamic = {"pixels": {0: "batch"}, "logits": {0: "batch"}} if clf.task.export_batch is None else None
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            file = Path(tmp) / "model.onnx"
            torch.onnx.export(deployable, (example,), str(file), input_names=["pixels"], output_names=["logits"],
                              dynamo=False, dynamic_axes=dynamic, opset_version=17)  # fmt: skip
            write_bytes_atomic(path, file.read_bytes())
    return f"torchscript ({failed})"


def _write_onnx_dynamo(deployable: Deployable, example: torch.Tensor, path: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals are not for our users
        program = torch.onnx.export(
            deployable, (example,), input_names=["pixels"], output_names=["logits"], dynamo=True,
            dynamic_shapes=({0: torch.export.Dim.DYNAMIC},), verbose=False,
        )  # fmt: skip
        assert program is not None
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            program.save(str(Path(tmp) / "model.onnx"))
            write_bytes_atomic(path, (Path(tmp) / "model.onnx").read_bytes())


def _write_torchscript(clf: TrainedModel, deployable: Deployable, pixels: torch.Tensor, path: Path) -> str:
    example = _example(clf, pixels)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript is in maintenance mode and says so
        traced = torch.jit.trace(deployable, (example,), check_trace=False)  # type: ignore[no-untyped-call]
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    write_bytes_atomic(path, buf.getvalue())
    return "trace"


def _torch_run(model: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(x)).float().cpu().numpy()


def check_parity(
    fmt: str, path: Path, reference: Deployable, runner: Runner, pixels: torch.Tensor, clf: TrainedModel
) -> ParityReport:
    """Compare an exported model (`runner`) with the PyTorch model on the same pixels, through `clf`'s task."""
    x = pixels.cpu().numpy().astype(np.float32)
    expected = _torch_run(reference, x)
    exported = runner(x)
    diff = clf.task.output_difference(expected, exported)
    tolerance = RTOL * max(1.0, float(np.abs(expected).max()))
    what, agreement = clf.task.agreement(expected, exported, clf.stats)
    latency = {"pytorch": _latency(lambda a: _torch_run(reference, a), x[:1]), fmt: _latency(runner, x[:1])}
    ok = diff <= tolerance and agreement == 1.0
    return ParityReport(fmt, str(path), path.stat().st_size, len(x), diff, tolerance, agreement, what, latency, ok)


def _latency(run: Runner, x: np.ndarray, repeats: int = 20) -> float:
    run(x)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def export_all(
    clf: TrainedModel, formats: list[str], folder: Path, sample: np.ndarray, stem: str = "model"
) -> list[ParityReport]:
    """Export to each format into `folder` and write `parity.json` with every report."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise InvalidValueError(f"export format {bad[0]!r} is not one of {choices(FORMATS)}")
    unfit = [f for f in formats if f not in clf.task.export_formats]
    if unfit:
        raise InvalidValueError(f"a {clf.task.name} model does not export as {unfit[0]} yet; use --format "
                                f"{' or '.join(clf.task.export_formats)}")  # fmt: skip
    reports = [export(clf, fmt, folder / f"{stem}{SUFFIX[fmt]}", sample) for fmt in formats]
    write_json_atomic(folder / "parity.json", [r.to_json() for r in reports])
    return reports
