"""Build a language-model dataset: read the corpus, split it, train the tokenizer, store the tokens.

Called by the dataset build (`deepyard.datasets.create_dataset`, through the task's `build_dataset` hook) inside
its `.build-<id>/` folder, so the atomic commit, the stale-build clean-up and the disk-full handling are the image
build's. Writes `tokenizer.json`, `train/tokens.npy` and `val/tokens.npy` (with `sources.json`), `report.json`
and returns the manifest. A corpus that cannot make a dataset (no text at all, shorter than one block of the
context) is a SourceError naming what was found and skipped, raised before anything is stored.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from deepyard import __version__
from deepyard.datasets import catalog
from deepyard.datasets.spec import DatasetSpec
from deepyard.errors import SourceError
from deepyard.files import write_json_atomic
from deepyard.text.corpus import read_corpus, split_text
from deepyard.text.store import TOKENS_FILE
from deepyard.text.tokenizer import Tokenizer, save_tokenizer, train_tokenizer

ProgressFn = Callable[[str, int, int], None]


def build_text_dataset(
    spec: DatasetSpec, readable: Callable[[str], bool] | None, work: Path, dataset_id: str, progress: ProgressFn
) -> catalog.Manifest:
    started = time.perf_counter()
    source: Any = spec.source
    progress("reading", 0, 1)
    corpus = read_corpus(Path(source.train), readable)
    text = corpus.text
    if not text:
        reasons = sorted({s.reason for s in corpus.skipped})[:5]
        raise SourceError(f"{str(source.train)!r} has no text: {len(corpus.skipped)} file(s) or line(s) skipped"
                          + (f" ({'; '.join(reasons)})" if reasons else ""))  # fmt: skip
    train, val = split_text(text, spec.val_pct, spec.seed)
    progress("tokenizing", 0, 1)
    tokenizer = train_tokenizer(source.tokenizer, [train] if source.tokenizer == "bpe" else [train, val],
                                source.vocab_size)  # fmt: skip
    splits = {"train": tokenizer.encode_array(train), "val": tokenizer.encode_array(val)}
    _check_lengths(splits, source.context, spec.val_pct)
    save_tokenizer(tokenizer, work)
    for name, tokens in splits.items():
        if len(tokens):
            (work / name).mkdir()
            np.save(work / name / TOKENS_FILE, tokens)
            write_json_atomic(work / name / "sources.json", [str(source.train)])
    stats = _stats(tokenizer, train, val, splits)
    write_json_atomic(work / catalog.REPORT, {
        "skipped": [{"path": s.path, "reason": s.reason} for s in corpus.skipped],
        "dropped_classes": [], "duplicates": [], "replaced": corpus.replaced, "text": stats,
    })  # fmt: skip
    progress("finishing", 1, 1)
    manifest = catalog.Manifest(
        id=dataset_id, name=spec.name, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 3), deepyard_version=__version__, spec=spec,
        task="language-model", target_stats=stats, encoding="tokens", shape=(source.context, 1, 1),
        classes=tokenizer.names(),
        splits={n: catalog.SplitInfo(count=len(t), per_class=[]) for n, t in splits.items() if len(t)},
        skipped=len(corpus.skipped), dropped_classes=[],
        duplicates={"within": {n: 0 for n in splits}, "across": {}},  # the image build's shape; not counted for text
        content_hash=_hash(work, splits), size_bytes=sum(p.stat().st_size for p in work.rglob("*") if p.is_file()),
    )  # fmt: skip
    write_json_atomic(work / catalog.MANIFEST, manifest.model_dump(mode="json"))
    return manifest


def _check_lengths(splits: dict[str, np.ndarray], context: int, val_pct: float) -> None:
    need = context + 1  # one block and its next-token targets
    train, val = len(splits["train"]), len(splits["val"])
    if train < need:
        raise SourceError(f"the training text is {train:,} tokens, shorter than one block of the context ({context} "
                          f"tokens + 1); give a longer text or a smaller --context")  # fmt: skip
    if val_pct > 0 and val < need:
        raise SourceError(f"the validation text ({val_pct:g}% of the corpus) is {val:,} tokens, shorter than one "
                          f"block of the context ({context} + 1); raise --val-pct, give a longer text or a smaller "
                          "--context")  # fmt: skip


def _stats(tokenizer: Tokenizer, train: str, val: str, splits: dict[str, np.ndarray]) -> dict[str, Any]:
    seen_chars = set(train)
    unseen_chars = sum(1 for c in val if c not in seen_chars)
    seen = np.zeros(tokenizer.vocab_size, bool)
    seen[np.unique(splits["train"])] = True
    unseen_tokens = int((~seen[splits["val"]]).sum()) if len(splits["val"]) else 0
    per_token = len(val) / max(1, len(splits["val"])) if val else len(train) / max(1, len(splits["train"]))
    return {
        "tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
        "chars": {"train": len(train), "val": len(val)}, "tokens": {n: len(t) for n, t in splits.items()},
        "chars_per_token": round(per_token, 6),
        "unseen_val_chars": unseen_chars, "unseen_val_char_kinds": sorted({c for c in val if c not in seen_chars})[:50],
        "unseen_val_tokens": unseen_tokens, "bits_per_token_uniform": round(math.log2(max(2, tokenizer.vocab_size)), 4),
    }  # fmt: skip


def _hash(work: Path, splits: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256((work / "tokenizer.json").read_bytes())
    for name in sorted(splits):
        h.update(name.encode() + splits[name].tobytes())
    return h.hexdigest()
