"""Evaluation on a dataset split and on labelled files; the pictures it draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepyard.datasets import create_dataset, make_spec
from deepyard.errors import InvalidValueError
from deepyard.infer import evaluate, labelled_data, load_run_model, read_inputs, split_data, write_pictures
from deepyard.tasks import classmetrics as m
from tests.conftest import make_class_folders
from tests.infer.conftest import Trained


def test_evaluate_val_split_is_consistent(trained: Trained) -> None:
    clf = load_run_model(trained.settings, trained.run_id)
    result = evaluate(clf, split_data(trained.settings, clf, trained.dataset, "val"), top_n=4, batch_size=7)
    confusion = np.array(result.confusion)
    assert result.count == 30 and confusion.sum() == 30
    assert result.top1 == pytest.approx(100 * np.trace(confusion) / 30)  # in %, as the trainer's val_top1
    assert result.top1 > 90  # the bars are easy; a broken pipeline would sit near 1/3
    assert result.top5 == 100.0  # three classes
    # the trainer's validation meter, run by the evaluation, gives the same figures as the full report
    assert result.metrics["top1"] == pytest.approx(result.top1) and result.metrics["top5"] == pytest.approx(100.0)
    probs = torch.from_numpy(result.outputs).softmax(dim=1).numpy()
    assert result.top1 == pytest.approx(100 * m.topk_accuracy(probs, result.targets, 1))
    assert [c["support"] for c in result.per_class] == confusion.sum(axis=1).tolist()
    assert all(len(v) == 4 for v in result.top_per_class.values())
    for name, examples in result.top_per_class.items():
        column = result.classes.index(name)
        ranked = [probs[e["index"], column] for e in examples]
        assert ranked == sorted(ranked, reverse=True) and ranked[0] == pytest.approx(probs[:, column].max())
    assert all(e["label"] != e["predicted"] for e in result.top_losses)
    assert all(Path(e["source"]).exists() for e in result.top_losses)  # named by their original files


def test_evaluate_labelled_folder_skips_bad_files(trained: Trained, tmp_path: Path) -> None:
    clf = load_run_model(trained.settings, trained.run_id)
    folder = tmp_path / "labelled"
    for name in clf.classes:
        (folder / name).mkdir(parents=True)
        for i in range(4):
            (folder / name / f"{i}.png").write_bytes((trained.images / name / f"{i + 30:03d}.png").read_bytes())
    (folder / "class0" / "bad.png").write_bytes(b"junk")
    data = labelled_data(clf, read_inputs(folder, classes=clf.classes), str(folder))
    assert len(data.labels) == 12 and [s["source"] for s in data.skipped] == [str(folder / "class0" / "bad.png")]
    result = evaluate(clf, data)
    assert result.count == 12 and result.to_json()["skipped"][0]["error"]


def test_other_dataset_must_have_the_same_classes(trained: Trained, tmp_path: Path) -> None:
    make_class_folders(tmp_path / "other", {"class0": 3, "cat": 3})
    spec = make_spec(name="other", source={"kind": "folder", "train": tmp_path / "other"}, width=12, height=12)
    other = create_dataset(trained.settings, spec).id
    clf = load_run_model(trained.settings, trained.run_id)
    with pytest.raises(InvalidValueError, match=r"missing: class1, class2; not in the model: cat"):
        split_data(trained.settings, clf, other, "train")


def test_pictures_are_written_and_not_blank(trained: Trained, tmp_path: Path) -> None:
    """Images filed under the wrong classes on purpose, so that there are confident mistakes to draw."""
    clf = load_run_model(trained.settings, trained.run_id)
    folder = tmp_path / "mislabelled"
    for n, name in enumerate(clf.classes):
        wrong = clf.classes[(n + 1) % 3]
        for i in range(4):
            target = folder / (wrong if i == 0 else name) / f"{name}-{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((trained.images / name / f"{i:03d}.png").read_bytes())
    result = evaluate(clf, labelled_data(clf, read_inputs(folder, classes=clf.classes), "mislabelled"), top_n=3)
    assert len(result.top_losses) == 3 and np.trace(np.array(result.confusion)) == 9
    files = write_pictures(result, tmp_path / "eval")
    for key in ("confusion", "top_losses", "top_per_class"):
        with Image.open(files[key]) as img:
            pixels = np.asarray(img.convert("RGB"))
        assert pixels.shape[0] > 20 and pixels.shape[1] > 20
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 8, f"{key} looks blank"
    with Image.open(files["top_per_class"]) as img:  # a row per class, a column per example
        assert img.height >= 3 * 96 and img.width >= 3 * 96
    assert (tmp_path / "eval" / "evaluation.json").stat().st_size > 100


def test_an_archive_of_any_name_is_evaluated_as_an_archive(trained: Trained, tmp_path: Path) -> None:
    """`model.ZIP` is a file, so an archive (as open_model reads it), never parsed as a run id."""
    from deepyard.infer import write_archive
    from deepyard.infer.tasks import evaluate_model

    path = write_archive(load_run_model(trained.settings, trained.run_id), tmp_path / "bars.ZIP")
    doc = evaluate_model(trained.settings, str(path), dataset=trained.dataset, split="val", out=tmp_path / "out")
    assert doc["count"] == 30 and doc["metrics"]["top1"] > 90
