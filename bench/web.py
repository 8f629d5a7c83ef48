"""Web server benchmarks, against a real `deepyard serve` process on this machine:

1. Classify: one image per request (POST /api/v1/runs/ID/classify) one at a time, then 50 concurrent clients;
   throughput, p50/p95 latency and failures (the target: zero).
2. Live updates: the delay between a metric point being appended to a run's metrics.jsonl and it reaching a real
   browser (headless Chromium through Playwright, an EventSource on /api/v1/events), over several points.

The model is a LeNet trained for one epoch on a small synthetic dataset built here. Run with `make bench`.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from deepyard.config import load_settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.train import make_config, train

CONCURRENT, PER_CLIENT, SEQUENTIAL, POINTS = 50, 10, 100, 12


def write_images(root: Path, per_class: int = 100, side: int = 28) -> None:
    """Ten classes of grey images: a bright bar in one of ten positions, on noise."""
    rng = np.random.default_rng(0)
    for label in range(10):
        for i in range(per_class):
            img = rng.integers(0, 80, (side, side), dtype=np.uint8)
            img[:, label * 2 + 4 : label * 2 + 8] = 230
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / str(label) / f"{i:03d}.png")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    deepyard = str(Path(sys.executable).parent / "deepyard")
    proc = subprocess.Popen([deepyard, "--home", str(home), "serve", "--port", str(port), "--no-jobs"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


async def classify_all(url: str, image: bytes, clients: int, per_client: int) -> tuple[list[float], int, float]:
    """`clients` concurrent clients each sending `per_client` requests: latencies (ms), failures, seconds."""
    latencies: list[float] = []
    failures = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal failures
        for _ in range(per_client):
            start = time.perf_counter()
            try:
                response = await http.post(url, content=image, headers={"Content-Type": "image/png"})
                ok = response.status_code == 200 and response.json()["top"]
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - start) * 1000)
            failures += not ok

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        return latencies, failures, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def live_delays(base: str, run_id: str, metrics: Path) -> list[float]:
    """Seconds from appending a point to metrics.jsonl to its arrival in a real browser's EventSource."""
    from playwright.sync_api import sync_playwright

    last = json.loads(metrics.read_text().splitlines()[-1])
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page()
        page.goto(f"{base}/api/v1/health")
        offset = metrics.stat().st_size
        page.evaluate(f"""() => {{ window.arrivals = {{}};
            const es = new EventSource('/api/v1/events?run={run_id}&offset={offset}');
            es.addEventListener('metrics', e => {{ for (const p of JSON.parse(e.data).points)
                if (p.bench_id !== undefined) window.arrivals[p.bench_id] = Date.now() / 1000; }}); }}""")
        time.sleep(2)  # the stream is open
        sent = {}
        for i in range(POINTS):
            point = {**last, "step": last["step"] + i + 1, "bench_id": i}
            sent[i] = time.time()
            with metrics.open("a") as fp:
                fp.write(json.dumps(point) + "\n")
            time.sleep(0.73)  # not a multiple of the server's 1 s push interval
        time.sleep(2.5)
        arrivals = page.evaluate("() => window.arrivals")
        browser.close()
    return [float(arrivals[str(i)]) - sent[i] for i in range(POINTS) if str(i) in arrivals]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = load_settings(root / "home", data_roots=[])
        write_images(root / "images")
        spec = make_spec(name="bars", source={"kind": "folder", "train": root / "images"}, width=28, height=28,
                         channels=1, val_pct=20)  # fmt: skip
        dataset = create_dataset(settings, spec).id
        run = train(settings, dataset, "lenet", make_config(epochs=1, batch_size=32, **{"solver.lr": 0.05}))
        buf = io.BytesIO()
        Image.open(root / "images" / "3" / "000.png").save(buf, format="PNG")
        image = buf.getvalue()
        port = free_port()
        server = start_server(settings.home, port)
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/api/v1/runs/{run.run_id}/classify"
        try:
            asyncio.run(classify_all(url, image, 1, 5))  # warm-up: the model is loaded and cached
            one = asyncio.run(classify_all(url, image, 1, SEQUENTIAL))
            many = asyncio.run(classify_all(url, image, CONCURRENT, PER_CLIENT))
            delays = live_delays(base, run.run_id, settings.home / "runs" / run.run_id / "metrics.jsonl")
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"Web server on {os.cpu_count()} CPUs: `deepyard serve` in its own process, LeNet 1x28x28\n")
    print("| classify requests | requests | failures | requests/s | p50 ms | p95 ms | ratio (throughput) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base_rate = SEQUENTIAL / one[2]
    for label, (lat, failures, seconds) in (("one at a time", one), (f"{CONCURRENT} concurrent clients", many)):
        rate = len(lat) / seconds
        print(f"| {label} | {len(lat)} | {failures} | {rate:,.0f} | {percentile(lat, 0.5):.1f} | "
              f"{percentile(lat, 0.95):.1f} | {rate / base_rate:.2f}x |")  # fmt: skip
    print("\n| metric written → shown in the browser (Chromium, SSE) | points | p50 s | max s |")
    print("|---|---:|---:|---:|")
    mean = statistics.median(delays) if delays else float("nan")
    print(f"| metrics.jsonl append → EventSource event | {len(delays)}/{POINTS} | {mean:.2f} | "
          f"{max(delays, default=float('nan')):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
