"""Checkpoints: everything needed to resume a run exactly, written atomically, read without unpickling code.

A checkpoint holds the model and optimizer state, the gradient scaler, the run state (step, epoch, best metric,
early-stopping counter) and every random-number generator (torch CPU and CUDA, the augmentation generator, numpy,
Python). Only tensors, numbers, strings, lists and dicts go in, so `torch.load(weights_only=True)` reads it: a
checkpoint can never run code. The file appears by rename, so a crash mid-write leaves the previous one intact; a
file damaged afterwards (truncated, corrupt) is refused with a DamagedFileError naming it. A run keeps its best
weights (`best.pt`) and its newest `keep_last` step checkpoints (`prune_checkpoints`), the newest being the one
resume needs.
"""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepyard.errors import DamagedFileError
from deepyard.files import write_bytes_atomic

STEP_GLOB = "step-*.pt"  # step checkpoints: step-0001200.pt


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.getvalue())


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`: a file carrying pickled objects is refused, not run; so is a
    truncated or corrupt one (DamagedFileError, naming the file)."""
    try:
        data: Any = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as exc:  # weights_only refused an object that is not plain data
        if "weights_only" in str(exc):
            reason = str(exc).strip().splitlines()[0]
            raise DamagedFileError(
                f"refusing checkpoint {str(path)!r}: it is not plain tensor data ({reason})"
            ) from None
        raise _damaged(path, exc) from None
    except Exception as exc:  # a cut or corrupt zip: RuntimeError, EOFError, ValueError, ... (torch says which)
        raise _damaged(path, exc) from None
    if not isinstance(data, dict):
        raise DamagedFileError(f"checkpoint {str(path)!r} holds a {type(data).__name__}, not a checkpoint mapping")
    return data


def _damaged(path: Path, exc: Exception) -> DamagedFileError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return DamagedFileError(f"checkpoint {str(path)!r} is damaged (truncated or corrupt): {reason}")


def prune_checkpoints(folder: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` step checkpoints in `folder` (0: keep all); best.pt is never touched,
    nor the newest step (the one resume continues from). Returns what was deleted."""
    if keep_last <= 0:
        return []
    doomed = sorted(folder.glob(STEP_GLOB), key=_step_of)[:-keep_last]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


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


def _step_of(path: Path) -> int:
    digits = path.stem.removeprefix("step-")
    return int(digits) if digits.isdigit() else -1
