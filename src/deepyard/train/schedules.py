"""Learning-rate policies, DIGITS' and modern ones, as pure functions of training progress.

`lr_at(config, lr, t)` gives the rate at progress t in % (0 to 100) of training, with the formulas DIGITS showed:
fixed, step, multistep, exp, inv, poly and sigmoid, plus cosine and one-cycle, and a linear warm-up on top of any
of them. Being a pure function of the step, the schedule needs no state of its own to resume exactly.
`schedule_points` returns the whole curve for the "visualize LR" chart.
"""

from __future__ import annotations

import math

from deepyard.train.config import ScheduleConfig


def lr_at(s: ScheduleConfig, lr: float, t: float) -> float:
    """The learning rate at progress `t` (in % of training) for base rate `lr`."""
    rate = _policy(s, lr, t)
    if s.warmup_pct > 0 and t < s.warmup_pct:
        rate *= t / s.warmup_pct
    return rate


def _policy(s: ScheduleConfig, lr: float, t: float) -> float:
    if s.policy == "fixed":
        return lr
    if s.policy == "step":
        return float(lr * s.gamma ** math.floor(t / s.step_size))
    if s.policy == "multistep":
        return float(lr * s.gamma ** sum(1 for p in s.steps if t >= p))
    if s.policy == "exp":
        return float(lr * s.gamma**t)
    if s.policy == "inv":
        return float(lr * (1 + s.gamma * t) ** -s.power)
    if s.policy == "poly":
        return float(lr * max(0.0, 1 - t / 100) ** s.power)
    if s.policy == "sigmoid":
        return lr * _logistic(-s.gamma * (t - s.sigmoid_step))
    if s.policy == "cosine":
        return s.min_lr + (lr - s.min_lr) * (1 + math.cos(math.pi * t / 100)) / 2
    return _one_cycle(s, lr, t)


def _logistic(x: float) -> float:
    """1 / (1 + e^-x) without overflow for any finite x (a steep sigmoid schedule has x in the thousands)."""
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def _one_cycle(s: ScheduleConfig, lr: float, t: float) -> float:
    """Rise from lr / div_factor to lr (cosine), then anneal to lr / (div_factor * final_div_factor)."""
    start, end = lr / s.div_factor, lr / (s.div_factor * s.final_div_factor)
    if t < s.pct_start:
        return _cosine_between(start, lr, t / s.pct_start)
    return _cosine_between(lr, end, (t - s.pct_start) / (100 - s.pct_start))


def _cosine_between(a: float, b: float, fraction: float) -> float:
    return b + (a - b) * (1 + math.cos(math.pi * min(1.0, fraction))) / 2


def progress(step: int, total_steps: int) -> float:
    """Progress in % of training after `step` optimizer steps."""
    return 100.0 * step / max(1, total_steps)


def schedule_points(s: ScheduleConfig, lr: float, epochs: float, points: int = 200) -> list[tuple[float, float]]:
    """(epoch, learning rate) pairs across training, for charts."""
    return [(epochs * i / points, lr_at(s, lr, 100.0 * i / points)) for i in range(points + 1)]
