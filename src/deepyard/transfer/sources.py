"""Where a fine-tune starts: one string names the weights, and `load_pretrained` resolves it.

- `pretrained:NAME`: torchvision weights by model name (its default weights), `NAME.WEIGHTS`, or torchvision's
  full weights name (`ResNet18_Weights.IMAGENET1K_V1`); labels and preprocessing from the weights' meta.
- `timm:NAME`: timm's pretrained weights (only when timm is installed).
- `store:NAME`: an entry of the local model store.
- `run:ID`, `run:ID@STEP`, `run:ID@best`: a previous run's checkpoint (default: its best, else its last).
- a path or an http(s) URL of a `.safetensors` / `.pt` / `.pth` file: weights only; give the network with it.

`make_pretrained` turns a run's checkpoint into a store entry, `import_archive` a model archive
(deepyard.infer.archive); `add_model` stores any of the above.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from deepyard.config import Settings
from deepyard.datasets import find_dataset
from deepyard.datasets.catalog import dataset_dir
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.infer.model import checkpoint_path
from deepyard.networks.ref import NetworkRef
from deepyard.networks.registry import REGISTRY
from deepyard.train import runs
from deepyard.train.checkpoint import load_checkpoint
from deepyard.transfer import store, weights
from deepyard.transfer.weights import StateDict

KINDS = ("pretrained:", "timm:", "store:", "run:")


@dataclass(frozen=True)
class Pretrained:
    """Weights and what is known about them."""

    ref: str  # as given
    kind: str  # torchvision, timm, store, run, file, url
    state: StateDict
    network: dict[str, Any] | None  # {"ref", "spec"} as in run.json; None for a bare weights file
    input_shape: tuple[int, int, int] | None  # (C, H, W) it was trained on; None when any size was used
    labels: list[str] | None
    preprocessing: dict[str, Any]
    sha256: str  # weights.state_hash of `state`

    def record(self) -> dict[str, Any]:
        """What a run keeps about its start (run.json "source"): enough to reload and check it."""
        return {"ref": self.ref, "kind": self.kind, "sha256": self.sha256, "network": self.network,
                "input_shape": list(self.input_shape) if self.input_shape else None,
                "num_labels": len(self.labels) if self.labels is not None else None,
                "labels": self.labels if self.labels is not None and len(self.labels) <= 100 else None,
                "preprocessing": self.preprocessing}  # fmt: skip


def load_pretrained(settings: Settings, ref: str) -> Pretrained:
    """Resolve `ref` (see the module docstring) to weights; downloads what is not cached yet."""
    if ref.startswith("pretrained:"):
        return _torchvision(ref)
    if ref.startswith("timm:"):
        name = ref.removeprefix("timm:")
        state, prep, shape = weights.load_timm_state(name)
        network = _library_network("timm", name)
        return Pretrained(ref, "timm", state, network, shape, None, prep, weights.state_hash(state))
    if ref.startswith("store:"):
        entry = store.get_model(settings, ref.removeprefix("store:"))
        state = entry.load_weights()
        return Pretrained(ref, "store", state, entry.network, entry.input_shape, entry.labels, entry.preprocessing,
                          weights.state_hash(state))  # fmt: skip
    if ref.startswith("run:"):
        return _run(settings, ref)
    if ref.startswith(("http://", "https://")):
        path = weights.download_weights(ref, settings.downloads_dir / "weights", settings.url_policy())
        return _file(ref, "url", path)
    path = Path(ref).expanduser()
    if path.suffix.lower() in weights.WEIGHT_SUFFIXES or path.exists():
        return _file(ref, "file", path)
    raise NotFoundError(
        f"cannot tell where to start from {ref!r}; valid: pretrained:NAME, timm:NAME, store:NAME, run:ID[@STEP], "
        f"or a path or URL of a weights file ({', '.join(weights.WEIGHT_SUFFIXES)})"
    )


def network_of(settings: Settings, ref: str) -> dict[str, Any] | None:
    """The network record `ref` names, read without loading or downloading its weights (so a job's check at
    submit stays fast and never fetches); None for a weights file or URL, which holds weights only."""
    if ref.startswith("pretrained:"):
        model = weights.torchvision_model_name(weights.torchvision_weights(ref.removeprefix("pretrained:")))
        return _library_network("torchvision", model)
    if ref.startswith("timm:"):
        return _library_network("timm", ref.removeprefix("timm:"))
    if ref.startswith("store:"):
        return store.get_model(settings, ref.removeprefix("store:")).network
    if ref.startswith("run:"):
        run_id, step = parse_run_ref(ref)
        info = runs.get_run(settings, run_id)
        checkpoint_path(settings, info["id"], step)  # NotFoundError when that checkpoint does not exist
        network: dict[str, Any] = info["network"]
        return network
    return None


def _library_network(kind: Literal["torchvision", "timm"], model: str) -> dict[str, Any]:
    """The network record (as in run.json) of a library's model: a registry family by its own name, else
    `torchvision:NAME` / `timm:NAME`; a timm tag (`resnet18.a1_in1k`) names weights, not the architecture."""
    name = model.split(".")[0] if kind == "timm" else model
    return {"ref": name if kind == "torchvision" and name in REGISTRY else str(NetworkRef(kind, name)), "spec": None}


def _file(ref: str, kind: str, path: Path) -> Pretrained:
    state = weights.load_weights_file(path)
    return Pretrained(ref, kind, state, None, None, None, {}, weights.state_hash(state))


def _torchvision(ref: str) -> Pretrained:
    member = weights.torchvision_weights(ref.removeprefix("pretrained:"))
    model = weights.torchvision_model_name(member)
    state = weights.load_torchvision_state(member)
    labels = member.meta.get("categories")
    prep = {**weights.torchvision_preprocessing(member), "weights": f"{type(member).__name__}.{member.name}"}
    return Pretrained(ref, "torchvision", state, _library_network("torchvision", model), None,
                      list(labels) if labels else None, prep, weights.state_hash(state))  # fmt: skip


def describe_torchvision(name: str) -> dict[str, Any]:
    """Labels and preprocessing of torchvision weights, without downloading them."""
    member = weights.torchvision_weights(name)
    return {"weights": f"{type(member).__name__}.{member.name}", "model": weights.torchvision_model_name(member),
            "url": member.url, "labels": list(member.meta.get("categories") or []),
            "preprocessing": weights.torchvision_preprocessing(member)}  # fmt: skip


def parse_run_ref(ref: str) -> tuple[str, str | None]:
    """`run:ID@STEP` -> (ID, STEP or None)."""
    run_id, _, step = ref.removeprefix("run:").partition("@")
    return run_id, step or None


def _run_meta(
    settings: Settings, info: dict[str, Any]
) -> tuple[tuple[int, int, int], list[str], np.ndarray | None, dict[str, Any]]:
    """Input shape, labels, mean image and preprocessing record of a run, as deepyard.infer reads a run."""
    from deepyard.infer.preprocess import Preprocessing

    manifest = find_dataset(settings, info["dataset"])
    if manifest is None:
        raise NotFoundError(f"run {info['id']!r} was trained on dataset {info['dataset']!r}, which no longer exists; "
                            "its labels and input shape are unknown")  # fmt: skip
    config = info["config"]
    mean_image = np.load(dataset_dir(settings, manifest.id) / "mean.npy", allow_pickle=False)
    pre = Preprocessing.from_config(manifest.spec, config, mean_image)
    return pre.input_shape, list(manifest.classes), pre.mean_pixels, {"kind": "deepyard", **pre.to_json()}


def _run(settings: Settings, ref: str) -> Pretrained:
    run_id, step = parse_run_ref(ref)
    info = runs.get_run(settings, run_id)
    state = load_checkpoint(checkpoint_path(settings, run_id, step))["model"]
    shape, labels, _, prep = _run_meta(settings, info)
    return Pretrained(ref, "run", state, info["network"], shape, labels, prep,
                      weights.state_hash(state))  # fmt: skip


def make_pretrained(
    settings: Settings, run_id: str, name: str | None = None, step: str | int | None = None, description: str = ""
) -> store.ModelEntry:
    """Store a run's checkpoint (its best by default) as a pretrained model, with labels and preprocessing."""
    info = runs.get_run(settings, run_id)
    path = checkpoint_path(settings, run_id, step)
    state = load_checkpoint(path)["model"]
    shape, labels, mean, prep = _run_meta(settings, info)
    origin = {"kind": "run", "run": info["id"], "checkpoint": path.name, "dataset": info["dataset"]}
    return store.save_model(settings, name or f"{info['network']['ref']}-{info['id']}".replace("/", "_"), state,
                            info["network"], labels, shape, prep, origin,
                            description or info.get("name", ""), mean)  # fmt: skip


def add_model(
    settings: Settings,
    name: str,
    ref: str,
    network: str | None = None,
    labels: list[str] | None = None,
    input_shape: tuple[int, int, int] | None = None,
    description: str = "",
    replace: bool = False,
) -> store.ModelEntry:
    """Store the weights `ref` names (any `load_pretrained` form) under `name`; a bare weights file needs
    `network` (a registry name or spec file), and labels when it is not obvious how many classes it has."""
    from deepyard.networks import load_spec
    from deepyard.networks.registry import is_library

    start = load_pretrained(settings, ref)
    record = start.network
    if network is not None:
        spec = None if is_library(network) else load_spec(network).to_data()
        record = {"ref": network, "spec": spec}
    if record is None:
        raise InvalidValueError(f"{ref!r} holds weights only; name their network (for example --network resnet18)")
    names = labels or start.labels
    if names is None:
        raise InvalidValueError(f"{ref!r} comes without labels; give a labels file (one class name per line)")
    origin = {"kind": start.kind, "ref": ref}
    return store.save_model(settings, name, start.state, record, names, input_shape or start.input_shape,
                            start.preprocessing, origin, description, replace=replace)  # fmt: skip


def import_archive(
    settings: Settings, path: Path, name: str | None = None, description: str = "", replace: bool = False
) -> store.ModelEntry:
    """Store a model archive (deepyard.infer.archive: weights, network, labels, preprocessing, info.json)."""
    from deepyard.infer.archive import read_archive

    clf = read_archive(path)  # checks the archive: format, members, and that the weights fit the network
    state = {k: v.detach().cpu() for k, v in clf.model.state_dict().items()}
    info = {k: v for k, v in clf.info.items() if k in ("run", "snapshot", "step", "dataset", "created")}
    prep = {"kind": "deepyard", **clf.preprocessing.to_json()}
    return store.save_model(settings, name or path.stem, state, clf.network, list(clf.classes),
                            clf.preprocessing.input_shape, prep, {"kind": "archive", "archive": path.name, **info},
                            description, clf.preprocessing.mean_pixels, replace)  # fmt: skip
