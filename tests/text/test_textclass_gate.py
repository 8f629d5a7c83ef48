"""Quality gate (slow): who is speaking? Every speech of six tiny-shakespeare speakers from six plays (Gloucester,
Duke Vincentio, Menenius, Romeo, Petruchio, Leontes; 1,000 speeches, 80-350 characters on average), the
speaker's name taken off, labelled by speaker. Chance is 16.7% (the largest class, Gloucester, is 21%); many
speeches are a line or two with nothing of their speaker in them, so no model is near 100%.

Through the console script with the task's defaults (BPE, 1,024 tokens; bag-ngrams) and its recipe passed
explicitly (8 epochs, batch 32, AdamW lr 0.01 one-cycle, no weight decay). Measured on this project's 2-core CPU
under load: val top-1 65.5% (the CNN 55.5%, the bidirectional GRU 47%), about 40 s of training; the gate is 55%.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deepyard.config import Settings
from tests.conftest import REPO

CORPUS = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
SPEAKERS = ("GLOUCESTER", "DUKE VINCENTIO", "MENENIUS", "ROMEO", "PETRUCHIO", "LEONTES")
GATE = 55.0  # % val top-1; chance 16.7%


def write_speeches(path: Path) -> int:
    rows = []
    for speech in CORPUS.read_text(encoding="utf-8").split("\n\n"):
        m = re.match(r"^([A-Z][A-Za-z ']+):\n", speech)
        if m and m.group(1) in SPEAKERS:
            rows.append(json.dumps({"text": speech[m.end() :], "label": m.group(1).title()}))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


@pytest.mark.slow
def test_default_network_and_recipe_tell_the_speakers_apart(settings: Settings, tmp_path: Path) -> None:
    assert CORPUS.is_file(), f"tiny-shakespeare missing at {CORPUS}"
    assert write_speeches(tmp_path / "speakers.jsonl") == 1000
    cmd = [sys.executable, "-m", "deepyard", "--home", str(settings.home)]

    def run(*args: str) -> dict:  # type: ignore[type-arg]
        done = subprocess.run([*cmd, *args, "--json"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    made = run("dataset", "create", str(tmp_path / "speakers.jsonl"), "--task", "text-classification",
               "--val-pct", "20", "--name", "speakers")  # fmt: skip
    m = made["manifest"]
    assert m["target_stats"]["tokenizer"] == "bpe" and m["splits"]["val"]["count"] == 200
    trained = run("train", "--dataset", "speakers", "--epochs", "8", "--batch-size", "32", "--lr", "0.01",
                  "--set", "solver.weight_decay=0")  # fmt: skip  # the task's recipe, passed explicitly
    assert trained["seconds"] < 240
    report = run("evaluate", trained["run"])
    top1 = report["metrics"]["top1"]
    print(f"speakers: val top-1 {top1:.1f}% (chance 16.7%) after {trained['seconds']:.0f} s of training")
    assert top1 >= GATE, report["per_class"]
    assert top1 == pytest.approx(trained["last_val"]["val_top1"])
    exported = run("export", trained["run"], "--out", str(tmp_path / "export"))
    assert exported["ok"] and {r["format"] for r in exported["reports"]} == {"archive", "onnx"}


def write_negations(root: Path, count: int = 160) -> Path:
    """`the film was not good, it was bad` (class bad) against `... not bad, it was good` (class good): both
    classes use the same words, so only their order tells them apart; a bag of single tokens is at chance."""
    import random

    rng = random.Random(0)
    subjects = ["the film", "the play", "our dinner", "that song", "the weather", "his answer", "the ending"]
    words = {"good": ["good", "great", "fine"], "bad": ["bad", "awful", "poor"]}
    for i in range(count):
        label, other = ("good", "bad") if i % 2 else ("bad", "good")
        text = f"{rng.choice(subjects)} was not {rng.choice(words[other])}, it was {rng.choice(words[label])}"
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i}.txt").write_text(text, encoding="utf-8")
    return root


@pytest.mark.slow  # two short runs: about 10 s here (slow: the fast tests' budget is spent)
def test_word_order_reaches_the_bag_through_its_ngrams(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functools import partial

    from deepyard.datasets import create_dataset, make_spec
    from deepyard.text.classifiers import TEXT_CLASSIFIERS, BagOfNgrams
    from deepyard.train import TrainConfig, train

    monkeypatch.setitem(TEXT_CLASSIFIERS, "bag-unigrams", (partial(BagOfNgrams, max_n=1), "tokens only"))
    source = {"kind": "labelled-text", "train": write_negations(tmp_path / "neg")}
    dataset = create_dataset(settings, make_spec(name="negations", task="text-classification", source=source)).id
    config = TrainConfig.model_validate({"epochs": 8, "batch_size": 16, "workers": 0, "solver": {"lr": 0.05}})
    ngrams = train(settings, dataset, "bag-ngrams", config).last_val["val_top1"]
    unigrams = train(settings, dataset, "bag-unigrams", config).last_val["val_top1"]
    print(f"negations: bag-ngrams {ngrams:.1f}%, tokens only {unigrams:.1f}% (chance 50%)")
    assert ngrams >= 90.0 and unigrams <= 70.0
