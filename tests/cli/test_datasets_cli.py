"""The real `deepyard` command in a subprocess: help on every verb, --json documents, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepyard.config import load_settings
from deepyard.datasets import get_dataset
from deepyard.networks import spec_from_data
from deepyard.train import make_config
from deepyard.train.device import resolve_placement
from deepyard.train.runs import create_run, set_status
from tests.conftest import make_class_folders

DEEPYARD = [str(Path(sys.executable).parent / "deepyard")]  # the installed console script


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*DEEPYARD, "--home", str(home), *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    "verb",
    [
        [],
        ["dataset"],
        ["dataset", "create"],
        ["dataset", "import", "mnist"],
        ["dataset", "list"],
        ["dataset", "show"],
        ["dataset", "delete"],
    ],
)
def test_every_verb_has_help(tmp_path: Path, verb: list[str]) -> None:
    proc = run(tmp_path, *verb, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout and "--help" in proc.stdout


def test_create_list_show_delete_with_json(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "pets", {"cat": 4, "dog": 4})
    home = tmp_path / "home"
    proc = run(home, "dataset", "create", str(tmp_path / "pets"), "--size", "8x8", "--val-pct", "25", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    manifest = doc["manifest"]
    assert manifest["name"] == "pets" and manifest["classes"] == ["cat", "dog"]
    assert manifest["splits"]["train"]["count"] == 6 and manifest["splits"]["val"]["count"] == 2
    assert doc["report"]["skipped"] == []
    listed = json.loads(run(home, "dataset", "list", "--json").stdout)
    assert [d["id"] for d in listed] == [manifest["id"]]
    shown = json.loads(run(home, "dataset", "show", "pets", "--json").stdout)
    assert shown["manifest"]["content_hash"] == manifest["content_hash"]
    table = run(home, "dataset", "show", manifest["id"])
    assert "images per class" in table.stdout and "cat" in table.stdout
    deleted = json.loads(run(home, "dataset", "delete", manifest["id"], "--json").stdout)
    assert deleted == {"deleted": manifest["id"], "name": "pets"}
    assert json.loads(run(home, "dataset", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dataset", "create", "/no/such/folder"], "'/no/such/folder' does not exist"),
        (["dataset", "create", ".", "--size", "28"], "size '28' is not WxH"),
        (["dataset", "create", ".", "--channels", "2"], "channels: Input should be 1 or 3 (got 2)"),
        (["dataset", "create", ".", "--val-pct", "60", "--test-pct", "40"], "they must add up to less than 100"),
        (["dataset", "show", "nope"], "no dataset with id or name 'nope'; existing: none"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run(tmp_path / "home", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bad_choice_lists_the_valid_ones(tmp_path: Path) -> None:
    proc = run(tmp_path, "dataset", "create", ".", "--resize-mode", "stretch")
    assert proc.returncode == 2
    assert all(mode in proc.stderr for mode in ("squash", "crop", "fill", "half_crop"))


def test_the_command_starts_without_importing_torch(tmp_path: Path) -> None:
    """Verbs that need no model (listing runs, models, groups, jobs) start in a fraction of a second."""
    code = (
        "import sys, deepyard.cli\n"
        "from deepyard.cli.train import _as_seen, _groups\n"
        "from deepyard.config import load_settings\n"
        "from deepyard.train import TrainConfig, list_runs\n"
        f"settings = load_settings({str(tmp_path)!r})\n"
        "[_as_seen(settings, r, _groups(settings)) for r in list_runs(settings)]  # what `run list` does\n"
        "from deepyard.transfer import list_models\n"
        "list_models(settings)  # `model list`\n"
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_delete_refuses_a_dataset_that_runs_use_and_names_them(tmp_path: Path) -> None:
    """The same rule as the server's 409: delete the runs first; no override."""
    make_class_folders(tmp_path / "pets", {"cat": 4, "dog": 4})
    home = tmp_path / "home"
    made = run(home, "dataset", "create", str(tmp_path / "pets"), "--size", "8x8", "--val-pct", "25", "--json")
    assert made.returncode == 0, made.stderr
    dataset_id = json.loads(made.stdout)["manifest"]["id"]
    settings = load_settings(home)
    config = make_config(device="cpu")
    net = spec_from_data({"name": "tiny", "layers": [{"name": "fc", "type": "linear", "out_features": "num_classes"}]})
    run_id = create_run(settings, get_dataset(settings, dataset_id), net, config, resolve_placement(config))
    set_status(settings, run_id, "done")
    refused = run(home, "dataset", "delete", "pets")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"dataset 'pets' is used by run(s) {run_id}; delete them first" in refused.stderr
    assert [d["id"] for d in json.loads(run(home, "dataset", "list", "--json").stdout)] == [dataset_id]
    assert run(home, "run", "delete", run_id).returncode == 0
    deleted = run(home, "dataset", "delete", "pets", "--json")
    assert json.loads(deleted.stdout) == {"deleted": dataset_id, "name": "pets"}, deleted.stderr
