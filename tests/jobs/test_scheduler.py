"""The scheduler with real worker processes: builds and training to completion, status history, progress,
priorities and slots, graceful abort, forced kill after the timeout, a worker killed with SIGKILL."""

from __future__ import annotations

import os
import signal
from contextlib import closing

from deepyard import db, groups, users
from deepyard.config import Settings
from deepyard.datasets import get_dataset
from deepyard.jobs import Job, JobContext, Scheduler, abort_job, get_job, list_queue, store, submit
from deepyard.networks import NetworkSpec
from deepyard.train import get_run
from deepyard.train.checkpoint import load_checkpoint
from tests.jobs.conftest import (
    LONG,
    bars_spec,
    freeze,
    gone,
    thaw,
    train_params,
    wait_for,
    wait_status,
    wait_training,
)


def test_dataset_build_job_runs_to_done(settings: Settings, scheduler: Scheduler) -> None:
    with closing(db.connect(settings)) as conn:
        users.create_user(conn, "ada", "correct horse")
    job = submit(settings, "dataset", bars_spec(settings, per_class=10), owner="ada", group="lab")
    done = wait_status(settings, job.id, "done", "failed")
    assert done.status == "done", done.error
    assert [s for s, _ in done.history] == ["queued", "running", "done"]
    assert done.progress == 1.0 and done.result is not None and done.finished is not None
    manifest = get_dataset(settings, done.target or "")
    assert done.result["dataset"] == manifest.id and sum(done.result["counts"].values()) == 30
    with closing(db.connect(settings)) as conn:  # what the job created is its submitter's, in its group
        assert users.owner_of(conn, "dataset", manifest.id) == "ada"
        assert groups.group_of(conn, "dataset", manifest.id) == "lab"


def test_training_job_runs_to_done_with_rising_progress(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, scheduler: Scheduler
) -> None:
    job = submit(settings, "train", train_params(tiny, tiny_net, epochs=8))
    seen: list[float] = []

    def finished() -> bool:
        now = get_job(settings, job.id)
        seen.append(now.progress)
        return now.status in ("done", "failed")

    wait_for(finished, "training to end", poll=0.05)
    done = get_job(settings, job.id)
    assert done.status == "done", done.error
    assert [s for s, _ in done.history] == ["queued", "running", "done"]
    assert seen == sorted(seen) and seen[-1] == 1.0  # never goes back
    assert done.result is not None and done.result["steps"] == 8 * 13 and done.result["run"] == done.target
    info = get_run(settings, done.target or "")
    assert info["status"] == "done" and info["result"]["steps"] == 8 * 13


def test_progress_reports_are_written_about_once_a_second(settings: Settings) -> None:
    job = submit(settings, "dataset", bars_spec(settings))
    conn = db.connect(settings)
    store.transition(conn, job.id, "running", ["queued"])
    ctx = JobContext(settings, job.id, conn)
    for i in range(1, 101):
        ctx.report(i / 200, f"step {i}", eta_s=100 - i)
    assert get_job(settings, job.id).progress == 0  # held in memory until the flush
    ctx.flush()
    now = get_job(settings, job.id)
    assert (now.progress, now.message, now.eta_s) == (0.5, "step 100", 0.0)
    ctx.report(0.75)
    ctx.flush()
    assert get_job(settings, job.id).progress == 0.75


def test_a_queued_job_waits_for_its_slot_and_higher_priority_starts_first(
    settings: Settings, manual: Scheduler
) -> None:
    sched = manual
    first = submit(settings, "dataset", bars_spec(settings, "a"))
    assert sched.tick() == [first.id]
    pid = get_job(settings, first.id).pid
    assert pid is not None
    freeze(pid)  # the slot stays busy for as long as the test needs
    low = submit(settings, "dataset", bars_spec(settings, "b"))
    high = submit(settings, "dataset", bars_spec(settings, "c"), priority=3)
    assert sched.tick() == []
    assert [j.id for j in list_queue(settings)] == [high.id, low.id]
    thaw(pid)
    wait_for(lambda: sched.tick() or None, "the slot to free up")
    assert get_job(settings, first.id).status == "done"
    assert get_job(settings, high.id).status == "running" and get_job(settings, low.id).status == "queued"
    wait_for(lambda: low.id in sched.tick() or None, "the last job to start")
    wait_for(lambda: sched.tick() == [] and not sched.workers, "the workers to end")
    assert all(get_job(settings, j.id).status == "done" for j in (first, low, high))


def test_gpu_slots_multi_gpu_jobs_and_no_starvation(settings: Settings, manual: Scheduler) -> None:
    sched = manual  # GPU numbers only: these jobs are dataset builds
    one = submit(settings, "dataset", bars_spec(settings, "a"), slots={"gpu": 1})
    two = submit(settings, "dataset", bars_spec(settings, "b"), slots={"gpu": 2})
    small = submit(settings, "dataset", bars_spec(settings, "c"), slots={"gpu": 1})
    cpu = submit(settings, "dataset", bars_spec(settings, "d"))
    huge = submit(settings, "dataset", bars_spec(settings, "e"), slots={"gpu": 3})
    assert sched.tick() == [one.id, cpu.id]  # `two` waits for both GPUs; `small` may not jump ahead of it
    assert get_job(settings, one.id).devices == [0]
    failed = get_job(settings, huge.id)
    assert failed.status == "failed" and failed.error == (
        "needs {'gpu': 3} but this scheduler has 1 cpu slot(s) and 2 GPU(s)"
    )
    wait_for(lambda: two.id in sched.tick() or None, "the two-GPU job to start")
    assert get_job(settings, two.id).devices == [0, 1] and get_job(settings, small.id).status == "queued"
    wait_for(lambda: small.id in sched.tick() or None, "the last job to start")
    wait_for(lambda: sched.tick() == [] and not sched.workers, "the workers to end")
    assert [get_job(settings, j.id).status for j in (one, two, small, cpu)] == ["done"] * 4


def test_abort_of_a_running_training_job_is_graceful(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, scheduler: Scheduler
) -> None:
    job = submit(settings, "train", train_params(tiny, tiny_net, **LONG))
    running = wait_training(settings, job.id)
    assert running.pid is not None and running.target is not None
    freeze(running.pid)  # hold it mid-training while the request is made
    abort_job(settings, job.id)
    thaw(running.pid)
    aborted = wait_status(settings, job.id, "aborted", "failed", "done")
    assert aborted.status == "aborted" and aborted.error is None
    assert [s for s, _ in aborted.history] == ["queued", "running", "aborted"]
    info = get_run(settings, running.target)
    assert info["status"] == "aborted" and info["result"]["stop_reason"] == "aborted"
    steps = info["result"]["steps"]
    assert 0 < steps < 400 * 13
    checkpoint = settings.home / "runs" / running.target / "checkpoints" / f"step-{steps:07d}.pt"
    assert load_checkpoint(checkpoint)["state"]["step"] == steps  # the step it stopped at, saved
    wait_for(lambda: gone(running.pid or 0), "the worker to exit")


def test_a_job_ignoring_the_abort_is_killed_after_the_timeout(
    settings: Settings, tiny: str, tiny_net: NetworkSpec
) -> None:
    with Scheduler(settings, cpu_slots=1, gpus=[], abort_timeout_s=0.5, poll_s=0.05):
        job = submit(settings, "train", train_params(tiny, tiny_net, **LONG))
        running = wait_training(settings, job.id)
        assert running.pid is not None
        freeze(running.pid)  # a stopped process ignores the request
        abort_job(settings, job.id)
        killed = wait_status(settings, job.id, "aborted", "failed", "done")
        assert killed.status == "aborted"
        assert killed.error == "did not stop in time after the request; killed by signal SIGKILL " + (
            "(the kernel's out-of-memory killer sends SIGKILL)"
        )
        assert gone(running.pid)


def test_a_worker_killed_with_sigkill_is_failed_and_the_scheduler_goes_on(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, scheduler: Scheduler
) -> None:
    job = submit(settings, "train", train_params(tiny, tiny_net, **LONG))
    running = wait_training(settings, job.id)
    assert running.pid is not None
    os.kill(running.pid, signal.SIGKILL)
    failed = wait_status(settings, job.id, "failed", "done")
    assert failed.status == "failed" and "killed by signal SIGKILL" in (failed.error or "")
    # the scheduler marks the run just after the job (run.json after SQLite): wait for it, not a race
    wait_for(lambda: get_run(settings, running.target or "")["status"] == "failed", "the run marked failed")
    after = submit(settings, "train", train_params(tiny, tiny_net, epochs=1))
    assert wait_status(settings, after.id, "done", "failed").status == "done"


def test_a_two_gpu_training_job_runs_one_process_per_slot(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    # GPU numbers only: with no CUDA here, torchrun's two ranks train on the CPU over gloo, as on two GPUs over NCCL
    with Scheduler(settings, cpu_slots=1, gpus=[0, 1], poll_s=0.05):
        job = submit(settings, "train", train_params(tiny, tiny_net, epochs=2, device="auto"), slots={"gpu": 2})
        done = wait_status(settings, job.id, "done", "failed")
    assert done.status == "done", done.error
    assert done.devices == [0, 1] and done.result is not None
    info = get_run(settings, done.target or "")
    assert info["placement"]["world"] == 2 and info["status"] == "done"
    assert done.result["steps"] == 2 * (54 // 8)  # each rank trains on its half of the 108 images


def test_an_abort_while_the_worker_is_still_starting_ends_aborted(
    settings: Settings, tiny: str, tiny_net: NetworkSpec, manual: Scheduler
) -> None:
    # The worker takes a second or more to import torch; SIGUSR1 before it installs its handler would kill it.
    job = submit(settings, "train", train_params(tiny, tiny_net, **LONG))
    assert manual.tick() == [job.id]
    abort_job(settings, job.id)

    def ended() -> Job | None:
        manual.tick()  # reaps the worker, if it died
        found = get_job(settings, job.id)
        return None if found.status == "running" else found

    stopped = wait_for(ended, "the job to end")
    assert stopped.status == "aborted" and stopped.error is None, stopped
