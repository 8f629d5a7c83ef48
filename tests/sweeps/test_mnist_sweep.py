"""The issue's gate: a 6-trial TPE sweep with median pruning over the learning rate and the batch size, LeNet on a
small MNIST subset, run through the job system on two CPU slots. At least one trial is pruned, stopped at a
checkpoint, and resumes to its end as any run; the best trial's run classifies the validation split well."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from deepyard.config import Settings
from deepyard.datasets import import_mnist
from deepyard.infer import evaluate, open_model, split_data
from deepyard.jobs import Scheduler, submit
from deepyard.sweeps import best_run, create_sweep
from deepyard.train import get_run
from tests.jobs.conftest import wait_status
from tests.sweeps.conftest import wait_sweep

SPACE = {"solver.lr": {"type": "float", "low": 3e-4, "high": 0.03, "log": True},
         "batch_size": {"type": "choice", "values": [32, 64, 128]}}  # fmt: skip
FIXED = {"epochs": 2, "val_interval": 0.5, "snapshot_interval": 0.5, "device": "cpu", "precision": "fp32"}


@pytest.mark.slow
def test_a_tpe_sweep_with_median_pruning_on_mnist(settings: Settings, mnist_dir: Path) -> None:
    dataset = import_mnist(settings, mnist_dir, max_per_class=150, val_max_per_class=50).id  # 1,500 / 500 images
    started = time.monotonic()
    with Scheduler(settings, cpu_slots=2, gpus=[], poll_s=0.05):
        sweep_id = create_sweep(settings, {
            "dataset": dataset, "networks": ["lenet"], "space": SPACE, "config": FIXED, "trials": 6,
            "sampler": "tpe", "prune": "median", "prune_startup": 1, "startup_trials": 2, "objective": "val_top1",
            "name": "mnist lr x batch", "seed": 1,
        })  # fmt: skip
        done = wait_sweep(settings, sweep_id, "done", "stopped")
        seconds = time.monotonic() - started
        assert done["status"] == "done" and done["total"] == 6, done
        pruned = [t for t in done["trials"] if t["state"] == "pruned"]
        print(f"sweep: {seconds:.0f} s, best {done['best']}, counts {done['counts']}")
        assert pruned and done["counts"]["complete"] >= 1, done["counts"]

        run = get_run(settings, pruned[0]["run"])  # stopped at a checkpoint, before its end
        steps, total = run["result"]["steps"], len(pruned[0]["values"])
        assert run["status"] == "done" and run["result"]["stop_reason"].startswith("pruned by the sweep's median")
        assert total < 4 and (settings.home / "runs" / run["id"] / "checkpoints" / f"step-{steps:07d}.pt").is_file()
        resumed = wait_status(settings, submit(settings, "train", {"run": run["id"]}).id, "done", "failed")
        assert resumed.status == "done", resumed.error
        assert resumed.result and resumed.result["steps"] > steps and resumed.result["stop_reason"] is None

    best = best_run(settings, sweep_id)
    model = open_model(settings, best)
    found = evaluate(model, split_data(settings, model, dataset, "val"))
    print(f"best trial's run {best}: val top-1 {found.metrics['top1']:.2f}% on {found.count} images")
    assert found.count == 500 and found.metrics["top1"] >= 90.0
