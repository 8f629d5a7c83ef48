"""Limits at submit and 4xx instead of 500s, over real HTTP against a real server (no scheduler: accepted jobs wait
in the queue) and through the console script: numbers finite and in range, names bounded, sweeps capped, pixels
counted before decoding, layer sizes and counts checked, deep nesting, NUL bytes, unknown fields, damaged
checkpoints and zips, and old checkpoints pruned while resume keeps working."""

from __future__ import annotations

import json
import math
import struct
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from deepyard.config import Settings
from deepyard.networks import spec_from_data
from deepyard.train import Callback, make_config, train
from deepyard.train.runs import run_dir
from tests.cli.test_datasets_cli import run as cli
from tests.security.test_fuzz import DEEP_JSON, _png, bomb_png, fixture_quiet_server, zip_of  # noqa: F401
from tests.web.conftest import TINY_NET, Server

API = "/api/v1"
SPEC = json.dumps(TINY_NET)


def _train_body(dataset: str, **more: Any) -> dict[str, Any]:
    return {"dataset": dataset, "spec": SPEC, "config": {"epochs": 1, "device": "cpu"}, **more}


def _error(res: httpx.Response, status: int) -> str:
    assert res.status_code == status, (res.status_code, res.text[:500])
    message: str = res.json()["error"]["message"]
    return message


def _chain(layers: int) -> str:
    """A spec of one convolution, then ReLUs, then a linear layer: `layers` layers in all."""
    body = [{"name": f"r{i}", "type": "relu"} for i in range(layers - 2)]
    conv = {"name": "conv", "type": "conv", "out_channels": 4, "kernel": 3, "padding": 1}
    return json.dumps({"name": "chain", "layers": [conv, *body, {"name": "fc", "type": "linear", "out_features": 3}]})


# ---------------------------------------------------------------- item 8: limits at submit


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("epochs", math.inf, "finite"),
        ("epochs", 1e12, "less than or equal to 100000"),
        ("epochs", 1e308, "less than or equal to 100000"),
        ("solver.lr", 1e308, "solver.lr: Input should be less than or equal to 100"),
        ("solver.lr", math.nan, "finite"),
        ("batch_size", 10**9, "less than or equal to 65536"),
        ("seed", -1, "greater than or equal to 0"),
        ("schedule.gamma", 1e308, "less than or equal to 1000"),
        ("keep_last", -1, "greater than or equal to 0"),
    ],
)
def test_training_numbers_must_be_finite_and_in_range(
    quiet_server: Server, dataset_id: str, setting: str, value: float, named: str
) -> None:
    section, _, key = setting.rpartition(".")
    config: dict[str, Any] = {"epochs": 1, "device": "cpu"}
    (config.setdefault(section, {}) if section else config)[key] = value
    with quiet_server.client() as c:
        refused = c.post(f"{API}/runs", content=json.dumps(_train_body(dataset_id, config=config)),
                         headers={"content-type": "application/json"})  # fmt: skip
        assert named in _error(refused, 422)
        assert c.get(f"{API}/jobs").json() == []  # nothing queued


def test_names_and_notes_are_bounded(quiet_server: Server, dataset_id: str, run_id: str, tmp_path: Path) -> None:
    huge = "x" * 10_000_000  # the 10 MB run name that made the home page 40 MB
    with quiet_server.client() as c:
        assert "200" in _error(c.post(f"{API}/runs", json=_train_body(dataset_id, name=huge)), 422)
        assert "200" in _error(c.patch(f"{API}/runs/{run_id}", json={"name": "y" * 201}), 422)
        assert "20000" in _error(c.patch(f"{API}/runs/{run_id}", json={"notes": "n" * 20_001}), 422)
        spec = {"name": "z" * 201, "source": {"kind": "folder", "train": str(tmp_path / "data" / "bars")}}
        assert "200" in _error(c.post(f"{API}/datasets", json={"spec": spec}), 422)
        assert c.get(f"{API}/jobs").json() == []
        assert c.patch(f"{API}/runs/{run_id}", json={"name": "y" * 200}).json()["name"] == "y" * 200


def test_a_sweep_is_capped(quiet_server: Server, dataset_id: str) -> None:
    lrs = [0.001 * (i + 1) for i in range(20)]
    with quiet_server.client() as c:
        grid = c.post(f"{API}/runs", json=_train_body(dataset_id, name="s", lr=lrs, batch_size=list(range(1, 21))))
        message = _error(grid, 422)
        assert "400 runs" in message and "at most 64" in message
        assert c.get(f"{API}/jobs").json() == []
        ok = c.post(f"{API}/runs", json=_train_body(dataset_id, name="s", lr=lrs[:8], batch_size=list(range(1, 9))))
        assert ok.status_code == 202 and len(ok.json()["jobs"]) == 64


def test_images_over_the_pixel_limit_are_refused_before_decoding(quiet_server: Server, run_id: str) -> None:
    bomb = bomb_png(10_000, 10_000)  # 100 megapixels in its header; a few hundred bytes
    with quiet_server.client() as c:
        for route in ("classify", "inspect"):
            message = _error(c.post(f"{API}/runs/{run_id}/{route}", content=bomb), 413)
            assert "10,000x10,000 = 100,000,000 pixels" in message and "40,000,000" in message
        many = c.post(f"{API}/runs/{run_id}/classify-many", content=zip_of({"a/big.png": bomb, "a/ok.png": _png()}))
        assert "'a/big.png'" in _error(many, 413)
        assert c.post(f"{API}/runs/{run_id}/classify", content=_png()).status_code == 200


def test_layers_too_large_for_the_memory_are_refused_at_check(quiet_server: Server, dataset_id: str) -> None:
    """16,777,216 channels (200 MB of weights), then as many outputs from a linear layer: a petabyte of weights,
    more than any machine has."""
    wide = {"name": "wide", "layers": [{"name": "pool", "type": "avg_pool", "global": True},
                                       {"name": "widen", "type": "conv", "out_channels": 1 << 24, "kernel": 1},
                                       {"name": "huge", "type": "linear", "out_features": 1 << 24}]}  # fmt: skip
    with quiet_server.client() as c:
        for route, body in (("networks/check", {"spec": json.dumps(wide), "input": [3, 12, 12]}),
                            ("runs", _train_body(dataset_id, spec=json.dumps(wide)))):  # fmt: skip
            message = _error(c.post(f"{API}/{route}", json=body), 422)
            assert f"layer 'huge' (linear) has {(1 << 48) + (1 << 24):,} weights" in message, message
            assert "more than the memory available" in message


def test_a_spec_has_at_most_2000_layers_and_checks_fast_below(quiet_server: Server, dataset_id: str) -> None:
    with quiet_server.client() as c:
        started = time.perf_counter()
        for route in ("networks/check", "networks/view"):
            refused = c.post(f"{API}/{route}", json={"spec": _chain(10_000), "input": [3, 12, 12]})
            assert "10,000 layers; a spec has at most 2,000 (MAX_LAYERS)" in _error(refused, 422)
        assert "MAX_LAYERS" in _error(c.post(f"{API}/runs", json=_train_body(dataset_id, spec=_chain(10_000))), 422)
        assert time.perf_counter() - started < 10  # 45 s and more before
        started = time.perf_counter()
        checked = c.post(f"{API}/networks/check", json={"spec": _chain(2000), "input": [3, 12, 12]})
        assert checked.status_code == 200 and len(checked.json()["layers"]) == 2000
        assert c.post(f"{API}/runs", json=_train_body(dataset_id, spec=_chain(2000))).status_code == 202
        assert time.perf_counter() - started < 30  # about 2 s on one core


# ---------------------------------------------------------------- item 10: 4xx, never 500


def test_hostile_numbers_shapes_and_nesting_are_422(quiet_server: Server, dataset_id: str) -> None:
    deep_spec = DEEP_JSON  # 50,000 levels of YAML: a RecursionError before
    huge_linear = "name: x\nlayers:\n  - {name: fc, type: linear, out_features: 1.0e+18}\n"
    with quiet_server.client() as c:
        preview = c.post(f"{API}/schedule/preview", json={"schedule": {"policy": "sigmoid", "gamma": 1e308}})
        assert "schedule.gamma" in _error(preview, 422)
        steep = c.post(f"{API}/schedule/preview", json={"schedule": {"policy": "sigmoid", "gamma": 1000}})
        assert steep.status_code == 200 and all(math.isfinite(p[1]) for p in steep.json()["series"][0]["points"])
        shape = c.post(f"{API}/networks/check", json={"network": "lenet", "input": [-1, 28, 28]})
        assert "greater than or equal to 1" in _error(shape, 422)
        assert "16777216" in _error(
            c.post(f"{API}/networks/check", json={"spec": huge_linear, "input": [1, 8, 8]}), 422
        )
        for route, body in (("networks/check", {"spec": deep_spec, "input": [1, 8, 8]}),
                            ("runs", _train_body(dataset_id, spec=deep_spec))):  # fmt: skip
            assert "nested more than 32 levels" in _error(c.post(f"{API}/{route}", json=body), 422)
        deep_config = '{"dataset": "x", "network": "lenet", "config": ' + '{"a": ' * 900 + "1" + "}" * 901
        body = c.post(f"{API}/runs", content=deep_config, headers={"content-type": "application/json"})
        assert "nested more than 32 levels" in _error(body, 422)
        whole = c.post(f"{API}/runs", content=DEEP_JSON, headers={"content-type": "application/json"})
        assert 400 <= whole.status_code < 500


def test_nul_bytes_in_paths_and_file_routes_are_4xx(quiet_server: Server, run_id: str, dataset_id: str) -> None:
    with quiet_server.client() as c:
        assert c.get(f"{API}/runs/{run_id}/files/evaluations%2Fa%00b.json").status_code == 404
        assert c.get(f"{API}/datasets/a%00b").status_code == 422
        assert c.get(f"{API}/runs/a%00b").status_code == 422
        assert c.post(f"{API}/runs", json={"dataset": "a\x00b", "network": "lenet"}).status_code == 422
        assert c.patch(f"{API}/runs/{run_id}", json={"notes": "a\x00b"}).status_code == 422
        surrogate = c.patch(f"{API}/runs/{run_id}", content=json.dumps({"name": "\ud800"}),  # the \ud800 escape
                            headers={"content-type": "application/json"})  # fmt: skip
        assert "not valid Unicode" in _error(surrogate, 422)


def test_unknown_top_level_fields_are_refused(quiet_server: Server, dataset_id: str, run_id: str) -> None:
    with quiet_server.client() as c:
        misspelt = c.post(f"{API}/runs", json={**_train_body(dataset_id), "epochs": 5})
        assert "epochs: Extra inputs are not permitted" in _error(misspelt, 422)
        assert "nmae" in _error(c.patch(f"{API}/runs/{run_id}", json={"nmae": "x"}), 422)
        assert "wokers" in _error(c.post(f"{API}/datasets", json={"spec": {}, "wokers": 2}), 422)
        assert "colour" in _error(c.post(f"{API}/networks/check", json={"network": "lenet", "colour": 1}), 422)
        assert c.get(f"{API}/jobs").json() == []


def test_a_truncated_checkpoint_is_a_422_naming_it(quiet_server: Server, run_id: str, dataset_id: str) -> None:
    """Classify and inspect over HTTP; as a training source (`deepyard train --from run:ID`), one line, exit 2."""
    folder = run_dir(quiet_server.settings, run_id) / "checkpoints"
    for path in folder.glob("*.pt"):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with quiet_server.client() as c:
        for route in ("classify", "inspect"):
            message = _error(c.post(f"{API}/runs/{run_id}/{route}", content=_png()), 422)
            assert "best.pt" in message and "damaged (truncated or corrupt)" in message
    proc = cli(quiet_server.settings.home, "train", "--dataset", dataset_id, "--from", f"run:{run_id}",
               "--epochs", "1", "--set", "device=cpu")  # fmt: skip
    assert proc.returncode == 2 and "best.pt' is damaged (truncated or corrupt)" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def _lying_zip() -> bytes:
    """A zip whose headers claim its first entry is 10 bytes: reading it fails the CRC check."""
    data = bytearray(zip_of({"a/1.png": _png() * 50, "b/1.png": _png()}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        struct.pack_into("<I", data, data.find(signature) + offset, 10)
    return bytes(data)


@pytest.mark.parametrize("kind", ["corrupt deflate data", "lying size header"])
def test_a_damaged_zip_upload_is_a_422(quiet_server: Server, kind: str) -> None:
    from tests.security.test_fuzz import corrupt_zip

    data = corrupt_zip() if kind == "corrupt deflate data" else _lying_zip()
    with quiet_server.client() as c:
        assert "zip" in _error(c.post(f"{API}/datasets/uploads", content=data), 422)


# ---------------------------------------------------------------- the console script


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--epochs", "inf"], "epochs: Input should be a finite number"),
        (["--config", "missing.yaml"], "--config 'missing.yaml' cannot be read: No such file or directory"),
        (["--config", "bad.yaml"], "is not valid YAML or JSON at line 2, column 1"),
        (["--config", "deep.yaml"], "nested more than 32 levels deep"),
        (["--set", "epochs=1e12"], "less than or equal to 100000"),
    ],
)
def test_bad_training_settings_are_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], said: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("epochs: [1\n")
    (tmp_path / "deep.yaml").write_text("epochs: " + DEEP_JSON + "\n")
    proc = cli(tmp_path / "home", "train", "--dataset", "x", "--network", "lenet", *args)
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_model_reference_too_long_for_a_file_name_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(_png())
    proc = cli(tmp_path / "home", "classify", "run:" + "x" * 3000, str(tmp_path / "x.png"))
    assert proc.returncode == 2 and "no run 'xxx" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-500:]


def test_old_checkpoints_are_pruned_and_the_run_still_resumes(
    web_settings: Settings, dataset_id: str, tmp_path: Path
) -> None:
    """36 training images, batch 12: 3 steps an epoch, a snapshot each step (the default keeps the last 3). Stopped
    at step 7, the run keeps best.pt and steps 5-7; resumed by `deepyard run resume`, it ends with best.pt and
    steps 10-12."""
    stop = threading.Event()

    class StopAt7(Callback):
        def on_step_end(self, run: Any, info: Any) -> None:
            if run.state.step == 7:
                stop.set()

    config = make_config(epochs=4, batch_size=12, snapshot_interval=0.3, device="cpu")
    stopped = train(web_settings, dataset_id, spec_from_data(TINY_NET), config, callbacks=[StopAt7()], stop=stop)
    folder = stopped.folder / "checkpoints"
    assert stopped.stop_reason == "aborted" and stopped.steps == 7
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", *(f"step-{s:07d}.pt" for s in (5, 6, 7))]
    resumed = cli(web_settings.home, "run", "resume", stopped.run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["steps"] == 12
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", *(f"step-{s:07d}.pt" for s in (10, 11, 12))]
    everything = train(web_settings, dataset_id, spec_from_data(TINY_NET), config.model_copy(update={"keep_last": 0}))
    assert len(list((everything.folder / "checkpoints").glob("step-*.pt"))) == 12  # 0 keeps them all
