"""Web server benchmarks, against a real `deepyard serve` process on this machine:

1. Classify: one image per request (POST /api/v1/runs/ID/classify) one at a time, then 50 concurrent clients;
   throughput, p50/p95 latency and failures (the target: zero).
2. Live updates: the delay between a metric point being appended to a run's metrics.jsonl and it reaching a real
   browser (headless Chromium through Playwright, an EventSource on /api/v1/events), over several points.
3. Listings under load: a home of RUNS runs (copies of the trained one's folder, each with a metrics.jsonl of
   RUN_POINTS points, written as the trainer writes them), POLLERS clients each fetching /api/v1/runs and
   /api/v1/datasets then pausing POLL_S, and STREAMS home-page event streams opened during it: p50/p95 of the
   listings and the time to each stream's first event. Measured twice side by side, the server's file caches off
   (every request re-reads every run folder, as before they existed) and on.

The model is a LeNet trained for one epoch on a small synthetic dataset built here. Run with `make bench`;
`python bench/web.py load` runs only the third part.
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
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from deepyard.config import Settings, load_settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.files import write_json_atomic
from deepyard.train import make_config, train

CONCURRENT, PER_CLIENT, SEQUENTIAL, POINTS = 50, 10, 100, 12
RUNS, RUN_POINTS, POLLERS, STREAMS, POLL_S, LOAD_S = 200, 1000, 30, 20, 1.0, 20.0
NO_CACHE = "from deepyard.stored import set_caching; set_caching(False); from deepyard.cli import main; main()"


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


def start_server(home: Path, port: int, cache: bool = True) -> subprocess.Popen[bytes]:
    """`deepyard serve` in its own process; `cache=False` turns its file caches off first."""
    command = [str(Path(sys.executable).parent / "deepyard")] if cache else [sys.executable, "-c", NO_CACHE]
    proc = subprocess.Popen([*command, "--home", str(home), "serve", "--port", str(port), "--no-jobs"],
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


def fill_home(settings: Settings, run_id: str, count: int, points: int) -> None:
    """`count` finished runs: the trained run's run.json and network.yaml under new ids, each with a metrics.jsonl of
    `points` points (a validation point every 20th), as the trainer writes them."""
    source = settings.home / "runs" / run_id
    info = json.loads((source / "run.json").read_text())
    lines = []
    for step in range(1, points + 1):
        point = {"step": step, "epoch": round(step / 50, 4), "train_loss": 2.3 / step**0.3, "lr": 0.01,
                 "images_per_s": 5000.0, "data_wait": 0.01, "wall": step * 0.02}  # fmt: skip
        lines.append(json.dumps(point))
        if step % 20 == 0:
            val = {"val_loss": 2.0 / step**0.3, "val_top1": min(99.0, step / 10), "val_top5": 99.9}
            lines.append(json.dumps({"step": step, "epoch": point["epoch"], **val, "wall": point["wall"]}))
    metrics = "".join(line + "\n" for line in lines)
    for i in range(count):
        copy_id = f"20200101-000000-{i:04x}"  # sorted before the trained run; unique, unlike new_id() in one second
        folder = settings.home / "runs" / copy_id
        folder.mkdir()
        shutil.copy(source / "network.yaml", folder / "network.yaml")
        (folder / "metrics.jsonl").write_text(metrics)
        write_json_atomic(folder / "run.json", {**info, "id": copy_id, "name": f"copy {i}", "status": "done"})


@dataclass
class Load:
    runs: list[float] = field(default_factory=list)  # ms per GET /api/v1/runs
    datasets: list[float] = field(default_factory=list)  # ms per GET /api/v1/datasets
    first_event: list[float] = field(default_factory=list)  # s from opening a stream to its first event
    failures: int = 0


async def listing_load(base: str) -> Load:
    """POLLERS clients polling both listings for LOAD_S seconds; STREAMS event streams opened after 2 s."""
    load, stop = Load(), asyncio.Event()

    async def poller(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            for path, into in (("/api/v1/runs", load.runs), ("/api/v1/datasets", load.datasets)):
                start = time.perf_counter()
                try:
                    ok = (await http.get(path)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                into.append((time.perf_counter() - start) * 1000)
                load.failures += not ok
            await asyncio.sleep(POLL_S)

    async def stream(http: httpx.AsyncClient) -> None:
        start, seen = time.perf_counter(), False
        try:
            async with http.stream("GET", "/api/v1/events") as response:
                async for line in response.aiter_lines():
                    if line.startswith("event:") and not seen:
                        seen = True
                        load.first_event.append(time.perf_counter() - start)
                    if stop.is_set():
                        break
        except httpx.HTTPError:
            load.failures += 1

    limits = httpx.Limits(max_connections=POLLERS + STREAMS)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        pollers = [asyncio.create_task(poller(http)) for _ in range(POLLERS)]
        await asyncio.sleep(2)
        streams = [asyncio.create_task(stream(http)) for _ in range(STREAMS)]
        await asyncio.sleep(LOAD_S - 2)
        stop.set()
        await asyncio.gather(*pollers, *streams)
    return load


def measure_load(home: Path) -> dict[str, Load]:
    """The same load on a server with its caches off, then on."""
    results = {}
    for label, cache in (("caches off (every request re-reads every run folder)", False), ("caches on", True)):
        port = free_port()
        server = start_server(home, port, cache=cache)
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/runs", timeout=120)  # warm-up
            results[label] = asyncio.run(listing_load(f"http://127.0.0.1:{port}"))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


def print_load(results: dict[str, Load]) -> None:
    print(f"\n{RUNS} runs of {RUN_POINTS} metric points; {POLLERS} clients each fetching /api/v1/runs and "
          f"/api/v1/datasets then pausing {POLL_S:g} s, for {LOAD_S:g} s; {STREAMS} home-page event streams opened "
          "after 2 s\n")  # fmt: skip
    print("| server | listings | failures | runs p50 ms | runs p95 ms | datasets p50 ms | datasets p95 ms | "
          "first event p50 s | first event max s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in results.items():
        firsts = r.first_event or [float("nan")]
        cells = [label, str(len(r.runs) + len(r.datasets)), str(r.failures)]
        cells += [f"{percentile(v, q):.0f}" for v in (r.runs, r.datasets) for q in (0.5, 0.95)]
        cells += [f"{statistics.median(firsts):.2f}", f"{max(firsts):.2f} ({len(r.first_event)}/{STREAMS})"]
        print("| " + " | ".join(cells) + " |")


def build_home(root: Path) -> tuple[Settings, str]:
    """A home with the bars dataset and a LeNet trained one epoch on it; returns the settings and the run's id."""
    settings = load_settings(root / "home", data_roots=[])
    write_images(root / "images")
    spec = make_spec(name="bars", source={"kind": "folder", "train": root / "images"}, width=28, height=28,
                     channels=1, val_pct=20)  # fmt: skip
    dataset = create_dataset(settings, spec).id
    run = train(settings, dataset, "lenet", make_config(epochs=1, batch_size=32, **{"solver.lr": 0.05}))
    return settings, run.run_id


def main() -> None:
    only_load = sys.argv[1:] == ["load"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings, run_id = build_home(root)
        if not only_load:
            serve_figures(settings, run_id, root)
        fill_home(settings, run_id, RUNS, RUN_POINTS)
        results = measure_load(settings.home)
    print_load(results)


def serve_figures(settings: Settings, run_id: str, root: Path) -> None:
    """Parts 1 and 2: classify throughput and latency, and the metric-to-browser delay; prints their tables."""
    buf = io.BytesIO()
    Image.open(root / "images" / "3" / "000.png").save(buf, format="PNG")
    image = buf.getvalue()
    port = free_port()
    server = start_server(settings.home, port)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/api/v1/runs/{run_id}/classify"
    try:
        asyncio.run(classify_all(url, image, 1, 5))  # warm-up: the model is loaded and cached
        one = asyncio.run(classify_all(url, image, 1, SEQUENTIAL))
        many = asyncio.run(classify_all(url, image, CONCURRENT, PER_CLIENT))
        delays = live_delays(base, run_id, settings.home / "runs" / run_id / "metrics.jsonl")
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
