"""Inference benchmarks on this machine's CPU: PyTorch against ONNX Runtime, side by side in one run.

For LeNet (1x28x28, 10 classes) and ResNet-18 (3x224x224, 1000 classes): single-image classify latency (p50 and
p95 over many calls) and batched throughput (images/s, the best of several timed batches). Both sides run the same
exported graph's computation: the PyTorch model with Deepyard's input transform, and the ONNX file `deepyard
export` writes (parity-checked before timing). Weights are random: speed does not depend on them.

Run with `make bench`; prints a markdown table.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from deepyard.infer.export import Deployable, export, load_exported
from deepyard.infer.model import TrainedModel
from deepyard.infer.preprocess import Preprocessing
from deepyard.networks import build_network

CASES = [  # name, (C, H, W), classes, single-image calls, batch size, timed batches
    ("lenet", (1, 28, 28), 10, 400, 256, 20),
    ("resnet18", (3, 224, 224), 1000, 40, 32, 5),
]


def percentiles(fn: Callable[[np.ndarray], object], x: np.ndarray, calls: int) -> tuple[float, float]:
    for _ in range(5):
        fn(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def throughput(fn: Callable[[np.ndarray], object], x: np.ndarray, batches: int) -> float:
    fn(x)
    best = min(_timed(fn, x) for _ in range(batches))
    return len(x) / best


def _timed(fn: Callable[[np.ndarray], object], x: np.ndarray) -> float:
    start = time.perf_counter()
    fn(x)
    return time.perf_counter() - start


def main() -> None:
    torch.manual_seed(0)
    print(f"CPU inference on {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}\n")  # fmt: skip
    print("| network | runtime | p50 ms/image | p95 ms/image | batched images/s | ratio (throughput) |")
    print("|---|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for name, (c, h, w), classes, calls, batch, batches in CASES:
        pre = Preprocessing(width=w, height=h, channels=c)
        clf = TrainedModel(
            build_network(name, (c, h, w), classes), [str(i) for i in range(classes)], pre, {"ref": name}
        )
        sample = rng.integers(0, 256, (8, h, w, c), dtype=np.uint8)
        with tempfile.TemporaryDirectory() as tmp:
            report = export(clf, "onnx", Path(tmp) / f"{name}.onnx", sample)
            assert report.ok, report.summary()
            onnx = load_exported("onnx", Path(tmp) / f"{name}.onnx")
            model = Deployable(clf.transform, clf.model).eval()

            def pytorch(x: np.ndarray, model: Deployable = model) -> np.ndarray:
                with torch.inference_mode():
                    return model(torch.from_numpy(x)).numpy()

            one = rng.integers(0, 256, (1, c, h, w)).astype(np.float32)
            many = rng.integers(0, 256, (batch, c, h, w)).astype(np.float32)
            rows = {}
            for runtime, fn in (("PyTorch", pytorch), ("ONNX Runtime", onnx)):
                rows[runtime] = (*percentiles(fn, one, calls), throughput(fn, many, batches))
        base = rows["PyTorch"][2]
        for runtime, (p50, p95, rate) in rows.items():
            print(f"| {name} | {runtime} | {p50:.2f} | {p95:.2f} | {rate:,.0f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
