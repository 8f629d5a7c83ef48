"""A training job can start from another run's weights (fine-tuning), checked at submit."""

from __future__ import annotations

import pytest
import torch

from deepyard.config import Settings
from deepyard.datasets import get_dataset
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.jobs import Scheduler, submit
from deepyard.networks import NetworkSpec
from deepyard.train import get_run, make_config, train
from deepyard.train.checkpoint import load_checkpoint
from deepyard.train.runs import run_dir
from deepyard.train.tasking import default_network
from tests.jobs.conftest import TRAIN, wait_status


def test_train_job_fine_tunes_from_a_previous_run(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, scheduler: Scheduler
) -> None:
    first = train(settings, tiny, tiny_net, make_config(**TRAIN))
    params = {"dataset": tiny, "source": f"run:{first.run_id}@best",
              "config": {**TRAIN, "epochs": 1, "finetune.freeze": ["conv*"]}}  # fmt: skip
    job = submit(settings, "train", params)
    assert job.params["network"]["name"] == "tiny"  # taken from the source run
    done = wait_status(settings, job.id, "done", "failed")
    assert done.status == "done", done.error
    info = get_run(settings, done.target or "")
    assert info["source"]["ref"] == f"run:{first.run_id}@best" and info["source"]["report"]["loaded"]
    before = load_checkpoint(run_dir(settings, first.run_id) / "checkpoints" / "best.pt")["model"]
    after = load_checkpoint(sorted((run_dir(settings, done.target or "") / "checkpoints").glob("step-*.pt"))[-1])
    assert torch.equal(after["model"]["layers.conv.weight"], before["layers.conv.weight"])  # frozen
    assert not torch.equal(after["model"]["layers.fc.1.weight"], before["layers.fc.1.weight"])  # trained


def test_bad_sources_are_refused_at_submit(settings: Settings, tiny: str, tmp_path: object) -> None:
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        submit(settings, "train", {"dataset": tiny, "source": "run:nope", "config": TRAIN})
    with pytest.raises(InvalidValueError, match="outside the data roots and the home"):
        submit(settings, "train", {"dataset": tiny, "source": "/etc/weights.pt", "network": "lenet", "config": TRAIN})
    with pytest.raises(InvalidValueError, match="outside the data roots and the home"):  # a colon is no reference
        submit(settings, "train", {"dataset": tiny, "source": "/etc/a:b.pt", "network": "lenet", "config": TRAIN})
    queued = submit(settings, "train", {"dataset": tiny, "config": TRAIN})  # no network: the task's default
    assert queued.params["network"] == default_network(get_dataset(settings, tiny))[0]
    with pytest.raises(InvalidValueError, match=r"loss 'l1' does not apply to classification; use 'auto', "):
        submit(settings, "train", {"dataset": tiny, "network": "lenet", "config": {**TRAIN, "loss": "l1"}})
    with pytest.raises(InvalidValueError, match=r"monitor 'val_map' is not a metric of classification; use"):
        submit(settings, "train", {"dataset": tiny, "network": "lenet", "config": {**TRAIN, "monitor": "val_map"}})
