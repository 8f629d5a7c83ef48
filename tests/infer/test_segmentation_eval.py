"""A segmentation evaluation keeps the predicted classes (one byte a pixel), not the logits, and its figures are
the trainer's meter's, whatever the batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.infer import evaluate, load_run_model, split_data
from deepyard.train import make_config, train
from tests.tasks.segdata import write_scenes


def test_evaluation_keeps_predicted_classes_and_matches_the_meter(settings: Settings, tmp_path: Path) -> None:
    write_scenes(tmp_path / "shapes", 12, "palette", seed=6, size=32)
    spec = make_spec(name="shapes", task="segmentation", width=32, height=32, val_pct=50,
                     source={"kind": "masks", "train": tmp_path / "shapes"})  # fmt: skip
    dataset = create_dataset(settings, spec).id
    run = train(settings, dataset, "unet", make_config(epochs=1, batch_size=3, precision="fp32", device="cpu"))
    clf = load_run_model(settings, run.run_id)
    small = evaluate(clf, split_data(settings, clf, dataset, "val"), top_n=3, batch_size=2)
    assert small.outputs.dtype == np.uint8 and small.outputs.shape == (6, 32, 32)  # not (6, 4, 32, 32) float64
    assert small.miou == pytest.approx(small.metrics["miou"])
    assert np.array(small.confusion).sum() == int((np.asarray(small.targets) != 255).sum())
    whole = evaluate(clf, split_data(settings, clf, dataset, "val"), top_n=3, batch_size=64)
    assert whole.miou == pytest.approx(small.miou) and np.array_equal(whole.outputs, small.outputs)
    assert len(small.lowest_iou) == 3 and set(small.pictures) == {"confusion.png", "lowest_iou.png"}
