"""The job API against a real SQLite file: validation before queueing, the queue order, status rules, migrations."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from deepyard import db
from deepyard.config import Settings
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.jobs import (
    abort_job,
    delete_job,
    get_job,
    list_jobs,
    list_queue,
    resume_job,
    store,
    submit,
)
from deepyard.jobs.queue import catches_signal
from deepyard.networks import NetworkSpec
from tests.jobs.conftest import bars_spec, train_params


def test_jobs_migration_is_applied_once_and_recorded(settings: Settings) -> None:
    first, second = db.connect(settings), db.connect(settings)
    names = [r["name"] for r in second.execute("SELECT name FROM migrations")]
    assert names == ["0001-jobs", "0100-users", "0200-groups", "0300-jobs-permanent", "0310-users-admin"]
    assert db.migrate(first) == []
    assert first.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0


def test_unknown_kind_lists_the_valid_ones(settings: Settings) -> None:
    valid = "'dataset', 'train', 'evaluate', 'export' or 'find'"
    with pytest.raises(NotFoundError, match=f"unknown job kind 'bake'; valid: {valid}"):
        submit(settings, "bake", {})


def test_bad_train_values_are_refused_before_anything_is_queued(
    settings: Settings, tiny: str, tiny_net: NetworkSpec
) -> None:
    with pytest.raises(InvalidValueError, match=r"solver\.lr.*greater than 0"):
        submit(settings, "train", train_params(tiny, tiny_net, **{"solver.lr": -1}))
    with pytest.raises(InvalidValueError, match="unknown setting 'epochz'"):
        submit(settings, "train", train_params(tiny, tiny_net, epochz=3))
    with pytest.raises(NotFoundError, match="nowhere"):
        submit(settings, "train", {**train_params(tiny, tiny_net), "dataset": "nowhere"})
    with pytest.raises(InvalidValueError, match="unknown train job parameter 'epochs'"):
        submit(settings, "train", {**train_params(tiny, tiny_net), "epochs": 3})
    with pytest.raises(InvalidValueError, match="'cuda:1': the scheduler assigns GPUs"):
        submit(settings, "train", train_params(tiny, tiny_net, device="cuda:1"))
    broken = {**tiny_net.to_data(), "layers": [{"name": "c", "type": "conv", "out_channels": 4, "kernel": 50}]}
    with pytest.raises(InvalidValueError, match="layer 'c'"):
        submit(settings, "train", {**train_params(tiny, tiny_net), "network": broken})
    with pytest.raises(InvalidValueError, match="slot type 'tpu' is not one of 'cpu' or 'gpu'"):
        submit(settings, "train", train_params(tiny, tiny_net), slots={"tpu": 1})
    with pytest.raises(InvalidValueError, match=r"slots\['gpu'\] = 0"):
        submit(settings, "train", train_params(tiny, tiny_net), slots={"gpu": 0})
    assert list_jobs(settings) == []


def test_dataset_sources_outside_the_data_roots_are_refused(settings: Settings, tmp_path) -> None:
    params = bars_spec(settings)
    params["spec"]["source"]["train"] = str(tmp_path / "elsewhere")
    with pytest.raises(InvalidValueError, match="outside the data roots"):
        submit(settings, "dataset", params)
    with pytest.raises(InvalidValueError, match="width"):
        submit(settings, "dataset", {**bars_spec(settings), "spec": {**bars_spec(settings)["spec"], "width": 0}})
    assert list_jobs(settings) == []


def test_train_params_are_normalised(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    job = submit(settings, "train", {"dataset": "bars", "network": tiny_net.to_data(),
                                     "config": {"epochs": 2, "solver": {"lr": 0.1}}}, owner="ann")  # fmt: skip
    assert job.params["dataset"] == tiny  # the id, not the name that could later mean another dataset
    assert job.params["config"]["solver"]["lr"] == 0.1 and job.params["config"]["batch_size"] == 64
    assert job.status == "queued" and job.owner == "ann" and job.slots == {"cpu": 1}
    assert [s for s, _ in job.history] == ["queued"]
    assert get_job(settings, job.id) == job


def test_queue_order_is_priority_then_fifo(settings: Settings) -> None:
    a = submit(settings, "dataset", bars_spec(settings))
    b = submit(settings, "dataset", bars_spec(settings), priority=5)
    c = submit(settings, "dataset", bars_spec(settings))
    d = submit(settings, "dataset", bars_spec(settings), priority=5)
    assert [j.id for j in list_queue(settings)] == [b.id, d.id, a.id, c.id]
    assert [j.id for j in list_jobs(settings)] == [a.id, b.id, c.id, d.id]
    assert [j.id for j in list_jobs(settings, statuses=["queued"], kind="dataset")] == [a.id, b.id, c.id, d.id]
    with pytest.raises(InvalidValueError, match="status 'waiting' is not one of"):
        list_jobs(settings, statuses=["waiting"])


def test_abort_resume_delete_rules(settings: Settings) -> None:
    job = submit(settings, "dataset", bars_spec(settings))
    with pytest.raises(InvalidValueError, match="is queued; only 'interrupted', 'aborted' or 'failed'"):
        resume_job(settings, job.id)
    aborted = abort_job(settings, job.id)  # queued: at once
    assert aborted.status == "aborted" and aborted.finished is not None
    with pytest.raises(InvalidValueError, match="is aborted; only queued or running jobs can be aborted"):
        abort_job(settings, job.id)
    again = resume_job(settings, job.id)
    assert again.status == "queued" and again.finished is None
    assert [s for s, _ in again.history] == ["queued", "aborted", "queued"]
    assert list_queue(settings)[-1].id == job.id  # back of the queue
    conn = db.connect(settings)
    store.transition(conn, job.id, "running", ["queued"], pid=None)
    with pytest.raises(InvalidValueError, match="is running; abort it first"):
        delete_job(settings, job.id)
    assert abort_job(settings, job.id).abort_requested is not None  # running: a request, not a status change
    assert get_job(settings, job.id).status == "running"
    store.transition(conn, job.id, "failed", ["running"], error="boom")
    delete_job(settings, job.id)
    with pytest.raises(NotFoundError, match="no job"):
        get_job(settings, job.id)


def test_resuming_a_run_that_a_job_works_on_is_refused(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    from deepyard.train import make_config, train

    result = train(settings, tiny, tiny_net, make_config(epochs=0.2, batch_size=8, precision="fp32"))
    first = submit(settings, "train", {"run": result.run_id})
    assert first.target == result.run_id and first.params == {"run": result.run_id}
    with pytest.raises(InvalidValueError, match=f"already being worked on by job {first.id}"):
        submit(settings, "train", {"run": result.run_id})
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        submit(settings, "train", {"run": "nope"})


def test_catches_signal_reads_whether_a_process_handles_it() -> None:
    handler = "import signal, time; signal.signal(signal.SIGUSR1, print); print(1, flush=True); time.sleep(60)"
    plain = "import time; print(1, flush=True); time.sleep(60)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) for code in (handler, plain)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline()  # its handler (if any) is installed
        assert [catches_signal(p.pid, signal.SIGUSR1) for p in procs] == [True, False]
        assert not catches_signal(procs[0].pid, signal.SIGUSR2)
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()
