"""Weights in and out: files (safetensors, or .pt/.pth read with `weights_only=True`), URLs, torchvision's and
timm's pretrained weights by name, a content hash, and label files.

Nothing here unpickles code: a `.pt` file carrying Python objects is refused. torchvision weights go through
torchvision's own loading code (`get_model_weights`, `get_weight`, `WeightsEnum.get_state_dict`), which downloads
into torch's hub cache (`$TORCH_HOME/hub/checkpoints`) once and reads the cached file afterwards.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import torch

from deepyard.errors import IntegrityError, InvalidValueError, NotFoundError, SourceError
from deepyard.files import download, write_bytes_atomic
from deepyard.urls import UrlPolicy

StateDict = dict[str, torch.Tensor]
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WEIGHT_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel and torch.compile wrappers


def load_weights_file(path: Path) -> StateDict:
    """A state dict from a `.safetensors` file, or from a `.pt`/`.pth` file of plain tensors.

    A torch file may hold the state dict itself, a Deepyard checkpoint (`{"model": ...}`) or a common
    `{"state_dict": ...}` wrapper; wrapper prefixes (`module.`, `_orig_mod.`) are removed.
    """
    if not path.is_file():
        raise NotFoundError(f"weights file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _clean(load_file(str(path)), path)
        except (SafetensorError, OSError) as exc:
            raise IntegrityError(f"weights file {str(path)!r} is not a valid safetensors file: {exc}") from None
    if suffix not in TORCH_SUFFIXES:
        raise InvalidValueError(
            f"weights file {str(path)!r}: unknown type {suffix!r}; valid: {', '.join(WEIGHT_SUFFIXES)}"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError and friends: anything but plain tensor data
        raise IntegrityError(f"refusing weights file {str(path)!r}: it is not plain tensor data ({exc})") from None
    return _clean(data, path)


def _clean(data: Any, source: Path | str) -> StateDict:
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    elif isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise IntegrityError(f"{str(source)!r} holds no state dict (a mapping of parameter names to tensors)")
    out: StateDict = {}
    for key, value in data.items():
        for prefix in PREFIXES:
            key = key.removeprefix(prefix)
        out[str(key)] = value
    return out


def save_safetensors(path: Path, state: StateDict) -> None:
    """Write `state` as safetensors, atomically (contiguous CPU copies; shared storage is split)."""
    from safetensors.torch import save

    plain = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    write_bytes_atomic(path, save(plain))


def state_hash(state: StateDict) -> str:
    """sha256 over names, dtypes, shapes and bytes: the same weights give the same hash in any file format."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def download_weights(url: str, folder: Path, policy: UrlPolicy) -> Path:
    """A weights file at `url`, cached in `folder` under a name derived from the URL, fetched under `policy`."""
    name = Path(urllib.parse.urlparse(url).path).name
    if Path(name).suffix.lower() not in WEIGHT_SUFFIXES:
        raise InvalidValueError(f"weights URL {url!r} must end in one of {', '.join(WEIGHT_SUFFIXES)}")
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    target = folder / f"{key}-{name}"
    policy.check(url)  # a cached file is only given back for a URL the policy still allows
    return target if target.is_file() else download(url, target, policy=policy)


# --- torchvision -------------------------------------------------------------------------------------------------


def torchvision_weights(name: str) -> Any:
    """The WeightsEnum member for `name`: a model name (its default weights, `resnet18`), a model name and a
    weights name (`resnet18.IMAGENET1K_V1`), or torchvision's full name (`ResNet18_Weights.IMAGENET1K_V1`)."""
    from torchvision.models import get_model_weights, get_weight, list_models  # type: ignore[import-untyped]

    models = list_models()
    model, _, which = name.partition(".")
    if model in models:
        try:
            enum = get_model_weights(model)
        except (ValueError, KeyError):
            raise NotFoundError(f"torchvision has no pretrained weights for {model!r}") from None
        if not which:
            return enum.DEFAULT
        if which in enum.__members__:
            return enum[which]
        raise NotFoundError(f"{model!r} has no weights {which!r}; valid: {', '.join(enum.__members__)}")
    try:
        return get_weight(name)
    except (ValueError, KeyError, AttributeError):
        raise NotFoundError(
            f"no torchvision model or weights named {name!r}; give a model name ({', '.join(models[:8])}, ...; "
            "see torchvision.models.list_models()) or a weights name such as ResNet18_Weights.IMAGENET1K_V1"
        ) from None


def torchvision_model_name(weights: Any) -> str:
    """The model builder's name for a WeightsEnum member (ResNet18_Weights.X -> resnet18)."""
    from torchvision.models import get_model_weights, list_models

    for model in list_models():
        try:
            if get_model_weights(model) is type(weights):
                return str(model)
        except (ValueError, KeyError):
            continue
    raise NotFoundError(f"no torchvision model uses the weights {weights}")


def torchvision_preprocessing(weights: Any) -> dict[str, Any]:
    """What the weights expect: the transforms' mean and std (on 0..1 pixels), resize and crop sizes."""
    transforms = weights.transforms()
    record: dict[str, Any] = {"kind": "normalize", "scale": "0-1"}
    for key in ("mean", "std", "resize_size", "crop_size"):
        value = getattr(transforms, key, None)
        if value is not None:
            record[key] = list(value)
    mode = getattr(transforms, "interpolation", None)
    if mode is not None:
        record["interpolation"] = str(getattr(mode, "value", mode))
    return record


def load_torchvision_state(weights: Any, hub_dir: Path | None = None) -> StateDict:
    """The weights' state dict through torchvision's loader (downloads into the hub cache once)."""
    kwargs: dict[str, Any] = {"progress": False, "check_hash": True, "weights_only": True}
    if hub_dir is not None:
        kwargs["model_dir"] = str(hub_dir)
    try:
        state = weights.get_state_dict(**kwargs)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and "hash" not in str(exc):
            raise
        file_name = Path(urllib.parse.urlparse(weights.url).path).name
        cache = hub_dir or Path(torch.hub.get_dir()) / "checkpoints"
        reason = getattr(exc, "reason", exc)
        raise SourceError(
            f"cannot load torchvision weights {type(weights).__name__}.{weights.name} from {weights.url} ({reason}). "
            f"Offline, download that file elsewhere and either put it in {str(cache)!r} as {file_name!r}, or pass "
            f"it as a local file: --from path/to/{file_name} --network {torchvision_model_name(weights)}"
        ) from None
    return _clean(state, weights.url)


# --- timm and labels ---------------------------------------------------------------------------------------------


def load_timm_state(name: str) -> tuple[StateDict, dict[str, Any], tuple[int, int, int] | None]:
    """timm's pretrained weights for `name` (`resnet18` or a tagged `resnet18.a1_in1k`) through timm's own loader
    (from the Hugging Face hub, cached under HF_HOME), its preprocessing, and its input shape."""
    from deepyard.networks.registry import check_timm_name

    timm = check_timm_name(name)
    try:
        model = timm.create_model(name, pretrained=True)
    except (OSError, ValueError, RuntimeError) as exc:  # offline, a missing file, no weights under that tag
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(
            f"cannot load timm weights for {name!r} ({reason}). Offline, download them elsewhere into a Hugging "
            f"Face cache and point HF_HOME at it (HF_HUB_OFFLINE=1), or pass the weights as a file: --from "
            f"path/to/model.safetensors --network timm:{name.split('.')[0]}"
        ) from None
    cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
    prep: dict[str, Any] = {"kind": "normalize", "scale": "0-1", "mean": list(cfg.get("mean", ())),
                            "std": list(cfg.get("std", ()))}  # fmt: skip
    shape = tuple(int(v) for v in cfg["input_size"]) if len(cfg.get("input_size", ())) == 3 else None
    if shape is not None:
        prep["crop_size"] = list(shape[1:])
    if cfg.get("tag"):
        prep["weights"] = f"{cfg.get('architecture', name)}.{cfg['tag']}"
    return _clean(model.state_dict(), f"timm:{name}"), prep, shape  # type: ignore[return-value]


def load_labels(path: Path) -> list[str]:
    """Class names from a text file (one per line) or a class-index JSON (`{"0": ["n01440764", "tench"], ...}`
    as Keras ships for ImageNet; the last element of each entry is the name)."""
    if not path.is_file():
        raise NotFoundError(f"labels file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() != ".json":
        return [line.strip() for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if isinstance(data, list):
        return [str(x) for x in data]
    if isinstance(data, dict) and all(str(k).isdigit() for k in data):
        entries = [data[k] for k in sorted(data, key=int)]
        return [str(e[-1] if isinstance(e, list) else e) for e in entries]
    raise SourceError(f"{str(path)!r}: expected a list of names or an index {{'0': [id, name], ...}}")
