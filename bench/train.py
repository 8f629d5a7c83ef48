"""Training benchmarks: LeNet on MNIST on this machine's CPU, measured side by side in one run.

1. Images/s against the compute floor: the same model's forward, backward and optimizer step on in-memory
   tensors of the same shape, batch size and mode (no data loading at all). Target: at least 0.9x.
2. Against the pipeline a PyTorch user writes by hand: torchvision ImageFolder over the MNIST PNG folders, a
   DataLoader with 2 workers, the same model, optimizer and batch size 64. Targets: at least 1.5x the images/s,
   and at least 1.5x faster to 99% test accuracy (both follow the same 3-epoch recipe, validating every half
   epoch; the clock runs from the first step to the first validation at or above 99%).
The machine is shared and noisy, so every images/s figure is the best window of 47 steps (about 60 windows each;
the floor's are taken half before and half after the training run).

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

import torch
import torch.nn.functional as F
import torchvision  # type: ignore[import-untyped]
from torch.utils.data import DataLoader

from deepyard.config import load_settings
from deepyard.datasets import import_mnist
from deepyard.datasets.mnist import export_class_folders, find_mnist_files
from deepyard.networks import build_network
from deepyard.train import lr_at, make_config, train
from deepyard.train.device import resolve_placement
from deepyard.train.optim import build_optimizer, set_lr

MNIST = Path(os.environ.get("MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))
RECIPE = {"epochs": 3, "batch_size": 64, "solver.type": "nesterov", "solver.lr": 0.05, "solver.weight_decay": 5e-4,
          "schedule.policy": "onecycle", "schedule.pct_start": 15, "val_interval": 0.5}  # fmt: skip


def floor_rate(batch: int, channels_last: bool, windows: int = 30, steps: int = 47) -> float:
    """Images/s of LeNet's training step on tensors already in memory: the compute floor (best window)."""
    config = make_config(**RECIPE)
    torch.manual_seed(0)
    model = build_network("lenet", (1, 28, 28), 10)
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    optimizer = build_optimizer(model.parameters(), config.solver)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(20):
        step()
    best = 0.0
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = max(best, batch * steps / (time.perf_counter() - start))
    return best


def ours(home: Path) -> tuple[float, float | None, float]:
    """(images/s of the best metrics window, seconds to 99%, final top-1) of `deepyard train` with the recipe."""
    settings = load_settings(home)
    dataset = import_mnist(settings, MNIST, reuse=True)
    result = train(settings, dataset.id, "lenet", make_config(**RECIPE))
    points = [json.loads(line) for line in (result.folder / "metrics.jsonl").read_text().splitlines()]
    rates = [p["images_per_s"] for p in points if "images_per_s" in p]  # windows of ~47 steps
    to_99 = next((p["wall"] for p in points if p.get("val_top1", 0) >= 99.0), None)
    return max(rates), to_99, result.last_val["val_top1"]


def by_hand(pngs: Path) -> tuple[float, float | None, float]:
    """The same recipe through ImageFolder + DataLoader(2 workers), as a user writes it."""
    config = make_config(**RECIPE)
    tf = torchvision.transforms.Compose([torchvision.transforms.Grayscale(), torchvision.transforms.ToTensor()])
    train_set = torchvision.datasets.ImageFolder(str(pngs / "train"), transform=tf)
    test_set = torchvision.datasets.ImageFolder(str(pngs / "test"), transform=tf)
    loader = DataLoader(train_set, batch_size=64, shuffle=True, num_workers=2, drop_last=True,
                        persistent_workers=True)  # fmt: skip
    test_loader = DataLoader(test_set, batch_size=256, num_workers=2, persistent_workers=True)
    torch.manual_seed(0)
    model = build_network("lenet", (1, 28, 28), 10)
    optimizer = build_optimizer(model.parameters(), config.solver)
    total = int(config.epochs) * len(loader)
    half = len(loader) // 2
    step, to_99, top1, best = 0, None, 0.0, 0.0
    started = time.perf_counter()
    tick, window = started, 0
    for _ in range(int(config.epochs)):
        for x, y in loader:  # windows of 47 steps, as deepyard's metrics points, data waits included
            set_lr(optimizer, lr_at(config.schedule, config.solver.lr, 100 * step / total))
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            window += 1
            if window == 47:
                best = max(best, window * 64 / (time.perf_counter() - tick))
            if step % half == 0:
                top1 = _accuracy(model, test_loader)
                if to_99 is None and top1 >= 99.0:
                    to_99 = time.perf_counter() - started
            if window == 47 or step % half == 0:  # evaluation time never counts as training time
                tick, window = time.perf_counter(), 0
    return best, to_99, top1


@torch.no_grad()
def _accuracy(model: torch.nn.Module, loader: DataLoader) -> float:  # type: ignore[type-arg]
    model.eval()
    hits = count = 0
    for x, y in loader:
        hits += int((model(x).argmax(1) == y).sum())
        count += len(y)
    model.train()
    return 100 * hits / count


def main() -> None:
    placement = resolve_placement(make_config(**RECIPE))
    mode = f"mode picked: {placement.precision}, channels-last {placement.channels_last}"
    print(f"machine: {os.cpu_count()} CPUs ({platform.machine()}), torch {torch.__version__}, "
          f"Python {sys.version.split()[0]}; {mode}\n")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="deepyard-bench-") as tmp:
        pngs = export_class_folders(find_mnist_files(MNIST), Path(tmp) / "png")
        before = floor_rate(64, placement.channels_last)
        our_rate, our_99, our_top1 = ours(Path(tmp) / "home")
        floor = max(before, floor_rate(64, placement.channels_last))  # measured on both sides of our run
        floor_256 = floor_rate(256, placement.channels_last)
        hand_rate, hand_99, hand_top1 = by_hand(pngs)
    print("| LeNet on MNIST, batch 64, CPU | images/s | vs floor | vs by hand |")
    print("|---|---:|---:|---:|")
    print(f"| compute floor (in-memory tensors, no data path) | {floor:,.0f} | 1.00x | {floor / hand_rate:.2f}x |")
    print(f"| `deepyard train` | {our_rate:,.0f} | **{our_rate / floor:.2f}x** | **{our_rate / hand_rate:.2f}x** |")
    print(f"| ImageFolder + DataLoader(2 workers), by hand | {hand_rate:,.0f} | {hand_rate / floor:.2f}x | 1.00x |")
    print(f"\n(compute floor at batch 256: {floor_256:,.0f} images/s)\n")
    print("| same 3-epoch recipe | seconds to 99% test accuracy | final top-1 |")
    print("|---|---:|---:|")
    fmt = lambda s: "not reached" if s is None else f"{s:.1f}"  # noqa: E731
    print(f"| `deepyard train` | {fmt(our_99)} | {our_top1:.2f}% |")
    print(f"| ImageFolder + DataLoader(2 workers), by hand | {fmt(hand_99)} | {hand_top1:.2f}% |")
    if our_99 and hand_99:
        print(f"\ntime to 99%: deepyard is **{hand_99 / our_99:.2f}x** faster")


if __name__ == "__main__":
    main()
