"""Evaluate and export of text runs as the generic jobs, over real HTTP: `POST /runs/ID/evaluate` and `/export` queue
jobs for a language model and a text classifier as for an image run (checked at submit: a split or format the task
or its dataset lacks is refused, naming the valid ones, before anything is queued), the server's scheduler runs
them in a worker process, `GET /runs/ID/results/JOB` gives the figures; the old /text-evaluation and /text-export
are aliases onto the same jobs. In Chromium, each text run page's Evaluate and Export panels follow those jobs
(screenshots test-artifacts/web/lm-run-jobs.png, textclass-run-jobs.png)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.text.use import evaluate_language_model
from tests.web.conftest import Server, shot
from tests.web.test_jobs_infer import wait_jobs
from tests.web.test_text_stream import quick_lm_run
from tests.web.test_textclass_web import text_run

# In make test-slow: each test trains a text model and runs two worker processes that import torch (15-65 s each on
# the 2-core machine); the fast suite keeps the owner rule on these routes (tests/security/test_ownership.py) and
# a text run's jobs reporting progress and stopping on abort (tests/infer/test_jobs.py).
pytestmark = pytest.mark.slow


def _queued(c: httpx.Client) -> list[str]:
    return [j["id"] for j in c.get("/api/v1/jobs").json()]


def _refused(c: httpx.Client, url: str, params: dict[str, Any], *words: str) -> None:
    """A bad request is a 422 whose message has each of `words`, and queues nothing."""
    before = _queued(c)
    res = c.post(url, params=params)
    assert res.status_code == 422, res.text
    message = res.json()["error"]["message"]
    assert all(w in message for w in words), message
    assert _queued(c) == before


def _run_jobs(c: httpx.Client, run: str, evaluate: dict[str, Any], export: dict[str, Any]) -> tuple[Any, Any]:
    """Submit an evaluate and an export job of `run`, wait for both, return their results."""
    evaluating = c.post(f"/api/v1/runs/{run}/evaluate", params=evaluate)
    exporting = c.post(f"/api/v1/runs/{run}/export", params=export)
    assert evaluating.status_code == 202 and exporting.status_code == 202, (evaluating.text, exporting.text)
    done = wait_jobs(c, [evaluating.json()["job"]["id"], exporting.json()["job"]["id"]])
    assert [j["status"] for j in done] == ["done", "done"], done
    assert done[0]["progress"] == 1.0 and done[0]["target"] == run
    return tuple(c.get(f"/api/v1/runs/{run}/results/{j['id']}").json() for j in done)


def _downloads(c: httpx.Client, reports: list[dict[str, Any]]) -> None:
    for report in reports:
        got = c.get(report["url"])
        assert got.status_code == 200 and len(got.content) == report["size_bytes"], report["url"]
        if report["format"] == "archive":
            assert got.content[:2] == b"PK"


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker processes use one torch thread: these models are tiny, and two threads on a busy 2-core machine
    make a greedy generation twenty times slower."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_a_language_model_run_is_evaluated_and_exported_by_jobs(
    server: Server, web_settings: Settings, tmp_path: Path
) -> None:
    run = quick_lm_run(web_settings, tmp_path)
    with server.client() as c:
        _refused(c, f"/api/v1/runs/{run}/export", {"formats": ["torchscript"]}, "'torchscript'", "'archive' or 'onnx'")
        _refused(c, f"/api/v1/runs/{run}/evaluate", {"split": "test"}, "'test'", "'train' or 'val'")
        evaluation, exported = _run_jobs(c, run, {"split": "val"}, {})
        _downloads(c, exported["reports"])
    m = evaluation["metrics"]
    assert evaluation["task"] == "language-model" and evaluation["tokens"] > 0
    assert math.isclose(m["perplexity"], math.exp(m["loss"]), rel_tol=1e-9)
    assert math.isclose(m["bpc"], m["loss"] / math.log(2), rel_tol=1e-9)  # a character vocabulary
    direct = evaluate_language_model(web_settings, run, "val", out=tmp_path / "direct")  # what the CLI prints
    assert math.isclose(direct["val_loss"], m["loss"], rel_tol=1e-6)
    assert 'id="lm-evaluation"' in evaluation["html"] and f"{m['loss']:.4f}" in evaluation["html"]
    reports = exported["reports"]
    assert [r["format"] for r in reports] == ["archive", "onnx"]  # the task's formats when none are asked for
    assert all(r["ok"] and r["greedy_same"] for r in reports), reports


def test_a_text_classifier_run_is_evaluated_by_a_job_and_exported_by_the_alias(
    server: Server, web_settings: Settings, tmp_path: Path
) -> None:
    _, run = text_run(web_settings, tmp_path)
    with server.client() as c:
        _refused(c, f"/api/v1/runs/{run}/export", {"formats": ["tflite"]}, "'tflite'", "'archive' or 'onnx'")
        _refused(c, f"/api/v1/runs/{run}/evaluate", {"split": "test"}, "'test'", "'train' or 'val'")
        bad = c.post(f"/api/v1/runs/{run}/text-export", json={"formats": ["tflite"]})
        assert bad.status_code == 422 and "'tflite'" in bad.text  # the alias has the job's checks
        evaluating = c.post(f"/api/v1/runs/{run}/evaluate", params={"split": "val", "top_n": 3})
        exporting = c.post(f"/api/v1/runs/{run}/text-export", json={"formats": ["onnx"]})
        assert evaluating.status_code == 202 and exporting.status_code == 202, (evaluating.text, exporting.text)
        assert exporting.json()["job"]["kind"] == "export"
        done = wait_jobs(c, [evaluating.json()["job"]["id"], exporting.json()["job"]["id"]])
        assert [j["status"] for j in done] == ["done", "done"], done
        evaluation, exported = (c.get(f"/api/v1/runs/{run}/results/{j['id']}").json() for j in done)
        _downloads(c, exported["reports"])
        assert c.get(evaluation["base"] + "confusion.png").headers["content-type"] == "image/png"
    assert evaluation["task"] == "text-classification" and evaluation["metrics"]["top1"] > 90
    confusion = np.asarray(evaluation["confusion"])
    assert confusion.shape == (2, 2) and confusion.sum() == evaluation["count"]
    assert math.isclose(evaluation["metrics"]["top1"], 100 * np.trace(confusion) / confusion.sum())
    assert 'id="top-losses"' in evaluation["html"] and len(evaluation["top_per_class"]["pos"]) <= 3
    (report,) = exported["reports"]
    assert report["format"] == "onnx" and report["ok"] and report["top1_agreement"] == 1.0


def _panels(page: Page, server: Server, run: str, figures: str, name: str) -> None:
    page.goto(f"{server.url}/runs/{run}")
    page.click("#ti-evaluate")
    expect(page.locator("#ti-eval-job")).to_have_attribute("data-status", "done", timeout=60_000)
    expect(page.locator("#ti-evaluation")).to_contain_text(figures)
    page.click("#ti-export")
    expect(page.locator("#ti-export-job")).to_have_attribute("data-status", "done", timeout=60_000)
    expect(page.locator("#ti-exports td.ok-box")).to_have_count(2)  # archive and ONNX passed
    expect(page.locator("#ti-exports a").first).to_have_text("model.zip")
    shot(page, name)
    page.reload()  # the newest job of each kind is shown again
    expect(page.locator("#ti-exports td.ok-box")).to_have_count(2)
    expect(page.locator("#ti-eval-job")).to_have_attribute("data-status", "done")


def test_a_language_model_run_page_evaluates_and_exports_by_jobs(
    server: Server, web_settings: Settings, tmp_path: Path, page: Page
) -> None:
    run = quick_lm_run(web_settings, tmp_path)
    _panels(page, server, run, "perplexity", "lm-run-jobs")
    expect(page.locator("#lm-evaluation td").nth(1)).not_to_have_text("0")  # tokens evaluated


def test_a_text_classifier_run_page_evaluates_and_exports_by_jobs(
    server: Server, web_settings: Settings, tmp_path: Path, page: Page
) -> None:
    dataset, run = text_run(web_settings, tmp_path)
    _panels(page, server, run, "top-1", "textclass-run-jobs")
    from deepyard.datasets import get_dataset

    splits = [k for k in ("val", "train", "test") if k in get_dataset(web_settings, dataset).splits]
    assert page.locator("#ti-split option").evaluate_all("os => os.map(o => o.value)") == splits  # the dataset's
    expect(page.locator("#ti-evaluation #confusion")).to_be_visible()
    expect(page.locator("#ti-evaluation #top-losses")).to_be_visible()
