"""COCO segmentation masks: the overlap and crowd rules, RLE strings checked before decoding, a hostile COCO
file reported annotation by annotation while the build goes on (through create_dataset and the console script),
duplicate image and annotation ids, and the dataset's default name (the COCO file's folder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as coco

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.datasets.cocomasks import CocoImage, CocoProblem, Region, rasterise, string_counts
from deepyard.datasets.spec import default_name
from tests.cli.test_datasets_cli import run
from tests.tasks.segdata import run_polygons, write_coco


def _box(x0: int, y0: int, x1: int, y1: int) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def test_smaller_wins_where_annotations_overlap_and_crowds_are_ignored() -> None:
    image = CocoImage("t", 10, 8)
    image.regions = [
        Region(2, 4.0, _box(3, 3, 5, 5), 0),  # small, first in the file: still drawn over the large one
        Region(1, 30.0, _box(1, 1, 7, 6), 1),
        Region(255, 6.0, _box(0, 0, 3, 2), 2),  # a crowd: ignore, under every object
    ]
    out = rasterise(image)
    assert out.shape == (8, 10)
    assert (out[3:5, 3:5] == 2).all() and out[1, 1] == 1 and out[5, 6] == 1
    assert out[0, 0] == 255 and out[1, 0] == 255 and out[1, 2] == 1  # the object wins over the crowd it overlaps
    assert out[7, 9] == 0 and int((out == 1).sum()) == 30 - 4  # the crowd takes none of the object


def test_rle_strings_decode_as_pycocotools_and_bad_ones_are_refused() -> None:
    m = np.zeros((20, 30), np.uint8)
    m[3:9, 4:20] = 1
    encoded = coco.encode(np.asfortranarray(m))
    text = encoded["counts"].decode("ascii")
    counts = string_counts(text)
    assert sum(counts) == 600 and sum(counts[1::2]) == int(coco.area(encoded)) == 96
    image = CocoImage("t", 30, 20, [Region(1, 96.0, {"size": [20, 30], "counts": counts}, 0)])
    assert np.array_equal(rasterise(image), m)
    with pytest.raises(CocoProblem, match="ends inside a number"):
        string_counts(text[:-1] + "k")  # 'k' - 48 has the continuation bit set
    with pytest.raises(CocoProblem, match="not of COCO's alphabet"):
        string_counts("12 ")


def test_hostile_coco_file_is_reported_annotation_by_annotation(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "coco"
    truth = write_coco(root, 8, seed=4)
    doc = json.loads((root / "instances.json").read_text())
    anns = doc["annotations"]
    first = {i: next(a for a in anns if a["image_id"] == i) for i in range(1, 9)}
    first[1]["category_id"] = 99  # unknown category: image 1 is out
    first[2]["segmentation"] = [[1, 2, 3, 4, 5]]  # odd coordinates
    first[3]["segmentation"] = [[1, 2, 3, 4]]  # two points
    first[4]["segmentation"] = {"size": [32, 64], "counts": "abc"}  # RLE of another size
    first[5]["segmentation"] = {"size": [64, 64], "counts": [5, 7]}  # runs that do not cover the image
    anns.append({"id": 999, "image_id": 77, "category_id": 10, "segmentation": _box(0, 0, 2, 2)})  # no image 77
    anns.append({"id": 1000, "image_id": 7, "category_id": 10, "iscrowd": 1,
                 "segmentation": {"size": [64, 64], "counts": _crowd_counts(64)}})  # fmt: skip
    doc["images"].append({"id": 50, "file_name": "images/missing.png", "width": 64, "height": 64})
    doc["images"].append({"id": 51, "file_name": "images/0000.png"})  # no width or height
    (root / "instances.json").write_text(json.dumps(doc))
    spec = make_spec(name="hostile", task="segmentation", width=64, height=64, val_pct=0,
                     source={"kind": "masks", "train": root / "instances.json"})  # fmt: skip
    built = create_dataset(settings, spec)
    report = json.loads((settings.datasets_dir / built.id / "report.json").read_text())
    reasons = [s["reason"] for s in report["skipped"]]
    by_path = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert "unknown category_id 99; known: [10, 20, 30]" in by_path["0000.png"]
    assert "malformed polygon: 5 coordinates" in by_path["0001.png"]
    assert "malformed polygon: 4 coordinates" in by_path["0002.png"]
    assert "RLE size [32, 64] is not the image's [height, width] [64, 64]" in by_path["0003.png"]
    assert "RLE counts sum to 12, not the image's 4096 px" in by_path["0004.png"]
    assert any(r.startswith("annotation for a missing image: image_id 77") for r in reasons)
    assert by_path["missing.png"].startswith("image file missing (instances.json image 50)")
    assert any(r.startswith("malformed image entry") for r in reasons)
    assert built.splits["train"].count == 3 and built.target_stats["mask_kinds"] == {"coco": 3}
    stored = np.asarray(open_split(settings, built, "train").targets)
    expected = truth[5:].copy()
    expected[1, :, :3] = np.where(expected[1, :, :3] == 0, 255, expected[1, :, :3])  # the crowd under objects
    assert np.array_equal(stored, expected)


def _crowd_counts(size: int) -> list[int]:
    """Column-major runs: the first three columns set (a crowd strip down the left edge)."""
    return [0, 3 * size, size * size - 3 * size]


def test_console_creates_a_dataset_from_coco_polygons(tmp_path: Path) -> None:
    write_coco(tmp_path / "shapes", 4, seed=1)
    assert run_polygons(np.eye(3, dtype=bool))[0] == [0.0, 0, 1.0, 0, 1.0, 1.0, 0.0, 1.0]
    out = run(tmp_path, "dataset", "create", str(tmp_path / "shapes" / "instances.json"), "--task", "segmentation",
              "--size", "32x32", "--val-pct", "25", "--json")  # fmt: skip
    shown = json.loads(out.stdout)["manifest"]
    assert shown["name"] == "shapes"  # the COCO file's folder, not "instances.json"
    assert shown["classes"] == ["background", "circle", "square", "triangle"]
    assert shown["target_stats"]["mask_kinds"] == {"coco": 4}
    assert shown["splits"]["train"]["count"] == 3 and shown["splits"]["val"]["count"] == 1


def test_duplicate_image_and_annotation_ids_are_reported_and_the_build_goes_on(
    settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "merged"
    truth = write_coco(root, 6, seed=7)
    doc = json.loads((root / "instances.json").read_text())
    anns = doc["annotations"]
    of = {i: [a for a in anns if a["image_id"] == i] for i in range(1, 7)}
    anns.append(dict(of[1][0]))  # an exact copy: drawn once
    reused = of[2][0]["id"]
    of[3][0]["id"] = reused  # image 3's own object under image 2's annotation id: drawn, with a warning
    doc["images"].append(dict(doc["images"][3]))  # image 4 listed twice for the same file
    (root / "images" / "other.png").write_bytes((root / "images" / "0000.png").read_bytes())
    doc["images"].append({"id": 5, "file_name": "images/other.png", "width": 64, "height": 64})  # id 5: 2 files
    (root / "instances.json").write_text(json.dumps(doc))
    spec = make_spec(name="merged", task="segmentation", width=64, height=64, val_pct=0,
                     source={"kind": "masks", "train": root / "instances.json"})  # fmt: skip
    built = create_dataset(settings, spec)
    report = json.loads((settings.datasets_dir / built.id / "report.json").read_text())
    skipped = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in report["skipped"]}
    warned = {s["path"]: s["reason"] for s in report["warnings"]}
    copy = f"instances.json annotation {of[1][0]['id']}"
    assert skipped[copy] == f"duplicate annotation id {of[1][0]['id']}, a copy of the first: left out (drawn once)"
    assert warned[f"instances.json annotation {reused}"].startswith(
        f"duplicate annotation id {reused} (first: image_id 2, category_id {of[2][0]['category_id']}; this one: "
        f"image_id 3, category_id {of[3][0]['category_id']}); both are drawn"
    )
    assert skipped["instances.json image 4"] == "duplicate image id 4 for the same file: the copy is left out"
    assert skipped["0004.png"].startswith("duplicate image id 5: 'images/other.png' has it too")
    assert skipped["other.png"].startswith("duplicate image id 5: '0004.png' has it too")
    assert built.splits["train"].count == 5  # images 1-4 and 6; image 5's two files are out
    stored = np.asarray(open_split(settings, built, "train").targets)
    assert np.array_equal(stored, truth[[0, 1, 2, 3, 5]])  # the copy drawn once, the reused id's object drawn


def test_a_coco_files_default_name_is_its_folders(tmp_path: Path) -> None:
    for path in (tmp_path / "cats" / "instances.json", tmp_path / "coco" / "annotations" / "instances_val.json"):
        path.parent.mkdir(parents=True)
        path.write_text("{}")
    assert default_name(tmp_path / "cats" / "instances.json") == "cats"
    assert default_name(tmp_path / "coco" / "annotations" / "instances_val.json") == "coco"  # COCO's own layout
    assert default_name(tmp_path / "cats") == "cats"
    (tmp_path / "train.txt").write_text("")
    assert default_name(tmp_path / "train.txt") == "train.txt"  # a list file keeps its name, as before
