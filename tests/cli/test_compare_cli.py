"""`deepyard run compare-predictions` through the real console script: two snapshots of a real trained run as the
columns, image files, a folder of class folders and images of a dataset split as the rows."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from tests.cli.test_datasets_cli import run
from tests.infer.conftest import Trained, trained  # noqa: F401 (the shared trained-run fixture)


def test_table_of_files_folders_and_split_images(trained: Trained, tmp_path: Path) -> None:  # noqa: F811
    home = trained.settings.home
    first = min(
        int(p.stem.removeprefix("step-")) for p in (home / "runs" / trained.run_id / "checkpoints").glob("step-*.pt")
    )
    models = [f"{trained.run_id}@best", f"{trained.run_id}@{first}"]
    (tmp_path / "in" / "class0").mkdir(parents=True)
    for i in range(2):
        shutil.copy(trained.images / "class0" / f"{i:03d}.png", tmp_path / "in" / "class0")
    one = trained.images / "class2" / "005.png"
    args = ["run", "compare-predictions", *models, "--images", str(tmp_path / "in"), "--images", str(one),
            "--dataset", "bars", "--indices", "3,0"]  # fmt: skip

    as_json = run(home, *args, "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert [c["snapshot"] for c in doc["columns"]] == ["best", str(first)]
    assert [r["label"] for r in doc["rows"][:3]] == ["class0", "class0", None]  # class folders give the label
    assert [r["origin"]["index"] for r in doc["rows"][3:]] == [3, 0] and all(r["label"] for r in doc["rows"][3:])
    assert all(0 < cell["confidence"] <= 1 for row in doc["rows"] for cell in row["cells"])

    shown = run(home, *args, "--csv", str(tmp_path / "t.csv"))
    assert shown.returncode == 0, shown.stderr
    best = doc["columns"][0]
    assert best["title"] in shown.stdout and f"right on {best['right']} of 4 labelled images" in shown.stdout
    assert doc["rows"][0]["cells"][0]["text"] in shown.stdout
    lines = list(csv.DictReader((tmp_path / "t.csv").read_text().splitlines()))
    assert [line["image"] for line in lines] == [row["image"] for row in doc["rows"]]
    assert lines[0][f"{best['title']} predicted"] == doc["rows"][0]["cells"][0]["predicted"]


def test_bad_indices_are_a_one_line_error(trained: Trained) -> None:  # noqa: F811
    proc = run(trained.settings.home, "run", "compare-predictions", trained.run_id, "--dataset", "bars", "--indices",
               "1,x")  # fmt: skip
    assert proc.returncode == 2 and "--indices '1,x' must be image indices" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
