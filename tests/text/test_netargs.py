"""A text network's sizes in its name: parsed and bounded, built into the module, recorded with the run and
rebuilt from it (generate, evaluate, export), refused at submit with the bad key or value named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepyard.config import Settings
from deepyard.errors import InvalidValueError
from deepyard.text.classifiers import build_text_classifier
from deepyard.text.networks import build_text_network, is_text_network, text_network_parameters
from deepyard.text.use import evaluate_language_model, generate_text
from deepyard.train import TrainConfig, train
from tests.text.test_training import tiny_dataset


def test_sizes_reach_the_language_models() -> None:
    rnn = build_text_network("char-lstm:cell=gru,layers=3,hidden=24,embedding=8,dropout=0", (1, 12, 1), 30)
    gru = next(m for m in rnn.modules() if isinstance(m, torch.nn.GRU))
    assert (gru.num_layers, gru.hidden_size, gru.input_size, gru.dropout) == (3, 24, 8, 0.0)
    gpt = build_text_network("gpt-mini:layers=1,heads=2,embedding=32", (1, 12, 1), 30)
    assert build_text_network("gpt-mini", (1, 12, 1), 30).state_dict().keys() > gpt.state_dict().keys()
    assert {tuple(p.shape) for p in gpt.parameters()} >= {(30, 32), (12, 32)}  # tokens, positions: 32 wide
    assert gpt(torch.randint(0, 30, (2, 12))).shape == (2, 12, 30)


def test_sizes_reach_the_text_classifiers() -> None:
    cnn = build_text_classifier("text-cnn:filters=7,widths=2-3,dim=16", (50, 20, 1), 4)
    assert [c.kernel_size[0] for c in cnn.convs] == [2, 3] and cnn.head.in_features == 14  # type: ignore[union-attr]
    bag = build_text_classifier("bag-ngrams:max_n=2,buckets=64,dim=8", (50, 20, 1), 4)
    assert bag(torch.randint(0, 50, (3, 20))).shape == (3, 4)
    assert sum(p.numel() for p in bag.parameters()) < sum(
        p.numel() for p in build_text_classifier("bag-ngrams", (50, 20, 1), 4).parameters()
    )
    gru = build_text_classifier("text-bigru:hidden=5", (50, 20, 1), 4)
    assert gru.head.in_features == 20  # type: ignore[union-attr]  # max and mean of both directions


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("char-lstm:hiden=3", "has no setting 'hiden'; valid: 'cell', 'layers', 'hidden', 'embedding' or 'dropout'"),
        ("char-lstm:layers=0", "layers=0 must be from 1 to 64"),
        ("char-lstm:hidden=100000", "hidden=100000 must be from 1 to 8192"),
        ("char-lstm:dropout=1", "dropout=1.0 must be in [0, 1)"),
        ("char-lstm:cell=rnn", "cell='rnn' is not one of 'lstm' or 'gru'"),
        ("char-lstm:layers=two", "layers='two' must be a int"),
        ("char-lstm:layers", "'layers' is not key=value"),
        ("char-lstm:layers=2,layers=3", "sets 'layers' twice"),
        ("gpt-mini:embedding=100,heads=3", "embedding 100 must be a multiple of heads 3"),
        ("text-cnn:widths=3-x", "widths='3-x' must be whole numbers joined by '-'"),
        ("bag-ngrams:hidden=3", "valid: 'max_n', 'buckets', 'dim' or 'dropout'"),
    ],
)
def test_bad_sizes_are_named_with_the_valid_ones(name: str, message: str) -> None:
    with pytest.raises(InvalidValueError) as err:
        is_text_network(name)
    assert message in str(err.value) and repr(name) in str(err.value)


def test_other_names_are_not_text_networks() -> None:
    assert not is_text_network("resnet18") and not is_text_network("lenet:layers=2")
    assert is_text_network("char-gru") and is_text_network("text-cnn")


def test_a_sized_network_trains_and_is_rebuilt_from_its_run(settings: Settings, tmp_path: Path) -> None:
    dataset = tiny_dataset(settings, tmp_path)
    name = "gpt-mini:layers=1,heads=2,embedding=16"
    config = TrainConfig.model_validate({"epochs": 1, "batch_size": 8, "val_interval": 1, "workers": 0,
                                         "precision": "fp32", "solver": {"lr": 0.01}})  # fmt: skip
    result = train(settings, dataset, name, config)
    record = json.loads((result.folder / "run.json").read_text())
    assert record["network"]["ref"] == name
    weights = torch.load(result.folder / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert weights["tok.weight"].shape[1] == 16 and weights["blocks.0.attn.qkv.weight"].shape == (48, 16)
    assert not any(k.startswith("blocks.1.") for k in weights)  # one layer
    text = generate_text(settings, result.run_id, "abc", length=12, temperature=0, seed=1)
    assert len(text["text"]) == 12
    assert evaluate_language_model(settings, result.run_id)["val_loss"] == pytest.approx(
        result.last_val["val_loss"], rel=1e-4
    )


def test_the_console_refuses_bad_sizes_before_training(settings: Settings, tmp_path: Path) -> None:
    dataset = tiny_dataset(settings, tmp_path)
    done = subprocess.run([sys.executable, "-m", "deepyard", "--home", str(settings.home), "train", "--dataset",
                           dataset, "--network", "char-lstm:hiden=64"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2 and "has no setting 'hiden'" in done.stderr and "Traceback" not in done.stderr
    assert list(settings.home.glob("runs/*/run.json")) == []  # nothing was created


def test_network_view_of_a_sized_name_writes_a_plain_file_name(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "deepyard", "--home", str(tmp_path / "home"), "network", "view",
                           "char-lstm:layers=1,hidden=32", "--json"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["svg"] == "char-lstm_layers_1_hidden_32.svg" and (tmp_path / doc["svg"]).read_text().startswith("<")
    assert doc["params"] == 640 + 4 * (32 * (64 + 32) + 2 * 32) + 330  # embedding 10x64, one LSTM layer, head
    for rate in ("0.2", "0.5"):  # names that differ only after a dot write two files
        again = subprocess.run([sys.executable, "-m", "deepyard", "--home", str(tmp_path / "home"), "network", "view",
                                f"char-lstm:dropout={rate}", "--json"], capture_output=True, text=True, timeout=120,
                               cwd=tmp_path)  # fmt: skip
        assert json.loads(again.stdout)["svg"] == f"char-lstm_dropout_{rate}.svg"


def test_sizes_that_fit_alone_but_not_together_are_refused_before_anything_is_allocated(
    settings: Settings, tmp_path: Path
) -> None:
    huge = "gpt-mini:layers=64,heads=64,embedding=8192"  # each size within its bound; 51 billion parameters
    assert is_text_network(huge)
    with pytest.raises(InvalidValueError, match=r"has 51,5\d\d,\d{3},\d{3} parameters .* at most 1,000,000,000"):
        text_network_parameters(huge, (1, 128, 1), 65)
    assert text_network_parameters("gpt-mini", (1, 128, 1), 65) == sum(
        p.numel() for p in build_text_network("gpt-mini", (1, 128, 1), 65).parameters()
    )
    dataset = tiny_dataset(settings, tmp_path)
    done = subprocess.run([sys.executable, "-m", "deepyard", "--home", str(settings.home), "train", "--dataset",
                           dataset, "--network", huge], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "parameters for these data" in done.stderr and "Traceback" not in done.stderr
    from deepyard.jobs import list_queue, submit

    with pytest.raises(InvalidValueError, match="parameters for these data"):
        submit(settings, "train", {"dataset": dataset, "network": huge, "config": {"epochs": 1}})
    assert list_queue(settings) == []  # refused at submit: nothing queued
