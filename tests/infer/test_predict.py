"""Classify one image (path, bytes, URL) and many (folder, list file), with bad files reported in the table."""

from __future__ import annotations

import csv
import http.server
import io
import threading
from functools import partial
from pathlib import Path

import pytest

from deepyard.datasets.images import ImageSkipped
from deepyard.errors import SourceError
from deepyard.infer import Labelled, classify_many, classify_one, load_run_model, read_inputs
from deepyard.infer.predict import output_stems, predictions_csv
from tests.infer.conftest import Trained


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def clf(trained: Trained):  # type: ignore[no-untyped-def]
    return load_run_model(trained.settings, trained.run_id)


def test_classify_one_path_bytes_and_url_agree(clf, trained: Trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = trained.images / "class2" / "005.png"
    by_path = classify_one(clf, path, k=3)
    by_bytes = classify_one(clf, path.read_bytes(), k=3, name="upload.png")
    handler = partial(QuietHandler, directory=str(trained.images))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        by_url = classify_one(clf, f"http://127.0.0.1:{server.server_port}/class2/005.png", k=3)
    finally:
        server.shutdown()
        server.server_close()
    assert by_path.predicted == "class2"
    assert by_path.top == by_bytes.top == by_url.top
    assert len(by_path.top) == 3 and sum(p for _, p in by_path.top) == pytest.approx(1.0, abs=1e-5)
    assert by_bytes.source == "upload.png"


def test_classify_one_refuses_a_non_image(clf, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ImageSkipped, match=r"not an image \(no known image format\)"):
        classify_one(clf, bad)


def test_classify_many_folder_with_bad_files_in_the_table(clf, trained: Trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mixed"
    for name in ("class0", "class1"):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            (folder / name / f"{i}.png").write_bytes((trained.images / name / f"{i:03d}.png").read_bytes())
    (folder / "class1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "class0" / "empty.jpg").write_bytes(b"")
    items = read_inputs(folder, classes=["class0", "class1", "class2"])
    assert len(items) == 8 and all(it.label in ("class0", "class1") for it in items)
    seen = []
    rows = classify_many(clf, items, k=2, batch_size=3, on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (8, 8) and len(seen) == 3
    errors = {Path(r.source).name: r.error for r in rows if r.error}
    assert set(errors) == {"broken.png", "empty.jpg"} and "empty" in errors["empty.jpg"]
    good = [r for r in rows if not r.error]
    assert len(good) == 6 and all(r.correct for r in good)
    table = list(csv.DictReader(io.StringIO(predictions_csv(rows, 2))))
    assert len(table) == 8 and set(table[0]) >= {"source", "label", "predicted", "top2_probability", "error"}
    broken = next(r for r in table if r["source"].endswith("broken.png"))
    assert broken["predicted"] == "" and broken["error"]


def test_list_file_with_names_indices_and_no_labels(trained: Trained, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("# images\nclass0/000.png class0\nclass1/001.png 1\n\nclass2/002.png\n")
    items = read_inputs(listing, base=trained.images, classes=["class0", "class1", "class2"])
    assert items == [
        Labelled(str(trained.images / "class0/000.png"), "class0"),
        Labelled(str(trained.images / "class1/001.png"), "class1"),
        Labelled(str(trained.images / "class2/002.png"), None),
    ]
    listing.write_text("a.png dog\n")
    with pytest.raises(SourceError, match=r"line 1: label 'dog' is neither a class name nor an index below 3"):
        read_inputs(listing, classes=["class0", "class1", "class2"])


def test_prediction_json_shape(clf, trained: Trained) -> None:  # type: ignore[no-untyped-def]
    doc = classify_one(clf, trained.images / "class0" / "000.png", k=2).to_json()
    assert set(doc) == {"source", "label", "predicted", "correct", "top", "summary", "error"}
    assert [set(t) for t in doc["top"]] == [{"class", "probability"}] * 2
    assert doc["predicted"] == doc["top"][0]["class"] == "class0"
    assert doc["top"][0]["probability"] >= doc["top"][1]["probability"]


def test_output_stems_keep_files_of_one_name_apart() -> None:
    root = Path("/in")
    files = ["/in/a/cat.png", "/in/b/cat.png", "/in/cat.png", "/in/Cat.jpg", "/in/cat.JPG", "/in/dog.png"]
    stems = output_stems(files, root)
    assert stems[:3] == ["a/cat", "b/cat", "cat"] and stems[-1] == "dog"  # sub-folders kept, plain names unchanged
    assert len({s.lower() for s in stems}) == len(files)  # distinct even on a case-blind file system
    assert stems[3] == "Cat_jpg" and stems[4].startswith("cat_JPG")
    assert output_stems(["/x/one.png", "/y/one.png"], None) == ["one", "one_png"]  # no root: names alone
