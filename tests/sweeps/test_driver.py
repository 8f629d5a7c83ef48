"""The sweeps' driver without workers: what `advance` submits (a grid, a choice of networks, as many as the
capacity), how a trial whose job ended alone is told, and what stop and resume do to the trials' jobs."""

from __future__ import annotations

from pathlib import Path

from deepyard.config import Settings
from deepyard.jobs import abort_job, get_job, list_jobs
from deepyard.networks import NetworkSpec, dump_yaml
from deepyard.sweeps import advance, create_sweep, get_sweep, resume_sweep, stop_sweep, trial_jobs
from tests.sweeps.conftest import FIXED


def spec_files(home: Path, net: NetworkSpec) -> list[str]:
    """Two network spec files in the home (a readable place): the tiny network and a wider one."""
    paths = []
    for name, width in (("tiny", 6), ("wide", 12)):
        data = net.to_data()
        data["name"] = name
        data["layers"][0]["out_channels"] = width
        path = home / "nets" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_yaml(NetworkSpec.model_validate(data)))
        paths.append(str(path))
    return paths


def test_a_grid_over_a_choice_of_networks_is_submitted_once_per_point(
    settings: Settings, tiny: str, tiny_net: NetworkSpec
) -> None:
    nets = spec_files(settings.home, tiny_net)
    space = {"batch_size": {"type": "choice", "values": [8, 16]}}
    sweep = create_sweep(settings, {"dataset": tiny, "networks": nets, "sampler": "grid", "trials": 10,
                                    "space": space, "config": FIXED})  # fmt: skip
    assert get_sweep(settings, sweep)["space"]["network"] == {"type": "choice", "values": nets}
    assert len(advance(settings, capacity=3)) == 3  # as many as the slots
    assert len(advance(settings, capacity=3)) == 0  # three active already
    assert len(advance(settings, capacity=10)) == 1  # the grid has 4 points: the budget of 10 is capped
    jobs = trial_jobs(settings, sweep)
    points = {(j.params["network"]["name"], j.params["config"]["batch_size"]) for j in jobs.values()}
    assert points == {("tiny", 8), ("tiny", 16), ("wide", 8), ("wide", 16)}
    for job in jobs.values():  # the train job's parameters: drawn settings, the objective as the monitor
        assert job.params["config"]["monitor"] == "val_loss" and job.params["trial"]["sweep"] == sweep
        abort_job(settings, job.id)  # queued: aborted at once, without telling the study
    advance(settings, capacity=10)
    done = get_sweep(settings, sweep)
    assert done["status"] == "done" and done["counts"]["fail"] == 4  # told failed; the budget was spent


def test_stop_aborts_the_trials_and_resume_queues_them_again(
    settings: Settings, tiny: str, tiny_net: NetworkSpec
) -> None:
    sweep = create_sweep(settings, {"dataset": tiny, "networks": [tiny_net.to_data()], "sampler": "random",
                                    "trials": 5, "space": {"solver.lr": {"type": "float", "low": 0.01, "high": 0.1}},
                                    "config": FIXED})  # fmt: skip
    submitted = advance(settings, capacity=2)
    assert len(submitted) == 2
    stop_sweep(settings, sweep)
    assert [get_job(settings, j).status for j in submitted] == ["aborted", "aborted"]
    assert advance(settings, capacity=2) == [] and get_sweep(settings, sweep)["status"] == "stopped"
    resume_sweep(settings, sweep)
    assert [get_job(settings, j).status for j in submitted] == ["queued", "queued"]
    assert advance(settings, capacity=2) == [] and len(list_jobs(settings)) == 2  # the same trials, no new ones
    assert get_sweep(settings, sweep)["counts"]["running"] == 2
