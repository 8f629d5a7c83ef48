"""Segmentation benchmarks on this machine's CPU, measured side by side in one run.

1. Training images/s of `deepyard train` against the pipeline a PyTorch user writes by hand: a Dataset that
   opens each image and mask PNG with PIL, a DataLoader with 2 workers, the same network (the small U-Net), loss
   (cross-entropy, ignore 255), optimizer (AdamW), batch size and data (generated 64x64 scenes of circles,
   squares and triangles, tests/tasks/segdata.py), no augmentation on either side. Target: at least 1.3x.
   Every images/s figure is the best window of 8 steps (the machine is shared and noisy).
2. The mIoU computation: our validation meter (one pixel confusion matrix by bincount, deepyard.tasks.segmetrics)
   against torchmetrics' MeanIoU and MulticlassJaccardIndex on the same predictions (batches of logits and
   masks), milliseconds per batch and the figure each gives. MeanIoU averages each image's IoU; ours and the
   Jaccard index pool the pixels of the whole set (as the trainer and `deepyard evaluate` report it).

Run with `make bench`; prints markdown tables.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchmetrics.classification import MulticlassJaccardIndex
from torchmetrics.segmentation import MeanIoU

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' scene generator

from tests.tasks.segdata import CLASSES, write_scenes

from deepyard.config import load_settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.networks import build_network
from deepyard.tasks.segmetrics import ConfusionMeter
from deepyard.train import make_config, train
from deepyard.train.device import resolve_placement
from deepyard.train.optim import build_optimizer

SIZE, IMAGES, BATCH, WINDOW = 64, 384, 16, 8
RECIPE = {"epochs": 2, "batch_size": BATCH, "loss": "cross_entropy", "solver.type": "adamw", "solver.lr": 0.003,
          "schedule.policy": "fixed", "mean": "none", "log_interval": WINDOW, "augment.flip": "none",
          "val_interval": 2}  # fmt: skip


def ours(home: Path, data: Path) -> tuple[float, str]:
    """(best window's images/s, mode picked) of `deepyard train` on the scenes."""
    settings = load_settings(home)
    spec = make_spec(name="scenes", task="segmentation", width=SIZE, height=SIZE, val_pct=10,
                     source={"kind": "masks", "train": data})  # fmt: skip
    dataset = create_dataset(settings, spec)
    result = train(settings, dataset.id, "unet", make_config(**RECIPE))
    points = [json.loads(line) for line in (result.folder / "metrics.jsonl").read_text().splitlines()]
    return max(p["images_per_s"] for p in points if "images_per_s" in p), _mode()


def _mode() -> str:
    placement = resolve_placement(make_config(**RECIPE))
    return f"{placement.precision}, channels-last {placement.channels_last}"


class Scenes(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """What a user writes: open the image and the mask with PIL, to tensors."""

    def __init__(self, root: Path) -> None:
        self.images = sorted((root / "images").glob("*.png"))
        self.masks = root / "masks"

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.images[i]
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
        mask = np.asarray(Image.open(self.masks / path.name), dtype=np.int64)
        return torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(mask)


def by_hand(data: Path) -> float:
    """Best window's images/s of the same training through Dataset + DataLoader(2 workers)."""
    config = make_config(**RECIPE)
    loader = DataLoader(Scenes(data), batch_size=BATCH, shuffle=True, num_workers=2, drop_last=True,
                        persistent_workers=True)  # fmt: skip
    torch.manual_seed(0)
    model = build_network("unet", (3, SIZE, SIZE), len(CLASSES)).train()
    optimizer = build_optimizer(model.parameters(), config.solver)
    best, tick, window = 0.0, time.perf_counter(), 0
    for _ in range(int(config.epochs)):
        for x, y in loader:  # data waits included, as in deepyard's windows
            loss = F.cross_entropy(model(x), y, ignore_index=255)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            window += 1
            if window == WINDOW:
                best = max(best, window * BATCH / (time.perf_counter() - tick))
                tick, window = time.perf_counter(), 0
    return best


def metric_times(batches: int = 40) -> list[tuple[str, float, float]]:
    """(name, ms per batch, mIoU %) of each meter over the same predictions (16 images of 64x64, 4 classes)."""
    g = torch.Generator().manual_seed(0)
    truth = [torch.randint(0, 4, (BATCH, SIZE, SIZE), generator=g) for _ in range(batches)]
    logits = [torch.randn(BATCH, 4, SIZE, SIZE, generator=g) + 3 * F.one_hot(t, 4).permute(0, 3, 1, 2)
              for t in truth]  # fmt: skip
    out = []

    def ours() -> float:
        meter = ConfusionMeter(4)
        for x, y in zip(logits, truth, strict=True):
            meter.update(x, y, torch.zeros(()))
        return meter.compute(meter.sums())["val_miou"]

    def torchmetrics_meter(metric: MeanIoU | MulticlassJaccardIndex) -> float:
        metric.reset()
        for x, y in zip(logits, truth, strict=True):
            metric.update(x.argmax(1), y)
        return 100 * float(metric.compute())

    mean_iou, jaccard = MeanIoU(4, input_format="index"), MulticlassJaccardIndex(4)
    meters = [("deepyard ConfusionMeter (the trainer's)", ours),
              ("torchmetrics MeanIoU (per-image mean)", lambda: torchmetrics_meter(mean_iou)),
              ("torchmetrics MulticlassJaccardIndex", lambda: torchmetrics_meter(jaccard))]  # fmt: skip
    for name, run in meters:
        run()  # warm-up
        best, value = float("inf"), 0.0
        for _ in range(5):
            start = time.perf_counter()
            value = run()
            best = min(best, time.perf_counter() - start)
        out.append((name, 1000 * best / batches, value))
    return out


def main() -> None:
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs ({platform.machine()}), torch {torch.__version__}, "
          f"Python {sys.version.split()[0]}; mode picked: {_mode()}; load average {load:.1f}\n")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="deepyard-bench-") as tmp:
        data = Path(tmp) / "scenes"
        write_scenes(data, IMAGES, "palette", seed=0, size=SIZE)
        our_rate, _ = ours(Path(tmp) / "home", data)
        hand_rate = by_hand(data)
    print(f"| unet on {IMAGES} generated {SIZE}x{SIZE} scenes, batch {BATCH}, CPU | training images/s | vs by hand |")
    print("|---|---:|---:|")
    print(f"| `deepyard train` | {our_rate:,.1f} | **{our_rate / hand_rate:.2f}x** |")
    print(f"| PIL Dataset + DataLoader(2 workers), by hand | {hand_rate:,.1f} | 1.00x |")
    rows = metric_times()
    ours_ms = rows[0][1]
    print(f"\n| mIoU of 40 batches of {BATCH}x4x{SIZE}x{SIZE} logits | ms per batch | vs ours | mIoU |")
    print("|---|---:|---:|---:|")
    for name, ms, value in rows:
        print(f"| {name} | {ms:.2f} | {ms / ours_ms:.2f}x | {value:.2f}% |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
