"""The model archive: one zip file with everything needed to classify, and nothing that runs code.

Members:
  model.safetensors  the weights (safetensors: plain tensors, no pickle)
  network.json       the network record: {"ref": name, "spec": the full spec as data, or null for torchvision}
  labels.txt         output names (classes, labels or targets), one per line, in output order
  task.json          the task and what it needs to read the outputs: {"task": name, "stats": ...}; an archive
                     without it was made before tasks and is classification
  preprocess.json    size, channels, resize mode, mean mode, crop (see `infer.preprocess.Preprocessing`)
  mean.npy           the mean image (H, W, C) float32, when the model subtracts one (read with allow_pickle=False)
  info.json          format version, Deepyard/PyTorch versions, run, snapshot, dataset, metrics, creation time
"""

from __future__ import annotations

import io
import json
import platform
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from deepyard import __version__
from deepyard.errors import IntegrityError, InvalidValueError, NotFoundError
from deepyard.files import write_bytes_atomic
from deepyard.infer.model import TrainedModel
from deepyard.infer.preprocess import Preprocessing
from deepyard.networks import build_network, spec_from_data
from deepyard.tasks import get_task

FORMAT = "deepyard-model/1"
MEMBERS = ("model.safetensors", "network.json", "labels.txt", "preprocess.json", "info.json")
OPTIONAL = ("mean.npy", "task.json")
MAX_MEMBER_BYTES = 4 << 30  # a member claiming more than this is refused before it is read


def write_archive(clf: TrainedModel, path: Path) -> Path:
    """Write `clf` as a model archive at `path` (atomically) and return the path."""
    state = {k: v.detach().cpu().contiguous() for k, v in clf.model.state_dict().items()}
    info = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "deepyard": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "num_classes": clf.num_classes, "input_shape": list(clf.preprocessing.input_shape),
        **clf.info,
    }  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.safetensors", save_safetensors(state, metadata={"format": FORMAT}))
        zf.writestr("network.json", json.dumps(clf.network, indent=2))
        zf.writestr("labels.txt", "".join(f"{name}\n" for name in clf.classes))
        zf.writestr("task.json", json.dumps({"task": clf.task.name, "stats": clf.stats}, indent=2))
        zf.writestr("preprocess.json", json.dumps(clf.preprocessing.to_json(), indent=2))
        if clf.preprocessing.mean_pixels is not None:
            arr = io.BytesIO()
            np.save(arr, clf.preprocessing.mean_pixels.astype(np.float32), allow_pickle=False)
            zf.writestr("mean.npy", arr.getvalue())
        zf.writestr("info.json", json.dumps(info, indent=2, default=str))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.getvalue())
    return path


def read_archive(path: Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a model archive. Only data is read: safetensors weights, JSON, text and a pickle-free array."""
    members = _read_members(path)
    try:
        network = json.loads(members["network.json"])
        labels = members["labels.txt"].decode("utf-8").splitlines()
        pre_data = json.loads(members["preprocess.json"])
        info = json.loads(members["info.json"])
        mean = np.load(io.BytesIO(members["mean.npy"]), allow_pickle=False) if "mean.npy" in members else None
        state = load_safetensors(members["model.safetensors"])
        task_doc = json.loads(members["task.json"]) if "task.json" in members else {}
        task, stats = get_task(task_doc.get("task")), dict(task_doc.get("stats") or {})
    except (ValueError, KeyError, UnicodeDecodeError, SafetensorError, AttributeError, InvalidValueError) as exc:
        raise IntegrityError(f"model archive {str(path)!r} is damaged: {exc}") from None
    if info.get("format") != FORMAT:
        raise IntegrityError(f"{str(path)!r} is not a {FORMAT} archive (format {info.get('format')!r})")
    pre = Preprocessing.from_json(pre_data, mean)
    ref = spec_from_data(network["spec"]) if network.get("spec") is not None else network["ref"]
    model = task.inference_model(build_network(ref, pre.input_shape, task.outputs(labels)))  # as it was written
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise IntegrityError(f"weights in {str(path)!r} do not fit its network: {exc}") from None
    return TrainedModel(model, labels, pre, network, {**info, "archive": str(path)}, torch.device(device), task, stats)


def _read_members(path: Path) -> dict[str, bytes]:
    if not path.is_file():
        raise NotFoundError(f"no model archive at {str(path)!r}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = [m for m in MEMBERS if m not in names]
            if missing:
                raise IntegrityError(f"{str(path)!r} is not a model archive: missing {', '.join(missing)}")
            wanted = [*MEMBERS, *(m for m in OPTIONAL if m in names)]
            for name in wanted:
                if zf.getinfo(name).file_size > MAX_MEMBER_BYTES:
                    raise IntegrityError(f"{str(path)!r}: member {name} claims an implausible size")
            return {name: zf.read(name) for name in wanted}
    except zipfile.BadZipFile as exc:
        raise IntegrityError(f"{str(path)!r} is not a model archive: {exc}") from None
