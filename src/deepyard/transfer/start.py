"""A fine-tune's start, handed to the trainer: deepyard.train's `Start`, built here from a source and the
fine-tune settings (deepyard.transfer.finetune), so train never imports transfer.

- `start_new(settings, source, network, config)`: a new run's start; the source's weights load now (a bad
  source fails before a run folder exists), and the network defaults to the one the source records.
- `start_resumed(settings, run_id)`: a resumed run's start from its run.json; the source's weights load only if
  the run has no checkpoint yet, so a resumed fine-tune continues from its own weights.
- `train_from` and `resume_from`: `train` and `resume_run` with that start, for the CLI and the train job.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from deepyard.config import Settings
from deepyard.networks import NetworkSpec
from deepyard.train import runs
from deepyard.train.config import TrainConfig
from deepyard.train.start import trainable_params
from deepyard.train.trainer import RunResult, resume_run, train
from deepyard.transfer.finetune import (
    load_start,
    optimizer_params,
    resolve_start,
    schedule_callback,
    source_normalization,
)
from deepyard.transfer.sources import Pretrained
from deepyard.transfer.surgery import LoadReport

if TYPE_CHECKING:
    from deepyard.train.callbacks import Callback
    from deepyard.train.trainer import Run


@dataclass(frozen=True)
class FinetuneStart:
    """deepyard.train.start.Start for a fine-tune: start weights (when `record`), freezing, groups, schedule."""

    settings: Settings
    record: dict[str, Any] | None = None  # run.json "source"; None: fine-tune settings on fresh weights
    network: str | NetworkSpec | None = None  # the network the source records (or the one given)
    pretrained: Pretrained | None = field(default=None, repr=False)  # loaded already (a new run), else on `load`

    def configure(self, config: TrainConfig, channels: int) -> TrainConfig:
        """Inputs normalised as the source's weights expect (`finetune.normalize: source`), unless set."""
        if self.pretrained is None or config.input_mean is not None or config.finetune.normalize != "source":
            return config
        found = source_normalization(self.pretrained.preprocessing, channels)
        return config if found is None else config.model_copy(update={"input_mean": found[0], "input_std": found[1]})

    def param_groups(self, model: nn.Module, config: TrainConfig) -> list[Any]:
        return optimizer_params(model, config.finetune) if config.finetune.active else trainable_params(model)

    def load(
        self, model: nn.Module, input_shape: tuple[int, int, int], classes: list[str], config: TrainConfig
    ) -> LoadReport:
        assert self.record is not None  # the trainer loads only a run that records a source
        return load_start(self.settings, model, self.record, input_shape, classes, config.finetune, self.pretrained)

    def callbacks(self, run: Run) -> list[Callback]:
        return [cb for cb in [schedule_callback(run)] if cb is not None]


def start_new(
    settings: Settings, source: str | None, network: str | NetworkSpec | None, config: TrainConfig
) -> FinetuneStart | None:
    """The start of a new run from `source` (see deepyard.transfer.sources), or of fine-tune settings alone;
    None for a run from scratch."""
    if source is None:
        return FinetuneStart(settings) if config.finetune.active else None
    pretrained, picked = resolve_start(settings, source, network)
    return FinetuneStart(settings, pretrained.record(), picked, pretrained)


def start_resumed(settings: Settings, run_id: str) -> FinetuneStart | None:
    """The start of run `run_id` when it resumes, from what its run.json records."""
    info = runs.get_run(settings, run_id)
    if not info.get("source") and not TrainConfig.model_validate(info["config"]).finetune.active:
        return None
    return FinetuneStart(settings, info.get("source"))


def train_from(
    settings: Settings,
    dataset: str,
    network: str | NetworkSpec | None,
    config: TrainConfig,
    *,
    source: str | None = None,
    **options: Any,
) -> RunResult:
    """deepyard.train.train (`options`: its callbacks, stop, name, on_created), starting from `source`'s
    weights when given, with the fine-tune settings applied."""
    return train(settings, dataset, network, config, start=start_new(settings, source, network, config), **options)


def resume_from(
    settings: Settings, run_id: str, callbacks: list[Callback] | None = None, stop: threading.Event | None = None
) -> RunResult:
    """deepyard.train.resume_run with the run's own start (a fine-tune's source and settings)."""
    return resume_run(settings, run_id, callbacks, stop, start_resumed(settings, run_id))
