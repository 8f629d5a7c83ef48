"""Whether a fine-tune's source fits the dataset it starts on, told when the job is submitted: without loading or
downloading any weights, from what the source records (its input channels and size) and from the network built
twice on the meta device (at the source's input size and at the dataset's), so a mismatch that loading would meet
after the job starts (deepyard.transfer.surgery) is refused at once, naming it.

It checks channels (equal, or 3 -> 1 and 1 -> 3, which the first convolution adapts) and sizes (a weight outside
the heads whose shape depends on the input size, as a fixed-size spec network's first linear layer). A bare
weights file or URL records neither; it is checked when its weights load.
"""

from __future__ import annotations

import torch

from deepyard.config import Settings
from deepyard.datasets import find_dataset
from deepyard.errors import DeepyardError, InvalidValueError, NotFoundError
from deepyard.networks import NetworkSpec, build_network
from deepyard.train import runs
from deepyard.transfer import store
from deepyard.transfer.sources import parse_run_ref
from deepyard.transfer.surgery import find_heads, refuse_size_change

Shape = tuple[int, int, int]  # (C, H, W)
ADAPTED = {(3, 1), (1, 3)}  # (source, dataset) channels the first convolution adapts


def source_input(settings: Settings, ref: str) -> tuple[int | None, Shape | None]:
    """(channels, (C, H, W)) the weights `ref` names were trained on, each None where the source does not say
    (torchvision's and timm's weights: RGB at any size; a weights file or URL: unknown)."""
    if ref.startswith(("pretrained:", "timm:")):
        return 3, None
    if ref.startswith("store:"):
        shape = store.get_model(settings, ref.removeprefix("store:")).input_shape
        return (shape[0], shape) if shape else (None, None)
    if ref.startswith("run:"):
        info = runs.get_run(settings, parse_run_ref(ref)[0])
        manifest = find_dataset(settings, info["dataset"])
        if manifest is None:
            raise NotFoundError(f"run {info['id']!r} was trained on dataset {info['dataset']!r}, which no longer "
                                "exists; its input shape is unknown")  # fmt: skip
        crop = info["config"].get("crop_size")
        height, width = (crop, crop) if crop else (manifest.shape[0], manifest.shape[1])
        return manifest.shape[2], (manifest.shape[2], height, width)
    return None, None


def check_fit(
    settings: Settings, ref: str, network: str | NetworkSpec, target: Shape, num_classes: int, dataset: str = ""
) -> None:
    """Raise (InvalidValueError, SpecError) when the weights `ref` names cannot start `network` on inputs of
    `target` (C, H, W): a channel count the first convolution does not adapt, or an input size the network's
    weights depend on."""
    channels, shape = source_input(settings, ref)
    on = f"dataset {dataset!r}" if dataset else "this dataset"
    if channels is not None and channels != target[0] and (channels, target[0]) not in ADAPTED:
        raise InvalidValueError(
            f"{ref!r} was trained on {channels}-channel images and {on} has {target[0]} channel(s): the first "
            f"convolution adapts 3 -> 1 and 1 -> 3 channels only; build the dataset with {channels} channel(s)"
        )
    if shape is None or shape[1:] == target[1:]:
        return
    found = size_dependent(settings, network, (target[0], shape[1], shape[2]), target, num_classes)
    if found is not None:
        refuse_size_change(*found, shape, target)


def size_dependent(
    settings: Settings, network: str | NetworkSpec, before: Shape, after: Shape, num_classes: int
) -> tuple[str, str] | None:
    """The first weight outside the heads whose shape differs between `network` built for `before` and for
    `after` inputs, with the shapes as text; None when none does (or the network cannot be built at `before`)."""
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            old = build_network(network, before, num_classes, settings).state_dict()
            model = build_network(network, after, num_classes, settings)
    except DeepyardError:
        return None  # the dataset's own shape is checked with the network; the source's is its business
    heads = find_heads(model)
    for key, want in model.state_dict().items():
        have = old.get(key)
        if have is None or tuple(have.shape) == tuple(want.shape) or any(key.startswith(h + ".") for h in heads):
            continue
        return key, f"shape {tuple(have.shape)} in the weights, {tuple(want.shape)} in the network"
    return None
