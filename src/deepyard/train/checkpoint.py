"""Checkpoints: everything needed to resume a run exactly, written atomically, read without unpickling code.

A checkpoint holds the model and optimizer state, the gradient scaler, the run state (step, epoch, best metric,
early-stopping counter) and every random-number generator (torch CPU and CUDA, the augmentation generator, numpy,
Python). Only tensors, numbers, strings, lists and dicts go in, so `torch.load(weights_only=True)` reads it: a
checkpoint can never run code. The file appears by rename, so a crash mid-write leaves the previous one intact.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepyard.errors import IntegrityError
from deepyard.files import write_bytes_atomic


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.getvalue())


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`: a file carrying pickled objects is refused, not run."""
    try:
        data: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises UnpicklingError (and others) for anything but plain data
        raise IntegrityError(f"refusing checkpoint {str(path)!r}: it is not plain tensor data ({exc})") from None
    return data


def capture_rng(augment_generator: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "augment": augment_generator.get_state(),
        "numpy": _numpy_state(),
        "python": _python_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], augment_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"].cpu())
    augment_generator.set_state(state["augment"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
    version, internal, gauss_next = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal.tolist()), gauss_next))


def _numpy_state() -> list[Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return [str(kind), torch.from_numpy(np.asarray(keys).astype(np.int64)), int(pos), int(has_gauss), float(gauss)]


def _python_state() -> list[Any]:
    version, internal, gauss_next = random.getstate()
    return [version, torch.tensor(internal, dtype=torch.int64), gauss_next]
