"""Detection datasets: the four formats read against one truth, boxes through the letterbox, the hostile corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.datasets.boxes import image_size, placement, to_original, to_stored, valid_rows
from deepyard.datasets.boxformats import FORMATS, detect_format, read_annotations
from deepyard.datasets.catalog import dataset_dir
from deepyard.datasets.images import Geometry
from deepyard.datasets.spec import Fill, ResizeMode
from deepyard.errors import SourceError
from tests.tasks.boxdata import CLASSES, make_scenes, write


def _spec(path: Path, fmt: str = "auto", **extra: object) -> object:
    fields: dict[str, object] = {"name": "det", "task": "detection", "width": 96, "height": 64,
                                 "resize_mode": "fill", "fill": "constant", "val_pct": 25}  # fmt: skip
    fields.update(extra)
    return make_spec(source={"kind": "detection", "train": path, "format": fmt}, **fields)


@pytest.fixture(scope="module")
def scenes() -> list:
    return make_scenes(12, seed=3, negatives=0.2)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_the_same_boxes_as_the_truth(tmp_path: Path, scenes: list, fmt: str) -> None:
    path = write(fmt, tmp_path / fmt, scenes)
    assert detect_format(path) == fmt
    found = read_annotations(path, "auto", None, None)
    assert found.skipped == [] or all("DontCare" not in s.reason for s in found.skipped)
    assert sorted(found.classes) == sorted({b[0] for t, _ in scenes for b in t.boxes})
    by_file = {Path(s.image).name: s for s in found.scenes}
    assert len(by_file) == len(scenes)  # negatives kept
    for truth, _ in scenes:
        scene = by_file[truth.file]
        size = image_size(scene.image)
        got = sorted((b.label, *(round(v * (size[i % 2] if b.normalised else 1), 3)
                                 for i, v in enumerate((b.x1, b.y1, b.x2, b.y2)))) for b in scene.boxes)  # fmt: skip
        assert got == sorted((n, float(x1), float(y1), float(x2), float(y2)) for n, x1, y1, x2, y2 in truth.boxes)


def test_the_four_formats_build_identical_datasets(settings: Settings, tmp_path: Path, scenes: list) -> None:
    built = {}
    for fmt in FORMATS:
        manifest = create_dataset(settings, _spec(write(fmt, tmp_path / fmt, scenes)), workers=1)  # type: ignore[arg-type]
        assert manifest.task == "detection" and manifest.skipped == 0
        names = manifest.classes
        boxes = {}
        for split in manifest.splits:
            store = open_split(settings, manifest, split)
            sources = json.loads((dataset_dir(settings, manifest.id) / split / "sources.json").read_text())
            for src, target in zip(sources, store.targets, strict=True):
                boxes[Path(src).name] = sorted((names[int(r[4])], *np.round(r[:4], 3)) for r in valid_rows(target))
        built[fmt] = boxes
    assert built["coco"] == built["voc"] == built["kitti"]
    yolo = built["yolo"]
    for name, rows in built["coco"].items():  # YOLO's normalised text: equal to a thousandth of a pixel
        assert [r[0] for r in rows] == [r[0] for r in yolo[name]]
        assert np.allclose([r[1:] for r in rows], [r[1:] for r in yolo[name]], atol=2e-3)


def test_boxes_follow_the_letterbox_onto_the_stored_pixels(settings: Settings, tmp_path: Path) -> None:
    scenes = make_scenes(6, seed=5, sizes=(50, 120), clutter=0)
    manifest = create_dataset(settings, _spec(write("coco", tmp_path / "c", scenes), val_pct=0), workers=1)  # type: ignore[arg-type]
    store = open_split(settings, manifest, "train")
    truth = {t.file: t for t, _ in scenes}
    geo = Geometry(96, 64, 3, ResizeMode.fill, Fill.constant, 0, 10**8, 255)
    sources = json.loads((dataset_dir(settings, manifest.id) / "train" / "sources.json").read_text())
    for i, src in enumerate(sources):
        t = truth[Path(src).name]
        place = placement((t.width, t.height), geo)
        expected = to_stored(np.array([b[1:] for b in t.boxes], np.float64).reshape(-1, 4), place)
        rows = valid_rows(store.targets[i])
        assert np.allclose(np.sort(rows[:, :4], axis=0), np.sort(expected, axis=0), atol=1e-3)
        pixels = store.get(i).astype(int)
        for r in rows:  # the object's colour fills the middle of its stored box; the padding is 0 outside
            cx, cy = int((r[0] + r[2]) / 2), int((r[1] + r[3]) / 2)
            assert np.abs(pixels[cy, cx] - pixels[cy, int(r[0]) + 1]).max() < 40
        back = to_original(rows[:, :4], place, (t.width, t.height))
        original = np.array([b[1:] for b in t.boxes], float).reshape(-1, 4)
        assert np.allclose(np.sort(back, axis=0), np.sort(original, axis=0), atol=1e-3)


@pytest.mark.parametrize("mode", ["squash", "crop", "half_crop"])
def test_other_resize_modes_map_boxes_and_back(mode: str) -> None:
    geo = Geometry(80, 60, 3, ResizeMode(mode), Fill.constant, 0, 10**8, 255)
    place = placement((123, 45), geo)
    boxes = np.array([[60.0, 10.0, 70.0, 30.0]])
    assert np.allclose(to_original(to_stored(boxes, place), place, (123, 45)), boxes)


def _hostile(root: Path) -> Path:
    """A YOLO folder with one of every problem, beside good files."""
    scenes = make_scenes(6, seed=9, negatives=0.0)
    write("yolo", root, scenes)
    labels = root / "labels"
    (labels / "img0000.txt").write_text("0 0.5 0.5 0.2\n1 0.5 0.5 0.2 0.2\n")  # malformed line + good
    (labels / "img0001.txt").write_text("7 0.5 0.5 0.2 0.2\n0 nan 0.5 0.2 0.2\n1 0.9 0.5 0.4 0.2\n")
    (labels / "img0002.txt").write_text("1 0.5 0.5 0 0.2\n2 0.5 0.5 -0.1 0.2\n")  # zero, negative size
    (labels / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # no such image
    (labels / "img0003.txt").unlink()  # an image with no label file: a negative
    (root / "images" / "img0004.jpg").write_bytes((root / "images" / "img0004.png").read_bytes())  # duplicate id
    (root / "images" / "img0005.png").write_bytes(b"not an image")
    return root


def test_a_hostile_yolo_folder_is_reported_file_by_file(settings: Settings, tmp_path: Path) -> None:
    manifest = create_dataset(settings, _spec(_hostile(tmp_path / "bad"), val_pct=0), workers=1)  # type: ignore[arg-type]
    report = json.loads((dataset_dir(settings, manifest.id) / "report.json").read_text())
    reasons = {(Path(s["path"].split(":")[0].split(" ")[0]).name, s["reason"].split(";")[0].split(":")[0])
               for s in report["skipped"]}  # fmt: skip
    assert ("img0000.txt", "malformed line") in reasons
    assert ("img0001.txt", "unknown class id 7") in reasons
    text = json.dumps(report["skipped"])
    full = {(Path(s["path"]).name, s["reason"]) for s in report["skipped"]}
    assert "NaN or infinite coordinate: dropped" in text
    assert "reaches outside the" in text and "clipped, kept" in text
    assert text.count("zero or negative size: dropped") == 2
    assert ("ghost.txt", "annotation for a missing image") in reasons
    assert ("img0003.png", "no annotation file; kept as an image without objects") in full
    assert any(r[0] == "img0004.png" and r[1].startswith("duplicate id") for r in reasons)
    assert ("img0005.png", "not an image (no known image format)") in full
    assert manifest.splits["train"].count == 5  # img0000..img0003 and img0004.jpg (img0002, img0003: no box)


def test_a_hostile_coco_file_is_reported_and_the_build_goes_on(settings: Settings, tmp_path: Path) -> None:
    scenes = make_scenes(4, seed=1, negatives=0.0)
    path = write("coco", tmp_path / "c", scenes)
    doc = json.loads(path.read_text())
    doc["images"].append({"id": 1, "file_name": "images/img0001.png"})  # id 1 (img0000) shared by another file
    doc["images"].append(dict(doc["images"][2]))  # id 3 listed again for the same file
    doc["images"].append({**doc["images"][3], "file_name": "./images/img0003.png"})  # id 4: the same file, spelt
    doc["images"].append({"id": 99, "file_name": "images/missing.png"})
    first = next(a for a in doc["annotations"] if a["image_id"] == 3)
    doc["annotations"] += [
        dict(first),  # an exact copy: left out
        {**first, "bbox": [2, 2, 5, 5]},  # another annotation under a used id: kept, with a warning
        {"id": 500, "image_id": 1, "category_id": 42, "bbox": [1, 1, 3, 3]},
        {"id": 501, "image_id": 1, "category_id": 1, "bbox": [1, 1, "x"]},
        {"id": 502, "image_id": 77, "category_id": 1, "bbox": [1, 1, 3, 3]},
        {"id": 503, "image_id": 2, "category_id": 2, "bbox": [-5, -5, 20, 20], "iscrowd": 1},
    ]
    path.write_text(json.dumps(doc))
    manifest = create_dataset(settings, _spec(path, val_pct=0), workers=1)  # type: ignore[arg-type]
    report = json.loads((dataset_dir(settings, manifest.id) / "report.json").read_text())
    text = json.dumps(report["skipped"])
    for reason in ("unknown category_id 42", "bbox must be 4 numbers", "image_id 77 names no image",
                   "annotation for a missing image", "reaches outside the",
                   "duplicate image id 3 for the same file: the copy is left out",
                   "duplicate image id 4 for the same file: the copy is left out",
                   f"duplicate annotation id {first['id']}, a copy of the first: left out"):  # fmt: skip
        assert reason in text, reason
    shared = {Path(s["path"]).name for s in report["skipped"] if s["reason"].startswith("duplicate image id 1:")}
    assert shared == {"img0000.png", "img0001.png"}  # both files of the shared id are named...
    warned = [w["reason"] for w in report["warnings"]]
    assert len(warned) == 1 and f"duplicate annotation id {first['id']}" in warned[0] and "both are kept" in warned[0]
    assert manifest.splits["train"].count == 3  # ...and img0000 is out: its boxes cannot be told from the other's
    train = open_split(settings, manifest, "train")
    assert int(train.targets[:, :, 5].sum()) == 1  # iscrowd kept
    kept = [int((t[:, 4] >= 0).sum()) for t in train.targets]
    truth = {s[0].file: len(s[0].boxes) for s in scenes}
    assert sorted(kept) == sorted([truth["img0001.png"] + 1, truth["img0002.png"] + 1, truth["img0003.png"]])


def test_malformed_xml_and_unknown_layouts(settings: Settings, tmp_path: Path) -> None:
    root = write("voc", tmp_path / "v", make_scenes(4, seed=2, negatives=0.0))
    (root / "Annotations" / "broken.xml").write_text("<annotation><filename>x.png</filename>")
    manifest = create_dataset(settings, _spec(root, val_pct=0), workers=1)  # type: ignore[arg-type]
    text = json.dumps(json.loads((dataset_dir(settings, manifest.id) / "report.json").read_text())["skipped"])
    assert "broken.xml" in text and "malformed XML" in text
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="cannot tell the annotation format"):
        detect_format(tmp_path / "empty")


def test_cli_says_which_format_auto_picked_and_letterboxes(tmp_path: Path) -> None:
    path = write("kitti", tmp_path / "k", make_scenes(4, seed=4))
    done = subprocess.run([sys.executable, "-m", "deepyard", "--home", str(tmp_path / "home"), "dataset", "create",
                           str(path), "--task", "detection", "--size", "64x48", "--json"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "annotation format: kitti" in done.stderr
    doc = json.loads(done.stdout)["manifest"]
    assert doc["task"] == "detection" and doc["spec"]["resize_mode"] == "fill"
    assert sorted(doc["classes"]) == sorted({b[0] for t, _ in make_scenes(4, seed=4) for b in t.boxes})
    assert set(doc["classes"]) <= set(CLASSES)
