"""Solvers and regularisation: config in, PyTorch objects out (losses belong to each task: deepyard.tasks).

Solvers map to torch.optim (SGD, Adagrad, Adadelta, RMSprop, Adam, AdamW). `sgd` is Caffe's (and so DIGITS') SGD: it
uses the momentum setting, 0.9 by default, and momentum 0 is plain SGD; `momentum` is the same solver under its
other name, and `nesterov` the same with Nesterov's update. RMSprop takes no momentum, as in Caffe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from deepyard.errors import InvalidValueError, choices
from deepyard.train.config import SolverConfig

Builder = Callable[[list[Any], SolverConfig], torch.optim.Optimizer]


def _sgd(p: list[Any], s: SolverConfig) -> torch.optim.Optimizer:
    if s.type == "nesterov" and s.momentum == 0:
        raise InvalidValueError("the nesterov solver needs a momentum above 0 (momentum 0 is plain sgd)")
    return torch.optim.SGD(p, lr=s.lr, momentum=s.momentum, nesterov=s.type == "nesterov", weight_decay=s.weight_decay)


SOLVERS: dict[str, Builder] = {  # every value of config.Solver, and only those (a test checks)
    "sgd": _sgd,
    "momentum": _sgd,
    "nesterov": _sgd,
    "adagrad": lambda p, s: torch.optim.Adagrad(p, lr=s.lr, weight_decay=s.weight_decay, eps=s.eps),
    "adadelta": lambda p, s: torch.optim.Adadelta(p, lr=s.lr, rho=s.rms_decay, eps=s.eps, weight_decay=s.weight_decay),
    "rmsprop": lambda p, s: torch.optim.RMSprop(p, lr=s.lr, alpha=s.rms_decay, eps=s.eps, weight_decay=s.weight_decay),
    "adam": lambda p, s: torch.optim.Adam(p, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps, weight_decay=s.weight_decay),
    "adamw": lambda p, s: torch.optim.AdamW(
        p, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps, weight_decay=s.weight_decay
    ),
}


def build_optimizer(
    params: Iterable[nn.Parameter] | Iterable[dict[str, Any]], s: SolverConfig
) -> torch.optim.Optimizer:
    """The optimizer for `s`, over parameters or parameter groups (a group's `lr_mult` scales its rate); the
    learning rate is then set every step by the schedule. An unknown solver (one that skipped validation) raises
    InvalidValueError naming the valid ones."""
    builder = SOLVERS.get(s.type)
    if builder is None:
        raise InvalidValueError(f"unknown solver {s.type!r}; valid: {choices(SOLVERS)}")
    return builder(list(params), s)


def l1_penalty(model: nn.Module, weight: float) -> torch.Tensor | None:
    """weight * sum |w| over the weight tensors (not biases or norm parameters), or None when off."""
    if weight <= 0:
        return None
    terms = [p.abs().sum() for name, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    return weight * torch.stack(terms).sum() if terms else None


def override_dropout(model: nn.Module, rate: float | None) -> None:
    """Set every dropout layer's rate (DIGITS users edited prototxt for this)."""
    if rate is None:
        return
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = rate


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the schedule's rate, times each group's `lr_mult` (fine-tuning's per-group rates; 1 otherwise)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)
