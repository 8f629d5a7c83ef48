"""`deepyard classify / evaluate / inspect / export` through the real console script on a real trained run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.cli.test_datasets_cli import run
from tests.infer.conftest import Trained, trained  # noqa: F401 (the shared trained-run fixture)


@pytest.mark.parametrize("verb", ["classify", "evaluate", "inspect", "export"])
def test_help(tmp_path: Path, verb: str) -> None:
    proc = run(tmp_path, verb, "--help")
    assert proc.returncode == 0 and "Usage:" in proc.stdout and "--json" in proc.stdout, proc.stderr


def test_classify_one_and_many(trained: Trained, tmp_path: Path) -> None:  # noqa: F811
    home = trained.settings.home
    image = trained.images / "class1" / "002.png"
    one = run(home, "classify", trained.run_id, str(image), "--top", "2", "--json")
    assert one.returncode == 0, one.stderr
    doc = json.loads(one.stdout)
    assert doc["predictions"][0]["predicted"] == "class1" and len(doc["predictions"][0]["top"]) == 2
    (tmp_path / "in" / "class0").mkdir(parents=True)
    for i in range(3):
        (tmp_path / "in" / "class0" / f"{i}.png").write_bytes((trained.images / "class0" / f"{i:03d}.png").read_bytes())
    (tmp_path / "in" / "class0" / "bad.png").write_bytes(b"nope")
    many = run(home, "classify", f"run:{trained.run_id}@last", str(tmp_path / "in"), "--csv", str(tmp_path / "o.csv"))
    assert many.returncode == 0, many.stderr
    assert "right on 3 labelled images: 100.00%" in many.stdout and "not an image" in many.stdout
    rows = list(csv.DictReader((tmp_path / "o.csv").read_text().splitlines()))
    assert len(rows) == 4 and sum(1 for r in rows if r["error"]) == 1


def test_evaluate_inspect_export(trained: Trained, tmp_path: Path) -> None:  # noqa: F811
    home = trained.settings.home
    ev = run(home, "evaluate", trained.run_id, "--out", str(tmp_path / "ev"), "--json")
    assert ev.returncode == 0, ev.stderr
    doc = json.loads(ev.stdout)
    assert doc["count"] == 30 and (tmp_path / "ev" / "confusion.png").is_file()
    look = run(
        home, "inspect", trained.run_id, str(trained.images / "class2" / "001.png"), "--out", str(tmp_path / "in")
    )
    assert look.returncode == 0, look.stderr
    assert "Grad-CAM for class2" in look.stdout and (tmp_path / "in" / "gradcam.png").is_file()
    ex = run(
        home, "export", trained.run_id, "--format", "archive", "--format", "torchscript", "--out", str(tmp_path / "ex")
    )
    assert ex.returncode == 0, ex.stderr
    assert ex.stdout.count("passed") == 2 and len(list((tmp_path / "ex").glob("*.zip"))) == 1
    again = run(
        home, "classify", str(next((tmp_path / "ex").glob("*.zip"))), str(trained.images / "class1" / "000.png")
    )
    assert again.returncode == 0 and "class1" in again.stdout, again.stderr


def test_bad_inputs_are_one_line_errors(trained: Trained, tmp_path: Path) -> None:  # noqa: F811
    home = trained.settings.home
    proc = run(home, "export", trained.run_id, "--format", "tflite")
    assert proc.returncode == 2 and "'tflite' is not one of 'archive', 'onnx' or 'torchscript'" in proc.stderr
    bad = tmp_path / "x.png"
    bad.write_bytes(b"")
    proc = run(home, "classify", trained.run_id, str(bad))
    assert proc.returncode == 2 and "empty file" in proc.stderr and "Traceback" not in proc.stderr
    proc = run(home, "evaluate", "nope")
    assert proc.returncode == 2 and "no run 'nope'" in proc.stderr
