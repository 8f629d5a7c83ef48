"""Reading corpora: every hostile file reported with its reason, undecodable bytes counted; the contiguous split."""

from __future__ import annotations

import json
from pathlib import Path

from deepyard.text.corpus import decode, read_corpus, split_text


def hostile_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "good.txt").write_text("To be, or not to be, that is the question.\n", encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    (root / "binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me and more text\n".encode("latin-1"))
    (root / "blank.txt").write_text("  \n\n\t", encoding="utf-8")
    (root / ".hidden.txt").write_text("secret", encoding="utf-8")
    (root / "docs.jsonl").write_text(
        "\n".join([json.dumps({"text": "a jsonl document"}), "{not json", json.dumps({"title": "no text"}),
                   json.dumps(["a list"])]),
        encoding="utf-8",
    )  # fmt: skip
    return root


def test_hostile_files_are_skipped_with_their_reason(tmp_path: Path) -> None:
    corpus = read_corpus(hostile_folder(tmp_path / "src"))
    reasons = {Path(s.path).name: s.reason for s in corpus.skipped}
    assert reasons["empty.txt"] == "empty file (0 bytes)"
    assert reasons["binary.bin"].startswith("binary file")
    assert reasons["blank.txt"].startswith("no text")
    assert reasons[".hidden.txt"] == "hidden file"
    assert reasons["docs.jsonl:2"] == "not JSON"
    assert reasons["docs.jsonl:3"] == reasons["docs.jsonl:4"] == "no string field 'text'"
    assert corpus.replaced == [{"path": str(tmp_path / "src" / "latin1.txt"), "bytes": 2}]
    assert "caf\ufffd cr\ufffdme" in corpus.text
    assert "a jsonl document" in corpus.text and "To be, or not" in corpus.text


def test_decode_counts_each_bad_byte_and_keeps_good_text() -> None:
    text, bad = decode("ok é ".encode() + b"\xff\xfe" + "東".encode()[:2] + b" end")
    assert bad == 4 and text.startswith("ok é ") and text.endswith(" end")


def test_the_split_holds_out_whole_contiguous_blocks() -> None:
    text = "".join(f"line {i:05d}\n" for i in range(5000))  # every passage is unique
    train, val = split_text(text, 10, seed=3)
    assert len(train) + len(val) == len(text)
    assert 0.08 < len(val) / len(text) < 0.12
    size = len(text) // 20
    blocks = [text[i : i + size] for i in range(0, len(text), size)]
    held = [b for b in blocks if b in val]
    assert "".join(held) == val  # val is whole blocks, in corpus order
    assert not any(b in train for b in held)  # and none of them is in training
    assert split_text(text, 10, seed=3) == (train, val)  # seeded


def test_no_validation_when_val_pct_is_zero() -> None:
    assert split_text("abc" * 100, 0, 0) == ("abc" * 100, "")
