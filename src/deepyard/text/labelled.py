"""Reading labelled texts (text classification): a folder with a sub-folder of .txt files per class, or a CSV or
JSONL file with `text` and `label` columns.

Every file is read as UTF-8 (deepyard.text.corpus.decode): bytes that are not UTF-8 are replaced by U+FFFD and
counted per file. Skipped, with the reason, never raised: a binary file (a NUL byte in its first 8 KiB), an
empty file, a file or row with no text (only white space), a file that is not .txt in a class folder, hidden
files and folders, files outside class folders, a JSONL line that is not a JSON object (with its line number), a
row or line without a text or a label. SourceError only when the source itself cannot be used: a missing path, a
folder without class sub-folders, a CSV without a `text` or `label` column (naming the columns it has).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deepyard.errors import SourceError
from deepyard.text.corpus import BINARY_PROBE, Corpus, Skipped, decode
from deepyard.text.corpus import _walk as walk

TEXT_SUFFIXES = (".txt",)
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")
MAX_FIELD = 1 << 24  # characters of one CSV field
Readable = Callable[[str], bool] | None


@dataclass
class Example:
    text: str
    label: str
    name: str  # what reports show: the file, or `file:line`


@dataclass
class Labelled:
    examples: list[Example] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    replaced: list[dict[str, object]] = field(default_factory=list)  # {"path", "bytes"}: undecodable bytes


def check_labelled_source(path: Path) -> None:
    """The cheap checks at submit: the path exists and is a folder or a CSV/TSV/JSONL file."""
    if path.is_dir():
        return
    if not path.is_file():
        raise SourceError(f"{str(path)!r} does not exist; give a folder of class sub-folders of .txt files, or a "
                          "CSV or JSONL file with 'text' and 'label' columns")  # fmt: skip
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise SourceError(f"{str(path)!r} is neither a folder nor a table; text classification reads a folder of "
                          f"class sub-folders or a file ending in {', '.join(TABLE_SUFFIXES)}")  # fmt: skip


def read_labelled(path: Path, readable: Readable = None, labels: bool = True) -> Labelled:
    """The labelled texts under `path` (see the module docstring). `labels=False` (texts to predict): a table
    without a `label` column gives its texts with the label "" (unknown)."""
    check_labelled_source(path)
    found = Labelled()
    if path.is_dir():
        _read_folder(path, found, readable)
    else:
        text = _read_text(path, found, readable)
        if text is not None:
            (_read_jsonl if path.suffix.lower() == ".jsonl" else _read_table)(path, text, found, labels)
    return found


def _read_text(file: Path, found: Labelled, readable: Readable) -> str | None:
    """The file's text, or None (and the reason in `found.skipped`)."""
    if readable is not None and not readable(str(file)):  # the server's builds: never opened
        found.skipped.append(Skipped(str(file), "outside the data roots"))
        return None
    try:
        if not file.is_file():
            found.skipped.append(Skipped(str(file), "not a regular file"))
            return None
        data = file.read_bytes()
    except OSError as exc:
        found.skipped.append(Skipped(str(file), f"cannot be read: {exc.strerror or exc}"))
        return None
    if not data:
        found.skipped.append(Skipped(str(file), "empty file (0 bytes)"))
        return None
    if b"\x00" in data[:BINARY_PROBE]:
        found.skipped.append(Skipped(str(file), "binary file (a NUL byte in its first 8 KiB)"))
        return None
    text, replaced = decode(data)
    if replaced:
        found.replaced.append({"path": str(file), "bytes": replaced})
    return text


def _read_folder(root: Path, found: Labelled, readable: Readable) -> None:
    classes = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            found.skipped.append(Skipped(str(entry), "hidden " + ("folder" if entry.is_dir() else "file")))
        elif entry.is_dir():
            classes.append(entry)
        else:
            found.skipped.append(Skipped(str(entry), "not in a class folder"))
    if not classes:
        raise SourceError(f"folder {str(root)!r} has no class sub-folders; put each class's .txt files in a "
                          f"sub-folder named after the class (for example {str(root / 'positive')!r})")  # fmt: skip
    for folder in classes:
        for file in _walk(folder, found):
            if file.suffix.lower() not in TEXT_SUFFIXES:
                found.skipped.append(Skipped(str(file), f"not a .txt file ({file.suffix or 'no extension'})"))
                continue
            text = _read_text(file, found, readable)
            if text is None:
                continue
            if text.strip():
                found.examples.append(Example(text, folder.name, str(file)))
            else:
                found.skipped.append(Skipped(str(file), "no text (only white space)"))


def _walk(root: Path, found: Labelled) -> list[Path]:
    """The files under a class folder, hidden ones skipped (the corpus reader's walk)."""
    corpus = Corpus()
    files = walk(root, corpus)
    found.skipped += corpus.skipped
    return files


def _add(found: Labelled, where: str, text: object, label: object, labels: bool = True) -> None:
    if not isinstance(text, str):
        found.skipped.append(Skipped(where, f"text is not a string ({type(text).__name__})"))
    elif not text.strip():
        found.skipped.append(Skipped(where, "empty text"))
    elif not labels and label is None:
        found.examples.append(Example(text, "", where))
    elif label is None or isinstance(label, (dict, list, bool)) or not str(label).strip():
        found.skipped.append(Skipped(where, "no label"))
    else:
        found.examples.append(Example(text, str(label).strip(), where))


def _read_table(file: Path, text: str, found: Labelled, labels: bool = True) -> None:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD))  # a long text is one field (the default: 128 K)
    dialect = "excel-tab" if file.suffix.lower() == ".tsv" else "excel"
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header = next(reader, None)
    columns = [c.strip().lower() for c in header or []]
    missing = [c for c in ("text", "label") if c not in columns and (labels or c == "text")]
    if missing:
        raise SourceError(f"{str(file)!r} has no {' or '.join(repr(c) for c in missing)} column; its header is "
                          f"{', '.join(repr(c) for c in (header or [])) or 'empty'}")  # fmt: skip
    t = columns.index("text")
    lab = columns.index("label") if "label" in columns else None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a malformed row (an unclosed quote at the end, a huge field): the rest is lost
            found.skipped.append(Skipped(f"{file}:{reader.line_num}", f"malformed CSV ({exc}); the rest of the file"))
            break
        where = f"{file}:{reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(t, lab or 0):
            found.skipped.append(Skipped(where, f"{len(row)} field(s), the header has {len(columns)}"))
            continue
        _add(found, where, row[t], None if lab is None else row[lab], labels)


def _read_jsonl(file: Path, text: str, found: Labelled, labels: bool = True) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            row = json.loads(line)
        except ValueError:
            found.skipped.append(Skipped(where, "not JSON"))
            continue
        if not isinstance(row, dict):
            found.skipped.append(Skipped(where, "not a JSON object"))
            continue
        missing = [c for c in ("text", "label") if c not in row and (labels or c == "text")]
        if missing:
            found.skipped.append(Skipped(where, f"no field {' or '.join(repr(c) for c in missing)}"))
            continue
        _add(found, where, row["text"], row.get("label"), labels)
