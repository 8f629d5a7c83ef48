"""CLI start-up: how long `deepyard` verbs that need no model take, against importing torch alone.

Listing runs, models, jobs and groups reads files and SQLite; only verbs that build or load a model import torch.
Each command runs 5 times in a fresh process (best and median wall time) on a home with a few runs and a stored
model. Run with `make bench`.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from deepyard.config import load_settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.train import make_config, train
from deepyard.transfer import make_pretrained

REPEATS = 5
DEEPYARD = str(Path(sys.executable).parent / "deepyard")


def make_home(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for label in range(3):
        for i in range(20):
            path = root / "images" / f"c{label}" / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(path)
    settings = load_settings(root / "home", data_roots=[root])
    spec = make_spec(name="bench", source={"kind": "folder", "train": root / "images"}, width=28, height=28,
                     channels=1, val_pct=25)  # fmt: skip
    dataset = create_dataset(settings, spec).id
    run = ""
    for _ in range(3):
        run = train(settings, dataset, "lenet", make_config(epochs=1, device="cpu")).run_id
    make_pretrained(settings, run, "lenet-bench")
    return settings.home


def timed(cmd: list[str]) -> list[float]:
    out = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="deepyard-bench-cli-"))
    try:
        home = make_home(root)
        rows = [
            ("python -c 'import torch' (baseline)", [sys.executable, "-c", "import torch"]),
            ("deepyard run list", [DEEPYARD, "--home", str(home), "run", "list"]),
            ("deepyard model list", [DEEPYARD, "--home", str(home), "model", "list"]),
            ("deepyard jobs list", [DEEPYARD, "--home", str(home), "jobs", "list"]),
            ("deepyard group list", [DEEPYARD, "--home", str(home), "group", "list"]),
            ("deepyard dataset list", [DEEPYARD, "--home", str(home), "dataset", "list"]),
        ]
        results = [(name, timed(cmd)) for name, cmd in rows]
        base = min(results[0][1])
        print("\n| command | best s | median s | vs import torch |")
        print("|---|---:|---:|---:|")
        for name, times in results:
            print(f"| `{name}` | {min(times):.2f} | {statistics.median(times):.2f} | {min(times) / base:.2f}x |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
