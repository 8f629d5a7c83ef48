"""Language-model runs over HTTP: the validation samples a run has written, and text generated from a snapshot.

`GET /api/v1/datasets/{id}/text` (the dataset page's passages and vocabulary),
`GET /api/v1/runs/{id}/samples` (the run page polls it while the run trains) and `POST /api/v1/runs/{id}/generate`
with the prompt, length, temperature, top-k and seed (the run page's Generate box; `deepyard generate` is its
command-line twin). Both call deepyard.text; a run of another task is a 400 naming it. With `"stream": true` the
text comes as it is made, as NDJSON lines: `{"model", "prompt", ...}` first, then `{"text": piece}` per piece, then
`{"done": true, "seconds", "tokens_per_s"}` (or `{"error": message}` if it failed part-way). The model is loaded
and each token made in the thread pool, never on the event loop; a client that goes away stops the generation
(the next piece is never asked for). A bad prompt or setting is refused before the stream starts (4xx).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from deepyard.errors import DeepyardError
from deepyard.tasks.languagemodel import read_samples
from deepyard.train.runs import get_run, run_dir
from deepyard.web.deps import IdPath, RequestModel, SettingsDep
from deepyard.web.streams import ClosingStream

if TYPE_CHECKING:
    from deepyard.text.use import Generation

router = APIRouter(tags=["text"])
log = logging.getLogger("deepyard.web")
MAX_LENGTH = 2000  # tokens one request may ask for (a CPU makes a few hundred a second)


class GenerateRequest(RequestModel):
    prompt: str | None = Field(None, max_length=10_000, description="Text to continue (default: validation start).")
    length: int = Field(300, ge=1, le=MAX_LENGTH, description="Tokens to generate.")
    temperature: float = Field(0.8, ge=0, le=100, description="0 is greedy.")
    top_k: int | None = Field(None, ge=1, le=1_000_000, description="Sample among the K likeliest tokens.")
    seed: int = Field(0, ge=0, le=2**62)
    snapshot: str | None = Field(None, max_length=40, description="best (default), last or a step.")
    stream: bool = Field(False, description="NDJSON lines as the text is made (see the module's description).")


@router.get("/runs/{run_id}/samples")
def samples(run_id: IdPath, settings: SettingsDep) -> dict[str, Any]:
    info = get_run(settings, run_id)
    return {"run": info["id"], "samples": read_samples(run_dir(settings, info["id"]))}


@router.get("/datasets/{dataset_id}/text")
def dataset_text(dataset_id: IdPath, settings: SettingsDep) -> dict[str, Any]:
    """A language-model dataset as its page shows it: passages from each split, the vocabulary, the report's
    text figures, the skipped files and the undecodable bytes replaced; another task's dataset is a 400."""
    from deepyard.datasets import get_dataset
    from deepyard.errors import InvalidValueError
    from deepyard.text.preview import preview_corpus

    manifest = get_dataset(settings, dataset_id)
    if manifest.task != "language-model":
        raise InvalidValueError(f"dataset {manifest.name!r} is a {manifest.task} dataset, not a language model's")
    return {"dataset": manifest.id, **preview_corpus(settings, manifest)}


@router.post("/runs/{run_id}/generate", response_model=None)
async def generate(
    run_id: IdPath, body: GenerateRequest, settings: SettingsDep, request: Request
) -> dict[str, Any] | StreamingResponse:
    from deepyard.text.use import generate_text, start_generation

    ref = f"{run_id}@{body.snapshot}" if body.snapshot else run_id
    args = (settings, ref, body.prompt, body.length, body.temperature, body.top_k, body.seed)
    if not body.stream:
        done: dict[str, Any] = await run_in_threadpool(generate_text, *args)
        return done
    found = await run_in_threadpool(start_generation, *args)  # loads the model; a bad prompt is a 4xx here
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return ClosingStream(_lines(request, found), media_type="application/x-ndjson", headers=headers)


async def _lines(request: Request, found: Generation) -> AsyncIterator[str]:
    """One JSON line per piece of text, each made in the thread pool; stops (and closes the generation) as soon
    as the client has gone."""
    yield json.dumps(found.head()) + "\n"
    started, made, ended = time.perf_counter(), 0, False
    try:
        while (piece := await run_in_threadpool(next, found.pieces, None)) is not None:
            made += 1
            yield json.dumps({"text": piece}) + "\n"
            if await request.is_disconnected():
                return
        ended = True
        yield json.dumps({"done": True, **found.tail(time.perf_counter() - started)}) + "\n"
    except DeepyardError as exc:  # the status line is sent already: the error is the stream's last line
        ended = True
        yield json.dumps({"error": str(exc)}) + "\n"
    finally:
        found.pieces.close()
        if not ended:
            log.info("generation from run %s stopped after %d of %d pieces: the client went away",
                     found.model.get("run"), made, found.length)  # fmt: skip
