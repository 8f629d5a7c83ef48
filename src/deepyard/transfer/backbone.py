"""A classifier's (or a library's) weights as a dense network's backbone: align names and reshape fc to conv.

Segmentation networks hold their backbone under other names than the classifier it came from, and FCNs turn the
classifier's fully connected layers into convolutions. Before weights are matched by name and shape
(deepyard.transfer.surgery.load_matching), `align_keys` brings the source to the target's names:

- Prefixes: torchvision's segmentation models are wrapped (`model.` in deepyard.networks.dense) and keep the
  backbone under `backbone.`; a resnet classifier's `layer1.0.conv1.weight` is `model.backbone.layer1.0.conv1.
  weight` there, a mobilenet's `features.3.block...` is `model.backbone.3.block...`, and torchvision's own
  segmentation weights (`backbone.*`, `classifier.*`) are under `model.`. torchvision's detectors keep the body
  under `backbone.body.` (a resnet's layers as they are, a mobilenet's features by index): DIGITS' DetectNet
  started from a GoogLeNet, done with one of our classification runs. torchvision's `vgg16` numbers its layers
  (`features.28`, `classifier.3`); our specs (`vgg16`, `fcn8s`) keep Caffe's names (`layers.conv5_3`,
  `layers.fc7`), so FCN-8s starts from torchvision's VGG-16 as from our own. The renaming that matches the most
  target names wins; none is applied when the names already match best.
- Fully connected to convolution (FCN's "net surgery", as DIGITS' FCN-AlexNet example does it): a target
  convolution `fc6` with a (O, C, kh, kw) weight that the source holds as a linear layer (O, C*kh*kw) - a spec
  network's `layers.fc6.1.weight`, after its flatten - is the same map on each window, so the weight is reshaped
  (and the bias taken as it is).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

StateDict = dict[str, torch.Tensor]


def _vgg16_names() -> dict[str, str]:
    """torchvision vgg16's module paths -> the Caffe names of our specs (`features.0` -> `layers.conv1_1`)."""
    names, index = {}, 0
    for block, depth in enumerate((2, 2, 3, 3, 3), start=1):
        for i in range(1, depth + 1):
            names[f"features.{index}"] = f"layers.conv{block}_{i}"
            index += 2  # each conv is followed by its ReLU
        index += 1  # the block's max-pool
    return {**names, "classifier.0": "layers.fc6", "classifier.3": "layers.fc7", "classifier.6": "layers.fc8"}


_VGG16 = _vgg16_names()


def _vgg16_caffe(key: str) -> str:
    module, _, param = key.rpartition(".")
    return f"{_VGG16[module]}.{param}" if module in _VGG16 else key


_RENAMES: list[tuple[str, Callable[[str], str]]] = [
    ("as named", lambda k: k),
    ("under model.", lambda k: f"model.{k}"),
    ("under model.backbone.", lambda k: f"model.backbone.{k}"),
    ("features under model.backbone.", lambda k: f"model.backbone.{k.removeprefix('features.')}"),
    ("under backbone.body.", lambda k: f"backbone.body.{k}"),  # torchvision's detectors: a resnet's layers
    ("features under backbone.body.", lambda k: f"backbone.body.{k.removeprefix('features.')}"),  # a mobilenet's
    ("torchvision vgg16's layers under Caffe's names", _vgg16_caffe),
]


def align_keys(source: StateDict, target: StateDict) -> tuple[StateDict, dict[str, str]]:
    """`source` renamed and reshaped to fit `target`'s names; and what was done, by target key."""
    hits = [sum(rename(k) in target for k in source) for _, rename in _RENAMES]
    best = max(range(len(_RENAMES)), key=lambda i: (hits[i], -i))
    how, rename = _RENAMES[best]
    done: dict[str, str] = {}
    out = {rename(k) if rename(k) in target else k: v for k, v in source.items()}  # the rest keep their names
    if best:
        done["(names)"] = f"backbone weights {how} ({hits[best]} tensors)"
    for key, want in target.items():
        if not key.endswith(".weight") or want.ndim != 4 or (key in out and out[key].ndim == 4):
            continue
        base = key.removesuffix(".weight")
        for linear in (base, f"{base}.1"):  # a spec's linear layer on an image is (flatten, linear)
            weight = out.get(f"{linear}.weight")
            if weight is None or weight.ndim != 2 or weight.shape[0] != want.shape[0]:
                continue
            if weight.numel() != math.prod(want.shape):
                continue
            del out[f"{linear}.weight"]
            out[key] = weight.reshape(want.shape)
            if f"{linear}.bias" in out and f"{base}.bias" in target:
                out[f"{base}.bias"] = out.pop(f"{linear}.bias")
            done[key] = f"linear {tuple(weight.shape)} reshaped to a {want.shape[2]}x{want.shape[3]} convolution"
            break
    return out, done
