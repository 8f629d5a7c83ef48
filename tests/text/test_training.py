"""Language models through the real trainer: random blocks, gradient clipping, the metrics, the validation
sample, exact resume (weights and the data position), generation and evaluation of the run."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.text.networks import TEXT_NETWORKS, build_text_network
from deepyard.text.use import evaluate_language_model, generate_text
from deepyard.train import TrainConfig, resume_run, train
from deepyard.train.callbacks import Callback

TEXT = "abcdefgh" * 300 + "the quick brown fox jumps over the lazy dog\n" * 60


def tiny_dataset(settings: Settings, tmp_path: Path) -> str:
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    spec = make_spec(name="tiny", task="language-model", val_pct=10,
                     source={"kind": "text", "train": tmp_path / "c.txt", "context": 16})  # fmt: skip
    return create_dataset(settings, spec).id


def config(**extra: object) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 8, "val_interval": 1, "snapshot_interval": 1, "workers": 0,
            "solver": {"lr": 0.01, "clip_grad_norm": 1.0}, "precision": "fp32"}  # fmt: skip
    return TrainConfig.model_validate({**base, **extra})


@pytest.mark.parametrize("name", sorted(TEXT_NETWORKS))
def test_every_text_network_runs_forward_and_backward(name: str) -> None:
    model = build_text_network(name, (1, 12, 1), 30)
    logits = model(torch.randint(0, 30, (2, 12)))
    assert logits.shape == (2, 12, 30)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_gpt_is_causal() -> None:
    model = build_text_network("gpt-mini", (1, 12, 1), 30).eval()
    x = torch.randint(0, 30, (1, 12))
    y = x.clone()
    y[0, 8:] = (y[0, 8:] + 1) % 30  # change the future
    assert torch.allclose(model(x)[0, :8], model(y)[0, :8], atol=1e-6)


class StopAt(Callback):
    def __init__(self, step: int, event: threading.Event) -> None:
        self.step, self.event = step, event

    def on_step_end(self, run: object, info: object) -> None:
        if run.state.step == self.step:  # type: ignore[attr-defined]
            self.event.set()


@pytest.mark.slow  # about 6 minutes on the shared 2-core machine under load
def test_trains_samples_and_resumes_exactly(settings: Settings, tmp_path: Path) -> None:
    dataset = tiny_dataset(settings, tmp_path)
    whole = train(settings, dataset, "gpt-mini", config())
    lines = [json.loads(x) for x in (whole.folder / "metrics.jsonl").read_text().splitlines()]
    vals = [p for p in lines if "val_loss" in p]
    assert vals[-1]["val_loss"] < vals[0]["val_loss"] < 3.4  # below a uniform guess over ~30 characters
    assert vals[-1]["val_bpc"] == pytest.approx(vals[-1]["val_loss"] / 0.6931471805599453)  # char: loss / ln 2
    samples = [json.loads(x) for x in (whole.folder / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [p["step"] for p in vals] and all(len(s["text"]) == 200 for s in samples)
    event = threading.Event()
    half = whole.steps // 2 + 1  # mid-epoch: the data position must be restored too
    stopped = train(settings, dataset, "gpt-mini", config(), callbacks=[StopAt(half, event)], stop=event)
    assert stopped.stop_reason == "aborted" and stopped.steps == half
    resumed = resume_run(settings, stopped.run_id)
    assert resumed.steps == whole.steps and resumed.last_val == whole.last_val
    a = torch.load(whole.folder / "checkpoints" / "best.pt", weights_only=True)["model"]
    b = torch.load(resumed.folder / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    again = [json.loads(x)["text"] for x in (resumed.folder / "samples.jsonl").read_text().splitlines()]
    assert again == [s["text"] for s in samples]
    doc = evaluate_language_model(settings, whole.run_id)
    assert doc["val_loss"] == pytest.approx(whole.last_val["val_loss"], rel=1e-4)
    text = generate_text(settings, whole.run_id, "abc", length=40, temperature=0, seed=1)
    assert len(text["text"]) == 40 and text == generate_text(settings, whole.run_id, "abc", 40, 0, None, 2) | {
        "seed": 1,
        "seconds": text["seconds"],
        "tokens_per_s": text["tokens_per_s"],
    }  # greedy ignores the seed


@pytest.mark.slow
def test_console_script_trains_with_the_default_network_and_generates(settings: Settings, tmp_path: Path) -> None:
    dataset = tiny_dataset(settings, tmp_path)
    cmd = [sys.executable, "-m", "deepyard", "--home", str(settings.home)]
    done = subprocess.run([*cmd, "train", "--dataset", dataset, "--epochs", "1", "--batch-size", "8",
                           "--set", "solver.clip_grad_norm=1", "--json"], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "network: char-lstm, the default" in done.stderr
    run = json.loads(done.stdout)["run"]
    gen = subprocess.run([*cmd, "generate", run, "--prompt", "the ", "--length", "30", "--top-k", "5", "--seed",
                          "3", "--json"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    doc = json.loads(gen.stdout)
    assert doc["prompt"] == "the " and len(doc["text"]) == 30 and set(doc["text"]) <= set(TEXT)
    bad = subprocess.run([*cmd, "generate", run, "--prompt", "Zé"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "'Z'" in bad.stderr and "Traceback" not in bad.stderr
    ev = subprocess.run([*cmd, "evaluate", run, "--json"], capture_output=True, text=True, timeout=120)
    assert ev.returncode == 0 and json.loads(ev.stdout)["val_bpc"] > 0


def test_the_console_evaluates_and_exports_the_snapshot_it_is_given(settings: Settings, tmp_path: Path) -> None:
    dataset = tiny_dataset(settings, tmp_path)
    result = train(settings, dataset, "gpt-mini:layers=1,heads=2,embedding=16", config())
    first = sorted((result.folder / "checkpoints").glob("step-*.pt"))[0].stem.removeprefix("step-").lstrip("0")
    cmd = [sys.executable, "-m", "deepyard", "--home", str(settings.home)]
    ev = subprocess.run([*cmd, "evaluate", result.run_id, "--snapshot", first, "--json"], capture_output=True,
                        text=True, timeout=120)  # fmt: skip
    assert ev.returncode == 0, ev.stderr
    doc = json.loads(ev.stdout)
    assert str(doc["model"]["snapshot"]) == first
    assert doc["val_loss"] == pytest.approx(evaluate_language_model(settings, f"{result.run_id}@{first}")["val_loss"])
    assert doc["val_loss"] != pytest.approx(evaluate_language_model(settings, result.run_id)["val_loss"])
    ex = subprocess.run([*cmd, "export", result.run_id, "--snapshot", first, "--format", "archive", "--out",
                         str(tmp_path / "out"), "--json"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ex.returncode == 0, ex.stderr
    assert str(json.loads(ex.stdout)["model"]["snapshot"]) == first
