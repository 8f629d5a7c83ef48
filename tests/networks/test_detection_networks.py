"""torchvision's detectors by name: each builds at a dataset's size, returns its named losses in training mode and
padded boxes through the task's inference wrapper; `deepyard network list` lists them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepyard.errors import NotFoundError
from deepyard.networks import build_network
from deepyard.networks.detection import DETECTORS
from deepyard.tasks import get_task

FAST = {"fasterrcnn_small", "fcos_small"}  # the others take 5-30 s each on 2 cores: make test-slow
SIZE = {"ssd300_vgg16": (300, 300)}  # VGG-16's extra layers need their design size; the others take small images


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in DETECTORS])
def test_every_detector_trains_a_step_and_predicts_padded_boxes(name: str) -> None:
    torch.manual_seed(0)
    height, width = SIZE.get(name, (64, 80))
    model = build_network(name, (3, height, width), 3)  # two classes and the background
    images = [torch.rand(3, height, width) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[5.0, 6, 30, 40]]), "labels": torch.tensor([1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]  # fmt: skip
    model.train()
    losses = model(images, targets)
    assert losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    wrapped = get_task("detection").inference_model(model).eval()
    with torch.no_grad():
        out = wrapped(torch.stack(images))
    assert out.shape == (2, 100, 6)
    kept = out[out[:, :, 5] >= 0]
    assert ((kept[:, 5] >= 0) & (kept[:, 5] < 2)).all() and ((kept[:, 4] >= 0) & (kept[:, 4] <= 1)).all()


def test_an_unknown_detector_names_the_valid_ones() -> None:
    from deepyard.networks.detection import build_detector

    with pytest.raises(NotFoundError, match="fasterrcnn_mobilenet_v3_large_320_fpn"):
        build_detector("fasterrcnn_nonsense", (3, 64, 64), 3)


@pytest.mark.slow  # builds every network and detector on the meta device: about a minute on 2 busy cores
def test_network_list_lists_the_detectors(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "deepyard", "--home", str(tmp_path), "network", "list", "--json"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = {d["name"]: d for d in json.loads(done.stdout) if d["family"] == "detection"}
    assert set(found) == set(DETECTORS)
    assert 3_000_000 < found["ssdlite320_mobilenet_v3_large"]["params"] < 4_000_000
