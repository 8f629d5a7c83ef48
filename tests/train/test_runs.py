"""Run folders: renaming and notes, and run.json edits from two processes at once losing nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepyard.config import Settings
from deepyard.datasets import get_dataset
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.networks import NetworkSpec
from deepyard.train import get_run, make_config
from deepyard.train.device import resolve_placement
from deepyard.train.runs import annotate_run, create_run

EDITS = 300


def test_rename_and_notes(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    config = make_config(device="cpu")
    run_id = create_run(settings, get_dataset(settings, tiny), tiny_net, config, resolve_placement(config))
    info = annotate_run(settings, run_id, name="  baseline\n  LeNet ", notes="lr 0.01, no augmentation\n")
    assert (info["name"], info["notes"]) == ("baseline LeNet", "lr 0.01, no augmentation")
    assert annotate_run(settings, run_id, notes="")["name"] == "baseline LeNet"  # None leaves the name alone
    assert get_run(settings, run_id)["notes"] == ""
    with pytest.raises(InvalidValueError, match="must be 1 to 200 characters on one line"):
        annotate_run(settings, run_id, name="   ")
    with pytest.raises(InvalidValueError, match="at most 20,000"):
        annotate_run(settings, run_id, notes="x" * 20_001)
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        annotate_run(settings, "nope", name="x")


def test_status_writes_and_notes_from_two_processes_lose_nothing(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, tmp_path: Path
) -> None:
    """The trainer's status writes and the server's edits are read-modify-write of run.json: under the run's lock
    neither loses the other's change. Two processes start writing at the same moment."""
    config = make_config(device="cpu")
    run_id = create_run(settings, get_dataset(settings, tiny), tiny_net, config, resolve_placement(config))
    go = tmp_path / "go"
    script = tmp_path / "writer.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from deepyard.config import load_settings\n"
        "from deepyard.train.runs import annotate_run, set_status\n"
        "settings, run, what = load_settings(sys.argv[1]), sys.argv[2], sys.argv[3]\n"
        "while not Path(sys.argv[4]).exists():\n"
        "    time.sleep(0.001)\n"
        f"for i in range({EDITS}):\n"
        "    if what == 'status':\n"
        "        set_status(settings, run, 'running', step=i)\n"
        "    else:\n"
        "        annotate_run(settings, run, notes=f'edit {i}')\n"
    )
    writers = [subprocess.Popen([sys.executable, str(script), str(settings.home), run_id, what, str(go)])
               for what in ("status", "notes")]  # fmt: skip
    time.sleep(1.0)  # both have imported and wait for the signal
    go.touch()
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    info = get_run(settings, run_id)
    assert len(info["history"]) == EDITS and info["step"] == EDITS - 1  # every status write is there
    assert info["notes"] == f"edit {EDITS - 1}"  # and the other process's last edit
