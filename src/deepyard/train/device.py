"""Where and how a run computes: device, DDP rank, mixed precision and memory layout.

`auto` picks the fastest mode the hardware runs natively and that keeps accuracy: on CUDA, bf16 autocast where
the GPU supports it (else fp16 with gradient scaling) and channels-last; on the CPU, bf16 only where it has native
bf16 instructions (AMX or AVX-512 BF16; elsewhere bf16 is emulated and several times slower), and channels-last,
which the oneDNN convolutions run faster. The resolved choice is stored with the run, so a resumed run keeps it.
Under `torchrun` (WORLD_SIZE > 1) the process group is started here: NCCL on GPUs, gloo on the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from deepyard.errors import InvalidValueError
from deepyard.train.config import TrainConfig

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Placement:
    device: torch.device
    precision: str  # fp32, bf16 or fp16 (resolved)
    channels_last: bool
    rank: int = 0
    world: int = 1

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return _DTYPES[self.precision]

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device.type, "precision": self.precision, "channels_last": self.channels_last,
                "world": self.world, "threads": torch.get_num_threads()}  # fmt: skip


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_placement(config: TrainConfig, stored: dict[str, Any] | None = None) -> Placement:
    rank, world, local = _distributed()
    device = _device(config.device, local)
    precision = (stored or {}).get("precision") or _precision(config.precision, device)
    if stored and "channels_last" in stored:
        channels_last = bool(stored["channels_last"])
    else:
        channels_last = config.channels_last != "off"
    return Placement(device, precision, channels_last, rank, world)


def _device(setting: str, local_rank: int) -> torch.device:
    if setting == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidValueError(f"device {setting!r}: no CUDA GPU is available here; use 'cpu' or 'auto'")
    if setting not in ("cpu", "cuda") and not setting.startswith("cuda:"):
        raise InvalidValueError(f"device {setting!r} is not valid; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return torch.device(f"cuda:{local_rank}" if setting == "cuda" else setting)


def _precision(setting: str, device: torch.device) -> str:
    if setting != "auto":
        if setting == "fp16" and device.type == "cpu":
            raise InvalidValueError("precision 'fp16' needs a GPU; on the CPU use 'bf16' or 'fp32'")
        return setting
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank); starts the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), local
