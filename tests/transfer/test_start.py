"""A fine-tune's start comes from deepyard.transfer: the trainer loads its source only into a run with no checkpoint,
and refuses a fine-tune handed no start instead of training it from scratch."""

from __future__ import annotations

import pytest
import torch

from deepyard.config import Settings
from deepyard.errors import InvalidValueError
from deepyard.train import get_run, make_config, resume_run, train
from deepyard.train.checkpoint import load_checkpoint
from deepyard.transfer import load_pretrained, resume_from, start_resumed, train_from
from tests.transfer.conftest import BASE


class Interrupted(Exception):
    """The process died right after the run folder was made, before any step or checkpoint."""


def _interrupt(run_id: str) -> None:
    raise Interrupted(run_id)


def test_a_fine_tune_resumed_before_its_first_checkpoint_loads_its_source(
    settings: Settings, tiny: str, pretrained_run: str
) -> None:
    source = f"run:{pretrained_run}"
    config = make_config(**{**BASE, "epochs": 1, "finetune.freeze": ["conv"], "finetune.reset_head": "always"})
    with pytest.raises(Interrupted) as raised:
        train_from(settings, tiny, None, config, source=source, on_created=_interrupt)
    run_id = str(raised.value)
    assert get_run(settings, run_id)["source"]["ref"] == source and start_resumed(settings, run_id) is not None
    result = resume_from(settings, run_id)
    report = get_run(settings, run_id)["source"]["report"]
    assert report["loaded"] == 2  # the source's body went into the fresh model
    weights = load_checkpoint(sorted((result.folder / "checkpoints").glob("step-*.pt"))[-1])["model"]
    assert torch.equal(weights["layers.conv.weight"], load_pretrained(settings, source).state["layers.conv.weight"])


def test_the_trainer_refuses_a_fine_tune_without_its_start(settings: Settings, tiny: str, pretrained_run: str) -> None:
    config = make_config(**{**BASE, "finetune.freeze": ["conv"]})
    with pytest.raises(InvalidValueError, match=r"run \(new\) has fine-tune settings; train it with a start from"):
        train(settings, tiny, None, config)
    assert [p.name for p in (settings.home / "runs").iterdir()] == [pretrained_run]  # no run folder was made
    with pytest.raises(Interrupted) as raised:
        train_from(settings, tiny, None, make_config(**BASE), source=f"run:{pretrained_run}", on_created=_interrupt)
    with pytest.raises(InvalidValueError, match=rf"starts from 'run:{pretrained_run}'; train it with a start"):
        resume_run(settings, str(raised.value))


def test_a_run_from_scratch_needs_no_start(settings: Settings, pretrained_run: str) -> None:
    assert start_resumed(settings, pretrained_run) is None
