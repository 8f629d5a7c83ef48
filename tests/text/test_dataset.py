"""Language-model datasets through the real build: the token store, the report, and hostile corpora refused
with a message (never a crash), through Python and the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.datasets.catalog import dataset_dir, read_report
from deepyard.errors import SourceError
from deepyard.text.tokenizer import load_tokenizer
from tests.text.test_corpus import hostile_folder

TEXT = "".join(f"{i} little pigs went to market, and sang a song of {i % 7} pence.\n" for i in range(300))


def lm_spec(path: Path, **source: object) -> object:
    return make_spec(name="lm", task="language-model", val_pct=10,
                     source={"kind": "text", "train": path, "context": 16, **source})  # fmt: skip


def test_char_dataset_stores_tokens_that_decode_to_the_split(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    m = create_dataset(settings, lm_spec(tmp_path / "c.txt"))  # type: ignore[arg-type]
    assert m.task == "language-model" and m.encoding == "tokens" and m.shape == (16, 1, 1)
    tok = load_tokenizer(dataset_dir(settings, m.id))
    train, val = open_split(settings, m, "train"), open_split(settings, m, "val")
    assert isinstance(train.tokens, np.memmap) and train.tokens.dtype == np.uint16  # type: ignore[attr-defined]
    decoded = tok.decode(train.tokens.tolist()) + tok.decode(val.tokens.tolist())  # type: ignore[attr-defined]
    assert sorted(decoded) == sorted(TEXT)  # the two splits are the corpus, cut into blocks
    assert m.classes == tok.names() and m.target_stats["vocab_size"] == len(set(TEXT))
    assert m.splits["train"].count + m.splits["val"].count == len(TEXT)


def test_bpe_dataset_and_its_report(settings: Settings, tmp_path: Path) -> None:
    src = hostile_folder(tmp_path / "src")
    (src / "long.txt").write_text(TEXT, encoding="utf-8")
    m = create_dataset(settings, lm_spec(src, tokenizer="bpe", vocab_size=400))  # type: ignore[arg-type]
    doc = read_report(dataset_dir(settings, m.id))  # what dataset show and the dataset page read
    assert {Path(s["path"]).name for s in doc["skipped"]} >= {"empty.txt", "binary.bin", ".hidden.txt"}
    assert doc["replaced"][0]["bytes"] == 2 and doc["text"]["tokenizer"] == "bpe"
    assert m.skipped == len(doc["skipped"])
    assert 256 < m.target_stats["vocab_size"] <= 400 and m.target_stats["chars_per_token"] > 1.5
    assert m.target_stats["unseen_val_tokens"] >= 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "has no text"),  # a 0-byte corpus
        (b"\x00\x01binary" * 10, "has no text"),
        (b"too short", "shorter than one block of the context"),
    ],
)
def test_unusable_corpus_is_a_clear_error(settings: Settings, tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "c.txt").write_bytes(content)
    with pytest.raises(SourceError, match=message):
        create_dataset(settings, lm_spec(tmp_path / "c.txt"))  # type: ignore[arg-type]
    assert not list(settings.datasets_dir.iterdir())  # nothing half-built left


def test_console_script_reports_a_short_corpus_and_builds_a_good_one(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    (tmp_path / "short.txt").write_text("Hi.", encoding="utf-8")
    cmd = [sys.executable, "-m", "deepyard", "--home", home, "dataset", "create"]
    bad = subprocess.run([*cmd, str(tmp_path / "short.txt"), "--task", "language-model"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "shorter than one block of the context (128 tokens + 1)" in bad.stderr
    assert "Traceback" not in bad.stderr
    (tmp_path / "good.txt").write_text(TEXT, encoding="utf-8")
    done = subprocess.run([*cmd, str(tmp_path / "good.txt"), "--task", "language-model", "--context", "32",
                           "--json"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["manifest"]["spec"]["val_pct"] == 10.0  # the language model's default split
    assert doc["manifest"]["shape"] == [32, 1, 1]
    shown = subprocess.run([*cmd[:-2], "dataset", "show", doc["manifest"]["id"]], capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert shown.returncode == 0 and "language-model" in shown.stdout, shown.stderr


def test_a_train_job_for_a_language_model_is_accepted_at_submit(settings: Settings, tmp_path: Path) -> None:
    from deepyard.errors import InvalidValueError
    from deepyard.jobs.runners import check_train

    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    m = create_dataset(settings, lm_spec(tmp_path / "c.txt"))  # type: ignore[arg-type]
    checked = check_train(settings, {"dataset": m.id, "network": "gpt-mini", "config": {"epochs": 1}})
    assert checked is not None
    check_train(settings, {"dataset": m.id, "config": {"solver": {"clip_grad_norm": 1}}})  # the task's default
    with pytest.raises(InvalidValueError, match="val_top1"):
        check_train(settings, {"dataset": m.id, "network": "char-lstm", "config": {"monitor": "val_top1"}})
