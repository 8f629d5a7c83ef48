"""Turn a dataset source into a listing: the classes, and the items of each split, before any pixel is read.

Walks class folders (nested folders flattened into their class; hidden files, symlink loops, broken links and
non-image files skipped and reported), parses list files, reads IDX arrays; applies the per-class minimum and
maximum and the seeded, per-class (stratified) random split. Every problem that makes the whole source unusable
(a missing folder, no class folders, a malformed list line, mismatched classes) raises SourceError here, before
any work starts. Decoding is not done here (see `images`).

Confinement: given a `readable` check (the server's data roots), every path the source names, whether a folder
entry, the target of a symlink inside a root, or a line of a list file (absolute, `..` or relative), is resolved
and checked before it is touched; a path outside is reported as "outside the data roots" and never opened, so the
report says the same whether or not the path exists.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from deepyard.datasets.idx import read_idx_pair
from deepyard.datasets.images import EXTENSIONS
from deepyard.datasets.listing import Item as Item
from deepyard.datasets.listing import Listing as Listing
from deepyard.datasets.listing import Skipped as Skipped
from deepyard.datasets.spec import SPLITS, DatasetSpec, FolderSource, IdxSource, ListSource
from deepyard.errors import SourceError

Readable = Callable[[str], bool]  # True when a path (symlinks resolved) may be read
OUTSIDE = "outside the data roots"


def list_source(spec: DatasetSpec, readable: Readable | None = None) -> Listing:
    """List the items of every split for `spec`, applying caps, the minimum per class and the random split.

    `readable`: when given, paths it refuses are skipped as "outside the data roots" without being opened.
    """
    src = spec.source
    if isinstance(src, FolderSource):
        classes, given, skipped = _list_folders(src, readable)
    elif isinstance(src, ListSource) and src.labels is not None:
        classes, given, skipped = _list_files(src, readable)
    elif isinstance(src, IdxSource):
        classes, given, skipped = _list_idx(src)
    else:
        raise SourceError(
            f"a {src.kind} source with no labels file is not a classification source; give a labels file, or "
            "build it for the task it is written for (--task multilabel or regression)"
        )
    caps = {"train": spec.max_per_class, "val": spec.val_max_per_class, "test": spec.test_max_per_class}
    rng = np.random.default_rng(spec.seed)
    for split, items in given.items():
        given[split] = _cap(items, caps[split], rng)
    listing = Listing(classes=classes, splits={}, skipped=skipped)
    _drop_small_classes(listing, given, spec.min_per_class)
    _split(listing, given, spec, rng)
    return listing


def check_source(spec: DatasetSpec) -> None:
    """The cheap part of listing, for a check at submit: every folder exists and has class sub-folders, every
    file exists. SourceError names the first problem (the build would fail on it later, after queueing)."""
    src = spec.source
    for key, path in src:
        if not isinstance(path, Path) or key == "kind":
            continue
        if isinstance(src, FolderSource) or key == "base":
            if not path.is_dir():
                raise SourceError(f"source.{key}: folder {str(path)!r} does not exist or is not a folder")
            if isinstance(src, FolderSource) and not _has_subfolder(path):
                raise SourceError(
                    f"source.{key}: folder {str(path)!r} has no class sub-folders; put each class's images in a "
                    f"sub-folder named after the class (for example {str(path / 'cat')!r})"
                )
        elif not path.is_file():
            raise SourceError(f"source.{key}: file {str(path)!r} does not exist or is not a file")


def _has_subfolder(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(e.is_dir() and not e.name.startswith(".") for e in entries)
    except OSError:
        return False


# ---------------------------------------------------------------- folders


def _list_folders(
    src: FolderSource, readable: Readable | None
) -> tuple[list[str], dict[str, list[Item]], list[Skipped]]:
    skipped: list[Skipped] = []
    found = {"train": _walk_classes(src.train, skipped, readable)}
    for split in ("val", "test"):
        folder = getattr(src, split)
        if folder is not None:
            found[split] = _walk_classes(folder, skipped, readable)
            _check_same_classes(found["train"], found[split], src.train, folder)
    classes = sorted(found["train"])
    index = {name: i for i, name in enumerate(classes)}
    given = {
        split: [Item(p, index[c], p) for c in sorted(per_class) for p in per_class[c]]
        for split, per_class in found.items()
    }
    return classes, given, skipped


def _walk_classes(root: Path, skipped: list[Skipped], readable: Readable | None = None) -> dict[str, list[str]]:
    """Map class name -> sorted image paths under `root/<class>/**`."""
    if readable is not None and not readable(str(root)):
        raise SourceError(f"folder {str(root)!r} is {OUTSIDE}")
    if not root.is_dir():
        raise SourceError(f"folder {str(root)!r} does not exist or is not a folder")
    per_class: dict[str, list[str]] = {}
    root_st = os.stat(root)
    root_key = (root_st.st_dev, root_st.st_ino)
    for entry, kind, key in _scan(str(root), skipped, {root_key}, readable):
        if kind == "dir":
            files: list[str] = []
            _walk_files(entry.path, files, skipped, {root_key, key}, readable)
            per_class[entry.name] = sorted(files)
        elif kind == "file":
            skipped.append(Skipped(entry.path, "file outside any class folder"))
    if not per_class:
        raise SourceError(
            f"folder {str(root)!r} has no class sub-folders; put each class's images in a sub-folder "
            f"named after the class (for example {str(root / 'cat')!r})"
        )
    return per_class


def walk_images(folder: Path, readable: Readable | None = None) -> tuple[list[str], list[Skipped]]:
    """Every image file under `folder`, recursively and sorted, and the entries skipped (with reasons)."""
    if readable is not None and not readable(str(folder)):
        raise SourceError(f"folder {str(folder)!r} is {OUTSIDE}")
    if not folder.is_dir():
        raise SourceError(f"folder {str(folder)!r} does not exist or is not a folder")
    st = os.stat(folder)
    found: list[str] = []
    skipped: list[Skipped] = []
    _walk_files(str(folder), found, skipped, {(st.st_dev, st.st_ino)}, readable)
    return sorted(found), skipped


def _walk_files(
    folder: str, out: list[str], skipped: list[Skipped], visited: set[tuple[int, int]], readable: Readable | None
) -> None:
    for entry, kind, key in _scan(folder, skipped, visited, readable):
        if kind == "dir":
            visited.add(key)
            _walk_files(entry.path, out, skipped, visited, readable)
        elif kind == "other":
            skipped.append(Skipped(entry.path, "not a regular file (a device, socket or pipe)"))
        elif "." + entry.name.rpartition(".")[2].lower() in EXTENSIONS:
            out.append(entry.path)
        else:
            ext = os.path.splitext(entry.name)[1] or "(none)"
            skipped.append(
                Skipped(entry.path, f"extension {ext} is not an image type ({', '.join(sorted(EXTENSIONS))})")
            )


def _scan(
    folder: str, skipped: list[Skipped], visited: set[tuple[int, int]], readable: Readable | None = None
) -> Iterator[tuple[os.DirEntry[str], str, tuple[int, int]]]:
    """Yield (entry, "dir" | "file" | "other", folder key) for each usable entry, following symlinks.

    Plain files cost no system call (the kind comes from the directory listing); folders and links are
    stat'ed, so that symlink loops and broken links are caught and reported. A symlink whose target lies
    outside what `readable` allows is skipped before it is followed.
    """
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        skipped.append(Skipped(folder, f"cannot list folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
            skipped.append(Skipped(entry.path, f"hidden {kind}"))
            continue
        if entry.is_file(follow_symlinks=False):
            yield entry, "file", (0, 0)
            continue
        if readable is not None and entry.is_symlink() and not readable(entry.path):
            skipped.append(Skipped(entry.path, f"symlink to a path {OUTSIDE}"))
            continue
        try:
            st = os.stat(entry.path)
        except OSError as exc:
            skipped.append(Skipped(entry.path, _stat_reason(exc)))
            continue
        if not stat.S_ISDIR(st.st_mode):
            yield entry, "file" if stat.S_ISREG(st.st_mode) else "other", (0, 0)
        elif (st.st_dev, st.st_ino) in visited:
            skipped.append(Skipped(entry.path, "symlink loop (links back to a folder already listed)"))
        else:
            yield entry, "dir", (st.st_dev, st.st_ino)


def _stat_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "broken symlink (its target does not exist)"
    return f"cannot read: {exc.strerror or exc}"


def _check_same_classes(
    train: dict[str, list[str]], other: dict[str, list[str]], train_root: Path, other_root: Path
) -> None:
    if set(train) == set(other):
        return
    only_train, only_other = sorted(set(train) - set(other)), sorted(set(other) - set(train))
    raise SourceError(
        f"folders {str(train_root)!r} and {str(other_root)!r} must have the same class sub-folders; "
        f"only in the first: {only_train or 'none'}; only in the second: {only_other or 'none'}"
    )


# ---------------------------------------------------------------- list files


def _list_files(src: ListSource, readable: Readable | None) -> tuple[list[str], dict[str, list[Item]], list[Skipped]]:
    for key, path in src:
        if isinstance(path, Path) and readable is not None and not readable(str(path)):
            raise SourceError(f"source.{key} {str(path)!r} is {OUTSIDE}")
    assert src.labels is not None
    classes = _read_labels(src.labels)
    given: dict[str, list[Item]] = {}
    skipped: list[Skipped] = []
    for split in SPLITS:
        path = getattr(src, split)
        if path is not None:
            items = _read_list(path, src.base or path.parent, len(classes))
            if readable is not None:
                inside = [readable(it.name) for it in items]
                skipped += [Skipped(it.name, OUTSIDE) for it, ok in zip(items, inside, strict=True) if not ok]
                items = [it for it, ok in zip(items, inside, strict=True) if ok]
            given[split] = items
    return classes, given, skipped


def _read_labels(path: Path) -> list[str]:
    lines = _read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    if not names:
        raise SourceError(f"labels file {str(path)!r} is empty; write one class name per line")
    for i, name in enumerate(names):
        if not name:
            raise SourceError(f"labels file {str(path)!r}, line {i + 1}: empty class name")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SourceError(f"labels file {str(path)!r} names these classes twice: {dupes}")
    return names


def _read_list(path: Path, base: Path, n_classes: int) -> list[Item]:
    items = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.strip().rsplit(None, 1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise SourceError(f"list file {str(path)!r}, line {number}: expected 'path label_index', got {line!r}")
        label = int(parts[1])
        if not 0 <= label < n_classes:
            raise SourceError(
                f"list file {str(path)!r}, line {number}: label {label} is out of range; "
                f"the labels file has {n_classes} classes (0 to {n_classes - 1})"
            )
        full = os.path.join(base, parts[0])
        items.append(Item(full, label, full))
    return items


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError as exc:
        raise SourceError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- IDX


def _list_idx(src: IdxSource) -> tuple[list[str], dict[str, list[Item]], list[Skipped]]:
    arrays = {}
    for split in SPLITS:
        images, labels = getattr(src, f"{split}_images"), getattr(src, f"{split}_labels")
        if (images is None) != (labels is None):
            raise SourceError(f"IDX source: give both {split}_images and {split}_labels, or neither")
        if images is not None:
            arrays[split] = (images, *read_idx_pair(images, labels))
    top = max(int(y.max(initial=0)) for _, _, y in arrays.values())
    classes = list(src.classes) if src.classes else [str(i) for i in range(top + 1)]
    given = {}
    for split, (path, x, y) in arrays.items():
        if y.min(initial=0) < 0 or y.max(initial=0) >= len(classes):
            raise SourceError(f"{str(path)!r}: labels must lie in 0..{len(classes) - 1} (one per class name)")
        given[split] = [Item(x[i], int(y[i]), f"{path.name}#{i}") for i in range(len(x))]
    return classes, given, []


# ---------------------------------------------------------------- caps, minimum and split


def _cap(items: list[Item], cap: int | None, rng: np.random.Generator) -> list[Item]:
    if cap is None:
        return items
    by_class = _by_class(items)
    kept: list[Item] = []
    for label in sorted(by_class):
        group = by_class[label]
        if len(group) > cap:
            chosen = sorted(rng.choice(len(group), size=cap, replace=False))
            group = [group[i] for i in chosen]
        kept.extend(group)
    return kept


def _drop_small_classes(listing: Listing, given: dict[str, list[Item]], minimum: int) -> None:
    counts = np.bincount([it.target for it in given["train"]], minlength=len(listing.classes))
    keep = [i for i, n in enumerate(counts) if n >= minimum]
    for i, n in enumerate(counts):
        if n < minimum:
            listing.dropped_classes.append(
                {
                    "class": listing.classes[i],
                    "count": int(n),
                    "reason": f"fewer than {minimum} training images",
                }
            )
    if len(keep) < 2:
        raise SourceError(
            f"only {len(keep)} class(es) have at least {minimum} training images; a classification dataset "
            f"needs 2 or more (classes found: {len(listing.classes)}, counts: {counts.tolist()})"
        )
    if len(keep) == len(listing.classes):
        return
    remap = {old: new for new, old in enumerate(keep)}
    listing.classes = [listing.classes[i] for i in keep]
    for split, items in given.items():
        given[split] = [Item(it.source, remap[it.target], it.name) for it in items if it.target in remap]


def _split(listing: Listing, given: dict[str, list[Item]], spec: DatasetSpec, rng: np.random.Generator) -> None:
    """Hold out val/test items per class from train when no separate source gives them."""
    pct = {"val": spec.val_pct, "test": spec.test_pct}
    held = [s for s in ("val", "test") if s not in given and pct[s] > 0]
    out: dict[str, list[Item]] = {s: [] for s in SPLITS}
    for split, items in given.items():
        out[split] = list(items)
    if held:
        out["train"] = []
        for _label, group in sorted(_by_class(given["train"]).items()):
            order = rng.permutation(len(group))
            start = 0
            for s in held:
                n = round(len(group) * pct[s] / 100)
                out[s].extend(group[i] for i in sorted(order[start : start + n]))
                start += n
            out["train"].extend(group[i] for i in sorted(order[start:]))
        for s in held:
            out[s].sort(key=lambda it: it.target)
    listing.splits = out


def _by_class(items: list[Item]) -> dict[int, list[Item]]:
    groups: dict[int, list[Item]] = {}
    for it in items:
        groups.setdefault(it.target, []).append(it)
    return groups
