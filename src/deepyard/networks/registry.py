"""The network registry: standard networks by name, spec files, and (when allowed) Python files.

`build_network(ref, input_shape, num_classes)` is the one way the rest of Deepyard gets a model:
- a standard spec network (`lenet`, `alexnet`, `googlenet`, `vgg16`),
- a modern family from torchvision's registry (`resnet18`, ..., or any classifier as `torchvision:NAME`),
  built untrained for any input channel count and class count,
- any timm model as `timm:NAME` (when timm is installed), built the same way (timm's own `in_chans`),
- a spec file (`.yaml`, `.yml`, `.json`),
- a Python file whose `create_model(input_shape, num_classes)` returns an `nn.Module`. That runs the file's
  code, so it is refused unless the settings allow it (`DEEPYARD_ALLOW_PYTHON_NETWORKS=1`).
An unknown name raises NotFoundError listing the valid ones.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torchvision  # type: ignore[import-untyped]
from torch import nn

from deepyard.config import Settings
from deepyard.errors import DeepyardError, InvalidValueError, NotFoundError, SpecError
from deepyard.networks.dense import build_torchvision_segmentation, build_unet, segmentation_models
from deepyard.networks.graph import build_spec
from deepyard.networks.layers import Shape
from deepyard.networks.ref import NetworkRef, parse_ref
from deepyard.networks.segzoo import SEGMENTATION_SPECS
from deepyard.networks.spec import NetworkSpec, parse_spec
from deepyard.networks.zoo import SPEC_NETWORKS


@dataclass(frozen=True)
class NetworkEntry:
    name: str
    family: str  # "spec" or "torchvision"
    input: Shape  # intended (C, H, W)
    description: str
    spec: Callable[[], NetworkSpec] | None = None  # spec networks only
    build: Callable[[Shape, int], nn.Module] | None = None  # "module" networks (written in code, e.g. unet)
    output: str = "class"  # "class": (B, K) logits; "pixel": (B, K, H, W) per-pixel logits (segmentation)


_TORCHVISION = {
    "resnet18": ((3, 224, 224), "ResNet-18 (He et al., 2015)"),
    "resnet50": ((3, 224, 224), "ResNet-50 (He et al., 2015)"),
    "mobilenet_v3_large": ((3, 224, 224), "MobileNetV3-Large (Howard et al., 2019)"),
    "mobilenet_v3_small": ((3, 224, 224), "MobileNetV3-Small (Howard et al., 2019)"),
    "efficientnet_b0": ((3, 224, 224), "EfficientNet-B0 (Tan and Le, 2019)"),
    "convnext_tiny": ((3, 224, 224), "ConvNeXt-Tiny (Liu et al., 2022)"),
    "vit_b_16": ((3, 224, 224), "ViT-B/16, vision transformer (Dosovitskiy et al., 2020)"),
    "fcn_resnet50": ((3, 224, 224), "FCN with a ResNet-50 backbone, segmentation (Long et al., 2015)"),
    "fcn_resnet101": ((3, 224, 224), "FCN with a ResNet-101 backbone, segmentation (Long et al., 2015)"),
    "deeplabv3_resnet50": ((3, 224, 224), "DeepLabV3, ResNet-50 backbone, segmentation (Chen et al., 2017)"),
    "deeplabv3_mobilenet_v3_large": ((3, 224, 224), "DeepLabV3, MobileNetV3-Large backbone, segmentation"),
    "lraspp_mobilenet_v3_large": ((3, 224, 224), "LR-ASPP, MobileNetV3-Large backbone, segmentation"),
}
_MODULES: dict[str, tuple[Shape, str, Callable[[Shape, int], nn.Module]]] = {
    "unet": ((3, 64, 64), "small U-Net, segmentation (Ronneberger et al., 2015); widths 16-128", build_unet),
}


def _entries() -> dict[str, NetworkEntry]:
    entries = {}
    for name, make in {**SPEC_NETWORKS, **SEGMENTATION_SPECS}.items():
        spec = make()
        assert spec.input is not None
        output = "pixel" if name in SEGMENTATION_SPECS else "class"
        entries[name] = NetworkEntry(name, "spec", spec.input, spec.description, make, output=output)
    for name, (shape, description) in _TORCHVISION.items():
        output = "pixel" if name in segmentation_models() else "class"
        entries[name] = NetworkEntry(name, "torchvision", shape, description + ", from torchvision", output=output)
    for name, (intended, description, build) in _MODULES.items():
        entries[name] = NetworkEntry(name, "module", intended, description, build=build, output="pixel")
    return entries


REGISTRY = _entries()


def is_torchvision(ref: str | NetworkRef) -> bool:
    """True for `torchvision:NAME` and for the registry's networks built by code by name, without a spec (the
    torchvision families and the "module" ones such as unet)."""
    parsed = parse_ref(ref)
    standard = parsed.kind == "standard" and parsed.name in REGISTRY
    return parsed.kind == "torchvision" or (standard and REGISTRY[parsed.name].family in ("torchvision", "module"))


def is_detection(ref: str | NetworkRef) -> bool:
    """True for torchvision's object detectors, by name or as `torchvision:NAME` (deepyard.networks.detection)."""
    from deepyard.networks.detection import is_detector

    parsed = parse_ref(ref)
    return parsed.kind in ("standard", "torchvision") and parsed.name not in REGISTRY and is_detector(parsed.name)


def is_library(ref: str | NetworkRef) -> bool:
    """True for networks a library builds (torchvision, timm): recorded by name, with no editable spec."""
    return is_torchvision(ref) or parse_ref(ref).kind == "timm" or is_detection(ref)


def has_spec(ref: str | NetworkRef) -> bool:
    """True for networks with an editable spec (a spec file, a standard spec network): stored whole in a run."""
    return not is_library(ref) and parse_ref(ref).kind != "python"


def require_timm(what: str) -> Any:
    """The timm module, or a clear error saying how to get it."""
    try:
        return importlib.import_module("timm")
    except ImportError:
        raise DeepyardError(
            f"{what} needs the timm package, which is not installed; install it (pip install timm) or use "
            "torchvision networks and weights (resnet18, pretrained:NAME) or a weights file"
        ) from None


def list_networks() -> list[NetworkEntry]:
    return list(REGISTRY.values())


def get_network(name: str) -> NetworkEntry:
    if name not in REGISTRY:
        raise NotFoundError(
            f"no standard network {name!r}; valid: {', '.join(REGISTRY)} (or torchvision:NAME, timm:NAME, or a spec "
            "file)"
        )
    return REGISTRY[name]


def load_spec(ref: str | NetworkRef) -> NetworkSpec:
    """The spec of a standard spec network, or of a spec file."""
    parsed = parse_ref(ref)
    if parsed.kind == "spec_file" and parsed.path is not None:
        try:
            text = parsed.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise NotFoundError(f"cannot read network file {parsed.name!r}: {exc.strerror or exc}") from None
        return parse_spec(text, source=parsed.path.name)
    if parsed.kind in ("torchvision", "timm"):
        raise InvalidValueError(f"network {str(parsed)!r} is built by {parsed.kind} and has no editable spec")
    if parsed.kind == "python":
        raise InvalidValueError(f"network {parsed.name!r} is a Python file and has no editable spec")
    entry = get_network(parsed.name)
    if entry.spec is None:
        raise InvalidValueError(f"network {ref!r} comes from torchvision and has no editable spec")
    return entry.spec()


def build_network(
    ref: str | NetworkRef | NetworkSpec, input_shape: Shape, num_classes: int, settings: Settings | None = None
) -> nn.Module:
    """An untrained model for inputs of `input_shape` (C, H, W) and `num_classes` outputs."""
    if isinstance(ref, NetworkSpec):
        return build_spec(ref, input_shape, num_classes)
    parsed = parse_ref(ref)
    if parsed.kind == "python" and parsed.path is not None:
        return _build_python(parsed.path, input_shape, num_classes, settings)
    entry = REGISTRY.get(parsed.name) if parsed.kind == "standard" else None
    if entry is not None and entry.build is not None:
        return entry.build(input_shape, num_classes)
    if is_detection(parsed):
        from deepyard.networks.detection import build_detector

        return build_detector(parsed.name, input_shape, num_classes)
    if is_torchvision(parsed):
        return build_torchvision(parsed.name, input_shape, num_classes)
    if parsed.kind == "timm":
        return build_timm(parsed.name, input_shape, num_classes)
    return build_spec(load_spec(parsed), input_shape, num_classes)


def check_timm_name(name: str) -> Any:
    """timm, once `name` is known to be one of its models (an unknown name lists a few close ones)."""
    timm = require_timm(str(NetworkRef("timm", name)))
    if not timm.is_model(name.split(".")[0]):
        close = timm.list_models(f"*{name.split('.')[0][:5]}*")[:8] or timm.list_models()[:8]
        raise NotFoundError(f"timm has no model {name!r}; for example: {', '.join(close)} (timm.list_models())")
    return timm


def build_timm(name: str, input_shape: Shape, num_classes: int) -> nn.Module:
    """A timm model, untrained, for `input_shape` (timm adapts the stem to the channel count itself)."""
    timm = check_timm_name(name)
    channels, height, width = input_shape
    kwargs: dict[str, Any] = {"pretrained": False, "num_classes": num_classes, "in_chans": channels}
    cfg = timm.models.get_pretrained_cfg(name.split(".")[0])
    if cfg is not None and cfg.fixed_input_size:  # transformers: position embeddings sized for the input
        kwargs["img_size"] = (height, width)
    with torch.device("meta"):  # shapes only, as for torchvision
        _check_forward(timm.create_model(name, **kwargs), input_shape, str(NetworkRef("timm", name)))
    model: nn.Module = timm.create_model(name, **kwargs)
    return model


def build_torchvision(name: str, input_shape: Shape, num_classes: int) -> nn.Module:
    """A torchvision classifier, untrained, with its first convolution adapted to the input channels."""
    if name in segmentation_models():
        with torch.device("meta"):
            _check_forward(build_torchvision_segmentation(name, input_shape, num_classes), input_shape, name)
        return build_torchvision_segmentation(name, input_shape, num_classes)
    classifiers = torchvision.models.list_models(module=torchvision.models)
    if name not in classifiers:
        raise NotFoundError(f"torchvision has no classification model {name!r}; valid: {', '.join(classifiers)}")
    with torch.device("meta"):  # shapes only: a too-small input fails here, before any weight is allocated
        _check_forward(_construct(name, input_shape, num_classes), input_shape, name)
    return _construct(name, input_shape, num_classes)


def _construct(name: str, input_shape: Shape, num_classes: int) -> nn.Module:
    channels, height, width = input_shape
    extra: dict[str, object] = {}
    if name.startswith("vit_"):
        if height != width:
            raise SpecError(f"{name} needs square inputs, got {height}x{width}")
        extra["image_size"] = height
    try:
        model: nn.Module = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **extra)
    except (ValueError, AssertionError) as exc:
        raise SpecError(f"{name} cannot take input {channels}x{height}x{width}: {exc}") from None
    if channels != 3:
        _adapt_first_conv(model, channels)
    return model


def _adapt_first_conv(model: nn.Module, channels: int) -> None:
    """Replace the first convolution with one taking `channels` inputs (same kernel, stride, padding...)."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                pair = tuple[int, int]
                conv = nn.Conv2d(
                    channels, child.out_channels, cast(pair, child.kernel_size), cast(pair, child.stride),
                    cast(pair, child.padding), cast(pair, child.dilation), child.groups, child.bias is not None,
                    child.padding_mode,
                )  # fmt: skip
                setattr(parent, child_name, conv)
                return
    raise SpecError(f"{type(model).__name__} has no convolution to adapt to {channels} input channels")


def _check_forward(model: nn.Module, input_shape: Shape, name: str) -> None:
    try:
        with torch.no_grad():
            model.eval()(torch.empty(1, *input_shape, device="meta"))
    except (RuntimeError, ValueError, AssertionError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise SpecError(f"{name} cannot take input {'x'.join(map(str, input_shape))}: {reason}") from None


def _build_python(path: Path, input_shape: Shape, num_classes: int, settings: Settings | None) -> nn.Module:
    if settings is None or not settings.allow_python_networks:
        raise InvalidValueError(
            f"network {str(path)!r} is a Python file, which runs arbitrary code; it is refused unless "
            "DEEPYARD_ALLOW_PYTHON_NETWORKS=1 is set. Prefer a YAML spec."
        )
    if not path.is_file():
        raise NotFoundError(f"network file {str(path)!r} does not exist")
    module_spec = importlib.util.spec_from_file_location(f"deepyard_user_network_{path.stem}", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    factory = getattr(module, "create_model", None)
    if not callable(factory):
        raise SpecError(f"{str(path)!r} must define create_model(input_shape, num_classes) -> nn.Module")
    model = factory(tuple(input_shape), num_classes)
    if not isinstance(model, nn.Module):
        raise SpecError(f"create_model in {str(path)!r} returned {type(model).__name__}, not an nn.Module")
    return model
