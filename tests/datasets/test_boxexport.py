"""`deepyard dataset export`: a detection dataset written as COCO, VOC, YOLO and KITTI and read back gives the same
boxes, image by image; what cannot be written is refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.datasets import Manifest, create_dataset, make_spec, open_split
from deepyard.datasets.boxexport import FORMATS, export_detection
from deepyard.datasets.catalog import dataset_dir
from deepyard.errors import InvalidValueError
from tests.cli.test_datasets_cli import run
from tests.tasks.boxdata import make_scenes, write


def _build(settings: Settings, path: Path, val: Path | None = None, name: str = "det") -> Manifest:
    source: dict[str, object] = {"kind": "detection", "train": path, "format": "auto", "val": val}
    spec = make_spec(source=source, name=name, task="detection", width=56, height=40, resize_mode="fill",
                     fill="constant", **({} if val else {"val_pct": 25}))  # fmt: skip
    return create_dataset(settings, spec, workers=1)


def _boxes(settings: Settings, m: Manifest) -> dict[str, list[tuple[object, ...]]]:
    """Per image (by file stem, across splits): its boxes as (class name, x1, y1, x2, y2, crowd), sorted."""
    out = {}
    for split in m.splits:
        store = open_split(settings, m, split)
        sources = json.loads((dataset_dir(settings, m.id) / split / "sources.json").read_text())
        for source, rows in zip(sources, store.targets, strict=True):
            rows = rows[rows[:, 4] >= 0]
            out[f"{split}/{Path(source).stem}"] = sorted(
                (m.classes[int(r[4])], *(round(float(v), 2) for v in r[:4]), int(r[5])) for r in rows
            )
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Manifest, dict[str, list[tuple[object, ...]]]]:
    from deepyard.config import load_settings

    root = tmp_path_factory.mktemp("export")
    settings = load_settings(home=root / "home")
    source = write("coco", root / "coco", make_scenes(10, seed=4, negatives=0.3, most=4))  # odd sizes: letterboxed
    doc = json.loads(source.read_text())
    doc["annotations"][0]["iscrowd"] = 1  # kept by COCO, written as an ordinary box (and said) by the others
    source.write_text(json.dumps(doc))
    m = _build(settings, source)
    return settings, m, _boxes(settings, m)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_back_the_same_boxes(built: tuple, tmp_path: Path, fmt: str) -> None:
    settings, m, truth = built
    assert any(not v for v in truth.values()) and sum(map(len, truth.values())) > 8  # negatives and boxes
    assert sum(r[5] for rows in truth.values() for r in rows) == 1
    doc = export_detection(settings, m, fmt, tmp_path / "out")
    assert set(doc["splits"]) == set(m.splits) == {"train", "val"}
    assert sum(s["boxes"] for s in doc["splits"].values()) == sum(map(len, truth.values()))
    back = _build(settings, Path(doc["splits"]["train"]["path"]), Path(doc["splits"]["val"]["path"]), f"back-{fmt}")
    assert back.skipped == 0 and back.shape == m.shape
    got = _boxes(settings, back)
    assert got.keys() == truth.keys()
    for key, rows in truth.items():
        assert len(got[key]) == len(rows), key
        for a, b in zip(got[key], rows, strict=True):
            assert a[0] == b[0] and np.allclose(a[1:5], b[1:5], atol=0.011), (key, a, b)
            assert a[5] == (b[5] if fmt == "coco" else 0)
    assert doc["notes"] == (
        [] if fmt == "coco" else [f"1 crowd boxes written as ordinary boxes ({fmt} has no crowd flag)"]
    )


def test_export_through_the_console_script_and_what_is_refused(built: tuple, tmp_path: Path) -> None:
    settings, m, _ = built
    done = run(settings.home, "dataset", "export", m.name, "--format", "yolo", "--out", str(tmp_path / "y"), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["format"] == "yolo" and (tmp_path / "y" / "train" / "classes.txt").is_file()
    with pytest.raises(InvalidValueError, match="exists and is not an empty folder; name a new one"):
        export_detection(settings, m, "coco", tmp_path / "y")
    bad = run(settings.home, "dataset", "export", m.name, "--format", "tfrecord", "--out", str(tmp_path / "t"))
    assert bad.returncode == 2 and "'tfrecord' is not one of 'coco', 'voc', 'yolo' or 'kitti'" in bad.stderr
    assert not (tmp_path / "t").exists() and not list(tmp_path.glob(".t-*"))  # nothing half-written is left


def test_kitti_refuses_a_class_with_a_space(settings: Settings, tmp_path: Path) -> None:
    scenes = make_scenes(4, seed=1, negatives=0.0)
    for truth, _ in scenes:
        truth.boxes = [("big bar" if b[0] == "bar" else b[0], *b[1:]) for b in truth.boxes]
    m = _build(settings, write("voc", tmp_path / "voc", scenes))
    assert "big bar" in m.classes
    with pytest.raises(InvalidValueError, match=r"class 'big bar' has white space.*use --format coco or voc or yolo"):
        export_detection(settings, m, "kitti", tmp_path / "out")
    assert not (tmp_path / "out").exists()
