"""FCN-8s as a spec (deepyard.networks.segzoo): per-pixel logits at the input's size for any input size (Caffe's
crop offsets), start weights from a VGG-16 (our spec's Caffe names and torchvision's numbered layers), and a few
training steps of the same graph, narrower, on generated scenes with the loss falling."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torchvision  # type: ignore[import-untyped]

from deepyard.networks import build_network, build_spec, check_spec
from deepyard.networks.segzoo import fcn8s
from deepyard.tasks import get_task
from deepyard.transfer.surgery import load_matching
from tests.tasks.segdata import CLASSES, scene

SIZES = [(224, 224), (1, 1), (17, 23), (64, 48), (375, 500)]
NARROW = {"widths": (4, 4, 8, 8, 8), "fc": 16}  # the same layers and offsets, a few channels wide


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_fcn8s_scores_every_pixel_at_any_input_size(height: int, width: int) -> None:
    checked = check_spec(fcn8s(), (3, height, width), 21)  # shapes of DIGITS' widths, nothing allocated
    shapes = {node.name: node.shape for node in checked.nodes}
    assert checked.output == "score" and shapes["score"] == (21, height, width)
    assert shapes["fuse_pool4"] == shapes["upscore2"] and shapes["fuse_pool3"] == shapes["upscore_pool4"]
    model = build_spec(fcn8s(**NARROW), (3, height, width), 5).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        assert model(torch.rand(2, 3, height, width)).shape == (2, 5, height, width)


def test_fcn8s_built_once_takes_other_sizes_and_has_digits_parameters() -> None:
    model = build_network("fcn8s", (3, 32, 32), 21).eval()
    widths = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), *[(256, 256)] * 2, (256, 512),
              *[(512, 512)] * 5]  # fmt: skip
    body = sum(9 * c * o + o for c, o in widths)
    fc = 512 * 49 * 4096 + 4096 + 4096 * 4096 + 4096
    scores = sum(c * 21 + 21 for c in (4096, 512, 256))
    ups = 21 * (4 * 4 + 4 * 4 + 16 * 16)  # one bilinear kernel per class each, no bias
    assert sum(p.numel() for p in model.parameters()) == body + fc + scores + ups  # about 134.4 M, as DIGITS'
    with torch.no_grad():
        assert model(torch.rand(1, 3, 19, 27)).shape == (1, 21, 19, 27)


def _vgg_body(state: dict[str, torch.Tensor], caffe: bool) -> dict[str, str]:
    """Our Caffe name -> the source's name, for conv1_1 ... conv5_3."""
    index, names = 0, {}
    for block, depth in enumerate((2, 2, 3, 3, 3), start=1):
        for i in range(1, depth + 1):
            names[f"layers.conv{block}_{i}"] = f"layers.conv{block}_{i}" if caffe else f"features.{index}"
            index += 2
        index += 1
    assert all(f"{v}.weight" in state for v in names.values())
    return names


@pytest.mark.parametrize("source", ["spec", "torchvision"])
def test_fcn8s_starts_from_a_vgg16s_body_and_its_fc_layers_as_convolutions(source: str) -> None:
    torch.manual_seed(0)
    if source == "spec":  # what a VGG-16 classification run of ours saves
        vgg = build_network("vgg16", (3, 224, 224), 10)
        body: Any = vgg.layers
        fc6, fc7 = body["fc6"], body["fc7"]
    else:
        vgg = torchvision.models.vgg16(weights=None, num_classes=10)
        fc6, fc7 = vgg.classifier[0], vgg.classifier[3]
    state = vgg.state_dict()
    fcn = build_network("fcn8s", (3, 64, 64), 4)
    report = load_matching(fcn, state, reset_heads=True, source_input=(3, 224, 224), target_input=(3, 64, 64))
    assert report.adapted["layers.fc6.weight"] == "linear (4096, 25088) reshaped to a 7x7 convolution"
    assert report.adapted["layers.fc7.weight"] == "linear (4096, 4096) reshaped to a 1x1 convolution"
    if source == "torchvision":
        assert report.adapted["(names)"].startswith("backbone weights torchvision vgg16's layers under Caffe's")
    loaded = fcn.state_dict()
    for ours, theirs in _vgg_body(state, source == "spec").items():
        assert torch.equal(loaded[f"{ours}.weight"], state[f"{theirs}.weight"])
        assert torch.equal(loaded[f"{ours}.bias"], state[f"{theirs}.bias"])
    fresh = {"layers.score_fr.weight", "layers.score_pool4.weight", "layers.score_pool3.weight"}
    assert fresh <= set(report.reinitialised)
    features = torch.randn(2, 512, 7, 7)  # pool5's output: the conv on the one 7x7 window is the linear layer
    layers: Any = fcn.layers
    conv = torch.relu(layers["fc7"](torch.relu(layers["fc6"](features))))
    linear = torch.relu(fc7(torch.relu(fc6(features.flatten(1)))))
    assert torch.allclose(conv.flatten(1), linear, atol=1e-4)


def test_fcn8s_trains_a_few_steps_with_the_loss_falling() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    images, masks = zip(*(scene(rng, 24) for _ in range(6)), strict=True)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255 - 0.5  # (6, 3, 24, 24)
    y = torch.from_numpy(np.stack(masks))  # (6, 24, 24) class indices
    model = build_spec(fcn8s(**NARROW), (3, 24, 24), len(CLASSES))  # type: ignore[arg-type]
    task = get_task("segmentation")
    criterion = task.criterion("cross_entropy", CLASSES, {}, None)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = criterion(model(x), y)["cross_entropy"]
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3])
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (6, len(CLASSES), 24, 24)
