"""Looking inside: activations and weights with statistics and pictures; Grad-CAM finds the informative region."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.errors import InvalidValueError
from deepyard.infer import activations, grad_cam, inspect_image, load_run_model, weights
from deepyard.networks import spec_from_data
from deepyard.train import make_config, train
from tests.conftest import save_image
from tests.infer.conftest import Trained

SIDE, BOX = 24, 6


def test_activations_follow_the_layers(trained: Trained) -> None:
    clf = load_run_model(trained.settings, trained.run_id)
    pixels = clf.preprocessing.load_pixels(str(trained.images / "class1" / "000.png"))
    views = activations(clf, pixels)
    # a linear layer after feature maps is built as (flatten, linear): both show
    assert [v.name for v in views] == ["conv1", "relu1", "pool1", "conv2", "relu2", "fc.0", "fc.1"]
    conv1, relu1 = views[0], views[1]
    assert conv1.shape == [8, 10, 10] and relu1.stats.min >= 0 and conv1.stats.min < 0
    assert sum(conv1.stats.histogram) == 8 * 10 * 10
    assert conv1.picture is not None and conv1.picture.std() > 0
    # the statistics are those of the real output: recompute conv1 by hand
    with torch.inference_mode():
        out = clf.model.layers["conv1"](clf.inputs(torch.from_numpy(pixels[None]).permute(0, 3, 1, 2)))[0]
    assert conv1.stats.mean == pytest.approx(float(out.mean()), rel=1e-5)
    assert conv1.stats.std == pytest.approx(float(out.std()), rel=1e-4)
    assert views[-1].shape == [3]


def test_weights_with_counts_and_filter_tiles(trained: Trained) -> None:
    clf = load_run_model(trained.settings, trained.run_id)
    views = {v.name: v for v in weights(clf)}
    assert list(views) == ["conv1", "conv2", "fc.1"]
    assert views["conv1"].shape == [8, 3, 3, 3] and views["conv1"].params == 8 * 3 * 9 + 8
    assert views["conv1"].picture is not None and views["conv1"].picture.ndim == 3  # RGB filters
    assert views["fc.1"].params == sum(p.numel() for p in clf.model.layers["fc"].parameters())
    w = clf.model.layers["conv2"].weight.detach()
    assert views["conv2"].stats.std == pytest.approx(float(w.std()), rel=1e-4)


def _squares(root: Path, per_class: int = 60, seed: int = 1) -> None:
    """'empty': dark noise. 'square': dark noise and one bright 6x6 square somewhere."""
    rng = np.random.default_rng(seed)
    for i in range(per_class):
        save_image(root / "empty" / f"{i:03d}.png", rng.integers(0, 70, (SIDE, SIDE), dtype=np.uint8))
        img = rng.integers(0, 70, (SIDE, SIDE), dtype=np.uint8)
        y, x = rng.integers(0, SIDE - BOX, size=2)
        img[y : y + BOX, x : x + BOX] = rng.integers(180, 256, (BOX, BOX), dtype=np.uint8)
        save_image(root / "square" / f"{i:03d}.png", img)


def test_grad_cam_highlights_the_informative_square(settings: Settings, tmp_path: Path) -> None:
    _squares(tmp_path / "squares")
    spec = make_spec(name="squares", source={"kind": "folder", "train": tmp_path / "squares"}, width=SIDE,
                     height=SIDE, channels=1, val_pct=20, encoding="raw")  # fmt: skip
    dataset = create_dataset(settings, spec).id
    net = spec_from_data({"name": "cam", "layers": [
        {"name": "conv1", "type": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "relu1", "type": "relu"},
        {"name": "conv2", "type": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "relu2", "type": "relu"},
        {"name": "gpool", "type": "max_pool", "global": True},
        {"name": "fc", "type": "linear", "out_features": "num_classes"},
    ]})  # fmt: skip
    config = make_config(epochs=8, batch_size=16, precision="fp32", **{"solver.type": "adam", "solver.lr": 0.01})
    run = train(settings, dataset, net, config)
    clf = load_run_model(settings, run.run_id)
    rng = np.random.default_rng(99)
    hits = 0
    for y, x in ((2, 3), (15, 4), (9, 16), (16, 16)):
        img = rng.integers(0, 70, (SIDE, SIDE), dtype=np.uint8)
        img[y : y + BOX, x : x + BOX] = 230
        cam = grad_cam(clf, img[:, :, None], target="square")
        assert cam.layer == "relu2" and cam.heat.shape == (SIDE, SIDE) and cam.heat.max() == pytest.approx(1.0)
        inside = np.zeros((SIDE, SIDE), bool)
        inside[max(0, y - 1) : y + BOX + 1, max(0, x - 1) : x + BOX + 1] = True
        peak = np.unravel_index(cam.heat.argmax(), cam.heat.shape)
        ratio = cam.heat[inside].mean() / max(cam.heat[~inside].mean(), 1e-6)
        hits += bool(inside[peak] and ratio > 3)
    assert hits == 4, "Grad-CAM should peak on the square and be much hotter there than elsewhere"


def test_grad_cam_errors_name_valid_values(trained: Trained) -> None:
    clf = load_run_model(trained.settings, trained.run_id)
    pixels = np.zeros((12, 12, 3), np.uint8)
    with pytest.raises(InvalidValueError, match=r"class 'dog' is not one of the model's: 'class0', 'class1'"):
        grad_cam(clf, pixels, target="dog")
    with pytest.raises(InvalidValueError, match=r"layer 'fc' gives no feature maps; valid: 'conv1'"):
        grad_cam(clf, pixels, layer="fc")


def test_inspect_writes_every_picture(trained: Trained, tmp_path: Path) -> None:
    clf = load_run_model(trained.settings, trained.run_id)
    pixels = clf.preprocessing.load_pixels(str(trained.images / "class2" / "003.png"))
    doc = inspect_image(clf, pixels, tmp_path / "look", target="class2")
    assert json.loads((tmp_path / "look" / "inspect.json").read_text()) == json.loads(json.dumps(doc))
    assert doc["gradcam"]["class"] == "class2" and doc["gradcam"]["layer"] == "relu2"
    files = [tmp_path / "look" / "gradcam.png", tmp_path / "look" / "input.png"]
    files += [tmp_path / "look" / v[k] for v in doc["activations"] + doc["weights"] for k in ("file", "histogram_file")
              if k in v]  # fmt: skip
    assert len(files) > 2 + len(doc["activations"])
    for path in files:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("L"))
        assert arr.std() > 0, f"{path.name} is blank"
