"""A sweep is validated whole before anything is recorded or queued: the space's keys, types and bounds, the
objective, the sampler's needs, the fixed settings; each refusal names the bad key or value and the valid ones."""

from __future__ import annotations

from typing import Any

import pytest

from deepyard.config import Settings
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.jobs import list_jobs
from deepyard.networks import NetworkSpec
from deepyard.sweeps import check_sweep, create_sweep, list_sweeps, parse_space
from deepyard.sweeps.space import grid_of
from deepyard.train.milestones import milestones, time_to
from tests.sweeps.conftest import SPACE, sweep_data


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"solver.lrr": {"type": "float", "low": 0.1, "high": 1}},
         r"search space key 'solver.lrr' is not a training setting; valid: 'network', 'epochs', .*'solver.lr'"),
        ({"monitor": {"type": "choice", "values": ["val_loss"]}}, r"'monitor' is set by the sweep"),
        ({"solver.lr": {"type": "real", "low": 0.1, "high": 1}}, r"type 'float', 'int' or 'choice'"),
        ({"solver.lr": {"type": "float", "low": 1, "high": 0.1}}, r"'solver.lr': low 1 must be below high 0.1"),
        ({"solver.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, r"log needs low > 0"),
        ({"solver.lr": {"type": "float", "low": 0.1, "high": 1000}}, r"'solver.lr': 1000.0 is refused: .*equal to 100"),
        ({"batch_size": {"type": "int", "low": 0, "high": 64}}, r"'batch_size': 0 is refused"),
        ({"solver.type": {"type": "choice", "values": ["sgd", "lion"]}}, r"'lion' is refused: .*'sgd'"),
        ({"batch_size": {"type": "int", "low": 8, "hi": 64}}, r"'batch_size' hi"),
        ([], r"must be a non-empty mapping"),
    ],
)  # fmt: skip
def test_a_bad_space_names_the_key_and_the_valid_ones(space: Any, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        parse_space(space)


def test_the_space_parses_into_typed_parameters_and_grids() -> None:
    space = parse_space(SPACE)
    assert space["solver.lr"].log and space["batch_size"].values == [8, 16, 32]  # type: ignore[union-attr]
    assert grid_of(parse_space({"batch_size": {"type": "int", "low": 8, "high": 32, "step": 8}})) == {
        "batch_size": [8, 16, 24, 32]}  # fmt: skip
    with pytest.raises(InvalidValueError, match=r"'solver.lr': a grid needs 'step' for a float"):
        grid_of(space)


def test_an_invalid_sweep_is_refused_before_anything_is_recorded_or_queued(
    settings: Settings, tiny: str, tiny_net: NetworkSpec
) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"space": {"solver.lrr": {"type": "float", "low": 0.1, "high": 1}}}, r"'solver.lrr' is not a training"),
        ({"objective": "val_top7"}, r"objective 'val_top7' is not a metric of classification; use 'val_loss', "),
        ({"sampler": "grid"}, r"'solver.lr': a grid needs 'step'"),
        ({"sampler": "bayes"}, r"sweep sampler: Input should be 'tpe', 'random' or 'grid'"),
        ({"trials": None}, r"a sweep needs a budget"),
        ({"config": {"epochs": -1}}, r"epochs: Input should be greater than 0"),
    ]
    for extra, message in bad:
        with pytest.raises(InvalidValueError, match=message):
            create_sweep(settings, {**sweep_data(tiny, tiny_net), **extra})
    with pytest.raises(NotFoundError, match=r"no dataset with id or name 'nope'; existing: .* \(bars\)"):
        create_sweep(settings, {**sweep_data(tiny, tiny_net), "dataset": "nope"})
    assert list_sweeps(settings) == [] and list_jobs(settings) == []
    spec = check_sweep(settings, sweep_data(tiny, tiny_net, objective="val_top1"))
    assert spec.direction == "maximize" and spec.networks[0]["name"] == "tiny"


def test_milestones_are_the_validations_that_beat_every_earlier_one() -> None:
    points = [{"step": 10, "epoch": 0.5, "val_top1": 50.0, "wall": 1.0}, {"step": 15, "epoch": 0.7, "train_loss": 1},
              {"step": 20, "epoch": 1.0, "val_top1": 40.0, "wall": 2.0},
              {"step": 30, "epoch": 1.5, "val_top1": 90.0, "wall": 3.0}]  # fmt: skip
    found = milestones(points, "val_top1", True, per_step=8)
    assert [(m.value, m.step, m.images, m.wall) for m in found] == [(50.0, 10, 80, 1.0), (90.0, 30, 240, 3.0)]
    assert time_to(found, 60, True) == found[1] and time_to(found, 95, True) is None
    assert [m.value for m in milestones(points, "val_top1", False, 8)] == [50.0, 40.0]
