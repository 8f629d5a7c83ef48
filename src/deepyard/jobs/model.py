"""The `Job` record: what the API, the CLI and the web pages show about a unit of work, as JSON-able data.

A job's life: queued → running → done | aborted | failed | interrupted; an interrupted, aborted or failed job can
be queued again (`resume_job`), except one that failed on its input (`permanent`: a bad value, an unusable source),
which would only fail the same way again. `history` keeps every transition with its UTC time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

JobStatus = Literal["queued", "running", "done", "aborted", "failed", "interrupted"]
STATUSES: tuple[JobStatus, ...] = ("queued", "running", "done", "aborted", "failed", "interrupted")
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")  # jobs that hold (or wait for) a slot
FINISHED: tuple[JobStatus, ...] = ("done", "aborted", "failed", "interrupted")
RESUMABLE: tuple[JobStatus, ...] = ("interrupted", "aborted", "failed")
SLOT_TYPES = ("cpu", "gpu")


class Job(BaseModel):
    """One unit of work (a dataset build, a training run...) and where it stands."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="YYYYMMDD-HHMMSS-xxxx, sortable by submission time.")
    kind: str = Field(description="Job kind from the registry: dataset, train, ...")
    params: dict[str, Any] = Field(description="The kind's parameters, validated and normalised at submit.")
    status: JobStatus
    history: list[tuple[str, str]] = Field(description="[status, UTC time] for every transition, oldest first.")
    progress: float = Field(0.0, ge=0, le=1, description="Fraction done, 0 to 1.")
    eta_s: float | None = Field(None, description="Estimated seconds left, when the job can tell.")
    message: str = Field("", description="What the job is doing now, one line.")
    result: dict[str, Any] | None = Field(None, description="What a finished job produced (kind-specific).")
    error: str | None = Field(None, description="Why a job failed or was killed.")
    permanent: bool = Field(
        False,
        description="It failed on its input (a bad value, an unusable source, a missing or damaged file): resuming "
        "would fail the same way, so it cannot be resumed; submit it again with the input fixed.",
    )
    owner: str | None = Field(None, description="User who submitted it (None: local use).")
    group: str | None = Field(None, description="Group the dataset or run it creates joins (home page).")
    priority: int = Field(0, description="Higher starts first; FIFO among equals.")
    slots: dict[str, int] = Field(description='Resources held while running: {"cpu": 1} or {"gpu": N}.')
    devices: list[int] = Field([], description="GPU indices assigned while running (empty for CPU jobs).")
    target: str | None = Field(None, description="The dataset id or run id the job produces or works on.")
    pid: int | None = Field(None, description="Worker process id while running.")
    created: str
    started: str | None = Field(None, description="Start of the latest attempt.")
    finished: str | None = None
    abort_requested: str | None = Field(None, description="UTC time an abort was requested, None if never.")

    @computed_field(description="Whether `resume` may queue it again: stopped or failed, and not on its input.")  # type: ignore[prop-decorator]
    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE and not self.permanent
