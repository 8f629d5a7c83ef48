"""A segmentation evaluation streams: it keeps no outputs (neither logits nor every image's mask), its report is
the one computed from all the model's predictions at once, and its figures are the trainer's meter's, whatever
the batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.infer import evaluate, load_run_model, split_data
from deepyard.tasks.base import EvalContext
from deepyard.tasks.segreport import segmentation_report
from deepyard.train import make_config, train
from tests.tasks.segdata import write_scenes


def test_evaluation_streams_the_report_of_all_predictions_and_matches_the_meter(
    settings: Settings, tmp_path: Path
) -> None:
    write_scenes(tmp_path / "shapes", 12, "palette", seed=6, size=32)
    spec = make_spec(name="shapes", task="segmentation", width=32, height=32, val_pct=50,
                     source={"kind": "masks", "train": tmp_path / "shapes"})  # fmt: skip
    dataset = create_dataset(settings, spec).id
    run = train(settings, dataset, "unet", make_config(epochs=1, batch_size=3, precision="fp32", device="cpu"))
    clf = load_run_model(settings, run.run_id)
    data = split_data(settings, clf, dataset, "val")
    small = evaluate(clf, data, top_n=3, batch_size=2)
    assert small.outputs.size == 0  # nothing per image kept: not (6, 32, 32) masks, not (6, 4, 32, 32) logits
    assert small.miou == pytest.approx(small.metrics["miou"])
    assert np.array(small.confusion).sum() == int((np.asarray(small.targets) != 255).sum())
    with torch.no_grad():
        logits = clf.outputs(torch.from_numpy(data.pixels(np.arange(6))).permute(0, 3, 1, 2)).numpy()
    ctx = EvalContext(list(clf.classes), clf.stats, data.sources, data.pixels, 3)
    at_once = segmentation_report(logits, np.asarray(data.targets), ctx)
    assert small.doc == at_once.doc and small.pictures == at_once.pictures
    whole = evaluate(clf, split_data(settings, clf, dataset, "val"), top_n=3, batch_size=64)
    assert whole.doc == small.doc
    assert len(small.lowest_iou) == 3 and set(small.pictures) == {"confusion.png", "lowest_iou.png"}
