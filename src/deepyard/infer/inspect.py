"""Look inside a model: every layer's activations for one image, every parametrised layer's weights, Grad-CAM.

Activations and weights come with shape, mean, standard deviation, min/max, a histogram and a tiled picture
(feature maps or convolution filters as tiles). Grad-CAM (Selvaraju et al., 2017) weighs a convolutional layer's
feature maps by the spatial mean of the class score's gradient, keeps the positive part and upsamples it over the
image: where the network looked to decide.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from deepyard import pictures
from deepyard.errors import InvalidValueError, choices
from deepyard.files import write_bytes_atomic, write_json_atomic
from deepyard.infer.model import TrainedModel
from deepyard.infer.preprocess import to_batch

HIST_BINS = 30
MAX_TILES = 256


@dataclass
class Stats:
    mean: float
    std: float
    min: float
    max: float
    histogram: list[int]
    edges: list[float]

    @classmethod
    def of(cls, values: torch.Tensor) -> Stats:
        flat = values.detach().double().flatten()
        low, high = float(flat.min()), float(flat.max())
        counts = torch.histc(flat, bins=HIST_BINS, min=low, max=high if high > low else low + 1)
        edges = np.linspace(low, high if high > low else low + 1, HIST_BINS + 1)
        std = float(flat.std()) if flat.numel() > 1 else 0.0
        return cls(float(flat.mean()), std, low, high, [int(c) for c in counts], [float(e) for e in edges])


@dataclass
class LayerView:
    """One layer's activations or weights, with its statistics and a picture (uint8 grey or RGB array)."""

    name: str
    type: str
    shape: list[int]
    stats: Stats
    params: int = 0
    picture: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "shape": self.shape, "params": self.params,
                "mean": self.stats.mean, "std": self.stats.std, "min": self.stats.min, "max": self.stats.max,
                "histogram": self.stats.histogram, "edges": self.stats.edges}  # fmt: skip


def leaf_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules without children, with display names (a spec network's `layers.` prefix dropped)."""
    return [(name.removeprefix("layers."), m) for name, m in model.named_modules() if name and not list(m.children())]


@contextlib.contextmanager
def _no_inplace(model: nn.Module) -> Iterator[None]:
    """In-place activations would overwrite the outputs we keep; switch them off for the duration."""
    changed = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for m in changed:
        m.inplace = False  # type: ignore[assignment]
    try:
        yield
    finally:
        for m in changed:
            m.inplace = True  # type: ignore[assignment]


def _record(model: nn.Module) -> tuple[list[tuple[str, nn.Module, torch.Tensor]], list[Any]]:
    """Forward hooks appending (name, module, output) for every leaf call; a module called twice appears twice."""
    seen: dict[str, int] = {}
    calls: list[tuple[str, nn.Module, torch.Tensor]] = []
    handles = []
    for name, module in leaf_modules(model):

        def hook(m: nn.Module, args: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                seen[name] = seen.get(name, 0) + 1
                calls.append((name if seen[name] == 1 else f"{name}#{seen[name]}", m, out))

        handles.append(module.register_forward_hook(hook))
    return calls, handles


def activations(clf: TrainedModel, pixels: np.ndarray) -> list[LayerView]:
    """Each leaf layer's output for one (H, W, C) image, in call order."""
    with _no_inplace(clf.model), torch.inference_mode():
        calls, handles = _record(clf.model)
        try:
            clf.model(clf.inputs(to_batch([pixels])))
        finally:
            for h in handles:
                h.remove()
    views = []
    for name, module, out in calls:
        act = out[0].float().cpu()
        views.append(LayerView(name, type(module).__name__, list(act.shape), Stats.of(act), picture=_act_picture(act)))
    return views


def _act_picture(act: torch.Tensor) -> np.ndarray:
    if act.ndim == 3:  # (C, H, W): one tile per channel
        return pictures.tiles(act[:MAX_TILES].numpy())
    flat = act.flatten().numpy()  # a vector: a near-square block of cells
    side = int(np.ceil(np.sqrt(flat.size)))
    padded = np.full(side * side, flat.min() if flat.size else 0.0)
    padded[: flat.size] = flat
    return pictures.tiles(padded.reshape(1, side, side), scale=max(1, 128 // side))


def weights(clf: TrainedModel) -> list[LayerView]:
    """Each parametrised leaf layer's weight (or first parameter) with its statistics and parameter count."""
    views = []
    for name, module in leaf_modules(clf.model):
        params = dict(module.named_parameters(recurse=False))
        if not params:
            continue
        weight = params.get("weight", next(iter(params.values()))).detach().float().cpu()
        count = sum(p.numel() for p in params.values())
        views.append(LayerView(name, type(module).__name__, list(weight.shape), Stats.of(weight), count,
                               _weight_picture(weight)))  # fmt: skip
    return views


def _weight_picture(w: torch.Tensor) -> np.ndarray | None:
    if w.ndim == 4:  # convolution filters (O, I, kH, kW)
        if w.shape[1] == 3:  # colour filters, as DIGITS drew the first layer
            return _colour_tiles(w[:MAX_TILES].numpy())
        return pictures.tiles(w.reshape(-1, *w.shape[2:])[:MAX_TILES].numpy(), scale=max(1, 16 // w.shape[-1]))
    if w.ndim == 2:  # a matrix: one heat map, scaled down to at most 256 wide
        step = max(1, w.shape[1] // 256, w.shape[0] // 256)
        return pictures.tiles(w[::step, ::step].numpy()[None])
    return None


def _colour_tiles(w: np.ndarray) -> np.ndarray:
    o, _, kh, kw = w.shape
    cols = int(np.ceil(np.sqrt(o)))
    rows = -(-o // cols)
    out = np.full((rows * (kh + 1), cols * (kw + 1), 3), 255, np.uint8)
    for i in range(o):
        f = w[i].transpose(1, 2, 0)
        f = (f - f.min()) / max(float(f.max() - f.min()), 1e-12)
        r, c = divmod(i, cols)
        out[r * (kh + 1) : r * (kh + 1) + kh, c * (kw + 1) : c * (kw + 1) + kw] = (f * 255).round()
    scale = max(1, 256 // max(out.shape[:2]))
    return np.kron(out, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else out


@dataclass
class GradCam:
    class_name: str
    class_index: int
    probability: float
    layer: str
    heat: np.ndarray = field(repr=False)  # (H, W) in [0, 1] at the input's size


def grad_cam(
    clf: TrainedModel, pixels: np.ndarray, target: int | str | None = None, layer: str | None = None
) -> GradCam:
    """Grad-CAM for one image: for `target` (class index or name; default the predicted class) at `layer`
    (default: the last layer giving feature maps larger than 1x1)."""
    model = clf.model
    x = clf.inputs(to_batch([pixels])).requires_grad_(False)
    with _no_inplace(model), torch.enable_grad():
        calls, handles = _record(model)
        try:
            logits = model(x)
        finally:
            for h in handles:
                h.remove()
        maps = {name: out for name, _, out in calls if out.ndim == 4 and out.shape[-1] * out.shape[-2] > 1}
        if not maps:
            raise InvalidValueError("Grad-CAM needs a layer with feature maps; this network has none larger than 1x1")
        chosen = layer or list(maps)[-1]
        if chosen not in maps:
            raise InvalidValueError(f"layer {chosen!r} gives no feature maps; valid: {choices(maps)}")
        index = _class_index(clf, logits, target)
        feature = maps[chosen]
        (grad,) = torch.autograd.grad(logits[0, index], feature)
    cam = F.relu((grad.mean(dim=(2, 3), keepdim=True) * feature).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam.float(), size=pixels.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    peak = float(cam.max())
    heat = (cam / peak).cpu().numpy() if peak > 0 else np.zeros(pixels.shape[:2])
    prob = float(logits.detach().float().softmax(dim=1)[0, index])
    return GradCam(clf.classes[index], index, prob, chosen, heat)


def _class_index(clf: TrainedModel, logits: torch.Tensor, target: int | str | None) -> int:
    if target is None:
        return int(logits[0].argmax())
    if isinstance(target, str) and target in clf.classes:
        return clf.classes.index(target)
    if (isinstance(target, int) or target.isdigit()) and 0 <= int(target) < clf.num_classes:
        return int(target)
    raise InvalidValueError(f"class {target!r} is not one of the model's: {choices(clf.classes)}")


def inspect_image(
    clf: TrainedModel, pixels: np.ndarray, folder: Path, target: int | str | None = None, layer: str | None = None
) -> dict[str, Any]:
    """Write input.png, gradcam.png, activations/NN-name.png, weights/NN-name.png (+ histograms) and
    inspect.json into `folder`; return the JSON document."""
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / "input.png", pictures.png(pictures.enlarge(pixels)))
    cam = grad_cam(clf, pixels, target, layer)
    write_bytes_atomic(folder / "gradcam.png", pictures.png(pictures.enlarge(pictures.overlay(pixels, cam.heat))))
    doc: dict[str, Any] = {
        "gradcam": {"class": cam.class_name, "index": cam.class_index, "probability": cam.probability,
                    "layer": cam.layer, "file": "gradcam.png"},
        "activations": _write_views(activations(clf, pixels), folder / "activations"),
        "weights": _write_views(weights(clf), folder / "weights"),
    }  # fmt: skip
    write_json_atomic(folder / "inspect.json", doc)
    return doc


def _write_views(views: list[LayerView], folder: Path) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    docs = []
    for i, view in enumerate(views):
        stem = f"{i:02d}-{''.join(c if c.isalnum() or c in '-_.' else '_' for c in view.name)}"
        doc = view.to_json()
        if view.picture is not None:
            write_bytes_atomic(folder / f"{stem}.png", pictures.png(Image.fromarray(view.picture)))
            doc["file"] = f"{folder.name}/{stem}.png"
        write_bytes_atomic(folder / f"{stem}-hist.png", pictures.histogram_png(view.stats.histogram, view.stats.edges))
        doc["histogram_file"] = f"{folder.name}/{stem}-hist.png"
        docs.append(doc)
    return docs
