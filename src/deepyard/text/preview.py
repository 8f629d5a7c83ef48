"""What a language-model dataset looks like to a person: a few passages from each split, the vocabulary and the
build report's text figures. The dataset page (`/datasets/ID`) and its JSON twin (`GET /api/v1/datasets/ID/text`)
show it; `deepyard dataset show` prints the report itself.

Passages are decoded from the stored tokens (what the model trains on), taken at evenly spaced offsets, so they
are the same every time. Vocabulary entries are shown printable: a newline as `\\n`, a tab as `\\t`, a space as `␣`.
"""

from __future__ import annotations

from typing import Any

from deepyard.config import Settings
from deepyard.datasets import Manifest, open_split
from deepyard.datasets.catalog import dataset_dir, read_report
from deepyard.text.tokenizer import load_tokenizer

PASSAGES = 3  # per split
PASSAGE_TOKENS = 240
VOCAB_SHOWN = 512  # entries listed at most (a BPE vocabulary can have 65,536)
SHOWN = {"\n": "\\n", "\t": "\\t", "\r": "\\r", " ": "␣"}


def printable(token: str) -> str:
    return "".join(SHOWN.get(c, c if c.isprintable() else f"\\x{ord(c):02x}") for c in token)


def preview_corpus(settings: Settings, manifest: Manifest) -> dict[str, Any]:
    """{"passages": {split: [{"offset", "text"}]}, "vocabulary": {"size", "shown": [...]}, "text": the report's
    figures, "skipped", "replaced"} for a language-model dataset."""
    folder = dataset_dir(settings, manifest.id)
    tokenizer = load_tokenizer(folder)
    passages: dict[str, list[dict[str, Any]]] = {}
    for split in manifest.splits:
        store: Any = open_split(settings, manifest, split)
        total = len(store)
        length = min(PASSAGE_TOKENS, total)
        offsets = sorted({(total - length) * i // max(1, PASSAGES - 1) for i in range(PASSAGES)})
        passages[split] = [{"offset": o, "text": tokenizer.decode(store.block(o, length).tolist())} for o in offsets]
    names = tokenizer.names()
    report = read_report(folder)
    return {
        "passages": passages,
        "vocabulary": {"size": len(names), "shown": [printable(n) for n in names[:VOCAB_SHOWN]]},
        "text": report.get("text") or {},
        "skipped": report.get("skipped") or [],
        "replaced": report.get("replaced") or [],
    }
