"""The streamed Generate box over HTTP: POST /api/v1/runs/ID/generate with "stream": true sends NDJSON lines as
the text is made (read here as they come), their text is the non-streaming text for the same seed, a bad prompt
is refused before the stream starts, and a client that goes away stops the generation; in Chromium the run page's
Generate box grows piece by piece (screenshot test-artifacts/web/lm-generate-stream.png)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import torch
from playwright.sync_api import Page, expect

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.train import TrainConfig, train
from tests.web.conftest import Server, shot

TEXT = "the quick brown fox jumps over the lazy dog\n" * 120


def quick_lm_run(settings: Settings, tmp_path: Path, **extra: object) -> str:
    """gpt-mini on a small corpus (by default a few steps: what it writes does not matter, only how it is sent)."""
    (tmp_path / "data" / "fox.txt").write_text(TEXT, encoding="utf-8")
    spec = make_spec(name="fox", task="language-model", val_pct=10,
                     source={"kind": "text", "train": tmp_path / "data" / "fox.txt", "context": 16})  # fmt: skip
    dataset = create_dataset(settings, spec).id
    config = TrainConfig.model_validate({"epochs": 0.3, "batch_size": 8, "workers": 0, "device": "cpu",
                                         "solver": {"lr": 0.01, "clip_grad_norm": 1.0}, **extra})  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(settings, dataset, "gpt-mini", config).run_id
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def lm_run(web_settings: Settings, tmp_path: Path) -> str:
    return quick_lm_run(web_settings, tmp_path)


def test_the_stream_sends_the_text_as_it_is_made(server: Server, lm_run: str) -> None:
    body = {"prompt": "the ", "length": 120, "temperature": 0, "seed": 3}
    with server.client() as c:
        whole = c.post(f"/api/v1/runs/{lm_run}/generate", json=body)
        assert whole.status_code == 200, whole.text
        arrivals: list[tuple[float, dict[str, object]]] = []
        with c.stream("POST", f"/api/v1/runs/{lm_run}/generate", json={**body, "stream": True}) as res:
            assert res.status_code == 200 and res.headers["content-type"].startswith("application/x-ndjson")
            for line in res.iter_lines():  # each line as it arrives
                if line:
                    arrivals.append((time.perf_counter(), json.loads(line)))
        bad = c.post(f"/api/v1/runs/{lm_run}/generate", json={"prompt": "Q!", "length": 5, "stream": True})
        assert bad.status_code in (400, 422) and "'Q'" in bad.text  # refused before the stream starts
    docs = [d for _, d in arrivals]
    assert docs[0]["prompt"] == "the " and docs[0]["temperature"] == 0 and docs[-1]["done"] is True
    pieces = [d["text"] for d in docs if "text" in d]
    assert len(pieces) > 1 and "".join(map(str, pieces)) == whole.json()["text"]
    texts = [t for t, d in arrivals if "text" in d]
    assert texts[-1] > texts[0]  # the pieces came over time, not in one write at the end


def test_a_client_that_goes_away_stops_the_generation(
    server: Server, lm_run: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="deepyard.web")
    with server.client() as c:
        body = {"prompt": "the ", "length": 2000, "temperature": 0.8, "stream": True}
        with c.stream("POST", f"/api/v1/runs/{lm_run}/generate", json=body) as res:
            lines = res.iter_lines()
            assert "prompt" in json.loads(next(lines)) and "text" in json.loads(next(lines))
        # the client has gone (the response is closed): the server must stop well before 2,000 pieces
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("client went away" in r.message for r in caplog.records):
            time.sleep(0.05)
    stopped = [r for r in caplog.records if "client went away" in r.message]
    assert stopped, [r.message for r in caplog.records]
    made = int(stopped[0].message.split(" after ")[1].split()[0])
    assert 1 <= made < 2000, stopped[0].message


GROWTH = """() => { window.lengths = []; const out = document.getElementById("lm-output");
  new MutationObserver(() => window.lengths.push(out.textContent.length))
    .observe(out, { childList: true, characterData: true, subtree: true }); }"""


def watch_generate_box(page: Page, prompt: str, length: int) -> list[int]:
    """Generate greedily from the run page's box; the output's lengths as the page showed them, one per change."""
    page.evaluate(GROWTH)
    page.fill("#lm-prompt", prompt)
    page.fill("#lm-temperature", "0")
    page.fill("#lm-length", str(length))
    page.click("#lm-go")
    expect(page.locator("#lm-output[data-done='1']")).to_contain_text(prompt, timeout=60_000)
    assert len(page.inner_text("#lm-output")) == len(prompt) + length
    grown: list[int] = page.evaluate("window.lengths")
    return grown


def test_the_generate_box_shows_the_text_as_it_grows(server: Server, page: Page, lm_run: str) -> None:
    page.goto(f"{server.url}/runs/{lm_run}")
    grown = watch_generate_box(page, "the quick ", 150)
    text = [n for n in grown if n > len("the quick ")]
    assert len(set(text)) > 10 and text == sorted(text), grown  # it grew piece by piece, never shrank
    shot(page, "lm-generate-stream")
