"""Fine-tuning inside a training run: the start weights, freezing, per-group learning rates and the head-first
schedule. deepyard.transfer.start hands them to the trainer as a run's start (`train_from(..., source=...)`).

- Start: a run records its source (ref and the weights' content hash) in run.json; the weights are loaded only
  when the run has no checkpoint yet, so a resumed run continues from its checkpoint, never from the pretrained
  weights, and a changed source is refused (IntegrityError) instead of silently giving another run.
- Freezing: `finetune.freeze` globs and `finetune.train_last` freeze parameters for the whole run; frozen
  parameters get no gradient, so the optimizer leaves them bit-identical (no update, decay or momentum).
- Groups: the head and the body are separate optimizer groups with their own `lr_mult`.
- Schedule: for `finetune.head_epochs` only the head trains; then the body unfreezes (except what `freeze` keeps)
  and every group's rate is multiplied by `unfreeze_lr_mult`. The phase is a pure function of the step, so a
  resumed run picks up the right phase. Under DDP the model is wrapped with `find_unused_parameters` for such a
  run, so the body's parameters, which get no gradient while frozen, do not stall the gradient reduction.
- Input normalisation: weights trained on normalised inputs (torchvision's and timm's: ImageNet's per-channel
  mean and std) are fed inputs normalised the same way (`finetune.normalize: source`, the default): the run's
  `input_mean` and `input_std` are set from the source's record, so training, resuming, classifying and exporting
  all apply them. A source with another channel count gets the average (3 → 1) or the value repeated (1 → 3), as
  the first convolution is adapted (deepyard.transfer.surgery).
- BatchNorm layers whose parameters are all frozen stay in eval mode (running statistics fixed, batch statistics
  unused) while frozen, even though the loop puts the model in training mode.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from deepyard.config import Settings
from deepyard.errors import IntegrityError, InvalidValueError
from deepyard.networks import NetworkSpec, spec_from_data
from deepyard.train.callbacks import Callback, every
from deepyard.train.config import FinetuneConfig
from deepyard.transfer.sources import Pretrained, load_pretrained
from deepyard.transfer.surgery import LoadReport, find_heads, load_matching

if TYPE_CHECKING:
    from deepyard.train.loop import StepInfo
    from deepyard.train.trainer import Run


def parametrised_layers(model: nn.Module) -> list[str]:
    """Names of the modules that own parameters directly, in module (registration) order."""
    return [name for name, m in model.named_modules() if next(m.parameters(recurse=False), None) is not None]


def _names(param: str) -> list[str]:
    """A parameter's name and its module's, plus both without a spec network's `layers.` prefix."""
    names = [param, param.rsplit(".", 1)[0]]
    return names + [n.removeprefix("layers.") for n in names if n.startswith("layers.")]


@dataclass(frozen=True)
class Plan:
    heads: list[str]
    head_params: frozenset[str]
    frozen: frozenset[str]  # frozen for the whole run
    config: FinetuneConfig = field(repr=False)


def make_plan(model: nn.Module, ft: FinetuneConfig) -> Plan:
    """Which parameters are the head and which stay frozen; errors name patterns that match nothing."""
    params = [n for n, _ in model.named_parameters()]
    heads = find_heads(model)
    head_params = frozenset(n for n in params if any(n.startswith(h + ".") for h in heads))
    frozen: set[str] = set()
    for pattern in ft.freeze:
        hits = {n for n in params if any(fnmatch.fnmatchcase(x, pattern) for x in _names(n))}
        if not hits:
            known = ", ".join(n.removeprefix("layers.") for n in parametrised_layers(model))
            raise InvalidValueError(f"finetune.freeze pattern {pattern!r} matches no parameter; layers: {known}")
        frozen |= hits
    if ft.train_last:
        layers = parametrised_layers(model)
        if ft.train_last > len(layers):
            raise InvalidValueError(f"finetune.train_last is {ft.train_last} but the network has {len(layers)} "
                                    "parametrised layers")  # fmt: skip
        kept = set(layers[-ft.train_last :])
        frozen |= {n for n in params if n.rsplit(".", 1)[0] not in kept}
    if frozen >= set(params):
        raise InvalidValueError("the fine-tune settings freeze every parameter; nothing would train")
    return Plan(heads, head_params, frozenset(frozen), ft)


def optimizer_params(model: nn.Module, ft: FinetuneConfig) -> list[dict[str, Any]]:
    """Freeze what stays frozen; return the body and head groups (frozen parameters are left out)."""
    plan = make_plan(model, ft)
    body: list[nn.Parameter] = []
    head: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        p.requires_grad_(name not in plan.frozen)
        if name in plan.frozen:
            continue
        (head if name in plan.head_params else body).append(p)
    groups = [{"params": body, "name": "body", "lr_mult": ft.body_lr_mult},
              {"params": head, "name": "head", "lr_mult": ft.head_lr_mult}]  # fmt: skip
    return [g for g in groups if g["params"]]


def _keep_eval(module: nn.Module, args: Any) -> None:
    module.training = False  # a frozen BatchNorm normalises with its running statistics and leaves them alone


class FinetuneSchedule(Callback):
    """Applies the phase (head only, then all but the frozen) for the current step; keeps frozen BN in eval."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.head_steps = 0
        self.hooks: dict[str, Any] = {}

    def on_train_start(self, run: Run) -> None:
        if self.plan.config.head_epochs:
            self.head_steps = every(self.plan.config.head_epochs, run.steps_per_epoch)
        self.apply(run)

    def on_step_end(self, run: Run, info: StepInfo) -> None:
        if run.state.step == self.head_steps:
            self.apply(run)

    def head_phase(self, step: int) -> bool:
        return step < self.head_steps

    def apply(self, run: Run) -> None:
        model = _bare(run)
        head_only = self.head_phase(run.state.step)
        for name, p in model.named_parameters():
            p.requires_grad_(name not in self.plan.frozen and (not head_only or name in self.plan.head_params))
        factor = self.plan.config.unfreeze_lr_mult if self.head_steps and not head_only else 1.0
        mults = {"body": self.plan.config.body_lr_mult, "head": self.plan.config.head_lr_mult}
        for group in run.optimizer.param_groups:
            group["lr_mult"] = mults[group["name"]] * factor
        self._batchnorm(model)

    def _batchnorm(self, model: nn.Module) -> None:
        for name, module in model.named_modules():
            if not isinstance(module, nn.modules.batchnorm._BatchNorm):
                continue
            params = list(module.parameters(recurse=False))
            frozen = bool(params) and not any(p.requires_grad for p in params)
            if frozen and name not in self.hooks:
                self.hooks[name] = module.register_forward_pre_hook(_keep_eval)
            elif not frozen and name in self.hooks:
                self.hooks.pop(name).remove()


def _bare(run: Run) -> nn.Module:
    model = run.bare_model()
    inner: nn.Module = getattr(model, "_orig_mod", model)
    return inner


def schedule_callback(run: Run) -> FinetuneSchedule | None:
    return FinetuneSchedule(make_plan(_bare(run), run.config.finetune)) if run.config.finetune.active else None


# --- the start weights -------------------------------------------------------------------------------------------


def resolve_start(
    settings: Settings, source: str, network: str | NetworkSpec | None
) -> tuple[Pretrained, str | NetworkSpec]:
    """Load the source and pick the network: the one given, else the one the source records."""
    start = load_pretrained(settings, source)
    if network is not None:
        return start, network
    if start.network is None:
        raise InvalidValueError(f"{source!r} holds weights only; give the network they belong to (--network NAME)")
    record = start.network
    return start, spec_from_data(record["spec"]) if record.get("spec") is not None else str(record["ref"])


def source_normalization(preprocessing: dict[str, Any], channels: int) -> tuple[list[float], list[float]] | None:
    """The per-channel (mean, std) on the 0..1 scale the source's weights expect, for `channels` input channels;
    None when the source records none (a run trained by Deepyard without them, a bare weights file)."""
    if preprocessing.get("kind") == "normalize":
        mean, std = preprocessing.get("mean"), preprocessing.get("std")
    else:  # a Deepyard run or archive: what it was trained with
        mean, std = preprocessing.get("input_mean"), preprocessing.get("input_std")
    if not mean or not std or len(mean) != len(std):
        return None
    return _to_channels([float(m) for m in mean], channels), _to_channels([float(s) for s in std], channels)


def _to_channels(values: list[float], channels: int) -> list[float]:
    if len(values) == channels:
        return values
    if channels == 1:
        return [sum(values) / len(values)]
    if len(values) == 1:
        return values * channels
    raise InvalidValueError(f"the source normalises {len(values)} channels; the dataset has {channels}")


def load_start(
    settings: Settings,
    model: nn.Module,
    record: dict[str, Any],
    input_shape: tuple[int, ...],
    classes: list[str],
    ft: FinetuneConfig,
    start: Pretrained | None = None,
) -> LoadReport:
    """Put the recorded source's weights into `model` (the run's fresh model) and say what happened."""
    start = start or load_pretrained(settings, record["ref"])
    if start.sha256 != record["sha256"]:
        raise IntegrityError(f"the weights of {record['ref']!r} changed since the run started (sha256 "
                             f"{start.sha256[:12]}, recorded {record['sha256'][:12]}); start a new run")  # fmt: skip
    if ft.reset_head == "auto":
        reset = start.labels is not None and list(start.labels) != list(classes)
    else:
        reset = ft.reset_head == "always"
    with torch.no_grad():
        return load_matching(model, start.state, reset, start.input_shape, tuple(input_shape))
