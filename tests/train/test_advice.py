"""Advice the user must see: a batch larger than the training split, and a model that gives (nearly) every
validation image the same class. Through the console script: the CLI prints it, run.json keeps it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.cli.test_datasets_cli import run
from tests.conftest import save_image


def write_signalless(root: Path, per_class: int = 24, seed: int = 0) -> None:
    """Two classes of the same flat grey image (a pixel or two of noise so no file is a duplicate): nothing
    tells them apart, so any network gives every image the same class."""
    rng = np.random.default_rng(seed)
    for label in ("a", "b"):
        for i in range(per_class):
            image = np.full((12, 12), 128, dtype=np.uint8)
            image[rng.integers(0, 12), rng.integers(0, 12)] += 1 + i % 3
            save_image(root / label / f"{label}{i}.png", image)


def test_a_collapsed_model_and_a_batch_larger_than_the_split_are_said(tmp_path: Path) -> None:
    write_signalless(tmp_path / "flat")
    home = tmp_path / "home"
    made = run(home, "dataset", "create", str(tmp_path / "flat"), "--size", "28x28", "--channels", "1", "--json")
    assert made.returncode == 0, made.stderr
    count = json.loads(made.stdout)["manifest"]["splits"]["train"]["count"]
    proc = run(home, "train", "--dataset", "flat", "--network", "lenet", "--epochs", "2", "--batch-size", "1000",
               "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())  # the console wraps long lines
    assert f"the batch (1,000 images a step) is larger than the {count:,} training images" in said
    assert "each epoch is one step" in said
    assert "collapsed to one class" in said and "learning rate too high" in said
    run_id = json.loads(proc.stdout)["run"]
    shown = json.loads(run(home, "run", "show", run_id, "--json").stdout)
    assert len(shown["advice"]) == 2 and "100% of the validation images the same class" in shown["advice"][1]


def test_a_model_that_learns_says_nothing(tmp_path: Path) -> None:
    from tests.train.conftest import write_bars

    write_bars(tmp_path / "bars", per_class=16)
    home = tmp_path / "home"
    assert run(home, "dataset", "create", str(tmp_path / "bars"), "--size", "28x28", "--channels", "1").returncode == 0
    proc = run(home, "train", "--dataset", "bars", "--network", "lenet", "--epochs", "3", "--batch-size", "8",
               "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["last_val"]["val_top1"] > 90
    assert "note:" not in proc.stderr
    shown = json.loads(run(home, "run", "show", json.loads(proc.stdout)["run"], "--json").stdout)
    assert shown.get("advice", []) == []


def test_a_collapsed_text_classifier_is_told_of_its_texts(tmp_path: Path) -> None:
    """Two classes of texts that are one letter repeated: a bag of n-grams (the mean of their embeddings) sees
    the same bag in every text, so it gives them all one class; the advice says texts, with a text's causes."""
    from deepyard.config import load_settings
    from deepyard.datasets import create_dataset, make_spec
    from deepyard.train import TrainConfig, get_run, train

    for label, offset in (("a", 0), ("b", 1)):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(16):
            (tmp_path / "data" / label / f"{i}.txt").write_text("x" * (4 + 2 * i + offset), encoding="utf-8")
    settings = load_settings(tmp_path / "home", data_roots=[tmp_path / "data"])
    spec = make_spec(name="same", task="text-classification", val_pct=25,
                     source={"kind": "labelled-text", "train": tmp_path / "data", "tokenizer": "char"})  # fmt: skip
    dataset = create_dataset(settings, spec).id
    config = TrainConfig.model_validate({"epochs": 2, "batch_size": 8, "workers": 0, "device": "cpu"})
    advice = get_run(settings, train(settings, dataset, "bag-ngrams", config).run_id)["advice"]
    (said,) = [a for a in advice if "collapsed to one class" in a]
    assert "100% of the validation texts the same class" in said and "images" not in said
    assert "learning rate too high" in said and "mean subtraction" not in said


def test_a_language_models_batch_advice_counts_blocks(tmp_path: Path) -> None:
    from deepyard.config import load_settings
    from deepyard.train import get_run
    from tests.web.test_text_stream import TEXT, quick_lm_run

    (tmp_path / "data").mkdir()
    settings = load_settings(tmp_path / "home", data_roots=[tmp_path / "data"])
    run = quick_lm_run(settings, tmp_path, batch_size=1000)
    blocks = int(len(TEXT) * 0.9) // 16  # the training split's blocks of the context (16 tokens)
    (said,) = get_run(settings, run)["advice"]
    assert f"the batch (1,000 blocks of 16 tokens a step) is larger than the {blocks:,} training blocks" in said


def test_a_collapse_is_said_once_it_persists_not_at_the_first_early_validation(tmp_path: Path) -> None:
    """Four one-step epochs, a validation after each: collapsed at every one, said at the second (two in a row),
    not at the first (a quarter of the way: a model often starts by giving every image one class)."""
    from deepyard.config import load_settings
    from deepyard.datasets import create_dataset, make_spec
    from deepyard.train import TrainConfig, train
    from deepyard.train.callbacks import Callback

    class Heard(Callback):
        def __init__(self) -> None:
            self.at: list[tuple[int, str]] = []

        def on_advice(self, run: object, text: str) -> None:
            self.at.append((run.state.step, text))  # type: ignore[attr-defined]

    write_signalless(tmp_path / "flat")
    settings = load_settings(tmp_path / "home", data_roots=[tmp_path])
    spec = make_spec(name="flat", source={"kind": "folder", "train": tmp_path / "flat"}, val_pct=25, width=28,
                     height=28, channels=1)  # fmt: skip
    dataset = create_dataset(settings, spec).id
    heard = Heard()
    config = TrainConfig.model_validate({"epochs": 4, "batch_size": 1000, "workers": 0, "device": "cpu"})
    train(settings, dataset, "lenet", config, callbacks=[heard])
    assert [step for step, text in heard.at if "collapsed to one class" in text] == [2]
