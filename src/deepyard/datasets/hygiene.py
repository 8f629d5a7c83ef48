"""Exact duplicates: images whose decoded pixels are identical, within a split and across splits.

Leakage (the same picture in train and in val or test) is the most common silent mistake in a dataset, so the
build counts it in the manifest and lists every group in the report. Near-duplicates are out of scope.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from deepyard.datasets.spec import SPLITS


@dataclass
class Duplicates:
    summary: dict[str, dict[str, int]]  # {"within": {split: extra copies}, "across": {"train/val": leaked images}}
    groups: list[list[dict[str, str]]]  # each group: [{"split", "path"}, ...], two or more entries


def find_duplicates(hashes: dict[str, list[bytes]], names: dict[str, list[str]]) -> Duplicates:
    """Group kept images by pixel hash. `hashes[split][i]` and `names[split][i]` describe image i of a split.

    Within a split, the count is the number of extra copies (a group of 3 counts 2). Across "a/b", it is the
    number of images of b whose pixels also appear in a (for "train/val": validation images seen in training).
    """
    where: dict[bytes, list[tuple[str, int]]] = defaultdict(list)
    for split in SPLITS:
        for i, digest in enumerate(hashes.get(split, [])):
            where[digest].append((split, i))
    within = dict.fromkeys(hashes, 0)
    across = {f"{a}/{b}": 0 for i, a in enumerate(SPLITS) for b in SPLITS[i + 1 :] if a in hashes and b in hashes}
    groups = []
    for members in where.values():
        if len(members) < 2:
            continue
        groups.append([{"split": s, "path": names[s][i]} for s, i in members])
        per_split: dict[str, int] = defaultdict(int)
        for s, _ in members:
            per_split[s] += 1
        for s, n in per_split.items():
            within[s] += n - 1
        for pair in across:
            a, b = pair.split("/")
            if per_split.get(a) and per_split.get(b):
                across[pair] += per_split[b]
    return Duplicates(summary={"within": within, "across": across}, groups=groups)
