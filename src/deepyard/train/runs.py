"""Run folders: `<home>/runs/<id>/` with run.json (what the run is and its status), metrics.jsonl, tb/ and
checkpoints/. Paths inside are relative, so a home can be moved. Only rank 0 writes.

Reading runs needs no torch: networks and torch are imported by the functions that build models, so `deepyard run
list` and the server's listings start in a fraction of a second. A run whose run.json cannot be used (truncated, not
JSON, missing what every run records) is `Damaged`: listed as such by `scan_runs`, left out of `list_runs`, refused
by `get_run` with the reason, and deletable. Listings keep each parsed run.json until the file changes (see
deepyard.stored).
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from deepyard.config import Settings
from deepyard.errors import Conflict, InvalidValueError, NotFoundError
from deepyard.files import new_id, read_json, write_json_atomic
from deepyard.stored import Damaged, DamagedError, FileCache
from deepyard.tasks.base import DEFAULT_TASK

if TYPE_CHECKING:
    from torch import nn

    from deepyard.datasets import Manifest
    from deepyard.networks import NetworkSpec
    from deepyard.train.config import TrainConfig
    from deepyard.train.device import Placement

RUN_FILE = "run.json"
LOCK_FILE = ".run.lock"  # held while run.json is read, changed and written (see `_editing`)
REQUIRED: dict[str, type | tuple[type, ...]] = {  # what listings and pages read of every run.json
    "id": str, "name": str, "created": str, "dataset": str, "status": str, "network": dict, "network.ref": str,
    "config": dict, "config.epochs": (int, float), "config.batch_size": int, "config.solver": dict,
    "config.solver.lr": (int, float), "config.solver.type": str,
}  # fmt: skip


def runs_dir(settings: Settings) -> Path:
    return settings.home / "runs"


def run_dir(settings: Settings, run_id: str) -> Path:
    return runs_dir(settings) / run_id


def _network_record(network: str | NetworkSpec) -> dict[str, Any]:
    """A spec is stored whole (the run stays reproducible if the file changes); other networks by name."""
    from deepyard.networks import NetworkSpec, load_spec
    from deepyard.networks.registry import has_spec
    from deepyard.text.networks import is_text_network

    if isinstance(network, NetworkSpec):
        return {"ref": network.name, "spec": network.to_data()}
    if is_text_network(network) or not has_spec(network):  # language models are built by name (deepyard.text)
        return {"ref": network, "spec": None}
    return {"ref": network, "spec": load_spec(network).to_data()}


def create_run(
    settings: Settings,
    manifest: Manifest,
    network: str | NetworkSpec,
    config: TrainConfig,
    placement: Placement,
    name: str | None = None,
    source: dict[str, Any] | None = None,
) -> str:
    """A new run folder; `source` records where a fine-tune starts (see deepyard.transfer.sources)."""
    from deepyard.networks import dump_yaml, spec_from_data

    run_id = new_id()
    folder = run_dir(settings, run_id)
    folder.mkdir(parents=True)
    record = _network_record(network)
    info: dict[str, Any] = {
        "id": run_id,
        "name": name or f"{record['ref']} on {manifest.name}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": manifest.id,
        "task": manifest.task,
        "network": record,
        "config": config.model_dump(mode="json"),
        "placement": placement.to_json(),
        "source": source,
        "status": "queued",
        "history": [],
        "process": this_process(),
    }
    if record["spec"] is not None:
        (folder / "network.yaml").write_text(dump_yaml(spec_from_data(record["spec"])))
    write_json_atomic(folder / RUN_FILE, info)
    return run_id


def _parse_run(path: Path) -> dict[str, Any] | Damaged:
    """run.json of the folder holding `path`, or why it cannot be used."""
    run_id = path.parent.name

    def damaged(problem: str) -> Damaged:
        return Damaged("run", run_id, RUN_FILE, f"{RUN_FILE} {problem}")

    try:
        info = read_json(path)
    except OSError as exc:
        return damaged(f"cannot be read: {exc.strerror or exc}")
    except (ValueError, RecursionError) as exc:  # truncated, not JSON, not ASCII
        return damaged(f"is not valid JSON: {exc}")
    if not isinstance(info, dict):
        return damaged(f"holds a JSON {type(info).__name__}, not an object")
    for dotted, kind in REQUIRED.items():
        value: Any = info
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool):
            return damaged(f"has no valid {dotted!r}" if value is None else f"has a {dotted!r} of the wrong type")
    if info["id"] != run_id:
        return damaged(f"names the run {info['id']!r}, not its folder's name")
    if not isinstance(info.setdefault("task", DEFAULT_TASK), str):  # runs made before tasks are classification
        return damaged("has a 'task' of the wrong type")
    return info


_RUNS = FileCache(_parse_run)


def _run_file(settings: Settings, run_id: str) -> Path:
    """run.json of the run `run_id`; NotFoundError (naming the runs that exist) when there is no such run."""
    path = run_dir(settings, run_id) / RUN_FILE
    if "/" in run_id or run_id.startswith(".") or not path.is_file():
        known = [r.id if isinstance(r, Damaged) else r["id"] for r in scan_runs(settings)]
        raise NotFoundError(f"no run {run_id!r}; existing: {', '.join(known) or 'none'}")
    return path


def load_run(settings: Settings, run_id: str) -> dict[str, Any] | Damaged:
    """run.json as it is on disk now (the caller may change it), or the run's damage; NotFoundError when missing."""
    return _parse_run(_run_file(settings, run_id))


def get_run(settings: Settings, run_id: str) -> dict[str, Any]:
    """run.json; NotFoundError when there is no such run, DamagedError (a NotFoundError) when it is damaged."""
    info = load_run(settings, run_id)
    if isinstance(info, Damaged):
        raise DamagedError(info, f"delete it with `deepyard run delete {run_id}`")
    return info


def scan_runs(settings: Settings) -> list[dict[str, Any] | Damaged]:
    """Every run, oldest first: run.json (a shallow copy of the cached one: do not change what is inside), or its
    damage. Folders without run.json (being created) and dot-folders (being deleted) are left out."""
    root = os.path.join(settings.home, "runs")  # strings, not Paths: this runs for every run on every listing
    try:
        names = sorted(os.listdir(root))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found: list[dict[str, Any] | Damaged] = []
    for name in names:
        if name.startswith("."):
            continue
        try:
            info = _RUNS.get(os.path.join(root, name, RUN_FILE))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            info = Damaged("run", name, RUN_FILE, f"{RUN_FILE} cannot be read: {exc.strerror or exc}")
        found.append(info if isinstance(info, Damaged) else dict(info))
    return found


def list_runs(settings: Settings) -> list[dict[str, Any]]:
    """Every usable run (run.json), oldest first; damaged runs are left out (see `scan_runs`)."""
    return [r for r in scan_runs(settings) if not isinstance(r, Damaged)]


@contextmanager
def _lock(settings: Settings, run_id: str) -> Iterator[None]:
    """An exclusive lock on the run's lock file; NotFoundError when the run is gone."""
    try:
        lock = open(run_dir(settings, run_id) / LOCK_FILE, "a")  # noqa: SIM115 (held across the yield)
    except FileNotFoundError:
        _run_file(settings, run_id)  # says which runs exist
        raise
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _locked(settings: Settings, run_id: str) -> Iterator[dict[str, Any]]:
    """run.json, read under the run's lock; NotFoundError when the run is gone (also when a delete held the lock
    first), DamagedError when it is damaged."""
    with _lock(settings, run_id):
        yield get_run(settings, run_id)


@contextmanager
def _editing(settings: Settings, run_id: str) -> Iterator[dict[str, Any]]:
    """run.json to change in place: read, changed by the caller, written atomically, all under the run's lock, so
    the trainer's status writes, a rename or a note from the server, and a delete never lose each other's change."""
    with _locked(settings, run_id) as info:
        yield info
        write_json_atomic(run_dir(settings, run_id) / RUN_FILE, info)


def set_status(settings: Settings, run_id: str, status: str, rank: int = 0, **extra: Any) -> None:
    if rank != 0:
        return
    with _editing(settings, run_id) as info:
        info["status"] = status
        info["history"].append([status, datetime.now(timezone.utc).isoformat(timespec="seconds")])
        info.update(extra)


def this_process() -> dict[str, Any]:
    """The process about to train a run, recorded in run.json (`process`) as its status becomes "running": a
    process killed hard never gets to change that status, and this lets readers see that nobody runs it."""
    proc = psutil.Process()
    return {"pid": proc.pid, "created": proc.create_time(), "host": socket.gethostname()}


def process_gone(info: dict[str, Any]) -> bool:
    """True when the process recorded as training the run has certainly ended: on this host, its pid is gone, a
    zombie, or now another process (a different start time). False when it lives, and when it cannot be told: no
    record (runs from before it was kept), another host sharing the home, or no permission to look."""
    record = info.get("process")
    if not isinstance(record, dict) or record.get("host") != socket.gethostname():
        return False
    try:
        proc = psutil.Process(int(record["pid"]))
        return proc.status() == psutil.STATUS_ZOMBIE or abs(proc.create_time() - float(record["created"])) > 0.01
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def update_run(settings: Settings, run_id: str, rank: int = 0, **fields: Any) -> None:
    """Set top-level fields of run.json (rank 0 only)."""
    if rank != 0:
        return
    with _editing(settings, run_id) as info:
        info.update(fields)


NAME_MAX, NOTES_MAX = 200, 20_000


def annotate_run(settings: Settings, run_id: str, name: str | None = None, notes: str | None = None) -> dict[str, Any]:
    """Rename a run and/or set its notes (DIGITS' job name and notes), at any time, even while it trains; None
    leaves a field as it is. Returns run.json as written."""
    changes: dict[str, Any] = {}
    if name is not None:
        name = " ".join(name.split())
        if not name or len(name) > NAME_MAX:
            raise InvalidValueError(f"run name {name[:40]!r} must be 1 to {NAME_MAX} characters on one line")
        changes["name"] = name
    if notes is not None:
        if len(notes) > NOTES_MAX:
            raise InvalidValueError(f"notes of {len(notes):,} characters; at most {NOTES_MAX:,}")
        changes["notes"] = notes.strip()
    with _editing(settings, run_id) as info:
        info.update(changes)
    return info


def latest_checkpoint(folder: Path) -> Path | None:
    found = [p for p in (folder / "checkpoints").glob("step-*.pt") if p.stem.removeprefix("step-").isdigit()]
    return max(found, key=lambda p: int(p.stem.removeprefix("step-"))) if found else None  # by number, not name


def build_run_model(
    info: dict[str, Any], input_shape: tuple[int, ...], num_classes: int, settings: Settings
) -> nn.Module:
    from deepyard.networks import build_network, spec_from_data
    from deepyard.text.networks import build_text_network, is_text_network

    record = info["network"]
    if record["spec"] is None and is_text_network(record["ref"]):
        return build_text_network(record["ref"], input_shape, num_classes)
    ref: str | NetworkSpec = spec_from_data(record["spec"]) if record["spec"] is not None else record["ref"]
    return build_network(ref, input_shape, num_classes, settings)


def delete_run(settings: Settings, run_id: str) -> dict[str, Any] | Damaged:
    """Remove a run folder, damaged or not: renamed out of the listing first (atomic), then its files. Returns
    run.json as it was, or the run's damage."""
    import shutil

    folder = run_dir(settings, run_id)
    with _lock(settings, run_id):  # after any edit in progress, never during one
        info = load_run(settings, run_id)
        doomed = folder.with_name(f".deleting-{run_id}")
        os.rename(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    return info


def list_dataset_runs(settings: Settings, dataset_id: str) -> list[dict[str, Any]]:
    """The usable runs trained on the dataset `dataset_id` (run.json each), oldest first."""
    return [r for r in list_runs(settings) if r["dataset"] == dataset_id]


def delete_unused_dataset(settings: Settings, ref: str) -> Manifest | Damaged:
    """Delete a dataset (by id or name, also a damaged one) that no run uses; Conflict naming the runs that use
    it (delete those first). The CLI and the server both delete through this; it lives here, not in
    deepyard.datasets, because datasets know nothing of runs."""
    from deepyard.datasets.catalog import delete_dataset, load_dataset

    found = load_dataset(settings, ref)
    using = [r["id"] for r in list_dataset_runs(settings, found.id)]
    if using:
        name = found.id if isinstance(found, Damaged) else found.name
        raise Conflict(f"dataset {name!r} is used by run(s) {', '.join(using)}; delete them first")
    return delete_dataset(settings, found.id)
