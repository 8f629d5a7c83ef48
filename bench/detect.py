"""Detection benchmarks: fcos_small on generated scenes on this machine's CPU, measured side by side in one run.

1. Training images/s of `deepyard train` against the pipeline a PyTorch user writes by hand for the same model,
   data and batch size: torchvision's CocoDetection over the same COCO files (wrapped for transforms v2), a
   letterbox to 64x64 (resize the long side, pad) and flips that move the boxes, a DataLoader with 2 workers, the
   same AdamW and one-cycle schedule. Target: at least 1.3x. Windows of 3 steps (deepyard's metrics points), data
   waits included; the machine is shared and its load swings within seconds, so each side's best window and its
   median are both given (the two sides run one after the other: a load swing between them moves the median).
2. Evaluation of the same predictions (the trained model's on the validation split): pycocotools' COCOeval alone
   (loadRes, evaluate, accumulate, summarize, from arrays already in memory), deepyard's validation meter
   (torchmetrics' MeanAveragePrecision, pycocotools backend) and `deepyard evaluate`'s whole report (COCO figures,
   per-class thresholds, PR curves, confusion, error pictures); the mAP of all three must agree.

Run with `make bench`; prints markdown tables. No assertions: figures and ratios.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision  # type: ignore[import-untyped]
from torch.utils.data import DataLoader
from torchvision.transforms import v2  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.tasks.boxdata import make_scenes, write

from deepyard.config import load_settings
from deepyard.datasets import create_dataset, get_dataset, make_spec, open_split
from deepyard.infer import load_run_model
from deepyard.networks import build_network
from deepyard.tasks import get_task
from deepyard.tasks.base import EvalContext
from deepyard.tasks.detection import DetectionMeter
from deepyard.train import lr_at, make_config, train
from deepyard.train.optim import build_optimizer, set_lr

SCENES = {"sizes": (56, 88), "most": 4, "negatives": 0.1, "clutter": 6, "object_size": (8, 26), "distractors": 1}
RECIPE: dict[str, Any] = {"epochs": 1, "batch_size": 16, "solver.lr": 0.003, "augment.flip": "lr", "val_interval": 1}
SIZE = 64


def ours(home: Path, train_json: Path, val_json: Path) -> tuple[list[float], str, str]:
    """(images/s of deepyard's metrics windows, run id, dataset id)."""
    settings = load_settings(home)
    spec = make_spec(name="scenes", task="detection", width=SIZE, height=SIZE,
                     source={"kind": "detection", "train": train_json, "val": val_json, "format": "coco"})  # fmt: skip
    dataset = create_dataset(settings, spec)
    result = train(settings, dataset.id, "fcos_small", make_config(**RECIPE))
    points = [json.loads(line) for line in (result.folder / "metrics.jsonl").read_text().splitlines()]
    rates = [p["images_per_s"] for p in points if "images_per_s" in p]
    return rates, result.run_id, dataset.id


def by_hand(train_json: Path) -> list[float]:
    """The same model, data and recipe through CocoDetection + DataLoader(2 workers), as a user writes it."""
    config = make_config(**RECIPE)
    letterbox = v2.Compose([v2.ToImage(), v2.Resize(size=None, max_size=SIZE), v2.CenterCrop(SIZE),
                            v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True)])  # fmt: skip
    coco = torchvision.datasets.CocoDetection(str(train_json.parent), str(train_json), transforms=letterbox)
    data = torchvision.datasets.wrap_dataset_for_transforms_v2(coco, target_keys=("boxes", "labels"))
    loader = DataLoader(data, batch_size=16, shuffle=True, num_workers=2, drop_last=True, persistent_workers=True,
                        collate_fn=collate)  # fmt: skip
    torch.manual_seed(0)
    model = build_network("fcos_small", (3, SIZE, SIZE), 4).train()
    optimizer = build_optimizer(model.parameters(), config.solver)
    total = int(config.epochs) * len(loader)
    step, rates = 0, []
    tick = time.perf_counter()
    for _ in range(int(config.epochs)):
        for images, targets in loader:
            set_lr(optimizer, lr_at(config.schedule, config.solver.lr, 100 * step / total))
            found = [{"boxes": t.get("boxes", torch.zeros(0, 4)), "labels": t.get("labels", torch.zeros(0).long())}
                     for t in targets]  # an image without annotations has neither (the wrapper's way)  # fmt: skip
            loss = sum(model(list(images), found).values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % 3 == 0:
                rates.append(3 * 16 / (time.perf_counter() - tick))
                tick = time.perf_counter()
    return rates


def evaluation(home: Path, run_id: str, dataset: str) -> tuple[dict[str, float], dict[str, float], int]:
    """Seconds and mAP of COCOeval alone, of deepyard's meter and of its whole report, on the same predictions."""
    from pycocotools.coco import COCO  # type: ignore[import-untyped]
    from pycocotools.cocoeval import COCOeval  # type: ignore[import-untyped]

    settings = load_settings(home)
    clf = load_run_model(settings, run_id)
    store = open_split(settings, get_dataset(settings, dataset), "val")
    pixels = torch.from_numpy(store.get_batch(np.arange(len(store)))).permute(0, 3, 1, 2)
    outputs = clf.outputs(pixels).double().numpy()
    targets = store.targets
    seconds, found = {}, {}

    start = time.perf_counter()
    categories: list[dict[str, object]] = [{"id": c} for c in range(len(clf.classes))]
    images: list[dict[str, object]] = [{"id": i, "width": SIZE, "height": SIZE} for i in range(len(targets))]
    gt: dict[str, list[dict[str, object]]] = {"annotations": [], "categories": categories, "images": images}
    for i, rows in enumerate(targets):
        for x1, y1, x2, y2, c, crowd in rows[rows[:, 4] >= 0].tolist():
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": int(c),
                                      "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                      "iscrowd": int(crowd)})  # fmt: skip
    dets = np.array([[i, r[0], r[1], r[2] - r[0], r[3] - r[1], r[4], r[5]] for i, out in enumerate(outputs)
                     for r in out if r[5] >= 0])  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = gt
        truth.createIndex()
        ev = COCOeval(truth, truth.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    seconds["COCOeval"], found["COCOeval"] = time.perf_counter() - start, 100 * float(ev.stats[0])

    start = time.perf_counter()
    meter = DetectionMeter()
    meter.update(torch.from_numpy(outputs).float(), torch.from_numpy(targets).float(), torch.tensor(float("nan")))
    found["meter"] = meter.compute(meter.sums())["val_map"]
    seconds["meter"] = time.perf_counter() - start

    start = time.perf_counter()
    ctx = EvalContext(list(clf.classes), clf.stats, [f"val#{i}" for i in range(len(targets))],
                      lambda idx: store.get_batch(idx), 9)  # fmt: skip
    report = get_task("detection").evaluate(outputs, targets, ctx)
    seconds["report"], found["report"] = time.perf_counter() - start, float(report.doc["map"])
    return seconds, found, len(dets)


def collate(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[tuple[torch.Tensor, ...], ...]:
    return tuple(zip(*batch, strict=True))


def main() -> None:
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs ({platform.machine()}), torch {torch.__version__}, Python "
          f"{sys.version.split()[0]}; load average {load:.1f} at the start\n")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="deepyard-bench-") as tmp:
        root = Path(tmp)
        train_json = write("coco", root / "train", make_scenes(320, seed=0, **SCENES))  # type: ignore[arg-type]
        val_json = write("coco", root / "val", make_scenes(200, seed=1, **SCENES))  # type: ignore[arg-type]
        our_rate, run_id, dataset = ours(root / "home", train_json, val_json)
        hand_rate = by_hand(train_json)
        seconds, found, count = evaluation(root / "home", run_id, dataset)
    best, median = max(our_rate) / max(hand_rate), statistics.median(our_rate) / statistics.median(hand_rate)
    print(f"| fcos_small, 320 scenes at {SIZE}x{SIZE}, batch 16, 1 epoch, CPU | images/s, best window | median | "
          "vs by hand (best, median) |")  # fmt: skip
    print("|---|---:|---:|---:|")
    print(f"| `deepyard train` | {max(our_rate):,.1f} | {statistics.median(our_rate):,.1f} | **{best:.2f}x**, "
          f"{median:.2f}x |")  # fmt: skip
    print(f"| CocoDetection + DataLoader(2 workers), by hand | {max(hand_rate):,.1f} | "
          f"{statistics.median(hand_rate):,.1f} | 1.00x |")  # fmt: skip
    print(f"\n| evaluating the same {count:,} predictions on 200 images | seconds | mAP@[.5:.95] |")
    print("|---|---:|---:|")
    print(f"| pycocotools COCOeval alone | {seconds['COCOeval']:.3f} | {found['COCOeval']:.2f}% |")
    print(f"| deepyard's validation meter (torchmetrics, pycocotools backend) | {seconds['meter']:.3f} | "
          f"{found['meter']:.2f}% |")  # fmt: skip
    print(f"| `deepyard evaluate`'s whole report (+ thresholds, PR, confusion, pictures) | {seconds['report']:.3f} | "
          f"{found['report']:.2f}% |")  # fmt: skip
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
