"""How a run starts when it does not start from scratch: what the trainer asks of a fine-tune's start.

deepyard.transfer builds a `Start` (its source's weights, input normalisation, frozen parameters and groups, the
head-first schedule) and hands it to `train(..., start=...)` / `resume_run(..., start=...)`; train never imports
transfer. A run with fine-tune settings or a recorded source refuses to train without one, rather than quietly
training from scratch with every parameter free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from torch import nn

from deepyard.errors import InvalidValueError
from deepyard.networks import NetworkSpec
from deepyard.train.config import TrainConfig

if TYPE_CHECKING:
    from deepyard.train.callbacks import Callback
    from deepyard.train.trainer import Run


class StartReport(Protocol):
    """What loading the start weights did (deepyard.transfer's LoadReport)."""

    def summary(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


class Start(Protocol):
    @property
    def network(self) -> str | NetworkSpec | None:
        """The network the source records: the run's when none is given; None for weights only."""

    @property
    def record(self) -> dict[str, Any] | None:
        """What the run keeps about its source (run.json "source"); None when there are no start weights."""

    def configure(self, config: TrainConfig, channels: int) -> TrainConfig:
        """The config a new run records, for data with `channels` channels (e.g. the source's normalisation)."""

    def param_groups(self, model: nn.Module, config: TrainConfig) -> list[Any]:
        """What the optimizer updates (parameters or groups); may freeze the rest. Before DDP wraps `model`."""

    def load(
        self, model: nn.Module, input_shape: tuple[int, int, int], classes: list[str], config: TrainConfig
    ) -> StartReport:
        """Put the recorded source's weights into the fresh `model`; only for a run with no checkpoint yet."""

    def callbacks(self, run: Run) -> list[Callback]:
        """Callbacks the start adds to the run (the head-first schedule)."""


def trainable_params(model: nn.Module) -> list[nn.Parameter]:
    """The parameters a run from scratch updates."""
    return [p for p in model.parameters() if p.requires_grad]


def check_start(run_id: str, config: TrainConfig, source: dict[str, Any] | None, start: Start | None) -> None:
    """A fine-tune (fine-tune settings or a source) needs its start: refuse rather than train from scratch."""
    if start is None and (config.finetune.active or source):
        what = f"starts from {source['ref']!r}" if source else "has fine-tune settings"
        raise InvalidValueError(f"run {run_id or '(new)'} {what}; train it with a start from deepyard.transfer "
                                "(deepyard.transfer.train_from, resume_from)")  # fmt: skip
