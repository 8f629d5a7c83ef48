"""The 500-hunt: every route of the server's own OpenAPI schema, sent hostile values, must answer 4xx, never 5xx.

For each operation: every path parameter and every query parameter in turn (the others valid), then every body
field in turn (the nested training and dataset settings too), then whole hostile bodies. Values: NUL bytes,
traversal, 100,000-character strings, a lone surrogate, 50,000-deep JSON and YAML, inf/nan/1e308/-1/1e18/10**30,
wrong types, unknown fields. Routes whose body is a file (classify, inspect, uploads) get empty, random, truncated,
bomb-sized and corrupt files. The server runs without a scheduler, so a job the fuzzer gets accepted only waits in
the queue. The requests are a fixed list, sent by a few clients at once (deletes last); the failures are collected,
sorted and printed together with the ends of the server's tracebacks.
"""

from __future__ import annotations

import base64
import functools
import importlib
import io
import json
import logging
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from PIL import Image

from deepyard.config import Settings
from deepyard.web import create_app
from deepyard.web.app import JobOptions
from tests.web.conftest import TINY_NET, Server

API = "/api/v1"
LONG = "x" * 100_000
LONG_URL = "x" * 30_000  # httpx refuses URLs over 64 KiB before sending them
DEEP_JSON = "[" * 50_000 + "]" * 50_000  # also a 50,000-deep YAML flow sequence
DEEP = object()  # stands for DEEP_JSON inside a body (json.dumps could not write it)
CLIENTS = 6

TEXT = ["\x00", "a\x00b", "../../etc/passwd", "/etc/passwd", LONG, "", " ", "\ud800", DEEP_JSON, "inf", "nan",
        "1e308", "-1", "1e18", "[]", "{}"]  # fmt: skip
URL_TEXT = [LONG_URL if v is LONG else "[" * 5_000 + "]" * 5_000 if v is DEEP_JSON else v for v in TEXT]
VALUES: list[Any] = [*TEXT, float("inf"), float("-inf"), float("nan"), 1e308, -1e308, -1, 0, 1e18, 10**30, -(10**30),
                     1.5, True, None, [], {}, [1, "a"], {"x": {"y": 1}}, DEEP]  # fmt: skip
SMALL: list[Any] = ["\x00", LONG, "x", float("inf"), float("nan"), 1e308, -1, 0, 1e18, 10**30, None, [], {}, DEEP]
KNOWN: set[str] = set()  # 5xx waiting for a fix elsewhere: the test fails once they are fixed, to be taken out
FILE_ROUTES = ("/classify", "/inspect", "/classify-many", "/datasets/uploads")
NESTED = {  # body fields that hold settings: each of their keys is fuzzed too
    "config": "deepyard.train.config:TrainConfig",
    "spec": "deepyard.datasets.spec:DatasetSpec",
    "schedule": "deepyard.train.config:ScheduleConfig",
}
SECTIONS = ("solver", "schedule", "augment", "finetune")


def _png(width: int = 12, height: int = 12) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with one tiny data chunk: bytes, not megapixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def corrupt_zip() -> bytes:
    """A well-formed zip directory over damaged deflate data (the CRC and sizes are left as they were)."""
    good = zip_of({"a/1.png": _png() * 20, "b/1.png": _png() * 20})
    start = good.index(b"a/1.png") + len(b"a/1.png") + 10
    return good[:start] + bytes(255 - b for b in good[start : start + 40]) + good[start + 40 :]


FILES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("nul bytes", b"\x00" * 1000),
    ("random", np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
    ("truncated png", _png(64, 64)[:60]),
    ("100-megapixel png header", bomb_png(10_000, 10_000)),
    ("4-gigapixel png header", bomb_png(65_000, 65_000)),
    ("zip of junk", zip_of({"a/x.png": b"junk", "b/y.png": b"\x00"})),
    ("corrupt zip", corrupt_zip()),
    ("truncated zip", zip_of({"a/1.png": _png(), "b/1.png": _png()})[:-30]),
]


@dataclass(frozen=True)
class Probe:
    method: str
    url: str
    what: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture(name="quiet_server")
def fixture_quiet_server(
    make_server: Callable[..., Server], web_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Server:
    """The real server, with no scheduler: a job the fuzzer gets accepted waits in the queue."""
    quiet = functools.partial(create_app, job_options=JobOptions(run=False))
    monkeypatch.setattr("tests.web.conftest.create_app", quiet)
    return make_server(web_settings)


def encode(body: Any) -> bytes:
    """JSON text (Infinity and NaN as Python writes them), DEEP written out as 50,000-deep nesting, a lone
    surrogate as the \\ud800 escape JSON allows."""

    def walk(v: Any) -> Any:
        if v is DEEP:
            return "__DEEP__"
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return json.dumps(walk(body)).replace('"__DEEP__"', DEEP_JSON).encode()


def _show(v: Any) -> str:
    return "DEEP" if v is DEEP else repr(v)[:60]


def _quoted(text: str) -> str:
    """Percent-encoded UTF-8; a lone surrogate becomes the invalid UTF-8 it would be written as."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _fill(path: str, good: dict[str, str], hostile: tuple[str, str] | None = None) -> str:
    for name, value in good.items():
        raw = hostile[1] if hostile and hostile[0] == name else value
        path = path.replace("{" + name + "}", _quoted(raw))
    return path


def _with(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the dotted key set to `value`."""
    out = json.loads(json.dumps(body))
    node = out
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return out


def _nested_keys(ref: str) -> list[str]:
    module, _, name = ref.partition(":")
    model = getattr(importlib.import_module(module), name)
    keys: list[str] = []
    for key, info in model.model_fields.items():
        sub = getattr(info.annotation, "model_fields", None)
        keys.extend([f"{key}.{k}" for k in sub] if key in SECTIONS and sub else [key])
    return keys


def _bases(data: Path, dataset: str, run: str) -> dict[str, dict[str, Any]]:
    """A valid body per request model: each field is made hostile in turn from here."""
    return {
        "DatasetRequest": {
            "spec": {
                "name": "fuzz",
                "source": {"kind": "folder", "train": str(data / "bars")},
                "width": 12,
                "height": 12,
                "encoding": "raw",
            }
        },
        "TrainRequest": {
            "dataset": dataset,
            "spec": json.dumps(TINY_NET),
            "name": "fuzz",
            "config": {
                "epochs": 1,
                "device": "cpu",
                "solver": {"lr": 0.01},
                "schedule": {},
                "augment": {},
                "finetune": {},
            },
        },
        "FindRequest": {
            "what": "lr",
            "steps": 10,
            "dataset": dataset,
            "spec": json.dumps(TINY_NET),
            "config": {"device": "cpu", "solver": {"lr": 0.01}},
        },
        "MnistRequest": {"folder": str(data), "spec": {"max_per_class": 5}},
        "SweepRequest": {
            "dataset": dataset,
            "networks": [TINY_NET],
            "trials": 2,
            "sampler": "random",
            "space": {"solver.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}},
            "config": {"epochs": 1, "device": "cpu"},
            "objective": "val_loss",
        },
        "GenerateRequest": {"prompt": "a", "length": 5, "temperature": 0.8, "top_k": 5, "seed": 1},
        "ClassifyTextRequest": {"text": "a short text", "k": 2},
        "TextEvaluationRequest": {"split": "val", "top_n": 3},
        "TextExportRequest": {"formats": ["archive"]},
        "CheckRequest": {"spec": json.dumps(TINY_NET), "input": [3, 12, 12]},
        "ResizePreview": {"width": 16, "height": 16},
        "RunEdit": {"name": "fuzzed", "notes": "n"},
        "SchedulePreview": {"schedule": {"policy": "step"}, "lr": [0.01], "epochs": 10, "points": 10},
        "GroupRequest": {"kind": "run", "ids": [run], "group": "fuzz"},
        "PredictionsRequest": {
            "runs": [run],
            "dataset": dataset,
            "count": 2,
            "images": [{"name": "a.png", "data": base64.b64encode(_png()).decode()}],
        },
    }


def _operation_probes(method: str, path: str, op: dict[str, Any], ctx: dict[str, Any]) -> Iterator[Probe]:
    good: dict[str, str] = ctx["path_values"]
    params = op.get("parameters", [])
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    model = schema["$ref"].rsplit("/", 1)[-1] if schema else None
    base = ctx["bases"].get(model) if model else None
    json_headers = {"content-type": "application/json"}
    if path.endswith(FILE_ROUTES):  # the other parameters come with a valid file
        zipped = "many" in path or "uploads" in path
        valid = Probe(method, "", "", zip_of({"class0/a.png": _png(), "class1/b.png": _png()}) if zipped else _png())
    else:
        valid = Probe(method, "", "", encode(base) if base else None, json_headers if base else {})
    for param in (q for q in params if q["in"] == "path"):
        for v in URL_TEXT:
            url = _fill(path, good, (param["name"], v))
            yield Probe(method, url, f"path {param['name']}={_show(v)}", valid.content, valid.headers)
    url = _fill(path, good)
    for param in (q for q in params if q["in"] == "query"):
        for v in URL_TEXT:
            query = f"{url}?{param['name']}={_quoted(v)}"
            yield Probe(method, query, f"query {param['name']}={_show(v)}", valid.content, valid.headers)
    if path.endswith(FILE_ROUTES):
        yield from (Probe(method, url, f"file: {what}", data) for what, data in FILES)
    if base is not None and schema is not None:
        model_schema = ctx["doc"]["components"]["schemas"][model]
        yield from _body_probes(method, url, sorted(set(model_schema.get("properties", {})) | set(base)), base)


def _body_probes(method: str, url: str, keys: list[str], base: dict[str, Any]) -> Iterator[Probe]:
    headers = {"content-type": "application/json"}
    for key in keys:
        for v in VALUES:
            yield Probe(method, url, f"body {key}={_show(v)}", encode(_with(base, key, v)), headers)
        if isinstance(base.get(key), dict) and key in NESTED:
            for sub in _nested_keys(NESTED[key]):
                for v in SMALL:
                    body = encode(_with(base, f"{key}.{sub}", v))
                    yield Probe(method, url, f"body {key}.{sub}={_show(v)}", body, headers)
    wholes: list[tuple[str, bytes]] = [
        ("unknown field", encode({**base, "unknown_field": 1})),
        ("deep list", DEEP_JSON.encode()),
        ("deep object", ('{"a":' * 50_000 + "1" + "}" * 50_000).encode()),
        ("not json", b"{not json"),
        ("null", b"null"),
        ("list", b"[1, 2]"),
        ("string", b'"x"'),
        ("empty", b""),
        ("nul", b"\x00"),
        ("bad utf-8", b'{"name": "\xff\xfe"}'),
    ]
    yield from (Probe(method, url, f"whole body: {what}", data, headers) for what, data in wholes)


def all_probes(doc: dict[str, Any], ctx: dict[str, Any]) -> tuple[list[Probe], list[Probe]]:
    """(everything but deletes, deletes): the deletes go last, the rest needs the run and the dataset."""
    ops = sorted((method.upper(), path, op) for path, item in doc["paths"].items() for method, op in item.items())
    probes = [p for method, path, op in ops for p in _operation_probes(method, path, op, ctx)]
    return [p for p in probes if p.method != "DELETE"], [p for p in probes if p.method == "DELETE"]


class Prober:
    """Sends probes from a few clients at once; any 5xx, or no answer at all, is a failure."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.local = threading.local()
        self.failures: list[tuple[str, str]] = []  # (what, the line that reports it)
        self.clients: list[httpx.Client] = []
        self.lock = threading.Lock()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = self.server.client()
            with self.lock:
                self.clients.append(client)
        return client

    def send(self, probe: Probe) -> None:
        client = self._client()
        try:
            with client.stream(probe.method, probe.url, content=probe.content, headers=probe.headers) as res:
                status = res.status_code
                live = probe.url.startswith(f"{API}/events") and status < 300  # an endless stream: status only
                text = "" if live else res.read()[:200].decode("utf-8", "replace")
        except httpx.HTTPError as exc:  # also after a 500: uvicorn closes the connection the crash happened on
            self._fail(probe, f"no answer ({type(exc).__name__}: {exc})")
            self.local.client = None
            return
        if status >= 500:
            self._fail(probe, f"{status} {text}")

    def _fail(self, probe: Probe, why: str) -> None:
        with self.lock:
            self.failures.append((probe.what, f"{probe.method} {probe.url[:120]} [{probe.what}]: {why}"))

    def run(self, probes: list[Probe]) -> None:
        try:
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(self.send, probes))
        finally:
            for client in self.clients:
                client.close()
            self.clients.clear()


def test_no_route_answers_5xx_to_hostile_values(
    quiet_server: Server, dataset_id: str, run_id: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    bases = _bases(tmp_path / "data", dataset_id, run_id)
    with quiet_server.client() as c:
        doc = c.get(f"{API}/openapi.json").json()
        job = c.post(f"{API}/runs", json=bases["TrainRequest"])
        assert job.status_code == 202, job.text
        sweep = c.post(f"{API}/sweeps", json=bases["SweepRequest"])
        assert sweep.status_code == 201, sweep.text
    path_values = {"run_id": run_id, "ref": dataset_id, "job_id": job.json()["jobs"][0]["id"], "split": "val",
                   "index": "0", "name": "lenet", "path": "evaluations/x.json",
                   "sweep_id": sweep.json()["id"], "dataset_id": dataset_id}  # fmt: skip
    models = {op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
              for item in doc["paths"].values() for op in item.values()
              if "application/json" in op.get("requestBody", {}).get("content", {})}  # fmt: skip
    assert models <= set(bases), f"give these request models a valid body in _bases: {sorted(models - set(bases))}"
    assert set(re.findall(r"{(\w+)}", " ".join(doc["paths"]))) <= set(path_values)  # every path parameter filled
    first, deletes = all_probes(doc, {"doc": doc, "bases": bases, "path_values": path_values})
    assert len(first) + len(deletes) > 2000 and {p.url.split("?")[0] for p in first} >= {f"{API}/runs"}
    prober = Prober(quiet_server)
    prober.run(first)
    prober.run(deletes)
    known = sorted(line for what, line in prober.failures if what in KNOWN)
    assert {what for what, _ in prober.failures} >= set(KNOWN), f"fixed now? take them out of KNOWN: {known}"
    failures = sorted(line for what, line in prober.failures if what not in KNOWN)
    if failures:  # pytest.fail, not assert: the report would be shown twice, 100 kB values included
        traces = [(r.getMessage() + "\n" + (logging.Formatter().formatException(r.exc_info) if r.exc_info else ""))
                  [-1500:] for r in caplog.records]  # fmt: skip
        report = "\n".join(failures) + "\n\nserver tracebacks (ends):\n" + "\n".join(traces)
        pytest.fail(f"{len(failures)} requests failed:\n{report}", pytrace=False)
