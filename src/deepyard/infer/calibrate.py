"""Calibrate a trained model on its validation split before use, for tasks that need it (multi-label thresholds).

The result is cached next to the checkpoint's run as `calibration/<checkpoint>.json`, keyed by the checkpoint's
size and modification time, so a model is calibrated once per snapshot; archives carry it in `task.json`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from deepyard.config import Settings
from deepyard.datasets import Manifest, open_split
from deepyard.files import read_json, write_json_atomic

if TYPE_CHECKING:
    from deepyard.infer.model import TrainedModel


def calibration(settings: Settings, model: TrainedModel, manifest: Manifest, checkpoint: Path) -> dict[str, Any]:
    st = os.stat(checkpoint)
    key = f"{st.st_size}-{st.st_mtime_ns}"
    cache = checkpoint.parent.parent / "calibration" / f"{checkpoint.stem}.json"
    try:
        cached = read_json(cache)
        if isinstance(cached, dict) and cached.get("key") == key and isinstance(cached.get("stats"), dict):
            return dict(cached["stats"])
    except (OSError, ValueError):
        pass
    split = "val" if "val" in manifest.splits else "train"
    store = open_split(settings, manifest, split)
    outputs = []
    for start in range(0, len(store), 256):
        pixels = store.get_batch(np.arange(start, min(len(store), start + 256)))
        outputs.append(model.outputs(torch.from_numpy(pixels).permute(0, 3, 1, 2)))
    stats = model.task.calibrate(torch.cat(outputs).double().numpy(), store.targets, model.classes)
    stats["calibrated_on"] = f"{manifest.name} ({split})"
    try:
        cache.parent.mkdir(exist_ok=True)
        write_json_atomic(cache, {"key": key, "stats": stats})
    except OSError:
        pass  # a read-only run folder: calibrate again next time
    return stats
