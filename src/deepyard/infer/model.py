"""A trained model ready to use: network, weights, its task, output names and preprocessing, from a run or an
archive.

Weights come from a run's checkpoint (read with `weights_only=True`) or from an archive's safetensors file: loading
never runs code from the file. Inference runs in fp32, in eval mode, on the CPU unless a device is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepyard.config import Settings
from deepyard.datasets import get_dataset
from deepyard.datasets.catalog import MEAN_ARRAY, dataset_dir
from deepyard.errors import InvalidValueError, NotFoundError, choices
from deepyard.infer.preprocess import InputTransform, Preprocessing, to_batch
from deepyard.tasks import Task, get_task
from deepyard.train import runs
from deepyard.train.checkpoint import load_checkpoint
from deepyard.train.record import RunRecord

BEST, LAST = "best", "last"


@dataclass
class TrainedModel:
    """A model in eval mode with everything needed to use it on an image file through its task."""

    model: nn.Module
    classes: list[str]  # the output names: classes (classification), labels (multi-label), targets (regression)
    preprocessing: Preprocessing
    network: dict[str, Any]  # the run's network record: {"ref": name, "spec": spec data or None}
    info: dict[str, Any] = field(default_factory=dict)  # run id, snapshot, step, dataset, metrics
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    task: Task = field(default_factory=lambda: get_task(None))
    stats: dict[str, Any] = field(default_factory=dict)  # the task's target statistics and calibration
    transform: InputTransform = field(init=False)

    def __post_init__(self) -> None:
        self.model.eval().to(self.device)
        self.transform = self.preprocessing.input_module().to(self.device)

    @property
    def num_classes(self) -> int:
        """The number of outputs (classes, labels or values)."""
        return len(self.classes)

    def predict(self, outputs: torch.Tensor, k: int = 5) -> list[dict[str, Any]]:
        """The task's prediction for each row of (B, K) outputs."""
        return self.task.predict(outputs, self.classes, self.stats, k)

    def inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) pixels in 0..255 → the network's input."""
        x: torch.Tensor = self.transform(pixels.to(self.device))
        return x

    @torch.inference_mode()
    def outputs(self, pixels: torch.Tensor | list[np.ndarray]) -> torch.Tensor:
        """Raw outputs (B, K) on the CPU (logits, or standardised values) for (B, C, H, W) pixels or a list of
        (H, W, C) uint8 images."""
        batch = to_batch(pixels) if isinstance(pixels, list) else pixels
        out: torch.Tensor = self.model(self.inputs(batch))
        return out.float().cpu()


def snapshots(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    """The run's checkpoints a model can be loaded from: `best` (when validated) then each step, newest first."""
    folder = runs.run_dir(settings, runs.get_run(settings, run_id)["id"]) / "checkpoints"
    found = []
    if (folder / "best.pt").is_file():
        found.append({"name": BEST, "path": folder / "best.pt"})
    for path in sorted(folder.glob("step-*.pt"), reverse=True):
        found.append({"name": str(int(path.stem.removeprefix("step-"))), "path": path})
    return found


def checkpoint_path(settings: Settings, run_id: str, snapshot: str | int | None = None) -> Path:
    """The file of a snapshot: `best` (the default when the run has one), `last`, or a step number."""
    found = snapshots(settings, run_id)
    if not found:
        raise NotFoundError(f"run {run_id!r} has no checkpoint yet; train it first")
    wanted = str(snapshot) if snapshot is not None else found[0]["name"]
    if wanted == LAST:
        steps = [s for s in found if s["name"] != BEST]
        return Path((steps or found)[0]["path"])
    for snap in found:
        if snap["name"] == wanted:
            return Path(snap["path"])
    names = [s["name"] for s in found]
    raise NotFoundError(f"run {run_id!r} has no snapshot {wanted!r}; valid: {choices([LAST, *names])}")


def load_run_model(
    settings: Settings, run_id: str, snapshot: str | int | None = None, device: str | torch.device = "cpu"
) -> TrainedModel:
    """The model of run `run_id` at a snapshot (default: best, else the last step)."""
    record = RunRecord.of(runs.get_run(settings, run_id))
    path = checkpoint_path(settings, run_id, snapshot)
    manifest = get_dataset(settings, record.dataset)
    if get_task(manifest.task).input_kind != "image":  # texts have their own verbs (deepyard.text)
        use = "deepyard predict RUN TEXT" if manifest.task == "text-classification" else "deepyard generate RUN"
        raise InvalidValueError(f"run {record.id!r} is a {manifest.task} model, which takes text, not images; "
                                f"use {use}")  # fmt: skip
    mean_image = np.load(dataset_dir(settings, manifest.id) / MEAN_ARRAY, allow_pickle=False)
    pre = Preprocessing.from_config(manifest.spec, record.config.model_dump(), mean_image)
    task = get_task(manifest.task)
    model = runs.build_run_model(record.raw, pre.input_shape, task.outputs(manifest.classes), settings)
    data = load_checkpoint(path)
    model.load_state_dict(data["model"])
    model = task.inference_model(model)
    state = data.get("state", {})
    details = {
        "run": record.id, "run_name": record.name, "snapshot": _snapshot_name(path), "step": state.get("step"),
        "dataset": {"id": manifest.id, "name": manifest.name, "content_hash": manifest.content_hash},
        "metrics": state.get("last_val", {}), "task": task.name,
    }  # fmt: skip
    loaded = TrainedModel(model, list(manifest.classes), pre, record.network.to_json(), details, torch.device(device),
                          task, dict(manifest.target_stats))  # fmt: skip
    if task.calibrated:
        from deepyard.infer.calibrate import calibration

        loaded.stats.update(calibration(settings, loaded, manifest, path))
    return loaded


def _snapshot_name(path: Path) -> str:
    return BEST if path.stem == BEST else str(int(path.stem.removeprefix("step-")))


_RUN_REF = re.compile(r"^(?:run:)?(?P<id>[^@/\\]+)(?:@(?P<snap>[^@/\\]+))?$")


def parse_model_ref(ref: str) -> tuple[str, str | None]:
    """`run:ID`, `ID` or either with `@snapshot` → (run id, snapshot or None)."""
    match = _RUN_REF.match(ref)
    if not match:
        raise InvalidValueError(f"model {ref!r} is neither a run id (ID, run:ID or ID@SNAPSHOT) nor an archive file")
    return match["id"], match["snap"]


def open_model(settings: Settings, ref: str, snapshot: str | int | None = None, device: str = "cpu") -> TrainedModel:
    """A run (`ID`, `run:ID`, `ID@best`, `ID@1200`) or a model archive file (`*.zip`)."""
    if is_archive_ref(ref):
        from deepyard.infer.archive import read_archive

        return read_archive(Path(ref), device)
    run_id, snap = parse_model_ref(ref)
    return load_run_model(settings, run_id, snapshot if snapshot is not None else snap, device)


def is_archive_ref(ref: str) -> bool:
    """Whether `ref` names a model archive (a `.zip`, or any existing file: `model.ZIP`) rather than a run."""
    return ref.endswith(".zip") or _is_file(ref)


def _is_file(ref: str) -> bool:
    """False for what cannot name a file here (too long for the file system, a NUL byte), not an OSError."""
    try:
        return Path(ref).is_file()
    except (OSError, ValueError):
        return False
