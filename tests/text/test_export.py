"""Exporting a language model through the console script: archive and ONNX, parity on logits and on greedy
generation; the archive reads back with safetensors and JSON only."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from deepyard.config import Settings
from deepyard.text.export import read_archive_model
from deepyard.train import TrainConfig, train
from tests.text.test_training import tiny_dataset


@pytest.mark.slow  # trains a run, then exports it in a subprocess: about a minute here
def test_export_archive_and_onnx_pass_parity_with_greedy_text(settings: Settings, tmp_path: Path) -> None:
    dataset = tiny_dataset(settings, tmp_path)
    config = TrainConfig.model_validate({"epochs": 0.3, "batch_size": 8, "workers": 0})
    run = train(settings, dataset, "char-lstm", config)
    out = tmp_path / "exports"
    done = subprocess.run([sys.executable, "-m", "deepyard", "--home", str(settings.home), "export", run.run_id,
                           "--out", str(out), "--json"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] and [r["format"] for r in doc["reports"]] == ["archive", "onnx"]
    onnx = doc["reports"][1]
    assert onnx["max_abs_diff"] < 1e-3 and onnx["greedy_same"] and len(onnx["greedy_export"]) == 64
    assert set(zipfile.ZipFile(out / "model.zip").namelist()) >= {"model.safetensors", "tokenizer.json",
                                                                  "network.json", "info.json"}  # fmt: skip
    model = read_archive_model(out / "model.zip")
    x = torch.randint(0, 10, (1, 16))
    assert model(x).shape[-1] == json.loads(zipfile.ZipFile(out / "model.zip").read("network.json"))["vocab_size"]
    bad = subprocess.run([sys.executable, "-m", "deepyard", "--home", str(settings.home), "export", run.run_id,
                          "--format", "torchscript", "--out", str(out)], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "'archive' or 'onnx'" in bad.stderr
