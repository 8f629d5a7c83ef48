"""Loading a run's model: the preprocessing equals training's, snapshots, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepyard.datasets import get_dataset, open_split
from deepyard.datasets.catalog import dataset_dir
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.files import read_json
from deepyard.infer import load_run_model, open_model, snapshots
from deepyard.train import get_run
from deepyard.train.checkpoint import load_checkpoint
from deepyard.train.config import TrainConfig
from deepyard.train.device import resolve_placement
from deepyard.train.runs import run_dir
from deepyard.train.trainer import assemble
from tests.infer.conftest import Trained


def test_classifying_the_original_file_gives_the_logits_of_training(trained: Trained) -> None:
    """The same image through the trainer's data path (stored pixels + its eval transform) and through
    `classify` from its original, larger file: identical pixels, and logits equal to float precision."""
    settings, run_id = trained.settings, trained.run_id
    info = get_run(settings, run_id)
    manifest = get_dataset(settings, info["dataset"])
    config = TrainConfig.model_validate(info["config"])
    run = assemble(settings, run_id, run_dir(settings, run_id), config, resolve_placement(config, info["placement"]),
                   manifest, info)  # fmt: skip
    checkpoint = run_dir(settings, run_id) / "checkpoints" / "best.pt"
    run.model.load_state_dict(load_checkpoint(checkpoint)["model"])
    run.model.eval()
    store = open_split(settings, manifest, "train")
    sources = read_json(dataset_dir(settings, manifest.id) / "train" / "sources.json")
    picks = np.array([0, 7, len(store) - 1])
    stored = torch.from_numpy(store.get_batch(picks)).permute(0, 3, 1, 2).to(run.device)
    with torch.inference_mode():
        during_training = run.model(run.preprocess(stored, train=False)).float().cpu()

    clf = load_run_model(settings, run_id)
    from_files = [clf.preprocessing.load_pixels(sources[i]) for i in picks]
    assert (np.stack(from_files) == store.get_batch(picks)).all()
    assert clf.preprocessing.crop_size == 10 and clf.preprocessing.mean == "image"
    logits = clf.outputs(from_files)
    torch.testing.assert_close(logits, during_training, rtol=1e-5, atol=1e-5)
    assert logits.std() > 0.1  # a trained model, not constant outputs


def test_snapshots_best_last_and_steps(trained: Trained) -> None:
    snaps = snapshots(trained.settings, trained.run_id)
    names = [s["name"] for s in snaps]
    assert names[0] == "best" and len(names) >= 3
    steps = [int(n) for n in names[1:]]
    assert steps == sorted(steps, reverse=True)
    first = load_run_model(trained.settings, trained.run_id, snapshot=steps[-1])
    last = load_run_model(trained.settings, trained.run_id, snapshot="last")
    assert first.info["step"] == steps[-1] and last.info["step"] == steps[0]
    x = [np.full((12, 12, 3), 128, np.uint8)]
    assert not torch.equal(first.outputs(x), last.outputs(x))
    by_ref = open_model(trained.settings, f"run:{trained.run_id}@{steps[-1]}")
    assert torch.equal(by_ref.outputs(x), first.outputs(x))


def test_unknown_snapshot_and_run_are_named(trained: Trained) -> None:
    with pytest.raises(NotFoundError, match=r"no snapshot '77777'.*'last'.*'best'"):
        load_run_model(trained.settings, trained.run_id, snapshot=77777)
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        open_model(trained.settings, "nope")
    with pytest.raises(InvalidValueError, match="neither a run id"):
        open_model(trained.settings, "a@b@c")
