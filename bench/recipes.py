"""Recipes: which training settings a user who changes nothing should get, measured side by side in one run.

Each candidate recipe trains each standard network on each dataset for the same number of epochs, from the same
seed, and the table gives the final validation top-1 and the training time. Two datasets:
- MNIST (a 6,000-image subset of its training set; validation on 2,000 of t10k), 28x28 grayscale;
- shapes: ten classes of shapes (disc, ring, square, frame, triangle, cross, plus, diamond, bars...) in random
  colours, sizes and places on noisy gradient backgrounds, 32x32 colour, generated here (4,000 train, 1,000 val).
The recipes: `digits` (DIGITS' classic Caffe settings: SGD with momentum 0.9, lr 0.01 stepped down 10x at a
third, weight decay lr/100), `sgd-fixed` (Deepyard's defaults before this bench: SGD with momentum 0.9, lr 0.01,
fixed), and the candidates for the default; `default` is TrainConfig() as it is.

Run with `python bench/recipes.py [--epochs N] [--only NAME,...]`; prints a markdown table. Times are noisy on
a shared machine (compare within the table); accuracies are exact for a seed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from deepyard.config import Settings, load_settings
from deepyard.datasets import create_dataset, import_mnist, make_spec
from deepyard.train import make_config, train
from deepyard.train.presets import PRESETS

MNIST = Path(os.environ.get("MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))

CANDIDATES: dict[str, dict[str, Any]] = {
    "digits": PRESETS["digits"].settings,
    "sgd-fixed": {"solver.type": "sgd", "solver.lr": 0.01, "solver.weight_decay": 0, "schedule.policy": "fixed"},
    "nesterov-onecycle": {
        "solver.type": "nesterov",
        "solver.lr": 0.05,
        "solver.weight_decay": 5e-4,
        "schedule.policy": "onecycle",
        "schedule.pct_start": 25,
    },
    "adamw-onecycle wd 0.05": {
        "solver.type": "adamw",
        "solver.lr": 0.003,
        "solver.weight_decay": 0.05,
        "schedule.policy": "onecycle",
        "schedule.pct_start": 25,
    },
    "default": {},  # TrainConfig() as it is: adamw, lr 0.003, weight decay 0.01, onecycle
}
# network -> the datasets it runs on (LeNet is a 28x28 network; the torchvision ones adapt to any size)
PLAN: dict[str, tuple[str, ...]] = {
    "lenet": ("mnist", "shapes"),
    "resnet18": ("mnist", "shapes"),
    "mobilenet_v3_small": ("shapes",),
}

SHAPES = ("disc", "ring", "square", "frame", "triangle", "cross", "plus", "diamond", "hbars", "vbars")


def draw_shape(kind: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """One shape of `kind` on a noisy two-colour gradient, in a random colour, size and place."""
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, size)[:, None, None] if rng.random() < 0.5 else np.linspace(0, 1, size)[None, :, None]
    background = a * (1 - t) + b * t + rng.normal(0, 18, (size, size, 3))
    img = Image.fromarray(np.clip(np.broadcast_to(background, (size, size, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    r = int(rng.integers(6, 13))
    cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
    box = (cx - r, cy - r, cx + r, cy + r)
    w = max(2, r // 3)
    if kind == "disc":
        draw.ellipse(box, fill=colour)
    elif kind == "ring":
        draw.ellipse(box, outline=colour, width=w)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    elif kind == "frame":
        draw.rectangle(box, outline=colour, width=w)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif kind == "cross":
        draw.line((cx - r, cy - r, cx + r, cy + r), fill=colour, width=w)
        draw.line((cx - r, cy + r, cx + r, cy - r), fill=colour, width=w)
    elif kind == "plus":
        draw.line((cx - r, cy, cx + r, cy), fill=colour, width=w)
        draw.line((cx, cy - r, cx, cy + r), fill=colour, width=w)
    elif kind == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    elif kind == "hbars":
        for dy in (-r, 0, r - w):
            draw.rectangle((cx - r, cy + dy, cx + r, cy + dy + w - 1), fill=colour)
    else:  # vbars
        for dx in (-r, 0, r - w):
            draw.rectangle((cx + dx, cy - r, cx + dx + w - 1, cy + r), fill=colour)
    return img


def write_shapes(root: Path, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for kind in SHAPES:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw_shape(kind, rng).save(root / kind / f"{i:05d}.png")


def datasets(settings: Settings, work: Path) -> dict[str, str]:
    write_shapes(work / "shapes-train", 400, seed=1)
    write_shapes(work / "shapes-val", 100, seed=2)
    shapes = create_dataset(
        settings,
        make_spec(
            name="shapes",
            source={"kind": "folder", "train": str(work / "shapes-train"), "val": str(work / "shapes-val")},
            channels=3,
            width=32,
            height=32,
        ),
    )
    mnist = import_mnist(settings, MNIST, max_per_class=600, val_max_per_class=200, name="mnist-6k")
    return {"mnist": mnist.id, "shapes": shapes.id}


def measure(
    settings: Settings, dataset: str, network: str, recipe: dict[str, Any], epochs: float
) -> tuple[float, float]:
    """(val top-1 %, seconds) of one run."""
    config = make_config(**{**recipe, "epochs": epochs, "val_interval": epochs, "snapshot_interval": epochs})
    started = time.perf_counter()
    result = train(settings, dataset, network, config)
    return result.last_val["val_top1"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--only", default="", help="Comma-separated recipe names (default: all).")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(CANDIDATES)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp) / "home")
        ids = datasets(settings, Path(tmp))
        print(f"\n| network | dataset | recipe | val top-1 after {args.epochs:g} epochs | seconds |")
        print("|---|---|---|---:|---:|")
        for network, sets in PLAN.items():
            for dataset in sets:
                for name in names:
                    top1, seconds = measure(settings, ids[dataset], network, CANDIDATES[name], args.epochs)
                    print(f"| {network} | {dataset} | {name} | {top1:.2f}% | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
