"""What a page and its JSON twin show: the data both gather, so neither imports the other.

The API routes (web/api/) return these as JSON; the pages (web/pages.py) render them into templates. Each function
takes the settings (and the database connection where owners and groups are shown) and returns plain JSON data.
Not here: request parsing, owner checks, and anything that changes state (the routes do those).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from typing import Any

from deepyard import __version__, groups, jobs, users
from deepyard.config import Settings
from deepyard.datasets import Manifest, find_dataset, get_dataset, list_datasets
from deepyard.datasets.catalog import dataset_dir, load_dataset, read_report, scan_datasets
from deepyard.files import read_json, write_json_atomic
from deepyard.jobs import Job
from deepyard.networks import dump_yaml, list_networks, spec_from_data, summarize
from deepyard.stored import Damaged
from deepyard.tasks import get_task, list_tasks
from deepyard.train import TrainConfig, get_run
from deepyard.train.runs import list_dataset_runs, load_run, run_dir, scan_runs
from deepyard.web.runinfo import run_summary, snapshots

Row = dict[str, Any]


def dataset_summary(m: Manifest, owner: str | None = None, group: str | None = None) -> Row:
    """What listings show of a dataset."""
    return {
        "id": m.id,
        "name": m.name,
        "created": m.created,
        "task": m.task,
        "classes": len(m.classes),
        "shape": list(m.shape),
        "counts": {split: info.count for split, info in m.splits.items()},
        "encoding": m.encoding,
        "size_bytes": m.size_bytes,
        "skipped": m.skipped,
        "owner": owner,
        "group": group,
    }


def list_dataset_choices(settings: Settings) -> list[Row]:
    """The datasets the new-run form offers, newest first, each with what its task allows: the losses (`auto`
    first), the metrics to monitor, the network outputs, the network picked when none is given and the task's
    recipe (dotted TrainConfig keys: the form shows them in its fields)."""
    rows = []
    for m in reversed(list_datasets(settings)):
        task = get_task(m.task)
        network, why = task.default_network(m.shape)
        rows.append({**dataset_summary(m), "task_title": task.title, "outputs": task.outputs(m.classes),
                     "losses": ["auto", *task.losses], "monitors": task.monitors(),
                     "default_network": network, "default_why": why, "recipe": dict(task.recipe),
                     "network_output": task.network_output or "", "box_augment": task.box_augment})  # fmt: skip
    return rows


def list_task_rows() -> list[Row]:
    """Every task as the new-dataset form offers it: name, title, target format and source layouts."""
    return [{"name": t.name, "title": t.title, "target_format": t.target_format, "sources": t.sources}
            for t in list_tasks()]  # fmt: skip


def list_dataset_rows(settings: Settings, conn: sqlite3.Connection) -> list[Row]:
    """Every complete dataset, newest first; a damaged one with status "damaged" and the reason."""
    grouped, owners = groups.groups_of(conn, "dataset"), users.owners_of(conn, "dataset")
    rows = []
    for m in reversed(scan_datasets(settings)):
        owner = owners.get(m.id)
        if isinstance(m, Damaged):
            rows.append({**m.to_json(), "owner": owner, "group": grouped.get(m.id)})
        else:
            rows.append(dataset_summary(m, owner, grouped.get(m.id)))
    return rows


def list_dataset_builds(settings: Settings) -> list[Row]:
    """The datasets being built, newest first: each dataset job that has not made its dataset (queued, running, or
    ended without it, with the reason), for the home page to list with the datasets, linked to the build's page.
    A finished build's row goes with its job (Forget)."""
    rows = []
    for job in reversed(jobs.list_jobs(settings, kind="dataset")):
        if job.status != "done":
            spec = job.params.get("spec") or {}
            rows.append({"job": job.id, "name": spec.get("name") or job.id, "status": job.status,
                         "created": job.created, "progress": job.progress, "message": job.error or job.message,
                         "group": job.group, "owner": job.owner})  # fmt: skip
    return rows


def get_dataset_detail(settings: Settings, conn: sqlite3.Connection, ref: str) -> Row:
    """The manifest, per-class counts, and the runs trained on it; for a damaged dataset (by id), its status
    "damaged" and the reason."""
    m = load_dataset(settings, ref)
    owner, group = users.owner_of(conn, "dataset", m.id), groups.group_of(conn, "dataset", m.id)
    if isinstance(m, Damaged):
        return {**m.to_json(), "owner": owner, "group": group}
    runs = [{"id": r["id"], "name": r["name"], "status": r["status"]} for r in list_dataset_runs(settings, m.id)]
    task = get_task(m.task)
    return {**dataset_summary(m, owner, group), "task_title": task.title, "target_format": task.target_format,
            "targets": _target_rows(m), "manifest": m.model_dump(mode="json"), "runs": runs}  # fmt: skip


def _target_rows(m: Manifest) -> list[Row]:
    """Per output name, the training targets' mean and std where the task keeps them (regression), else []."""
    mean, std = m.target_stats.get("mean"), m.target_stats.get("std")
    if not isinstance(mean, list) or not isinstance(std, list):
        return []
    return [{"name": n, "mean": a, "std": b} for n, a, b in zip(m.classes, mean, std, strict=False)]


def get_dataset_report(settings: Settings, ref: str, limit: int) -> Row:
    """Skipped files (with reasons), dropped classes and duplicate groups, each list cut at `limit`."""
    m = get_dataset(settings, ref)
    data = read_report(dataset_dir(settings, m.id))
    return {
        "damaged": data.get("damaged"),
        "skipped": data["skipped"][:limit],
        "skipped_total": len(data["skipped"]),
        "dropped_classes": data["dropped_classes"],
        "duplicates": data["duplicates"][:limit],
        "duplicate_groups": len(data["duplicates"]),
        "summary": m.duplicates,
    }


def list_runs_with_owners(settings: Settings, conn: sqlite3.Connection) -> list[tuple[Row | Damaged, Row]]:
    """Every run (run.json or its damage), newest first, with its owner and group."""
    grouped, owners = groups.groups_of(conn, "run"), users.owners_of(conn, "run")
    ids = ((info, info.id if isinstance(info, Damaged) else info["id"]) for info in reversed(scan_runs(settings)))
    return [(info, {"owner": owners.get(run_id), "group": grouped.get(run_id)}) for info, run_id in ids]


def list_run_rows(settings: Settings, conn: sqlite3.Connection) -> list[Row]:
    """Every run's listing row, newest first: status, progress, key metrics, owner and group (or its damage)."""
    return [
        {**(info.to_json() if isinstance(info, Damaged) else run_summary(settings, info)), **who}
        for info, who in list_runs_with_owners(settings, conn)
    ]


def get_run_detail(settings: Settings, conn: sqlite3.Connection, run_id: str) -> Row:
    """run.json, the summary (progress, ETA, metrics), snapshots and the dataset's name; for a damaged run, its
    status "damaged" and the reason."""
    info = load_run(settings, run_id)
    who = {"owner": users.owner_of(conn, "run", run_id), "group": groups.group_of(conn, "run", run_id)}
    if isinstance(info, Damaged):
        return {**info.to_json(), **who}
    dataset = find_dataset(settings, info["dataset"])
    summary = run_summary(settings, info)
    return {
        **info,
        "status": summary["status"],  # "interrupted" when run.json says running but nothing runs it
        "summary": summary,
        "snapshots": snapshots(run_dir(settings, run_id)),
        "dataset_name": dataset.name if dataset else None,
        "dataset_splits": [k for k in ("val", "train", "test") if dataset and k in dataset.splits],
        **who,
    }


def get_pending_run(settings: Settings, job: Job) -> Row:
    """What the run page shows of the run a queued training job will create, before its folder exists: the
    settings from the job's (checked) parameters, status "queued", no metrics, snapshots or history yet."""
    params = job.params
    dataset = find_dataset(settings, str(params.get("dataset")))
    network = params.get("network")
    ref = network.get("name", "custom") if isinstance(network, dict) else str(network)
    name = params.get("name") or f"{ref} on {dataset.name if dataset else params.get('dataset')}"
    config = params.get("config") or {}
    summary = {"status": job.status, "progress": 0.0, "epoch": 0.0, "epochs": config.get("epochs", 0), "eta": None,
               "elapsed": 0.0, "train_loss": None, "val_loss": None, "last_val": {}, "advice": []}  # fmt: skip
    info: Row = {"id": None, "job": job.id, "name": name, "created": job.created, "dataset": params.get("dataset"),
            "dataset_name": dataset.name if dataset else None, "task": dataset.task if dataset else None,
            "network": {"ref": ref, "spec": network if isinstance(network, dict) else None}, "config": config,
            "placement": None, "history": [], "snapshots": [], "error": job.error, "notes": ""}  # fmt: skip
    return {**info, "summary": summary}


def build_run_prefill(settings: Settings, run_id: str) -> Row:
    """A new-run form prefilled from this run: dataset, network (name or spec text), every setting."""
    info = get_run(settings, run_id)
    net = info["network"]
    return {
        "name": f"{info['name']} (clone)",
        "dataset": info["dataset"],
        "network": net["ref"],
        "spec": dump_yaml(spec_from_data(net["spec"])) if net["spec"] is not None else None,
        "config": _with_defaults(TrainConfig().model_dump(mode="json"), info["config"]),
        "from_run": run_id,
    }


def _with_defaults(default: Any, stored: Any) -> Any:
    """A stored config with the settings added since it was written at their defaults (a clone of an older run
    then fills every field of the form, `augment.iou_crop` too)."""
    if isinstance(default, dict) and isinstance(stored, dict):
        return {**default, **{k: _with_defaults(default.get(k), v) for k, v in stored.items()}}
    return stored


_NETWORK_ROWS: dict[str, list[Row]] = {}
_NETWORK_LOCK = threading.Lock()


def list_standard_networks(settings: Settings) -> list[Row]:
    """The standard networks with intended input, parameters and MACs (at 1000 classes). Building and tracing
    each one takes seconds, so the table is computed once per version of Deepyard, torch and torchvision and kept
    in `<home>/cache/` (written atomically; a damaged copy is computed again)."""
    import torch
    import torchvision  # type: ignore[import-untyped]

    names = sorted(e.name for e in list_networks())
    versions = ("rows-2", __version__, torch.__version__, torchvision.__version__)  # rows-2: rows say their output
    key = hashlib.sha256(repr((*versions, names)).encode()).hexdigest()
    path = settings.home / "cache" / f"networks-{key[:16]}.json"
    with _NETWORK_LOCK:
        if key not in _NETWORK_ROWS:
            try:
                _NETWORK_ROWS[key] = read_json(path)
            except (OSError, ValueError):
                _NETWORK_ROWS[key] = _network_rows()
                path.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(path, _NETWORK_ROWS[key])
        return _NETWORK_ROWS[key]


def _network_rows() -> list[Row]:
    rows = []
    for e in list_networks():
        s = summarize(e.name, e.input, num_classes=1000)
        rows.append(
            {
                "name": e.name,
                "family": e.family,
                "input": list(e.input),
                "params": s.params,
                "macs": s.macs,
                "description": e.description,
                "editable": e.spec is not None,
                "output": e.output,
            }
        )
    return rows
