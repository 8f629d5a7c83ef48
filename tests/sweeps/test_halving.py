"""Successive-halving pruning through the job system: trials run one at a time on one CPU slot (so each competes
only with the trials before it), a trial worse than an earlier one at a rung is stopped there with a checkpoint,
and it resumes to its planned end like any run."""

from __future__ import annotations

import pytest

from deepyard.config import Settings
from deepyard.jobs import Scheduler, submit
from deepyard.networks import NetworkSpec
from deepyard.sweeps import create_sweep
from deepyard.train import get_run
from tests.jobs.conftest import wait_status
from tests.sweeps.conftest import FIXED, wait_sweep

LRS = [0.1, 0.01, 1e-5]  # plain SGD for 2 epochs: 1e-5 barely moves, 0.1 learns most
# The grid's order is shuffled by the sweep's seed. Only one order (worst first, best last) lets every trial beat
# those before it at every rung; seed 0 happens to draw it, seed 1 does not.


@pytest.mark.slow  # about 40 s here
def test_halving_stops_a_trial_that_loses_a_rung_and_it_resumes(
    settings: Settings, tiny: str, tiny_net: NetworkSpec
) -> None:
    with Scheduler(settings, cpu_slots=1, gpus=[], poll_s=0.05):
        sweep_id = create_sweep(settings, {
            "dataset": tiny, "networks": [tiny_net.to_data()], "config": {**FIXED, "batch_size": 16},
            "space": {"solver.lr": {"type": "choice", "values": LRS}}, "sampler": "grid", "trials": 3,
            "prune": "halving", "objective": "val_loss", "name": "halving", "seed": 1,
        })  # fmt: skip
        done = wait_sweep(settings, sweep_id, "done", "stopped")
        assert done["status"] == "done" and done["total"] == 3, done
        trials = sorted(done["trials"], key=lambda t: t["number"])
        assert sorted(t["params"]["solver.lr"] for t in trials) == sorted(LRS)  # the grid, once each
        pruned = [t for t in trials if t["state"] == "pruned"]
        assert pruned and all(t["state"] in ("pruned", "complete") for t in trials), [t["state"] for t in trials]
        for trial in pruned:  # rungs at validations 1, 2, 4; with at most 3 competitors only the best goes on
            rung = str(max(int(k) for k in trial["values"]))
            assert rung in ("1", "2", "4"), trial["values"]
            earlier = [t["values"][rung] for t in trials[: trial["number"]] if rung in t["values"]]
            assert earlier and min(earlier) < trial["values"][rung], (trial, earlier)

        run = get_run(settings, pruned[0]["run"])
        steps = run["result"]["steps"]
        assert run["status"] == "done"
        assert run["result"]["stop_reason"].startswith(f"pruned by the sweep's halving pruner at validation {rung}")
        assert (settings.home / "runs" / run["id"] / "checkpoints" / f"step-{steps:07d}.pt").is_file()
        resumed = wait_status(settings, submit(settings, "train", {"run": run["id"]}).id, "done", "failed")
        assert resumed.status == "done", resumed.error
        assert resumed.result and resumed.result["steps"] > steps and resumed.result["stop_reason"] is None
