"""TrainConfig: everything a training run takes, as one typed, validated value with DIGITS' defaults.

The CLI (`deepyard train --set key=value`), the job system and the web form all produce one of these; the run
folder stores it resolved (`config.json`), so a run can be resumed, cloned and compared. Units are in the field
descriptions; positions of learning-rate steps are in % of training, as in DIGITS. Every number is finite and
bounded (an `inf`, `nan`, `1e308` or `1e12` is refused before anything runs, naming the field and its range).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deepyard.errors import InvalidValueError
from deepyard.limits import check_data, shown

Solver = Literal["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw"]
Policy = Literal["fixed", "step", "multistep", "exp", "inv", "poly", "sigmoid", "cosine", "onecycle"]
# every task's losses (deepyard.tasks); a run's task says which apply to it, and "auto" takes its default
Loss = Literal[
    "auto", "cross_entropy", "hinge", "mse", "bce", "focal", "l1", "smooth_l1", "weighted_cross_entropy", "dice",
    "ce_dice",
]  # fmt: skip


MAX_EPOCHS = 100_000  # epochs of one run (and of every interval counted in epochs)
MAX_BATCH = 65_536  # images per step
MAX_STEPS = 10**9  # steps (log interval)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class SolverConfig(_Frozen):
    type: Solver = Field("adamw", description="Optimizer (the default recipe: adamw, lr 0.003, onecycle).")
    lr: float = Field(0.003, gt=0, le=100, description="Base learning rate (sgd: about 0.01-0.1).")
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum of sgd and nesterov (0: plain SGD).")
    weight_decay: float = Field(
        0.01, ge=0, le=10, description="L2 penalty, decoupled for adamw (0.01); for sgd about 5e-4 (DIGITS: lr/100)."
    )
    rms_decay: float = Field(0.99, gt=0, lt=1, description="Running-average decay (rmsprop alpha, adadelta rho).")
    beta1: float = Field(0.9, ge=0, lt=1, description="Adam/AdamW first-moment decay.")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam/AdamW second-moment decay.")
    eps: float = Field(1e-8, gt=0, le=1, description="Numerical stabiliser of adaptive solvers.")
    clip_grad_norm: float | None = Field(
        None, gt=0, le=1e6, description="Clip the gradients' global L2 norm to this before each step (RNNs: 1-5)."
    )


class ScheduleConfig(_Frozen):
    """Learning-rate policy; t is the progress through training in % (0 to 100)."""

    policy: Policy = Field("onecycle", description="Learning-rate policy (DIGITS' was step; --preset digits).")
    step_size: float = Field(33, ge=0.01, le=100, description="step: lr * gamma^floor(t / step_size).")
    gamma: float = Field(
        0.1, gt=0, le=1000, description="Decay factor of step, multistep and exp (at most 1); rate of inv and sigmoid."
    )
    steps: list[Annotated[float, Field(ge=0, le=100)]] = Field(
        [50, 85], max_length=100, description="multistep: positions in % where lr is multiplied by gamma."
    )
    power: float = Field(0.5, gt=0, le=100, description="inv: lr * (1 + gamma t)^-power; poly: lr * (1 - t/100)^power.")
    sigmoid_step: float = Field(50, ge=0, le=100, description="sigmoid: lr / (1 + exp(gamma (t - step))).")
    min_lr: float = Field(0.0, ge=0, le=100, description="cosine: the rate reached at the end.")
    pct_start: float = Field(25, gt=0, lt=100, description="onecycle: % of training spent rising to lr.")
    div_factor: float = Field(25, gt=1, le=1e6, description="onecycle: starts at lr / div_factor.")
    final_div_factor: float = Field(
        1e4, gt=1, le=1e9, description="onecycle: ends at lr / (div_factor * final_div_factor)."
    )
    warmup_pct: float = Field(0, ge=0, lt=100, description="Linear warm-up over this % of training (any policy).")

    @model_validator(mode="after")
    def _decays(self) -> ScheduleConfig:
        if self.policy in ("step", "multistep", "exp") and self.gamma > 1:
            raise InvalidValueError(f"gamma {self.gamma:g}: the {self.policy} policy decays the rate; at most 1")
        return self


class AugmentConfig(_Frozen):
    """On-line augmentation, applied to whole training batches on the training device."""

    flip: Literal["none", "lr", "ud", "lrud"] = Field("none", description="Random flips (each with p=0.5).")
    rot90: Literal["none", "rot90", "rot180", "rotall"] = Field("none", description="Random quarter turns.")
    rotation: float = Field(0, ge=0, le=180, description="Random rotation within +-degrees.")
    scale: float = Field(0, ge=0, le=1, description="Scale jitter: stddev of the zoom factor (0.07 suggested).")
    noise: float = Field(0, ge=0, le=1, description="Gaussian noise stddev, as a fraction of full scale (0.03).")
    contrast: float = Field(0, ge=0, le=5, description="Random contrast factor in [1 - c, 1 + c] (0.8).")
    hsv_h: float = Field(0, ge=0, le=0.5, description="Hue shift stddev (0.02); colour images only.")
    hsv_s: float = Field(0, ge=0, le=1, description="Saturation shift stddev (0.04).")
    hsv_v: float = Field(0, ge=0, le=1, description="Value shift stddev (0.06).")
    invert: float = Field(0, ge=0, le=1, description="Probability of inverting an image (255 - pixel).")
    # box-aware (SSD's recipe); a task without boxes refuses them (deepyard.train.tasking.check_task_augment)
    iou_crop: float = Field(
        0, ge=0, le=1, description="Detection: probability of an IoU crop, a random crop keeping boxes (SSD: 1)."
    )
    zoom_out: float = Field(
        1, ge=1, le=4, description="Detection: zoom out up to this side ratio, mean-colour fill (1: off; SSD: 4)."
    )


class FinetuneConfig(_Frozen):
    """Fine-tuning from a pretrained model or a previous run (`deepyard train --from ...`); inert by default.

    Names are the model's parameter or module names (`conv1`, `layer4.*`, `features.0.weight`; a spec network's
    layers also match without their `layers.` prefix). The head is the classifier layer (see deepyard.transfer).
    """

    freeze: list[Annotated[str, Field(max_length=200)]] = Field(
        [], max_length=1000, description="Glob patterns of parameters or modules to keep frozen."
    )
    train_last: int = Field(0, ge=0, le=100_000, description="Train only the last N parametrised layers (0: all).")
    head_epochs: float = Field(
        0, ge=0, le=MAX_EPOCHS, description="First train only the head for this many epochs, body frozen."
    )
    unfreeze_lr_mult: float = Field(
        0.1, gt=0, le=1000, description="After the head epochs, every rate is multiplied by this."
    )
    body_lr_mult: float = Field(
        1.0, ge=0, le=1000, description="Learning-rate multiplier of the body (all but the head)."
    )
    head_lr_mult: float = Field(1.0, ge=0, le=1000, description="Learning-rate multiplier of the head.")
    reset_head: Literal["auto", "always", "never"] = Field(
        "auto", description="Reinitialise the head: auto when the class count or the labels differ."
    )
    normalize: Literal["source", "dataset"] = Field(
        "source", description="source: inputs normalised as the weights expect (their mean, std) when recorded."
    )

    @property
    def active(self) -> bool:
        """True when the optimizer needs parameter groups or some parameters are frozen."""
        return bool(
            self.freeze or self.train_last or self.head_epochs or self.body_lr_mult != 1 or self.head_lr_mult != 1
        )


class TrainConfig(_Frozen):
    """One training run."""

    epochs: float = Field(30, gt=0, le=MAX_EPOCHS, description="Training length in epochs (fractions allowed).")
    batch_size: int = Field(64, ge=1, le=MAX_BATCH, description="Images per optimizer step (per process under DDP).")
    batch_accumulation: int = Field(1, ge=1, le=1024, description="Batches whose gradients are summed per step.")
    val_interval: float = Field(
        1, gt=0, le=MAX_EPOCHS, description="Validate every this many epochs (fractions allowed)."
    )
    snapshot_interval: float = Field(
        1, gt=0, le=MAX_EPOCHS, description="Checkpoint every this many epochs (fractions allowed)."
    )
    keep_last: int = Field(
        3, ge=0, le=100_000, description="Step checkpoints kept, the newest (0: all); best.pt is always kept too."
    )
    log_interval: int = Field(
        0, ge=0, le=MAX_STEPS, description="Steps between training-metric points (0: about 20 per epoch)."
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed: same seed, same result on the CPU.")
    solver: SolverConfig = SolverConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    l1: float = Field(0, ge=0, le=10, description="L1 penalty on the weights, added to the loss.")
    label_smoothing: float = Field(0, ge=0, lt=1, description="Cross-entropy label smoothing.")
    dropout: float | None = Field(None, ge=0, lt=1, description="Override every dropout layer's rate.")
    loss: Loss = Field(
        "auto",
        description="auto = the task's default; classification: cross_entropy, hinge, mse, bce; multi-label: "
        "bce, focal; regression: mse, l1, smooth_l1.",
    )
    mean: Literal["none", "image", "pixel"] = Field("image", description="Mean subtraction (DIGITS' default).")
    input_mean: list[Annotated[float, Field(ge=-1000, le=1000)]] | None = Field(
        None, max_length=4, description="Per-channel mean (0..1 scale) subtracted instead of `mean`; set from weights."
    )
    input_std: list[Annotated[float, Field(le=1000)]] | None = Field(
        None, max_length=4, description="Per-channel std (0..1 scale) inputs are divided by."
    )
    crop_size: int | None = Field(
        None, ge=1, le=16384, description="Random square crop in training, centre crop in eval."
    )
    augment: AugmentConfig = AugmentConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    device: str = Field("auto", max_length=16, description="auto, cpu, cuda or cuda:N (torchrun sets one per process).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="auto picks the fastest safe.")
    channels_last: Literal["auto", "on", "off"] = Field("auto", description="Memory layout of conv activations.")
    compile: bool = Field(False, description="torch.compile the model (slow start, faster steps).")
    in_memory: Literal["auto", "on", "off"] = Field("auto", description="Hold splits in (device) memory.")
    workers: int = Field(2, ge=0, le=256, description="DataLoader workers when streaming from disk.")
    early_stopping: int = Field(
        0, ge=0, le=1_000_000, description="Stop after this many validations without gain (0: off)."
    )
    monitor: str = Field(
        "val_loss",
        pattern=r"^val_[a-z0-9_]{1,40}$",
        description="Metric for best checkpoint and early stop: val_loss or one of the task's (val_top1, val_map, "
        "val_r2, ...).",
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.loss not in ("auto", "cross_entropy") and self.label_smoothing:
            raise InvalidValueError("label_smoothing applies to the cross_entropy loss only")
        mean, std = self.input_mean, self.input_std
        if (mean is None) != (std is None) or (mean is not None and std is not None and len(mean) != len(std)):
            raise InvalidValueError(f"input_mean {mean} and input_std {std} go together, one value per channel each")
        if std is not None and not all(s > 0 for s in std):
            raise InvalidValueError(f"input_std {std} must be positive")
        return self


def make_config(base: TrainConfig | None = None, **updates: Any) -> TrainConfig:
    """A config from keyword updates; dotted keys (`solver.lr`) reach nested fields. Errors name the field."""
    data = (base or TrainConfig()).model_dump()
    check_data(updates, "training settings")
    for key, value in updates.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise InvalidValueError(f"unknown setting {shown(key)}; sections: solver, schedule, augment, finetune")
            node = node[part]
        if leaf not in node:
            raise InvalidValueError(f"unknown setting {shown(key)}; valid here: {', '.join(sorted(node))}")
        node[leaf] = value
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidValueError("invalid training settings: " + "; ".join(map(_problem, exc.errors()))) from None


def _problem(err: Any) -> str:
    """One field's problem: where, why (a check's own message as it is) and the value, cut short."""
    where = ".".join(map(str, err["loc"])) or "settings"
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidValueError):
        return f"{where}: {cause}"
    return f"{where}: {err['msg']} (got {shown(err.get('input'))})"
