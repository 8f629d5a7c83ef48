"""A task's default recipe (Task.recipe) at every entry point that builds a training config for a dataset: under
a preset's settings and the user's own, baked into the run's or job's stored config. The language model has one;
image classification has none and trains with TrainConfig's defaults as before."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deepyard.config import Settings, load_settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.jobs.runners import check_train
from deepyard.sweeps import check_sweep
from deepyard.tasks import get_task, list_tasks
from deepyard.train import TrainConfig, make_config
from deepyard.train.presets import base_settings, with_preset
from tests.cli.test_datasets_cli import DEEPYARD

TEXT = "abcdefgh" * 300 + "the quick brown fox jumps over the lazy dog\n" * 60
RECIPE = get_task("language-model").recipe


def lm_dataset(settings: Settings, folder: Path) -> str:
    (folder / "c.txt").write_text(TEXT, encoding="utf-8")
    spec = make_spec(name="tiny", task="language-model", val_pct=10,
                     source={"kind": "text", "train": folder / "c.txt", "context": 16})  # fmt: skip
    return create_dataset(settings, spec).id


def recipe_of(config: dict[str, object]) -> tuple[object, object, object]:
    solver = config["solver"]
    assert isinstance(solver, dict)
    return config["epochs"], config["batch_size"], solver["clip_grad_norm"]


def test_the_language_model_has_a_recipe_and_classification_none() -> None:
    assert RECIPE["epochs"] < TrainConfig().epochs and RECIPE["solver.clip_grad_norm"] == 1.0
    assert get_task("classification").recipe == {} and get_task(None).recipe == {}
    lm = make_config(**base_settings("language-model", None))
    assert (lm.epochs, lm.batch_size, lm.solver.clip_grad_norm) == (RECIPE["epochs"], RECIPE["batch_size"], 1.0)
    digits = make_config(**base_settings("language-model", "digits"))  # the preset over the recipe
    assert (digits.epochs, digits.solver.type, digits.solver.clip_grad_norm) == (30, "sgd", 1.0)
    assert make_config(**base_settings("classification", None)) == TrainConfig()
    described = {t.name: t.describe()["recipe"] for t in list_tasks()}  # `deepyard task list --json`
    assert described["language-model"] == RECIPE and described["classification"] == {}
    nested = with_preset(None, {"solver": {"lr": 0.01}, "epochs": 1}, "language-model")
    assert nested == {"epochs": 1, "batch_size": RECIPE["batch_size"], "solver": {"clip_grad_norm": 1.0, "lr": 0.01}}


def test_train_takes_the_task_recipe_and_a_flag_wins_through_the_console_script(tmp_path: Path) -> None:
    home = tmp_path / "home"
    lm_dataset(load_settings(home), tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}  # an LSTM on 2 loaded cores: 20x slower with 2

    def train(*flags: str) -> dict[str, Any]:
        proc = subprocess.run([*DEEPYARD, "--home", str(home), "train", "--dataset", "tiny", *flags, "--json"],
                              capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        done = json.loads(proc.stdout)
        info: dict[str, Any] = json.loads((Path(done["folder"]) / "run.json").read_text())
        return {**info, "done": done}

    plain = train()  # no flags: the task's network and recipe
    assert recipe_of(plain["config"]) == (RECIPE["epochs"], RECIPE["batch_size"], 1.0)
    assert plain["done"]["epochs"] == pytest.approx(RECIPE["epochs"], abs=0.1)  # whole steps
    flagged = train("--epochs", "0.5", "--set", "solver.clip_grad_norm=2")
    assert recipe_of(flagged["config"]) == (0.5, RECIPE["batch_size"], 2.0)  # the user's flags win, the rest stays
    listed = subprocess.run([*DEEPYARD, "task", "list"], capture_output=True, text=True, env=env, timeout=120)
    assert f"epochs={RECIPE['epochs']}" in listed.stdout, listed.stdout


def test_jobs_and_sweeps_store_the_recipe_under_their_settings(settings: Settings, tmp_path: Path) -> None:
    dataset = lm_dataset(settings, tmp_path)
    plain = check_train(settings, {"dataset": dataset, "config": {}}).params["config"]
    assert recipe_of(plain) == (RECIPE["epochs"], RECIPE["batch_size"], 1.0)
    own = check_train(settings, {"dataset": dataset, "config": {"epochs": 1, "solver": {"lr": 0.01}}}).params
    assert recipe_of(own["config"]) == (1, RECIPE["batch_size"], 1.0) and own["config"]["solver"]["lr"] == 0.01
    dotted = check_train(settings, {"dataset": dataset, "config": {"solver.clip_grad_norm": 5}}).params["config"]
    assert recipe_of(dotted) == (RECIPE["epochs"], RECIPE["batch_size"], 5)
    again = check_train(settings, {"dataset": dataset, "config": own["config"]}).params["config"]
    assert again == own["config"]  # a stored config is whole: checking it again changes nothing
    sweep = check_sweep(settings, {"dataset": dataset, "space": {"solver.lr": {"type": "float", "low": 1e-3,
                                   "high": 1e-2}}, "config": {"epochs": 1}, "trials": 2})  # fmt: skip
    assert sweep.config["epochs"] == 1 and sweep.config["batch_size"] == RECIPE["batch_size"]
    assert sweep.config["solver"] == {"clip_grad_norm": 1.0}


SHAKESPEARE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tinyshakespeare" / "input.txt"


@pytest.mark.slow  # measured: val loss 1.538 after 1,078 steps, 68 s of training (127 s under load), 74 s in all
def test_the_default_recipe_trains_a_good_model_on_tiny_shakespeare(settings: Settings) -> None:
    """What `deepyard train --dataset D` gives without flags: the dataset's default context (128), the task's
    network and recipe; the issue's target is <= 1.75 nats per character within 10 minutes on 2 CPU cores."""
    import torch

    from deepyard.train import train
    from deepyard.train.tasking import default_network

    spec = make_spec(name="shakespeare", task="language-model", val_pct=10,
                     source={"kind": "text", "train": SHAKESPEARE})  # fmt: skip
    manifest = create_dataset(settings, spec)
    assert manifest.shape[0] == 128  # the default context
    config = make_config(**base_settings(manifest.task, None), workers=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the CLI under OMP_NUM_THREADS=1: two threads on the loaded machine crawl
    try:
        result = train(settings, manifest.id, default_network(manifest)[0], config)
    finally:
        torch.set_num_threads(threads)
    print(f"val {result.last_val} after {result.steps} steps, {result.seconds:.0f} s")
    assert result.last_val["val_loss"] <= 1.75 and result.seconds <= 600
