"""Model surgery for transfer learning: find and replace the classifier head, adapt the first convolution to another
channel count, and load every matching weight with a report of what was loaded, reinitialised and skipped.

The head is the last Linear (or 1x1 Conv2d, as SqueezeNet's) in module order whose outputs equal the class count;
auxiliary classifiers with that output count (GoogLeNet's aux1/aux2, Inception's AuxLogits) are heads too. That
finds resnet `fc`, vgg/alexnet/mobilenet/efficientnet `classifier[-1]`, convnext `classifier.2`, vit `heads.head`,
swin `head`, densenet `classifier`, and a spec network's last linear layer.

Channel adaptation (the standard trick, applied to the first convolution only): 3 -> 1 channels sums the RGB
filters, so a grey image gives exactly what the original gives on that image replicated to RGB; 1 -> 3 repeats the
filter and divides by 3, so an RGB image gives what the original gives on its channel mean. Other channel changes
are refused. A different input size is fine where the network pools adaptively (the torchvision families); where a
weight's shape depends on the size (a spec network's first linear layer, ViT's position embedding) it is refused
with both input shapes named. A segmentation network takes a classifier's weights as its backbone: names aligned
and fully connected layers reshaped to convolutions first (deepyard.transfer.backbone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from deepyard.errors import InvalidValueError, SpecError
from deepyard.transfer.backbone import align_keys
from deepyard.transfer.weights import StateDict

Shape = tuple[int, ...]


# torchvision's classifier modules by family (as timm declares `classifier` in a model's default config)
TORCHVISION_HEADS = {"resnet": "fc", "mobilenetv3": "classifier.3", "efficientnet": "classifier.1",
                     "convnext": "classifier.2", "vision_transformer": "heads.head", "regnet": "fc",
                     "densenet": "classifier"}  # fmt: skip


def declared_heads(model: nn.Module) -> list[str]:
    """The heads a model declares: a spec network's own, timm's `pretrained_cfg["classifier"]`, or torchvision's
    by family; [] when it declares none (a user's Python network)."""
    model = getattr(model, "_orig_mod", model)
    declare = getattr(model, "declared_heads", None)
    if callable(declare):
        return list(declare())
    cfg = getattr(model, "pretrained_cfg", None)
    names = [cfg["classifier"]] if isinstance(cfg, dict) and isinstance(cfg.get("classifier"), str) else []
    if not names and type(model).__module__.startswith("torchvision.models"):
        family = type(model).__module__.rsplit(".", 1)[-1]
        names = [v for k, v in TORCHVISION_HEADS.items() if family.startswith(k)][:1]
    modules = dict(model.named_modules())
    return [n for n in names if isinstance(modules.get(n), nn.Linear | nn.Conv2d)]


def _classifier_layers(model: nn.Module) -> list[tuple[str, nn.Module, int]]:
    out: list[tuple[str, nn.Module, int]] = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            out.append((name, module, module.out_features))
        elif isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1):
            out.append((name, module, module.out_channels))
    return out


def find_heads(model: nn.Module, num_classes: int | None = None) -> list[str]:
    """Module names of the heads, the main one last: as the network declares them (a spec's `num_classes`
    layers, torchvision's and timm's classifier names), else guessed: every Linear (or 1x1 Conv2d) with as many
    outputs as the last Linear (`num_classes` when given)."""
    declared = declared_heads(model)
    if declared:
        return declared
    layers = _classifier_layers(model)
    if not layers:
        raise SpecError(f"{type(model).__name__} has no Linear (or 1x1 Conv2d) layer to use as classifier head")
    linears = [x for x in layers if isinstance(x[1], nn.Linear)]
    count = num_classes if num_classes is not None else (linears or layers)[-1][2]
    heads = [name for name, _, out in layers if out == count]
    if not heads:
        raise SpecError(f"{type(model).__name__} has no classifier layer with {count} outputs")
    return heads


def replace_head(model: nn.Module, num_classes: int) -> list[str]:
    """Replace every head with a fresh layer of `num_classes` outputs (same inputs, bias and kind)."""
    heads = find_heads(model)
    for name in heads:
        old = model.get_submodule(name)
        new: nn.Module
        if isinstance(old, nn.Linear):
            new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
        else:
            assert isinstance(old, nn.Conv2d)
            new = nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
        new = new.to(device=old.weight.device, dtype=old.weight.dtype)
        model.set_submodule(name, new)
    return heads


def first_conv(model: nn.Module) -> str | None:
    """The name of the first convolution in module order (the one reading the image in every family we build)."""
    return next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def adapt_conv_weight(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A (O, C, kh, kw) filter bank for `channels` inputs: 3 -> 1 sums the filters, 1 -> 3 repeats them / 3."""
    have = weight.shape[1]
    if have == channels:
        return weight
    if have == 3 and channels == 1:
        return weight.sum(dim=1, keepdim=True)
    if have == 1 and channels == 3:
        return weight.repeat(1, 3, 1, 1) / 3
    raise InvalidValueError(
        f"cannot adapt a first convolution with {have} input channels to {channels}; "
        "Deepyard adapts 3 -> 1 (sum of the RGB filters) and 1 -> 3 (repeat / 3) only"
    )


@dataclass
class LoadReport:
    """What loading pretrained weights did, key by key."""

    loaded: list[str] = field(default_factory=list)
    reinitialised: dict[str, str] = field(default_factory=dict)  # target key -> why
    skipped: dict[str, str] = field(default_factory=dict)  # source key -> why
    adapted: dict[str, str] = field(default_factory=dict)  # target key -> how
    heads: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"loaded": len(self.loaded), "reinitialised": self.reinitialised, "skipped": self.skipped,
                "adapted": self.adapted, "heads": self.heads}  # fmt: skip

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        if self.adapted:
            lines.append("adapted: " + "; ".join(f"{k} ({v})" for k, v in self.adapted.items()))
        if self.reinitialised:
            lines.append("reinitialised: " + "; ".join(f"{k} ({v})" for k, v in self.reinitialised.items()))
        if self.skipped:
            lines.append("skipped: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items()))
        return "\n".join(lines)


def load_matching(
    model: nn.Module,
    source: StateDict,
    reset_heads: bool,
    source_input: Shape | None = None,
    target_input: Shape | None = None,
) -> LoadReport:
    """Copy every source tensor whose name and shape match into `model`; adapt the first convolution's channels;
    leave the heads at their fresh initialisation when `reset_heads`. Raises when a body weight's shape depends
    on an input size that changed, or when nothing at all matches."""
    target = model.state_dict()
    heads = find_heads(model)
    head_keys = {k for k in target if any(k.startswith(h + ".") for h in heads)}
    conv = first_conv(model)
    report, update = LoadReport(heads=heads), {}
    source, report.adapted = align_keys(source, target)  # a backbone for a dense network (deepyard.transfer.backbone)
    for key, want in target.items():
        if key not in source:
            report.reinitialised[key] = "not in the pretrained weights"
            continue
        have = source[key]
        if reset_heads and key in head_keys:
            report.reinitialised[key] = "classifier head, reset for the new classes"
            continue
        if conv is not None and key == f"{conv}.weight" and have.ndim == 4 and have.shape[1] != want.shape[1]:
            have = adapt_conv_weight(have, want.shape[1])
            report.adapted[key] = f"{source[key].shape[1]} -> {want.shape[1]} input channels"
        if tuple(have.shape) != tuple(want.shape):
            why = f"shape {tuple(source[key].shape)} in the weights, {tuple(want.shape)} in the network"
            if key in head_keys:
                report.reinitialised[key] = f"classifier head: {why}"
            else:
                refuse_size_change(key, why, source_input, target_input)
                report.reinitialised[key] = why
            report.skipped[key] = why
            continue
        update[key] = have.to(dtype=want.dtype)
        report.loaded.append(key)
    for key in source:
        if key not in target:
            report.skipped[key] = "not in the network"
    body = [k for k in report.loaded if k not in head_keys]
    if not body:
        raise InvalidValueError(
            f"none of the pretrained weights fit this network ({len(source)} tensors, e.g. "
            f"{', '.join(list(source)[:3])}; the network has {', '.join(list(target)[:3])}, ...): "
            "is it the network the weights were trained with?"
        )
    model.load_state_dict(update, strict=False)
    return report


def refuse_size_change(key: str, why: str, source_input: Shape | None, target_input: Shape | None) -> None:
    """Raise SpecError when a weight (`key`, shape mismatch `why`) depends on an input size that changed."""
    if source_input is None or target_input is None or tuple(source_input[1:]) == tuple(target_input[1:]):
        return
    fmt = "x".join
    raise SpecError(
        f"the pretrained network was trained on {fmt(map(str, source_input))} inputs and this dataset gives "
        f"{fmt(map(str, target_input))}; {key} has {why}, so this network cannot change input size. Build the "
        f"dataset at {source_input[2]}x{source_input[1]} (or use crop_size), or use a network with adaptive pooling"
    )
