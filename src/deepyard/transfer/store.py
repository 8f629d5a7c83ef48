"""The model store: pretrained models kept in `<home>/models/`, one folder per entry, and pulled from any static
HTTP server that serves a store folder (DIGITS' Model Store, without the server).

An entry folder `<home>/models/<name>/` holds:
- `model.safetensors`: the weights (no code can hide in them);
- `entry.json`: the network record (`{"ref", "spec"}` as in run.json), input shape (C, H, W), class count, the
  preprocessing the weights expect, where they came from, the weights' content hash and every file's sha256;
- `labels.txt`: one class name per line, line i naming output i;
- `network.yaml` for spec networks (the same spec as entry.json's, for reading) and `mean.npy` when the model was
  trained with mean subtraction (float32 (H, W, C) in pixel units, as a dataset's mean image).
The store folder's `index.json` lists the entries with their files' sha256 and sizes, rewritten on every change,
so serving `<home>/models/` over plain HTTP (`python -m http.server`) publishes the store: `pull_model(url, name)`
reads `<url>/index.json`, downloads `<url>/<name>/<file>` for the listed files only, checks every sha256, and
installs the entry by one atomic rename.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepyard.config import Settings
from deepyard.errors import IntegrityError, InvalidValueError, NotFoundError, SourceError
from deepyard.files import download, file_sha256, read_json, write_bytes_atomic, write_json_atomic

if TYPE_CHECKING:  # the weights themselves need torch: imported by the functions that read or write them
    from deepyard.transfer.weights import StateDict

ENTRY_FORMAT = "deepyard-model/1"
INDEX_FORMAT = "deepyard-model-store/1"
ENTRY, INDEX, WEIGHTS, LABELS, NETWORK, MEAN = (
    "entry.json", "index.json", "model.safetensors", "labels.txt", "network.yaml", "mean.npy",
)  # fmt: skip
FILES = (ENTRY, WEIGHTS, LABELS, NETWORK, MEAN)  # the only file names an entry may have (and a pull may fetch)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_ENTRY_JSON = 16 * 1024**2  # bytes; labels and specs are small


@dataclass(frozen=True)
class ModelEntry:
    """One stored model, as read from its entry.json and labels.txt."""

    name: str
    folder: Path
    description: str
    created: str
    network: dict[str, Any]  # {"ref": str, "spec": dict | None}
    input_shape: tuple[int, int, int] | None
    num_classes: int
    labels: list[str]
    preprocessing: dict[str, Any]
    origin: dict[str, Any]
    weights_sha256: str
    files: dict[str, dict[str, Any]]  # file name -> {"sha256", "bytes"}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "created": self.created,
                "network": self.network, "input_shape": self.input_shape, "num_classes": self.num_classes,
                "labels": self.labels, "preprocessing": self.preprocessing, "origin": self.origin,
                "weights_sha256": self.weights_sha256, "files": self.files, "folder": str(self.folder)}  # fmt: skip

    def load_weights(self) -> StateDict:
        """The weights, after checking the file against the sha256 recorded at save time."""
        from deepyard.transfer.weights import load_weights_file

        _check_file(self.folder / WEIGHTS, self.files[WEIGHTS])
        return load_weights_file(self.folder / WEIGHTS)

    def mean(self) -> np.ndarray | None:
        path = self.folder / MEAN
        return np.load(path, allow_pickle=False) if path.is_file() else None


def models_dir(settings: Settings) -> Path:
    return settings.home / "models"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidValueError(
            f"model name {name!r} is not valid; use letters, digits, '.', '_' and '-' (starting with a letter or "
            "digit, at most 100 characters)"
        )
    return name


def save_model(
    settings: Settings,
    name: str,
    state: StateDict,
    network: dict[str, Any],
    labels: list[str],
    input_shape: tuple[int, int, int] | None,
    preprocessing: dict[str, Any],
    origin: dict[str, Any],
    description: str = "",
    mean: np.ndarray | None = None,
    replace: bool = False,
) -> ModelEntry:
    """Write a new entry (or replace one when `replace`): built in a hidden folder, then renamed into place."""
    from deepyard.networks import dump_yaml, spec_from_data
    from deepyard.transfer.weights import save_safetensors, state_hash

    root = models_dir(settings)
    target = root / check_name(name)
    if target.exists() and not replace:
        raise InvalidValueError(f"model {name!r} already exists in the store; choose another name or replace it")
    stage = root / f".tmp-{name}-{secrets.token_hex(3)}"
    stage.mkdir(parents=True)
    try:
        save_safetensors(stage / WEIGHTS, state)
        write_bytes_atomic(stage / LABELS, "".join(f"{label}\n" for label in labels).encode("utf-8"))
        if network.get("spec") is not None:
            write_bytes_atomic(stage / NETWORK, dump_yaml(spec_from_data(network["spec"])).encode("utf-8"))
        if mean is not None:
            with (stage / MEAN).open("wb") as fp:
                np.save(fp, np.asarray(mean, dtype=np.float32), allow_pickle=False)
        files = {f: _file_record(stage / f) for f in FILES if f != ENTRY and (stage / f).is_file()}
        entry = {
            "format": ENTRY_FORMAT, "name": name, "description": description,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "network": network,
            "input_shape": list(input_shape) if input_shape else None, "num_classes": len(labels),
            "preprocessing": preprocessing, "origin": origin, "weights_sha256": state_hash(state), "files": files,
        }  # fmt: skip
        write_json_atomic(stage / ENTRY, entry)
        _install(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    write_index(settings)
    return get_model(settings, name)


def _file_record(path: Path) -> dict[str, Any]:
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


def _check_file(path: Path, record: dict[str, Any]) -> None:
    if not path.is_file():
        raise IntegrityError(f"{str(path)!r} is missing")
    if file_sha256(path) != record["sha256"]:
        raise IntegrityError(f"{str(path)!r} does not match the sha256 recorded for it; the entry is damaged")


def _install(stage: Path, target: Path) -> None:
    """Rename `stage` to `target`; an existing target is moved aside first and removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{secrets.token_hex(3)}")
        os.rename(target, old)
    os.rename(stage, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _read_entry(folder: Path) -> ModelEntry:
    data = read_json(folder / ENTRY)
    if data.get("format") != ENTRY_FORMAT:
        raise IntegrityError(f"{str(folder / ENTRY)!r} has format {data.get('format')!r}, not {ENTRY_FORMAT!r}")
    labels_path = folder / LABELS
    labels = labels_path.read_text(encoding="utf-8").splitlines() if labels_path.is_file() else []
    shape = data.get("input_shape")
    return ModelEntry(
        data["name"], folder, data.get("description", ""), data.get("created", ""), data["network"],
        tuple(shape) if shape else None, int(data["num_classes"]), labels, data.get("preprocessing", {}),
        data.get("origin", {}), data.get("weights_sha256", ""), data["files"],
    )  # fmt: skip


def list_models(settings: Settings) -> list[ModelEntry]:
    root = models_dir(settings)
    if not root.is_dir():
        return []
    return [
        _read_entry(root / n)
        for n in sorted(os.listdir(root))
        if not n.startswith(".") and (root / n / ENTRY).is_file()
    ]


def find_model(settings: Settings, name: str) -> ModelEntry | None:
    folder = models_dir(settings) / name
    if not NAME_RE.match(name) or not (folder / ENTRY).is_file():
        return None
    return _read_entry(folder)


def get_model(settings: Settings, name: str) -> ModelEntry:
    entry = find_model(settings, name)
    if entry is None:
        known = [e.name for e in list_models(settings)]
        raise NotFoundError(f"no model {name!r} in the store; stored: {', '.join(known) or 'none'}")
    return entry


def delete_model(settings: Settings, name: str) -> None:
    entry = get_model(settings, name)
    trash = entry.folder.with_name(f".old-{name}-{secrets.token_hex(3)}")
    os.rename(entry.folder, trash)  # gone from listings at once; then removed
    shutil.rmtree(trash, ignore_errors=True)
    write_index(settings)


def build_index(settings: Settings) -> dict[str, Any]:
    entries = []
    for e in list_models(settings):
        files = {**e.files, ENTRY: _file_record(e.folder / ENTRY)}
        entries.append({"name": e.name, "description": e.description, "network": e.network["ref"],
                        "num_classes": e.num_classes, "input_shape": e.input_shape, "files": files})  # fmt: skip
    return {"format": INDEX_FORMAT, "entries": entries}


def write_index(settings: Settings) -> Path:
    """Rewrite `<home>/models/index.json`, which makes the folder a store other homes can pull from."""
    root = models_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / INDEX, build_index(settings))
    return root / INDEX


# --- remote stores -----------------------------------------------------------------------------------------------


def _index_url(url: str) -> str:
    return url if url.endswith(".json") else url.rstrip("/") + "/" + INDEX


def read_index(settings: Settings, url: str) -> list[dict[str, Any]]:
    """The entries listed by the store at `url` (its index.json, or the store folder's URL)."""
    target = settings.downloads_dir / f".index-{secrets.token_hex(4)}.json"
    try:
        download(_index_url(url), target, max_bytes=MAX_ENTRY_JSON)
        data = json.loads(target.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{_index_url(url)!r} is not a model store index (JSON): {exc}") from None
    finally:
        target.unlink(missing_ok=True)
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT or not isinstance(data.get("entries"), list):
        raise SourceError(f"{_index_url(url)!r} is not a model store index (expected format {INDEX_FORMAT!r})")
    entries: list[dict[str, Any]] = data["entries"]
    return entries


def pull_model(settings: Settings, url: str, name: str, replace: bool = False) -> ModelEntry:
    """Download entry `name` from the store at `url` into the local store, checking every file's sha256."""
    listed = {e.get("name"): e for e in read_index(settings, url)}
    if name not in listed:
        raise NotFoundError(
            f"the store at {url!r} has no model {name!r}; it lists: {', '.join(map(str, listed)) or 'none'}"
        )
    files = listed[name].get("files") or {}
    unknown = [f for f in files if f not in FILES]
    if unknown or ENTRY not in files or WEIGHTS not in files:
        raise SourceError(
            f"the store at {url!r} lists bad files for {name!r}: {sorted(files)}; allowed: {', '.join(FILES)}"
        )
    from deepyard.transfer.weights import load_weights_file, state_hash

    root = models_dir(settings)
    if (root / check_name(name)).exists() and not replace:
        raise InvalidValueError(f"model {name!r} already exists in the store; delete it first or replace it")
    base = _index_url(url).rsplit("/", 1)[0] + "/" + urllib.parse.quote(name) + "/"
    stage = root / f".tmp-{name}-{secrets.token_hex(3)}"
    stage.mkdir(parents=True)
    try:
        for file_name, record in files.items():
            download(base + file_name, stage / file_name, max_bytes=int(record["bytes"]))
            _check_file(stage / file_name, record)
        entry = _read_entry(stage)
        for file_name, record in entry.files.items():
            _check_file(stage / file_name, record)
        if entry.name != name or state_hash(load_weights_file(stage / WEIGHTS)) != entry.weights_sha256:
            raise IntegrityError(f"the weights pulled for {name!r} do not match its entry.json")
        entry_origin = read_json(stage / ENTRY)
        entry_origin["origin"] = {**entry.origin, "pulled_from": url}
        write_json_atomic(stage / ENTRY, entry_origin)
        _install(stage, root / name)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    write_index(settings)
    return get_model(settings, name)
