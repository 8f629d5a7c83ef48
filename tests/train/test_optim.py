"""Every solver's first steps against its update rule (sgd with its momentum, as Caffe's), and every loss against a
hand-computed value."""

from __future__ import annotations

import math
from typing import get_args

import pytest
import torch

from deepyard.config import Settings
from deepyard.errors import InvalidValueError
from deepyard.networks import NetworkSpec
from deepyard.train import SolverConfig, make_config, train
from deepyard.train.checkpoint import load_checkpoint
from deepyard.train.config import Solver
from deepyard.train.optim import SOLVERS, build_optimizer, l1_penalty, override_dropout
from deepyard.train.presets import preset_settings

LR, G1, G2 = 0.1, 2.0, -1.0  # two successive gradients


def two_steps(solver: str, **extra: float) -> list[float]:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    extra = {"weight_decay": 0.0, **extra}  # the exact updates below have no decay
    opt = build_optimizer([w], SolverConfig(type=solver, lr=LR, **extra))  # type: ignore[arg-type]
    seen = []
    for g in (G1, G2):
        w.grad = torch.tensor([g])
        opt.step()
        seen.append(float(w.detach()))
    return seen


def test_sgd_uses_the_momentum_setting_as_caffe_does() -> None:
    v1, v2 = G1, 0.9 * G1 + G2  # Caffe's (DIGITS') SGD: v = momentum * v + g, w -= lr * v; 0.9 by default
    assert SolverConfig().momentum == 0.9 and make_config(**preset_settings("digits")).solver.momentum == 0.9
    assert two_steps("sgd") == pytest.approx([1 - LR * v1, 1 - LR * v1 - LR * v2])
    assert two_steps("sgd", momentum=0.5) == pytest.approx([1 - LR * G1, 1 - LR * G1 - LR * (0.5 * G1 + G2)])
    w = torch.nn.Parameter(torch.tensor([1.0]))
    assert build_optimizer([w], SolverConfig(type="sgd", momentum=0.7)).param_groups[0]["momentum"] == 0.7


def test_sgd_with_momentum_0_is_plain_sgd() -> None:
    assert two_steps("sgd", momentum=0) == pytest.approx([1 - LR * G1, 1 - LR * G1 - LR * G2])
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = build_optimizer([w], SolverConfig(type="sgd", momentum=0, weight_decay=0))
    w.grad = torch.tensor([G1])
    opt.step()
    assert opt.param_groups[0]["momentum"] == 0 and "momentum_buffer" not in opt.state[w]  # no velocity kept


def test_momentum() -> None:
    v1, v2 = G1, 0.9 * G1 + G2
    assert two_steps("momentum", momentum=0.9) == pytest.approx([1 - LR * v1, 1 - LR * v1 - LR * v2])
    assert two_steps("momentum") == two_steps("sgd")  # the same solver under its other name


def test_momentum_speeds_up_sgd_on_an_ill_conditioned_problem() -> None:
    """Measured: 100 steps on f(w) = (w0^2 + 50 w1^2) / 2 from (1, 1) at lr 0.01: momentum 0.9 ends 0.004 from the
    minimum, plain SGD 0.366."""

    def distance(momentum: float) -> float:
        w = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
        opt = build_optimizer([w], SolverConfig(type="sgd", lr=0.01, momentum=momentum, weight_decay=0))
        for _ in range(100):
            opt.zero_grad()
            (0.5 * (w[0] ** 2 + 50 * w[1] ** 2)).backward()
            opt.step()
        return float(w.detach().norm())

    plain, heavy = distance(0), distance(0.9)
    assert plain == pytest.approx(0.99**100, rel=1e-4)  # plain SGD: w0 shrinks by (1 - lr) a step, 0.366
    assert heavy < plain / 10, (plain, heavy)


def test_a_digits_sgd_run_keeps_momentum_buffers(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    config = make_config(**{**preset_settings("digits"), "epochs": 0.5, "batch_size": 8, "device": "cpu"})
    result = train(settings, tiny, tiny_net, config)
    saved = load_checkpoint(sorted((result.folder / "checkpoints").glob("step-*.pt"))[-1])["optimizer"]
    assert saved["param_groups"][0]["momentum"] == 0.9
    assert saved["state"] and all("momentum_buffer" in s for s in saved["state"].values())


def test_nesterov_needs_momentum() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    with pytest.raises(InvalidValueError, match="nesterov solver needs a momentum above 0"):
        build_optimizer([w], SolverConfig(type="nesterov", momentum=0))


def test_every_solver_name_has_a_builder_and_no_other() -> None:
    assert sorted(SOLVERS) == sorted(get_args(Solver))


def test_unknown_solver_lists_valid_solvers() -> None:
    """A config that skipped validation does not fall through to some default solver."""
    w = torch.nn.Parameter(torch.tensor([1.0]))
    bad = SolverConfig.model_construct(type="lbfgs", lr=LR)
    with pytest.raises(InvalidValueError, match=r"unknown solver 'lbfgs'; valid: 'sgd', .* or 'adamw'") as caught:
        build_optimizer([w], bad)
    assert all(repr(name) in str(caught.value) for name in get_args(Solver))


def test_nesterov() -> None:
    v1, v2 = G1, 0.9 * G1 + G2
    w1 = 1 - LR * (G1 + 0.9 * v1)
    assert two_steps("nesterov", momentum=0.9) == pytest.approx([w1, w1 - LR * (G2 + 0.9 * v2)])


def test_adagrad() -> None:
    eps = 1e-8
    w1 = 1 - LR * G1 / (math.sqrt(G1**2) + eps)
    assert two_steps("adagrad", eps=eps) == pytest.approx([w1, w1 - LR * G2 / (math.sqrt(G1**2 + G2**2) + eps)])


def test_rmsprop() -> None:
    a, eps = 0.99, 1e-8
    s1 = (1 - a) * G1**2
    s2 = a * s1 + (1 - a) * G2**2
    w1 = 1 - LR * G1 / (math.sqrt(s1) + eps)
    expected = [w1, w1 - LR * G2 / (math.sqrt(s2) + eps)]
    assert two_steps("rmsprop", rms_decay=a, eps=eps) == pytest.approx(expected, abs=1e-6)


def test_adadelta() -> None:
    rho, eps = 0.9, 1e-6
    sq = (1 - rho) * G1**2
    delta = math.sqrt(0 + eps) / math.sqrt(sq + eps) * G1
    assert two_steps("adadelta", rms_decay=rho, eps=eps)[0] == pytest.approx(1 - LR * delta)


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_adam_family(solver: str) -> None:
    b1, b2, eps, wd = 0.9, 0.999, 1e-8, 0.5 if solver == "adamw" else 0.0
    m1, v1 = (1 - b1) * G1, (1 - b2) * G1**2
    step1 = LR * (m1 / (1 - b1)) / (math.sqrt(v1 / (1 - b2)) + eps)
    w1 = 1 * (1 - LR * wd) - step1  # AdamW decays the weight itself, before the Adam step
    assert two_steps(solver, weight_decay=wd)[0] == pytest.approx(w1)


def test_l1_penalty_and_dropout_override() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
    penalty = l1_penalty(model, 0.1)
    assert penalty is not None and float(penalty.detach()) == pytest.approx(0.1 * 3.5)  # biases are not penalised
    assert l1_penalty(model, 0) is None
    override_dropout(model, 0.1)
    assert model[1].p == 0.1
