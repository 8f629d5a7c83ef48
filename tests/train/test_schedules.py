"""Every learning-rate policy against its formula (t in % of training), warm-up, and the chart points."""

from __future__ import annotations

import math

import pytest

from deepyard.train import ScheduleConfig, lr_at, schedule_points

LR = 0.1


@pytest.mark.parametrize(
    ("settings", "formula"),
    [
        ({"policy": "fixed"}, lambda t: LR),
        ({"policy": "step", "step_size": 33, "gamma": 0.1}, lambda t: LR * 0.1 ** math.floor(t / 33)),
        ({"policy": "multistep", "steps": [50, 85], "gamma": 0.5}, lambda t: LR * 0.5 ** ((t >= 50) + (t >= 85))),
        ({"policy": "exp", "gamma": 0.95}, lambda t: LR * 0.95**t),
        ({"policy": "inv", "gamma": 0.1, "power": 0.5}, lambda t: LR * (1 + 0.1 * t) ** -0.5),
        ({"policy": "poly", "power": 3}, lambda t: LR * (1 - t / 100) ** 3),
        ({"policy": "sigmoid", "sigmoid_step": 50, "gamma": 0.1}, lambda t: LR / (1 + math.exp(0.1 * (t - 50)))),
        ({"policy": "cosine", "min_lr": 0.001}, lambda t: 0.001 + (LR - 0.001) * (1 + math.cos(math.pi * t / 100)) / 2),
    ],
)
def test_policy_matches_its_formula(settings: dict[str, object], formula) -> None:
    s = ScheduleConfig.model_validate(settings)
    for t in (0, 10, 32.9, 33, 49.99, 50, 66, 85, 99.5, 100):
        assert lr_at(s, LR, t) == pytest.approx(formula(t), rel=1e-12), t


def test_one_cycle_rises_then_anneals() -> None:
    s = ScheduleConfig(policy="onecycle", pct_start=25, div_factor=25, final_div_factor=1e4)
    assert lr_at(s, LR, 0) == pytest.approx(LR / 25)
    assert lr_at(s, LR, 12.5) == pytest.approx((LR + LR / 25) / 2)
    assert lr_at(s, LR, 25) == pytest.approx(LR)
    assert lr_at(s, LR, 100) == pytest.approx(LR / 25 / 1e4)
    assert lr_at(s, LR, 62.5) == pytest.approx((LR + LR / 25e4) / 2)


def test_linear_warm_up_multiplies_any_policy() -> None:
    s = ScheduleConfig(policy="step", step_size=50, gamma=0.1, warmup_pct=10)
    assert lr_at(s, LR, 0) == 0
    assert lr_at(s, LR, 5) == pytest.approx(LR / 2)
    assert lr_at(s, LR, 10) == pytest.approx(LR)
    assert lr_at(s, LR, 60) == pytest.approx(LR * 0.1)


def test_schedule_points_span_the_run() -> None:
    points = schedule_points(ScheduleConfig(policy="poly", power=1), LR, epochs=30, points=10)
    assert points[0] == (0, LR) and points[-1] == (30, 0)
    assert [round(lr, 10) for _, lr in points] == [round(LR * (1 - i / 10), 10) for i in range(11)]
