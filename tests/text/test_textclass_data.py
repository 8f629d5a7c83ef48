"""Text-classification datasets through the real build: the three readers, hostile files reported (never a
crash), the padded token rows, the length histogram, duplicates and train/validation leakage, and sources that
cannot make a dataset refused with a message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.datasets.catalog import dataset_dir, read_report
from deepyard.errors import SourceError
from deepyard.text.labelled import read_labelled
from deepyard.text.sequences import UNKNOWN, encode_ids
from deepyard.text.tokenizer import load_tokenizer


def spec(path: Path, **source: object) -> object:
    extra = {k: source.pop(k) for k in ("val_pct", "min_per_class") if k in source}
    source.setdefault("tokenizer", "char")  # the default is bpe; characters make the token counts checkable
    return make_spec(name="tc", task="text-classification", **extra,
                     source={"kind": "labelled-text", "train": path, **source})  # fmt: skip


def class_folders(root: Path, per_class: int = 12) -> Path:
    """pos/ and neg/ of .txt files, and every hostile file the reader must skip with its reason."""
    for i in range(per_class):
        (root / "pos").mkdir(parents=True, exist_ok=True)
        (root / "neg").mkdir(parents=True, exist_ok=True)
        (root / "pos" / f"{i}.txt").write_text(f"a good film, number {i}", encoding="utf-8")
        (root / "neg" / f"{i}.txt").write_text(f"not a good film, number {i}", encoding="utf-8")
    (root / "pos" / "copy.txt").write_text("a good film, number 3", encoding="utf-8")  # a duplicate
    (root / "neg" / "binary.txt").write_bytes(b"PK\x03\x04\x00\x00binary")
    (root / "neg" / "empty.txt").write_bytes(b"")
    (root / "neg" / "blank.txt").write_text(" \n\t", encoding="utf-8")
    (root / "neg" / "latin1.txt").write_bytes(b"caf\xe9 not good \xff")  # 2 undecodable bytes, kept
    (root / "neg" / "notes.md").write_text("not a txt", encoding="utf-8")
    (root / "neg" / ".hidden.txt").write_text("hidden", encoding="utf-8")
    (root / "loose.txt").write_text("outside a class folder", encoding="utf-8")
    return root


def reasons(skipped: list[dict[str, str]] | list[object]) -> dict[str, str]:
    return {Path(str(getattr(s, "path", None) or s["path"])).name: getattr(s, "reason", None) or s["reason"]  # type: ignore[index]
            for s in skipped}  # fmt: skip


def test_folder_reader_skips_every_bad_file_with_its_reason(tmp_path: Path) -> None:
    found = read_labelled(class_folders(tmp_path / "src"))
    why = reasons(found.skipped)
    assert why == {
        "binary.txt": "binary file (a NUL byte in its first 8 KiB)", "empty.txt": "empty file (0 bytes)",
        "blank.txt": "no text (only white space)", "notes.md": "not a .txt file (.md)", ".hidden.txt": "hidden file",
        "loose.txt": "not in a class folder",
    }  # fmt: skip
    assert found.replaced == [{"path": str(tmp_path / "src" / "neg" / "latin1.txt"), "bytes": 2}]
    assert {e.label for e in found.examples} == {"pos", "neg"} and len(found.examples) == 26


def test_csv_and_jsonl_readers_report_bad_rows_with_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text('label,text\npos,"good, really"\nneg,\n,no label\nneg\nneg,"multi\nline"\n')
    found = read_labelled(tmp_path / "t.csv")
    assert [(e.label, e.text) for e in found.examples] == [("pos", "good, really"), ("neg", "multi\nline")]
    assert [(s.path.rsplit(":", 1)[1], s.reason) for s in found.skipped] == [
        ("3", "empty text"), ("4", "no label"), ("5", "1 field(s), the header has 2")]  # fmt: skip
    (tmp_path / "t.jsonl").write_text(
        '{"text": "ok", "label": 3}\n{oops\n[1]\n{"text": "x"}\n\n{"text": 5, "label": "a"}\n'
    )
    found = read_labelled(tmp_path / "t.jsonl")
    assert [(e.label, e.text) for e in found.examples] == [("3", "ok")]
    assert [(s.path.rsplit(":", 1)[1], s.reason) for s in found.skipped] == [
        ("2", "not JSON"), ("3", "not a JSON object"), ("4", "no field 'label'"),
        ("6", "text is not a string (int)")]  # fmt: skip
    (tmp_path / "long.csv").write_text(f'text,label\n"{"word " * 60_000}",a\n"short",b\n')  # a 300 K field
    assert [len(e.text) for e in read_labelled(tmp_path / "long.csv").examples] == [300_000, 5]
    (tmp_path / "bad.csv").write_text("body,class\nx,y\n")
    with pytest.raises(SourceError, match=r"no 'text' or 'label' column; its header is 'body', 'class'"):
        read_labelled(tmp_path / "bad.csv")


def test_build_stores_padded_rows_texts_histogram_and_leakage(settings: Settings, tmp_path: Path) -> None:
    src = class_folders(tmp_path / "src")
    val = tmp_path / "val"
    (val / "pos").mkdir(parents=True)
    (val / "pos" / "leak.txt").write_text("  a good film, number 5\n", encoding="utf-8")  # in training too
    (val / "neg").mkdir()
    (val / "neg" / "new.txt").write_text("never a good film \u00e0", encoding="utf-8")  # 'v' and 'à' are unknown
    (val / "odd").mkdir()
    (val / "odd" / "x.txt").write_text("a class training lacks", encoding="utf-8")
    m = create_dataset(settings, spec(src, val=val, max_length=24))  # type: ignore[arg-type]
    assert m.task == "text-classification" and m.classes == ["neg", "pos"] and m.shape[:2] == (24, 1)
    assert m.splits["train"].per_class == [13, 13] and m.splits["val"].per_class == [1, 1]
    assert m.duplicates == {"within": {"train": 1, "val": 0}, "across": {"train/val": 1}}
    train = open_split(settings, m, "train")
    assert isinstance(train.tokens, np.memmap) and train.tokens.shape == (26, 24)  # type: ignore[attr-defined]
    tok = load_tokenizer(dataset_dir(settings, m.id))
    i = next(i for i in range(26) if train.text(i) == "a good film, number 0")  # type: ignore[attr-defined]
    ids = encode_ids(tok, "a good film, number 0")
    assert train.tokens[i].tolist() == [*ids, 0, 0, 0] and train.lengths[i] == 21  # type: ignore[attr-defined]
    val_store = open_split(settings, m, "val")
    assert UNKNOWN in val_store.get_batch([0, 1]).tolist()[int(val_store.targets[1] == 0)]  # type: ignore[attr-defined]
    doc = read_report(dataset_dir(settings, m.id))
    assert reasons(doc["skipped"])["x.txt"] == "class 'odd' is not among the training classes"
    assert doc["text"]["truncated"] == {"train": 12, "val": 0} and doc["text"]["unknown_val_tokens"] == 3  # v, à, \n
    hist = doc["text"]["lengths"]
    assert sum(hist["per_class"]["pos"]["train"]["counts"]) == 13 and hist["edges"][:3] == [0, 8, 16]
    assert any(len(g) == 2 and {x["split"] for x in g} == {"train", "val"} for g in doc["duplicates"])


def test_bpe_build_splits_each_class_and_auto_length(settings: Settings, tmp_path: Path) -> None:
    rows = [{"text": f"{'fine ' * (i % 9 + 1)}words {i}", "label": "ab"[i % 2]} for i in range(80)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    m = create_dataset(settings, spec(tmp_path / "t.jsonl", tokenizer="bpe", vocab_size=300, val_pct=25))  # type: ignore[arg-type]
    assert m.splits["train"].per_class == [30, 30] and m.splits["val"].per_class == [10, 10]
    assert m.target_stats["tokenizer"] == "bpe" and m.shape[2] == m.target_stats["vocab_size"] <= 302
    assert m.shape[0] % 8 == 0 and m.target_stats["truncated"]["train"] <= 3  # the 95th percentile, rounded up


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a/x.txt": b"only one class", "a/y.txt": b"still one", "a/z.txt": b"and one more"}, "1 usable class"),
        ({"a/x.txt": b"one", "b/y.txt": b"two"}, "class 'a' dropped: fewer than 2 texts"),
        ({"a/x.txt": b"\x00\x01", "b/y.txt": b""}, "0 usable class"),
        ({"flat.txt": b"no class folders"}, "has no class sub-folders"),
    ],
)
def test_sources_that_cannot_make_a_dataset_are_refused(
    settings: Settings, tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    for name, data in files.items():
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_bytes(data)
    with pytest.raises(SourceError, match=message):
        create_dataset(settings, spec(tmp_path / "src"))  # type: ignore[arg-type]
    assert not list(settings.datasets_dir.glob("*")) or not any(
        p.name[0].isdigit() for p in settings.datasets_dir.iterdir()
    )


def test_texts_to_predict_need_no_label_column(tmp_path: Path) -> None:
    from deepyard.text.classify import predict_inputs

    (tmp_path / "p.csv").write_text('text\n"not good"\nfine\n')
    texts, skipped = predict_inputs(str(tmp_path / "p.csv"), ["neg", "pos"])
    assert [(t, label) for _, t, label in texts] == [("not good", None), ("fine", None)] and skipped == []
    (tmp_path / "p.jsonl").write_text('{"text": "a", "label": "pos"}\n{"text": "b"}\n{"label": "neg"}\n')
    texts, skipped = predict_inputs(str(tmp_path / "p.jsonl"), ["neg", "pos"])
    assert [(t, label) for _, t, label in texts] == [("a", "pos"), ("b", None)]
    assert [s.reason for s in skipped] == ["no field 'text'"]
    assert predict_inputs("no such file, so a text", ["neg", "pos"])[0] == [("text", "no such file, so a text", None)]
    with pytest.raises(SourceError, match="no 'text' column"):
        predict_inputs(_table(tmp_path), ["a"])


def _table(tmp_path: Path) -> str:
    (tmp_path / "q.csv").write_text("body\nx\n")
    return str(tmp_path / "q.csv")
