"""Build a text-classification dataset: read the labelled texts, split them, train the tokenizer, store the rows.

Called by the dataset build through the task's `build_dataset` hook inside its `.build-<id>/` folder (the atomic
commit and the clean-up are the image build's). The split holds out `val_pct`% of each class (seeded), unless a
separate validation source is given. Classes with fewer than `min_per_class` training texts are dropped and
reported; validation texts of a class training does not have are skipped. Exact duplicates (the same text after
stripping white space at both ends) are counted within each split and across (`train/val`: validation texts that
training has, i.e. leakage), as the image build counts identical pixels (deepyard.datasets.hygiene). The report
also has each class's length histogram (tokens), the truncated texts and the validation tokens the vocabulary lacks.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from deepyard import __version__
from deepyard.datasets import catalog
from deepyard.datasets.hygiene import find_duplicates
from deepyard.datasets.spec import DatasetSpec
from deepyard.errors import SourceError
from deepyard.files import write_json_atomic
from deepyard.text.corpus import Skipped
from deepyard.text.labelled import Example, Labelled, read_labelled
from deepyard.text.sequences import UNKNOWN, encode_ids, encode_rows, save_split, vocabulary
from deepyard.text.tokenizer import save_tokenizer, train_tokenizer

LENGTH_EDGES = (0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)  # histogram bins in tokens; the last is open
MAX_AUTO_LENGTH = 1024  # the automatic stored length is at most this


def build_labelled_text_dataset(
    spec: DatasetSpec, readable: Callable[[str], bool] | None, work: Path, dataset_id: str,
    progress: Callable[[str, int, int], None],
) -> catalog.Manifest:  # fmt: skip
    started = time.perf_counter()
    source: Any = spec.source
    progress("reading", 0, 1)
    found = read_labelled(Path(source.train), readable)
    held = read_labelled(Path(source.val), readable) if source.val is not None else None
    splits, classes, dropped = _split(spec, found, held)
    progress("tokenizing", 0, 1)
    tokenizer = train_tokenizer(source.tokenizer, [e.text for e in splits["train"]], source.vocab_size)
    ids = {name: [encode_ids(tokenizer, e.text) for e in examples] for name, examples in splits.items()}
    length = source.max_length or _auto_length([len(i) for i in ids["train"]])
    save_tokenizer(tokenizer, work)
    index = {c: i for i, c in enumerate(classes)}
    truncated, per_class = {}, {}
    for name, examples in splits.items():
        if not examples:
            continue
        rows, lengths, truncated[name] = encode_rows(tokenizer, [e.text for e in examples], length)
        labels = np.array([index[e.label] for e in examples], np.int64)
        save_split(work / name, rows, lengths, labels, [e.text for e in examples])
        write_json_atomic(work / name / "sources.json", [e.name for e in examples])
        per_class[name] = np.bincount(labels, minlength=len(classes)).tolist()
    hashes = {n: [_digest(e.text) for e in ex] for n, ex in splits.items() if ex}
    duplicates = find_duplicates(hashes, {n: [e.name for e in ex] for n, ex in splits.items() if ex})
    skipped = found.skipped + (held.skipped if held else [])
    stats = {
        "tokenizer": tokenizer.kind, "vocab_size": vocabulary(tokenizer), "max_length": length, "pad": 0,
        "unknown": UNKNOWN, "truncated": truncated,
        "unknown_val_tokens": sum(t.count(UNKNOWN) for t in ids.get("val", [])),
    }  # fmt: skip
    write_json_atomic(work / catalog.REPORT, {
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped], "dropped_classes": dropped,
        "duplicates": duplicates.groups, "replaced": found.replaced + (held.replaced if held else []),
        "text": {**stats, "lengths": _histograms(ids, splits, classes)},
    })  # fmt: skip
    progress("finishing", 1, 1)
    manifest = catalog.Manifest(
        id=dataset_id, name=spec.name, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 3), deepyard_version=__version__, spec=spec,
        task="text-classification", target_stats=stats, encoding="tokens", shape=(length, 1, vocabulary(tokenizer)),
        classes=classes,
        splits={n: catalog.SplitInfo(count=len(ex), per_class=per_class[n]) for n, ex in splits.items() if ex},
        skipped=len(skipped), dropped_classes=dropped, duplicates=duplicates.summary,
        content_hash=_hash(work, classes, splits),
        size_bytes=sum(p.stat().st_size for p in work.rglob("*") if p.is_file()),
    )  # fmt: skip
    write_json_atomic(work / catalog.MANIFEST, manifest.model_dump(mode="json"))
    return manifest


def _split(
    spec: DatasetSpec, found: Labelled, held: Labelled | None
) -> tuple[dict[str, list[Example]], list[str], list[dict[str, object]]]:
    """(the examples of each split, the classes, the classes dropped for having too few training texts)."""
    rng = random.Random(spec.seed)
    by_class: dict[str, list[Example]] = defaultdict(list)
    for e in found.examples:
        by_class[e.label].append(e)
    train: list[Example] = []
    val: list[Example] = []
    dropped: list[dict[str, object]] = []
    for label in sorted(by_class):
        examples = by_class[label]
        if spec.max_per_class is not None and len(examples) > spec.max_per_class:
            examples = rng.sample(examples, spec.max_per_class)
        count = 0 if held is not None or spec.val_pct <= 0 else max(1, round(len(examples) * spec.val_pct / 100))
        count = min(count, len(examples) - 1)
        picked = set(rng.sample(range(len(examples)), count)) if count > 0 else set()
        kept = [e for i, e in enumerate(examples) if i not in picked]
        if len(kept) < spec.min_per_class:
            dropped.append({"class": label, "count": len(kept), "reason": f"fewer than {spec.min_per_class} texts"})
            continue
        train += kept
        val += [e for i, e in enumerate(examples) if i in picked]
    classes = sorted({e.label for e in train})
    if held is not None:
        val = _held_out(spec, held, classes, rng)
    if len(classes) < 2:
        reasons = sorted({s.reason for s in found.skipped})[:5]
        where = str(getattr(spec.source, "train", "the source"))
        why = f" ({len(found.skipped)} skipped: {'; '.join(reasons)})" if found.skipped else ""
        why += "".join(f"; class {d['class']!r} dropped: {d['reason']}" for d in dropped[:5])
        raise SourceError(f"{where!r} gives {len(classes)} usable class(es) with {len(train)} text(s); a classifier "
                          f"needs at least 2 classes{why}")  # fmt: skip
    return {"train": train, "val": val}, classes, dropped


def _held_out(spec: DatasetSpec, held: Labelled, classes: list[str], rng: random.Random) -> list[Example]:
    known = set(classes)
    val: list[Example] = []
    per_class: dict[str, int] = defaultdict(int)
    for e in held.examples:
        if e.label not in known:
            held.skipped.append(Skipped(e.name, f"class {e.label!r} is not among the training classes"))
        elif spec.val_max_per_class is None or per_class[e.label] < spec.val_max_per_class:
            per_class[e.label] += 1
            val.append(e)
    return val


def _auto_length(lengths: list[int]) -> int:
    """The 95th percentile of the training lengths, rounded up to a multiple of 8, within 8..MAX_AUTO_LENGTH."""
    p95 = float(np.percentile(lengths, 95)) if lengths else 8.0
    return int(min(MAX_AUTO_LENGTH, max(8, -(-int(np.ceil(p95)) // 8) * 8)))


def _histograms(
    ids: dict[str, list[list[int]]], splits: dict[str, list[Example]], classes: list[str]
) -> dict[str, Any]:
    """Per class and split: the texts per length bin (tokens, before truncation) and min/median/max."""
    edges = list(LENGTH_EDGES)
    per_class: dict[str, Any] = {c: {} for c in classes}
    for name, rows in ids.items():
        for c in classes:
            lengths = np.array([len(r) for r, e in zip(rows, splits[name], strict=True) if e.label == c], np.int64)
            if not len(lengths):
                continue
            counts = np.histogram(np.minimum(lengths, edges[-1]), bins=[*edges, edges[-1] + 1])[0]
            per_class[c][name] = {"counts": counts.tolist(), "min": int(lengths.min()),
                                  "median": float(np.median(lengths)), "max": int(lengths.max())}  # fmt: skip
    return {"edges": edges, "per_class": per_class}


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.strip().encode("utf-8", "surrogatepass")).digest()


def _hash(work: Path, classes: list[str], splits: dict[str, list[Example]]) -> str:
    h = hashlib.sha256((work / "tokenizer.json").read_bytes())
    h.update("\n".join(classes).encode())
    for name in sorted(splits):
        if splits[name]:
            for f in ("tokens.npy", "labels.npy"):
                h.update((work / name / f).read_bytes())
    return h.hexdigest()
