"""`deepyard predict RUN FOLDER --out DIR` with a detector and a segmenter: images of one name in different
sub-folders (and one name in two extensions) each get their own overlay (and mask), of their own size; none
overwrites another's. Real console script, real (1-epoch) models on generated scenes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepyard.config import load_settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.train import make_config, train
from tests.cli.test_datasets_cli import run
from tests.tasks.boxdata import make_scenes, write
from tests.tasks.segdata import write_classes, write_scenes


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("predict-folders")
    (root / "data").mkdir()
    settings = load_settings(root / "home", data_roots=[root / "data"])
    coco = write("coco", root / "data" / "coco", make_scenes(8, seed=3, sizes=(48, 64), most=2))
    boxes = create_dataset(settings, make_spec(name="shapes", task="detection", width=48, height=48, val_pct=25,
                                               source={"kind": "detection", "train": coco}))  # fmt: skip
    config = make_config(epochs=1, batch_size=4, device="cpu")
    write_scenes(root / "data" / "seg", 8, "palette", seed=0, size=32)
    names = write_classes(root / "data" / "names.txt", colours=False)
    masks = create_dataset(settings, make_spec(name="segs", task="segmentation", width=32, height=32, val_pct=25,
                           source={"kind": "masks", "train": root / "data" / "seg", "classes": names}))  # fmt: skip
    detector = train(settings, boxes.id, "fasterrcnn_small", config).run_id
    yield {"home": root / "home", "detector": detector, "segmenter": train(settings, masks.id, "unet", config).run_id}


def same_names(folder: Path) -> dict[str, tuple[int, int]]:
    """Four images, three called cat: a/cat.png, b/cat.png, b/cat.jpg and dog.png, each of another size."""
    rng = np.random.default_rng(0)
    sizes = {"a/cat.png": (40, 30), "b/cat.png": (52, 44), "b/cat.jpg": (36, 60), "dog.png": (48, 48)}
    for name, (w, h) in sizes.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return sizes


@pytest.mark.parametrize("kind, files", [("detector", ("overlay",)), ("segmenter", ("mask", "overlay"))])
def test_predict_folder_keeps_images_of_one_name_apart(models: dict, tmp_path: Path, kind: str,
                                                      files: tuple[str, ...]) -> None:  # fmt: skip
    sizes = same_names(tmp_path / "photos")
    out = tmp_path / "out"
    done = run(models["home"], "predict", models[kind], str(tmp_path / "photos"), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout)["predictions"]
    assert sorted(Path(r["source"]).relative_to(tmp_path / "photos").as_posix() for r in rows) == sorted(sizes)
    for key in files:
        written = [Path(r[key]) for r in rows]
        assert len(set(written)) == len(rows)  # one file each: none written over another
        for row, path in zip(rows, written, strict=True):
            assert path.is_file() and out in path.parents
            w, h = sizes[Path(row["source"]).relative_to(tmp_path / "photos").as_posix()]
            with Image.open(path) as img:  # its own image's size (a small overlay drawn k times), not the last cat's
                k = img.size[0] // w
                assert img.size == (k * w, k * h), (img.size, w, h)
    names = {Path(r[files[-1]]).relative_to(out).as_posix() for r in rows}
    assert {n.split("_")[0] for n in names} == {"a/cat", "b/cat", "dog"}  # the sub-folders kept; b/cat twice
