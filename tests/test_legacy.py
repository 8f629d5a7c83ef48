"""A home, an archive and images written by Deepyard before task types existed read as classification today:
listed, evaluated, used and exported through the console script (tests/fixtures/legacy/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli.test_datasets_cli import run

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
RUN, DATASET = "20261202-195703-57d2", "20261202-195636-6298"


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(LEGACY / "home", home)
    return home


def test_a_legacy_home_reads_as_classification(tmp_path: Path) -> None:
    home = _home(tmp_path)
    runs = json.loads(run(home, "run", "list", "--json").stdout)
    assert [(r["id"], r["task"], r["status"]) for r in runs] == [(RUN, "classification", "done")]
    shown = json.loads(run(home, "dataset", "show", DATASET, "--json").stdout)["manifest"]
    assert (shown["task"], shown["classes"], shown["spec"]["task"]) == ("classification", ["dark", "light"],
                                                                          "classification")  # fmt: skip
    evaluated = run(home, "evaluate", RUN, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    doc = json.loads(evaluated.stdout)
    assert doc["task"] == "classification" and doc["count"] == 6 and doc["top1"] == 100.0  # in %, as val_top1
    assert doc["metrics"]["top1"] == 100.0 and len(doc["confusion"]) == 2
    picked = json.loads(run(home, "classify", RUN, str(LEGACY / "images" / "light.png"), "--json").stdout)
    assert picked["predictions"][0]["predicted"] == "light"
    exported = run(home, "export", RUN, "--format", "archive", "--out", str(tmp_path / "out"), "--json")
    assert exported.returncode == 0 and json.loads(exported.stdout)["ok"], exported.stderr
    resumed = run(home, "run", "resume", RUN, "--json")  # already complete: reads its config, does nothing more
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["steps"] == 8, resumed.stderr


def test_a_legacy_archive_reads_as_classification(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    picked = run(home, "classify", str(LEGACY / "model.zip"), str(LEGACY / "images" / "dark.png"), "--json")
    assert picked.returncode == 0, picked.stderr
    doc = json.loads(picked.stdout)
    assert doc["model"].get("task") is None  # written before tasks: no task recorded, read as classification
    assert doc["predictions"][0]["predicted"] == "dark" and doc["predictions"][0]["top"][0]["class"] == "dark"
    exported = run(home, "export", str(LEGACY / "model.zip"), "--format", "onnx", "--out", str(tmp_path / "x"),
                   "--json")  # fmt: skip
    assert exported.returncode == 0 and json.loads(exported.stdout)["reports"][0]["agreement_of"] == "top-1"
