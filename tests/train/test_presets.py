"""Presets: the default recipe (TrainConfig's defaults, chosen by bench/recipes.py) and DIGITS' classic settings
(`--preset digits`), through the console script and the domain; the quality gate trains both on MNIST."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepyard.config import Settings
from deepyard.datasets import import_mnist
from deepyard.errors import InvalidValueError
from deepyard.train import TrainConfig, make_config, train
from deepyard.train.presets import PRESETS, preset_settings, with_preset
from tests.cli.test_datasets_cli import run
from tests.train.conftest import write_bars


def test_the_default_recipe_and_the_digits_preset() -> None:
    default = TrainConfig()
    assert (default.solver.type, default.solver.lr, default.schedule.policy) == ("adamw", 0.003, "onecycle")
    digits = make_config(**preset_settings("digits"))
    assert (digits.solver.type, digits.solver.lr, digits.solver.momentum, digits.solver.weight_decay) == (
        "sgd", 0.01, 0.9, 1e-4)  # fmt: skip
    assert (digits.schedule.policy, digits.schedule.step_size, digits.schedule.gamma, digits.epochs) == (
        "step", 33, 0.1, 30)  # fmt: skip
    assert make_config(**preset_settings("default")) == default
    with pytest.raises(InvalidValueError, match=r"preset 'caffe' is not one of 'default' or 'digits'"):
        preset_settings("caffe")


def test_a_request_config_wins_over_its_preset() -> None:
    merged = with_preset("digits", {"solver": {"lr": 0.05}, "epochs": 2})
    assert merged["solver"] == {"type": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}
    assert merged["epochs"] == 2 and merged["schedule"]["policy"] == "step"
    assert with_preset(None, {"epochs": 2}) == {"epochs": 2}
    assert set(PRESETS) == {"default", "digits"}


def test_train_preset_through_the_console_script(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars", per_class=8)
    home = tmp_path / "home"
    assert run(home, "dataset", "create", str(tmp_path / "bars"), "--size", "12x12").returncode == 0
    net = tmp_path / "tiny.yaml"
    net.write_text("name: tiny\nlayers:\n  - {name: fc, type: linear, out_features: num_classes}\n")
    proc = run(home, "train", "--dataset", "bars", "--network", str(net), "--preset", "digits", "--epochs", "1",
               "--lr", "0.02", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(run(home, "run", "show", json.loads(proc.stdout)["run"], "--json").stdout)
    solver, schedule = shown["config"]["solver"], shown["config"]["schedule"]
    assert (solver["type"], solver["lr"], schedule["policy"], shown["config"]["epochs"]) == ("sgd", 0.02, "step", 1)
    bad = run(home, "train", "--dataset", "bars", "--network", str(net), "--preset", "caffe")
    assert bad.returncode == 2 and "preset 'caffe' is not one of 'default' or 'digits'" in bad.stderr


@pytest.mark.slow
def test_the_default_recipe_beats_digits_on_mnist(settings: Settings, mnist_dir: Path) -> None:
    """What a user who changes nothing gets: LeNet on 6,000 MNIST images, 2 epochs (bench/recipes.py's setting)."""
    dataset = import_mnist(settings, mnist_dir, max_per_class=600, val_max_per_class=200).id
    scores = {}
    for name in ("default", "digits"):
        config = make_config(**{**preset_settings(name), "epochs": 2, "val_interval": 2})
        scores[name] = train(settings, dataset, "lenet", config).last_val["val_top1"]
    print(scores)
    assert scores["default"] >= 96.0 and scores["default"] >= scores["digits"] + 5, scores
