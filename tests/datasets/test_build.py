"""Whole builds on folders the tests create: every robustness case, atomicity, determinism, duplicates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepyard.config import Settings
from deepyard.datasets import create_dataset, dataset_dir, list_datasets, make_spec, open_split
from deepyard.errors import SourceError
from tests.conftest import make_class_folders, random_image, save_image


def folder_spec(train: Path, **options: object):
    fields: dict[str, object] = {"name": "t", "source": {"kind": "folder", "train": train}, "width": 8, "height": 8}
    fields.update(options)
    return make_spec(**fields)


def report_reasons(settings: Settings, dataset_id: str) -> dict[str, str]:
    report = json.loads((dataset_dir(settings, dataset_id) / "report.json").read_text())
    return {os.path.basename(e["path"]): e["reason"] for e in report["skipped"]}


def build_messy_folder(root: Path) -> None:
    """Two classes of good images, plus one file or link for each way a folder can be messy."""
    make_class_folders(root, {"cat": 3, "dog": 3})
    cat = root / "cat"
    good = (cat / "000.png").read_bytes()
    (cat / "truncated.png").write_bytes(good[: len(good) // 2])
    jpeg = cat / "cut.jpg"
    save_image(jpeg, random_image(np.random.default_rng(1), (64, 64)), quality=90)
    jpeg.write_bytes(jpeg.read_bytes()[:400])
    (cat / "notes.png").write_text("this is not an image")
    (cat / "empty.jpg").write_bytes(b"")
    save_image(cat / "icon.png", random_image(np.random.default_rng(2), (16, 16)), fmt="ICO")
    Image.new("1", (5000, 4000)).save(cat / "bomb.png")  # 20 M pixels, a few kB
    (cat / "readme.txt").write_text("not an image extension")
    (cat / ".hidden.png").write_bytes(good)
    (cat / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    os.symlink(cat / "missing.png", cat / "dangling.png")
    os.symlink("self.png", cat / "self.png")
    os.symlink("..", cat / "loop")
    os.mkfifo(cat / "pipe.png")
    (root / "stray.png").write_bytes(good)  # outside any class folder
    nested = root / "dog" / "more" / "deeper"
    save_image(nested / "n.png", random_image(np.random.default_rng(3)))
    save_image(Path(os.fsdecode(bytes(root / "dog") + b"/caf\xe9.png")), random_image(np.random.default_rng(4)))


def test_messy_folder_builds_and_reports_every_bad_file(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "messy"
    build_messy_folder(root)
    m = create_dataset(settings, folder_spec(root, val_pct=0, max_pixels=10_000_000))
    assert m.classes == ["cat", "dog"]
    # 3 good cats; 3 dogs + a nested one + one with a Latin-1 (non-UTF-8) name
    assert m.splits["train"].per_class == [3, 5]
    reasons = report_reasons(settings, m.id)
    expected = {
        "truncated.png": "corrupt or truncated",
        "cut.jpg": "corrupt or truncated",
        "notes.png": "not an image",
        "empty.jpg": "empty file",
        "icon.png": "unsupported image format ICO",
        "bomb.png": "decompression bomb",
        "readme.txt": "not an image type",
        ".hidden.png": "hidden file",
        ".DS_Store": "hidden file",
        "dangling.png": "broken symlink",
        "self.png": "symlink loop",
        "loop": "symlink loop",
        "pipe.png": "not a regular file",
        "stray.png": "outside any class folder",
    }
    for name, reason in expected.items():
        assert reason in reasons.get(name, ""), (name, reasons.get(name))
    assert m.skipped == len(reasons) == len(expected)
    sources = json.loads((dataset_dir(settings, m.id) / "train" / "sources.json").read_text())
    assert any(s.endswith("caf\udce9.png") for s in sources)  # non-UTF-8 name kept, escaped in JSON


def test_missing_folder_is_an_error_before_any_work(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        create_dataset(settings, folder_spec(tmp_path / "nowhere"))
    assert not settings.datasets_dir.exists()


def test_folder_without_class_folders_is_an_error(settings: Settings, tmp_path: Path) -> None:
    save_image(tmp_path / "flat" / "a.png", random_image(np.random.default_rng(0)))
    with pytest.raises(SourceError, match="no class sub-folders"):
        create_dataset(settings, folder_spec(tmp_path / "flat"))


def test_store_holds_the_resized_pixels_and_mean(settings: Settings, tmp_path: Path) -> None:
    written = make_class_folders(tmp_path / "d", {"a": 4, "b": 4}, size=(8, 8))
    for encoding in ("raw", "png"):
        m = create_dataset(settings, folder_spec(tmp_path / "d", val_pct=0, encoding=encoding))
        store = open_split(settings, m, "train")
        expected = np.stack(written["a"] + written["b"])
        assert (store.to_array() == expected).all(), encoding
        assert store.labels.tolist() == [0] * 4 + [1] * 4
        mean = np.load(dataset_dir(settings, m.id) / "mean.npy")
        assert np.allclose(mean, expected.mean(axis=0), atol=1e-4)
        with Image.open(dataset_dir(settings, m.id) / "mean.png") as png:
            assert png.size == (8, 8)


def test_skipped_images_are_compacted_out_of_the_raw_store(settings: Settings, tmp_path: Path) -> None:
    written = make_class_folders(tmp_path / "d", {"a": 5, "b": 5}, size=(8, 8))
    (tmp_path / "d" / "a" / "001.png").write_text("broken")
    (tmp_path / "d" / "b" / "003.png").write_bytes(b"")
    m = create_dataset(settings, folder_spec(tmp_path / "d", val_pct=0, encoding="raw"))
    store = open_split(settings, m, "train")
    keep = [written["a"][i] for i in (0, 2, 3, 4)] + [written["b"][i] for i in (0, 1, 2, 4)]
    assert (store.to_array() == np.stack(keep)).all()
    assert store.labels.tolist() == [0] * 4 + [1] * 4


def test_parallel_and_serial_builds_are_identical(settings: Settings, tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", {"a": 30, "b": 30}, size=(20, 14))
    options = {"val_pct": 20, "test_pct": 10, "resize_mode": "fill", "fill": "noise", "encoding": "png"}
    serial = create_dataset(settings, folder_spec(tmp_path / "d", **options), workers=1)
    parallel = create_dataset(settings, folder_spec(tmp_path / "d", **options), workers=2)
    assert serial.content_hash == parallel.content_hash
    assert {s: i.count for s, i in serial.splits.items()} == {"train": 42, "val": 12, "test": 6}


def test_reuse_returns_the_existing_dataset(settings: Settings, tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", {"a": 3, "b": 3})
    first = create_dataset(settings, folder_spec(tmp_path / "d"))
    again = create_dataset(settings, folder_spec(tmp_path / "d"), reuse=True)
    other = create_dataset(settings, folder_spec(tmp_path / "d", seed=1), reuse=True)
    assert again.id == first.id and other.id != first.id
    assert len(list_datasets(settings)) == 2


def test_duplicates_and_leakage_are_counted_and_listed(settings: Settings, tmp_path: Path) -> None:
    written = make_class_folders(tmp_path / "train", {"a": 4, "b": 4}, size=(8, 8))
    make_class_folders(tmp_path / "val", {"a": 2, "b": 2}, seed=9, size=(8, 8))
    save_image(tmp_path / "train" / "a" / "copy.png", written["a"][0])  # a second copy inside train
    save_image(tmp_path / "train" / "b" / "copy2.png", written["a"][0])  # a third, under another class
    save_image(tmp_path / "val" / "b" / "leak.png", written["b"][1])  # train image leaked into val
    spec = folder_spec(
        tmp_path / "train", source={"kind": "folder", "train": tmp_path / "train", "val": tmp_path / "val"}
    )
    m = create_dataset(settings, spec)
    assert m.duplicates["within"] == {"train": 2, "val": 0}
    assert m.duplicates["across"] == {"train/val": 1}
    groups = json.loads((dataset_dir(settings, m.id) / "report.json").read_text())["duplicates"]
    names = sorted(sorted(os.path.basename(e["path"]) for e in g) for g in groups)
    assert names == [["000.png", "copy.png", "copy2.png"], ["001.png", "leak.png"]]


def test_ctrl_c_leaves_no_dataset(settings: Settings, tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", {"a": 40, "b": 40})

    def interrupt(stage: str, done: int, total: int) -> None:
        if stage == "encoding" and done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        create_dataset(settings, folder_spec(tmp_path / "d"), progress=interrupt, workers=2)
    assert list_datasets(settings) == []
    assert os.listdir(settings.datasets_dir) == []


def test_killed_build_never_looks_complete_and_is_cleaned_up(settings: Settings, tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", {"a": 40, "b": 40})
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from deepyard.config import load_settings
        from deepyard.datasets import create_dataset, make_spec

        def die(stage, done, total):
            if stage == "finishing":
                os.kill(os.getpid(), signal.SIGKILL)

        spec = make_spec(name="k", source={{"kind": "folder", "train": Path({str(tmp_path / "d")!r})}})
        create_dataset(load_settings({str(settings.home)!r}), spec, progress=die)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert proc.returncode == -9, proc.stderr.decode()
    leftovers = os.listdir(settings.datasets_dir)
    assert len(leftovers) == 1 and leftovers[0].startswith(".build-")
    assert list_datasets(settings) == []
    create_dataset(settings, folder_spec(tmp_path / "d"))
    assert not any(n.startswith(".build-") for n in os.listdir(settings.datasets_dir))
    assert len(list_datasets(settings)) == 1
