"""Listing sources: list files, separate folders, stratified seeded splits, per-class minimum and maximum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.datasets.sources import list_source
from deepyard.errors import SourceError
from tests.conftest import make_class_folders, random_image, save_image


def spec(source: dict[str, object], **options: object):
    return make_spec(name="s", source=source, width=8, height=8, **options)


def test_random_split_is_stratified_and_seeded(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", {"a": 20, "b": 40})
    src = {"kind": "folder", "train": tmp_path / "d"}
    listing = list_source(spec(src, val_pct=25, test_pct=10))
    counts = {s: np.bincount([it.target for it in items]).tolist() for s, items in listing.splits.items()}
    assert counts == {"train": [13, 26], "val": [5, 10], "test": [2, 4]}
    again = list_source(spec(src, val_pct=25, test_pct=10))
    other = list_source(spec(src, val_pct=25, test_pct=10, seed=3))
    names = [it.name for it in listing.splits["val"]]
    assert names == [it.name for it in again.splits["val"]]
    assert names != [it.name for it in other.splits["val"]]
    every = [it.name for items in listing.splits.values() for it in items]
    assert len(every) == len(set(every)) == 60


def test_nested_folders_are_flattened_into_their_class(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", {"a": 2, "b": 2})
    save_image(tmp_path / "d" / "a" / "x" / "y" / "deep.png", random_image(np.random.default_rng(0)))
    listing = list_source(spec({"kind": "folder", "train": tmp_path / "d"}, val_pct=0))
    assert [it.target for it in listing.splits["train"]] == [0, 0, 0, 1, 1]


def test_min_per_class_drops_small_classes_and_says_so(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", {"a": 5, "b": 5, "rare": 1, "c": 5})
    listing = list_source(spec({"kind": "folder", "train": tmp_path / "d"}, min_per_class=2))
    assert listing.classes == ["a", "b", "c"]
    assert listing.dropped_classes == [{"class": "rare", "count": 1, "reason": "fewer than 2 training images"}]
    assert sorted({it.target for items in listing.splits.values() for it in items}) == [0, 1, 2]


def test_max_per_class_caps_each_class(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", {"a": 10, "b": 3})
    listing = list_source(spec({"kind": "folder", "train": tmp_path / "d"}, max_per_class=4, val_pct=0))
    assert np.bincount([it.target for it in listing.splits["train"]]).tolist() == [4, 3]


def test_separate_val_folder_must_have_the_same_classes(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "train", {"a": 2, "b": 2})
    make_class_folders(tmp_path / "val", {"a": 2, "c": 2})
    with pytest.raises(SourceError, match=r"only in the first: \['b'\]; only in the second: \['c'\]"):
        list_source(spec({"kind": "folder", "train": tmp_path / "train", "val": tmp_path / "val"}))


def test_separate_val_folder_replaces_the_random_split(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "train", {"a": 4, "b": 4})
    make_class_folders(tmp_path / "val", {"a": 1, "b": 2}, seed=5)
    src = {"kind": "folder", "train": tmp_path / "train", "val": tmp_path / "val"}
    listing = list_source(spec(src, val_pct=50))
    assert [len(listing.splits[s]) for s in ("train", "val", "test")] == [8, 3, 0]


def write_list_dataset(root: Path) -> None:
    written = make_class_folders(root / "imgs", {"x": 3, "y": 3})
    assert written
    (root / "labels.txt").write_text("x\ny\n\n")
    lines = [f"imgs/x/{i:03d}.png 0" for i in range(3)] + [f"imgs/y/{i:03d}.png 1" for i in range(2)]
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "val.txt").write_text(f"{root}/imgs/y/002.png 1\n# a comment\n")


def test_list_files_build_with_labels_and_base(settings: Settings, tmp_path: Path) -> None:
    write_list_dataset(tmp_path)
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("train.txt", "val.txt", "labels.txt"):
        (tmp_path / name).rename(lists / name)
    src = {"kind": "list", "train": lists / "train.txt", "val": lists / "val.txt", "labels": lists / "labels.txt"}
    m = create_dataset(settings, spec({**src, "base": tmp_path}))
    assert m.classes == ["x", "y"]
    assert m.splits["train"].per_class == [3, 2] and m.splits["val"].per_class == [0, 1]
    assert open_split(settings, m, "val").labels.tolist() == [1]


def test_list_file_paths_default_to_the_list_folder(tmp_path: Path) -> None:
    write_list_dataset(tmp_path)
    src = {"kind": "list", "train": tmp_path / "train.txt", "labels": tmp_path / "labels.txt"}
    listing = list_source(spec(src, val_pct=0))
    assert listing.splits["train"][0].source == str(tmp_path / "imgs/x/000.png")


@pytest.mark.parametrize(
    ("line", "message"),
    [("imgs/x/000.png", "line 2: expected 'path label_index'"), ("imgs/x/000.png 7", "label 7 is out of range")],
)
def test_bad_list_lines_name_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    write_list_dataset(tmp_path)
    (tmp_path / "train.txt").write_text(f"imgs/x/001.png 0\n{line}\n")
    src = {"kind": "list", "train": tmp_path / "train.txt", "labels": tmp_path / "labels.txt"}
    with pytest.raises(SourceError, match=message):
        list_source(spec(src))


def test_duplicate_class_names_in_labels_file_are_refused(tmp_path: Path) -> None:
    write_list_dataset(tmp_path)
    (tmp_path / "labels.txt").write_text("x\ny\nx\n")
    src = {"kind": "list", "train": tmp_path / "train.txt", "labels": tmp_path / "labels.txt"}
    with pytest.raises(SourceError, match=r"names these classes twice: \['x'\]"):
        list_source(spec(src))
