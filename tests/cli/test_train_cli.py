"""`deepyard train` and `deepyard run ...` in a subprocess, on a real tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_datasets_cli import run
from tests.train.conftest import write_bars


def test_train_list_show_resume_and_bad_settings(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars", per_class=16)
    home = tmp_path / "home"
    made = run(home, "dataset", "create", str(tmp_path / "bars"), "--size", "12x12", "--json")
    assert made.returncode == 0, made.stderr
    net = tmp_path / "tiny.yaml"
    net.write_text("name: tiny\nlayers:\n  - {name: c, type: conv, out_channels: 4, kernel: 3}\n"
                   "  - {name: fc, type: linear, out_features: num_classes}\n")  # fmt: skip
    proc = run(home, "train", "--dataset", "bars", "--network", str(net), "--epochs", "2", "--batch-size", "4",
               "--lr", "0.05", "--solver", "momentum", "--set", "augment.flip=ud", "--set", "precision=fp32",
               "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["steps"] == 2 * (36 // 4) and doc["last_val"]["val_top1"] >= 0
    assert "training" in proc.stderr  # the progress bar went to stderr
    listed = json.loads(run(home, "run", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [doc["run"]] and listed[0]["config"]["augment"]["flip"] == "ud"
    shown = json.loads(run(home, "run", "show", doc["run"], "--json").stdout)
    assert shown["status"] == "done" and shown["network"]["spec"]["name"] == "tiny"
    resumed = json.loads(run(home, "run", "resume", doc["run"], "--json").stdout)
    assert resumed["steps"] == doc["steps"]  # already complete: nothing more to do
    bad = run(home, "train", "--dataset", "bars", "--network", "lenet", "--set", "solver.type=lbfgs")
    assert bad.returncode == 2 and "solver.type" in bad.stderr and "'sgd'" in bad.stderr
    bad = run(home, "train", "--dataset", "bars", "--network", "lenet", "--set", "solver.lrate=1")
    assert bad.returncode == 2 and "unknown setting 'solver.lrate'" in bad.stderr
    finder = run(home, "run", "lr-find", "--dataset", "bars", "--network", str(net), "--steps", "20", "--json")
    assert finder.returncode == 0, finder.stderr
    assert json.loads(finder.stdout)["suggestion"] > 0
