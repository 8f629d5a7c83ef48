"""Language-model runs over HTTP: the validation samples a run has written, and text generated from a snapshot.

`GET /api/v1/runs/{id}/samples` (the run page polls it while the run trains) and `POST /api/v1/runs/{id}/generate`
with the prompt, length, temperature, top-k and seed (the run page's Generate box; `deepyard generate` is its
command-line twin). Both call deepyard.text; a run of another task is a 400 naming it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from deepyard.tasks.languagemodel import read_samples
from deepyard.train.runs import get_run, run_dir
from deepyard.web.deps import IdPath, RequestModel, SettingsDep

router = APIRouter(tags=["text"])
MAX_LENGTH = 2000  # tokens one request may ask for (a CPU makes a few hundred a second)


class GenerateRequest(RequestModel):
    prompt: str | None = Field(None, max_length=10_000, description="Text to continue (default: validation start).")
    length: int = Field(300, ge=1, le=MAX_LENGTH, description="Tokens to generate.")
    temperature: float = Field(0.8, ge=0, le=100, description="0 is greedy.")
    top_k: int | None = Field(None, ge=1, le=1_000_000, description="Sample among the K likeliest tokens.")
    seed: int = Field(0, ge=0, le=2**62)
    snapshot: str | None = Field(None, max_length=40, description="best (default), last or a step.")


@router.get("/runs/{run_id}/samples")
def samples(run_id: IdPath, settings: SettingsDep) -> dict[str, Any]:
    info = get_run(settings, run_id)
    return {"run": info["id"], "samples": read_samples(run_dir(settings, info["id"]))}


@router.post("/runs/{run_id}/generate")
def generate(run_id: IdPath, body: GenerateRequest, settings: SettingsDep) -> dict[str, Any]:
    from deepyard.text.use import generate_text

    ref = f"{run_id}@{body.snapshot}" if body.snapshot else run_id
    return generate_text(settings, ref, body.prompt, body.length, body.temperature, body.top_k, body.seed)
