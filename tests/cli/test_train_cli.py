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
               "--group", "first tries", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["steps"] == 2 * (36 // 4) and doc["last_val"]["val_top1"] >= 0
    assert "training" in proc.stderr  # the progress bar went to stderr
    listed = json.loads(run(home, "run", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [doc["run"]] and listed[0]["config"]["augment"]["flip"] == "ud"
    assert listed[0]["group"] == "first tries" and listed[0]["status"] == "done"
    shown = json.loads(run(home, "run", "show", doc["run"], "--json").stdout)
    assert shown["status"] == "done" and shown["network"]["spec"]["name"] == "tiny"
    assert run(home, "run", "rename", doc["run"], "baseline").returncode == 0
    assert run(home, "run", "note", doc["run"], "flip ud only").returncode == 0
    noted = json.loads(run(home, "run", "show", doc["run"], "--json").stdout)
    assert (noted["name"], noted["notes"]) == ("baseline", "flip ud only")
    resumed = json.loads(run(home, "run", "resume", doc["run"], "--json").stdout)
    assert resumed["steps"] == doc["steps"]  # already complete: nothing more to do
    bad = run(home, "train", "--dataset", "bars", "--network", "lenet", "--set", "solver.type=lbfgs")
    assert bad.returncode == 2 and "solver.type" in bad.stderr and "'sgd'" in bad.stderr
    bad = run(home, "train", "--dataset", "bars", "--network", "lenet", "--set", "solver.lrate=1")
    assert bad.returncode == 2 and "unknown setting 'solver.lrate'" in bad.stderr
    finder = run(home, "run", "lr-find", "--dataset", "bars", "--network", str(net), "--steps", "20", "--json")
    assert finder.returncode == 0, finder.stderr
    assert json.loads(finder.stdout)["suggestion"] > 0


def test_ctrl_c_finishes_the_step_checkpoints_and_resumes(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import time

    from tests.cli.test_datasets_cli import DEEPYARD

    write_bars(tmp_path / "bars", per_class=16)
    home = tmp_path / "home"
    assert run(home, "dataset", "create", str(tmp_path / "bars"), "--size", "12x12").returncode == 0
    net = tmp_path / "tiny.yaml"
    net.write_text("name: tiny\nlayers:\n  - {name: fc, type: linear, out_features: num_classes}\n")
    proc = subprocess.Popen(
        [*DEEPYARD, "--home", str(home), "train", "--dataset", "bars", "--network", str(net), "--epochs", "500",
         "--batch-size", "4", "--set", "precision=fp32", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    runs = home / "runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not list(runs.glob("*/metrics.jsonl")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["stop_reason"] == "aborted" and 0 < doc["steps"] < 500 * 9
    assert (runs / doc["run"] / "checkpoints" / f"step-{doc['steps']:07d}.pt").is_file()
    assert "stopping after this step" in err
    shown = json.loads(run(home, "run", "show", doc["run"], "--json").stdout)
    assert shown["status"] == "aborted"


def test_group_set_list_and_clear(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars", per_class=4)
    home = tmp_path / "home"
    made = json.loads(run(home, "dataset", "create", str(tmp_path / "bars"), "--size", "12x12", "--json").stdout)
    dataset = made["manifest"]
    assert run(home, "group", "set", "lab", "bars").returncode == 0  # a dataset by name
    assert json.loads(run(home, "group", "list", "--json").stdout) == [
        {"name": "lab", "datasets": [dataset["id"]], "runs": []}
    ]
    missing = run(home, "group", "set", "lab", "no-such-thing")
    assert missing.returncode == 2 and "no run or dataset 'no-such-thing'" in missing.stderr
    assert run(home, "group", "clear", dataset["id"]).returncode == 0
    assert json.loads(run(home, "group", "list", "--json").stdout) == []
