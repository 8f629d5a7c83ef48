"""Hardware figures for the live panel: a job process's CPU and memory (psutil), and per GPU utilization, memory
and temperature through NVML (libnvidia-ml, read with ctypes; no extra dependency). No NVML: an empty GPU list.

CPU % is measured between two samples, so keep one `ProcessSampler` per job and call it about once a second.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from dataclasses import asdict, dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class ProcessFigures:
    pid: int
    cpu_percent: float  # of one core, summed over the process and its children (100 = one busy core)
    memory_bytes: int  # resident memory of the process and its children
    processes: int  # the process and its children (DataLoader workers, build workers)


@dataclass(frozen=True)
class GpuFigures:
    index: int
    name: str
    utilization_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    temperature_c: float


class ProcessSampler:
    """CPU % and memory of one process tree; the first sample's CPU % is 0 (it needs an interval)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._procs: dict[int, psutil.Process] = {}

    def sample(self) -> ProcessFigures | None:
        """None once the process is gone."""
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        cpu, memory = 0.0, 0
        alive = {}
        for proc in tree:
            known = self._procs.get(proc.pid, proc)
            try:
                cpu += known.cpu_percent(None)
                memory += known.memory_info().rss
            except psutil.Error:
                continue
            alive[proc.pid] = known
        self._procs = alive
        return ProcessFigures(self.pid, round(cpu, 1), memory, len(alive))


def process_figures(pid: int, interval: float = 0.1) -> ProcessFigures | None:
    """One-off figures for `pid`, measuring CPU over `interval` seconds; None when the process is gone."""
    import time

    sampler = ProcessSampler(pid)
    if sampler.sample() is None:
        return None
    time.sleep(interval)
    return sampler.sample()


class _Utilization(ctypes.Structure):
    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]


class _Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


@functools.lru_cache(maxsize=1)
def _nvml() -> Any:
    """The NVML library, initialised; None when there is no NVIDIA driver."""
    names = [n for n in ("libnvidia-ml.so.1", ctypes.util.find_library("nvidia-ml")) if n]
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if lib.nvmlInit_v2() == 0:
            return lib
    return None


def gpu_figures() -> list[GpuFigures]:
    """Every GPU the driver sees (physical indices), or [] without NVML."""
    lib = _nvml()
    if lib is None:
        return []
    count = ctypes.c_uint()
    if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
        return []
    found = []
    for index in range(count.value):
        handle = ctypes.c_void_p()
        if lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
            continue
        name = ctypes.create_string_buffer(96)
        util, mem, temp = _Utilization(), _Memory(), ctypes.c_uint()
        lib.nvmlDeviceGetName(handle, name, 96)
        lib.nvmlDeviceGetUtilizationRates(handle, ctypes.byref(util))
        lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem))
        lib.nvmlDeviceGetTemperature(handle, 0, ctypes.byref(temp))  # 0 = NVML_TEMPERATURE_GPU
        found.append(GpuFigures(index, name.value.decode(errors="replace"), float(util.gpu), int(mem.used),
                                int(mem.total), float(temp.value)))  # fmt: skip
    return found


def visible_gpus() -> list[int]:
    """Indices (as CUDA numbers them in this process) of the GPUs this process may use."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    total = len(gpu_figures())
    if env is None:
        return list(range(total))
    return list(range(len([p for p in env.split(",") if p.strip() and p.strip() != "-1"])))


def gpu_count() -> int:
    return len(visible_gpus())


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def cpu_threads(job_cpu: int, cpu_slots: int, cores: int | None = None) -> int:
    """The intra-op threads of a job holding `job_cpu` of `cpu_slots` CPU slots: its share of the cores. Two
    trainings on one 2-core machine with two threads each crawl (oversubscription: a char-LSTM took 106 s for
    steps that take 4.7 s with one thread each); a single slot keeps every core, as PyTorch's default does."""
    cores = usable_cores() if cores is None else cores
    return max(1, cores * max(job_cpu, 1) // max(cpu_slots, 1))


def thread_env(
    job_cpu: int, cpu_slots: int, environ: dict[str, str] | None = None, cores: int | None = None
) -> dict[str, str]:
    """The thread variables a CPU job's worker starts with; none where the server's environment sets its own
    (the user's choice wins) or the job holds no CPU slot (a GPU job)."""
    environ = dict(os.environ) if environ is None else environ
    if job_cpu <= 0 or any(k in environ for k in THREAD_VARIABLES):
        return {}
    threads = str(cpu_threads(job_cpu, cpu_slots, cores))
    return {k: threads for k in THREAD_VARIABLES}


def cuda_visible(devices: list[int]) -> str:
    """CUDA_VISIBLE_DEVICES for a child given this process's device indices (maps through our own setting)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return ",".join(str(d) for d in devices)
    mine = [p.strip() for p in env.split(",") if p.strip()]
    return ",".join(mine[d] for d in devices)


def hardware_figures(pid: int | None, sampler: ProcessSampler | None = None) -> dict[str, Any]:
    """The live panel's JSON: {"process": {...} | None, "gpus": [...]}."""
    if sampler is None and pid is not None:
        sampler = ProcessSampler(pid)
    figures = sampler.sample() if sampler is not None else None
    return {"process": asdict(figures) if figures else None, "gpus": [asdict(g) for g in gpu_figures()]}
