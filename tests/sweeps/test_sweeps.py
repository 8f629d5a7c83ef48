"""Sweeps through the job system: trials are train jobs, two at a time on two CPU slots, the study told each
result; then the console script's verbs on the same home (list, show, best, stop, resume, a refused space)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepyard.cli import main
from deepyard.config import Settings
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.jobs import Scheduler, list_jobs
from deepyard.networks import NetworkSpec
from deepyard.sweeps import best_run, create_sweep, get_sweep, list_sweeps, resume_sweep, stop_sweep
from deepyard.train import get_run
from tests.cli.test_datasets_cli import run
from tests.sweeps.conftest import FIXED, sweep_data, wait_sweep


@pytest.mark.slow  # about 30 s here; the browser test runs a sweep in the fast suite
def test_trials_run_as_train_jobs_two_at_a_time_and_the_best_is_a_run(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, two_slots: Scheduler
) -> None:
    data = sweep_data(tiny, tiny_net, trials=2, sampler="random", prune="none", objective="val_top1", name="fast",
                      config={**FIXED, "epochs": 1})  # fmt: skip
    sweep_id = create_sweep(settings, data)
    done = wait_sweep(settings, sweep_id, "done")
    assert done["total"] == 2 and done["counts"]["complete"] == 2, done["counts"]
    jobs = [j for j in list_jobs(settings, kind="train") if j.params.get("trial", {}).get("sweep") == sweep_id]
    assert sorted(j.params["trial"]["number"] for j in jobs) == [0, 1] and all(j.status == "done" for j in jobs)
    first_done = min(dict(j.history)["done"] for j in jobs)
    assert all(dict(j.history)["running"] < first_done for j in jobs)  # both ran at once: two slots
    for trial in done["trials"]:
        info = get_run(settings, trial["run"])
        assert info["name"] == f"fast #{trial['number']}" and info["config"]["monitor"] == "val_top1"
        assert info["config"]["solver"]["lr"] == trial["params"]["solver.lr"]
        assert info["config"]["batch_size"] == trial["params"]["batch_size"]
        assert trial["value"] == info["result"]["best"] and trial["milestones"][-1]["value"] == trial["value"]
    best = max(done["trials"], key=lambda t: t["value"])
    assert done["best"]["run"] == best["run"]

    assert run(settings.home, "sweep", "best", sweep_id).stdout.strip() == best["run"]  # the console script
    with pytest.raises(InvalidValueError, match=f"sweep {sweep_id} is done; only a running sweep stops"):
        stop_sweep(settings, sweep_id)


def test_the_console_script_refuses_a_bad_space_before_anything_is_queued(
    settings: Settings, tiny: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("solver.lr: {type: float, low: 0.001, high: 0.3, log: true}\nbatchsize: {type: int, low: 8, "
                     "high: 64}\n")  # fmt: skip
    bad = run(settings.home, "sweep", "create", "--dataset", "bars", "--space", str(space), "--trials", "3")
    assert bad.returncode == 2
    assert "search space key 'batchsize' is not a training setting; valid: 'network', 'epochs', 'batch_size'" in (
        bad.stderr)  # fmt: skip
    assert list_jobs(settings) == [] and list_sweeps(settings) == []
    space.write_text("solver.lr: {type: float, low: 0.001, high: 0.3, log: true}\n")
    with pytest.raises(SystemExit) as made:  # the same verb in this process (torch is imported already)
        main(["--home", str(settings.home), "sweep", "create", "--dataset", "bars", "--space", str(space), "--trials",
              "3", "--objective", "val_top1", "--set", "epochs=2", "--set", "solver.type=sgd", "--json"])  # fmt: skip
    assert made.value.code == 0
    sweep = json.loads(capsys.readouterr().out)
    assert sweep["config"] == {"epochs": 2, "solver.type": "sgd"} and sweep["direction"] == "maximize"
    stop_sweep(settings, sweep["id"])  # no scheduler here: nothing ran; stop and resume are bookkeeping
    assert get_sweep(settings, sweep["id"])["status"] == "stopped"
    resume_sweep(settings, sweep["id"])
    assert get_sweep(settings, sweep["id"])["status"] == "running" and list_jobs(settings) == []
    with pytest.raises(NotFoundError, match="has no finished trial yet"):
        best_run(settings, sweep["id"])
