"""Reading a text corpus: a text file, a folder of text files, or JSONL with a `text` field; and its split.

Every file is read as UTF-8. Bytes that are not UTF-8 are replaced by U+FFFD and counted per file; a file with a
NUL byte in its first 8 KiB is skipped as binary, an empty one as empty, hidden files and folders as hidden, a
JSONL line that is not a JSON object with a string `text` as a bad line (with its number). Nothing here raises on
a bad file: the build reports it. The split cuts the corpus into contiguous blocks and holds out whole blocks, so
no passage lands in both splits.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deepyard.errors import SourceError

BINARY_PROBE = 8192  # bytes looked at for a NUL
MAX_BLOCK = 65536  # characters per block of the split, at most
MIN_BLOCKS = 20  # a short corpus is still cut into this many blocks
_SURROGATES = re.compile("[\udc80-\udcff]")


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class Corpus:
    texts: list[str] = field(default_factory=list)  # one per document, in order
    files: int = 0  # files read
    skipped: list[Skipped] = field(default_factory=list)
    replaced: list[dict[str, object]] = field(default_factory=list)  # {"path", "bytes"}: undecodable bytes

    @property
    def text(self) -> str:
        return "\n\n".join(self.texts)


def decode(data: bytes) -> tuple[str, int]:
    """(text, undecodable bytes replaced by U+FFFD)."""
    text = data.decode("utf-8", "surrogateescape")
    text, count = _SURROGATES.subn("\ufffd", text)
    return text, count


def read_corpus(path: Path, readable: Callable[[str], bool] | None = None) -> Corpus:
    """The documents under `path` (see the module docstring); SourceError only when `path` itself is unusable."""
    corpus = Corpus()
    if path.is_dir():
        for file in _walk(path, corpus):
            _read_file(file, corpus, readable)
    elif path.is_file():
        _read_file(path, corpus, readable)
    else:
        raise SourceError(f"{str(path)!r} does not exist; give a text file, a folder of text files or a .jsonl file")
    return corpus


def _walk(root: Path, corpus: Corpus) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for d in sorted(dirs):
            if d.startswith("."):
                corpus.skipped.append(Skipped(str(Path(folder, d)), "hidden folder"))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            (corpus.skipped.append(Skipped(str(Path(folder, name)), "hidden file")) if name.startswith(".")
             else found.append(Path(folder, name)))  # fmt: skip
    return found


def _read_file(file: Path, corpus: Corpus, readable: Callable[[str], bool] | None) -> None:
    if readable is not None and not readable(str(file)):  # the server's builds: never opened
        corpus.skipped.append(Skipped(str(file), "outside the data roots"))
        return
    try:
        if not file.is_file():
            corpus.skipped.append(Skipped(str(file), "not a regular file"))
            return
        data = file.read_bytes()
    except OSError as exc:
        corpus.skipped.append(Skipped(str(file), f"cannot be read: {exc.strerror or exc}"))
        return
    if not data:
        corpus.skipped.append(Skipped(str(file), "empty file (0 bytes)"))
        return
    if b"\x00" in data[:BINARY_PROBE]:
        corpus.skipped.append(Skipped(str(file), "binary file (a NUL byte in its first 8 KiB)"))
        return
    text, replaced = decode(data)
    if replaced:
        corpus.replaced.append({"path": str(file), "bytes": replaced})
    corpus.files += 1
    if file.suffix.lower() == ".jsonl":
        _read_jsonl(file, text, corpus)
    elif text.strip():
        corpus.texts.append(text)
    else:
        corpus.skipped.append(Skipped(str(file), "no text (only white space)"))


def _read_jsonl(file: Path, text: str, corpus: Corpus) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            corpus.skipped.append(Skipped(f"{file}:{number}", "not JSON"))
            continue
        value = row.get("text") if isinstance(row, dict) else None
        if not isinstance(value, str):
            corpus.skipped.append(Skipped(f"{file}:{number}", "no string field 'text'"))
        elif value:
            corpus.texts.append(value)


def split_text(text: str, val_pct: float, seed: int) -> tuple[str, str]:
    """(train, val): the text cut into contiguous blocks, `val_pct`% of them (at least one when val_pct > 0)
    held out at random, each split the concatenation of its blocks in corpus order."""
    if val_pct <= 0 or not text:
        return text, ""
    size = max(1, min(MAX_BLOCK, len(text) // MIN_BLOCKS))
    blocks = [text[i : i + size] for i in range(0, len(text), size)]
    count = min(len(blocks) - 1, max(1, round(len(blocks) * val_pct / 100)))
    if count < 1:
        return text, ""
    held = set(random.Random(seed).sample(range(len(blocks)), count))
    train = "".join(b for i, b in enumerate(blocks) if i not in held)
    val = "".join(b for i, b in enumerate(blocks) if i in held)
    return train, val
