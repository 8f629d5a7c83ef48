"""The model store: entries made from runs, listed, shown, deleted, and pulled from a real localhost HTTP server."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from deepyard.config import Settings, load_settings
from deepyard.errors import IntegrityError, InvalidValueError, NotFoundError, SourceError
from deepyard.train import get_run
from deepyard.train.checkpoint import load_checkpoint
from deepyard.transfer import (
    delete_model,
    get_model,
    list_models,
    load_pretrained,
    make_pretrained,
    models_dir,
    pull_model,
    read_index,
)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[functools.partial[str]]:
    """Serve folders over real HTTP on 127.0.0.1; yields `url_for(folder)`."""
    servers = []

    def url_for(folder: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield functools.partial(url_for)
    for server in servers:
        server.shutdown()
        server.server_close()


def test_make_pretrained_stores_weights_labels_and_preprocessing(settings: Settings, pretrained_run: str) -> None:
    entry = make_pretrained(settings, pretrained_run, name="bars-net")
    assert [e.name for e in list_models(settings)] == ["bars-net"]
    assert entry.labels == ["class0", "class1", "class2"] and entry.num_classes == 3
    assert entry.input_shape == (3, 12, 12) and entry.network["spec"]["name"] == "tiny"
    prep = entry.preprocessing
    assert (prep["mean"], prep["input_shape"], prep["resize_mode"], prep["scale"]) == ("image", [3, 12, 12], "squash",
                                                                                        1 / 255)  # fmt: skip
    mean = entry.mean()
    assert mean is not None and mean.shape == (12, 12, 3) and 0 < float(mean.mean()) < 255
    assert entry.origin["checkpoint"] == "best.pt" and entry.origin["run"] == pretrained_run
    best = load_checkpoint(settings.home / "runs" / pretrained_run / "checkpoints" / "best.pt")["model"]
    weights = entry.load_weights()
    assert weights.keys() == best.keys() and all(torch.equal(weights[k], best[k]) for k in best)
    assert sorted(p.name for p in entry.folder.iterdir()) == [
        "entry.json", "labels.txt", "mean.npy", "model.safetensors", "network.yaml"]  # fmt: skip
    step = make_pretrained(settings, pretrained_run, name="bars-net-step6", step=6)
    assert step.origin["checkpoint"] == "step-0000006.pt"
    with pytest.raises(NotFoundError, match=r"no snapshot '5'; valid: 'last', 'best', '26', '24', '18', '12' or '6'"):
        make_pretrained(settings, pretrained_run, name="x", step=5)
    with pytest.raises(InvalidValueError, match="already exists"):
        make_pretrained(settings, pretrained_run, name="bars-net")
    with pytest.raises(InvalidValueError, match=r"model name '\.\./evil' is not valid"):
        make_pretrained(settings, pretrained_run, name="../evil")
    delete_model(settings, "bars-net")
    with pytest.raises(NotFoundError, match="no model 'bars-net' in the store; stored: bars-net-step6"):
        get_model(settings, "bars-net")
    assert [e["name"] for e in read_index_file(settings)] == ["bars-net-step6"]


def read_index_file(settings: Settings) -> list[dict[str, object]]:
    import json

    entries: list[dict[str, object]] = json.loads((models_dir(settings) / "index.json").read_text())["entries"]
    return entries


def test_a_damaged_entry_is_refused(settings: Settings, pretrained_run: str) -> None:
    entry = make_pretrained(settings, pretrained_run, name="bars-net")
    data = bytearray((entry.folder / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (entry.folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="does not match the sha256"):
        load_pretrained(settings, "store:bars-net")


def test_pull_from_a_store_served_over_http(
    settings: Settings, pretrained_run: str, tmp_path: Path, serve: functools.partial[str]
) -> None:
    published = make_pretrained(settings, pretrained_run, name="bars-net", description="bars")
    url = serve(models_dir(settings))  # another home's store folder, served as static files
    other = load_settings(tmp_path / "other-home", data_roots=[])
    listed = read_index(other, url)
    assert [(e["name"], e["description"], e["num_classes"]) for e in listed] == [("bars-net", "bars", 3)]
    pulled = pull_model(other, url, "bars-net")
    assert pulled.origin["pulled_from"] == url and pulled.labels == published.labels
    assert pulled.weights_sha256 == published.weights_sha256
    start = load_pretrained(other, "store:bars-net")
    assert start.sha256 == published.weights_sha256 and start.network == published.network
    with pytest.raises(InvalidValueError, match="already exists"):
        pull_model(other, url, "bars-net")
    with pytest.raises(NotFoundError, match="has no model 'nope'; it lists: bars-net"):
        pull_model(other, url, "nope")
    # a file changed on the server after the index was written: refused, nothing installed
    weights = models_dir(settings) / "bars-net" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b" ")
    with pytest.raises(IntegrityError, match="does not match the sha256"):
        pull_model(other, url, "bars-net", replace=True)
    assert get_model(other, "bars-net").weights_sha256 == published.weights_sha256
    assert not [p for p in models_dir(other).iterdir() if p.name.startswith(".tmp-")]


def test_bad_store_urls_are_named(settings: Settings, tmp_path: Path, serve: functools.partial[str]) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.json").write_text('{"hello": 1}')
    url = serve(tmp_path / "site")
    with pytest.raises(SourceError, match="is not a model store index"):
        read_index(settings, url)
    with pytest.raises(SourceError, match=r"cannot download 'http://127.0.0.1:\d+/missing/index.json'"):
        read_index(settings, url + "missing")


def test_run_reference_loads_a_checkpoint(settings: Settings, pretrained_run: str) -> None:
    start = load_pretrained(settings, f"run:{pretrained_run}@12")
    assert start.kind == "run" and start.labels == ["class0", "class1", "class2"]
    assert start.network == get_run(settings, pretrained_run)["network"]
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        load_pretrained(settings, "run:nope")


def test_a_model_archive_is_imported_with_its_labels_and_preprocessing(
    settings: Settings, pretrained_run: str, tmp_path: Path
) -> None:
    from deepyard.infer import load_run_model, write_archive
    from deepyard.transfer import import_archive

    archive = write_archive(load_run_model(settings, pretrained_run), tmp_path / "bars.zip")
    entry = import_archive(settings, archive)
    made = make_pretrained(settings, pretrained_run, name="from-run")
    assert entry.name == "bars" and entry.origin["kind"] == "archive" and entry.origin["archive"] == "bars.zip"
    assert entry.labels == made.labels and entry.input_shape == made.input_shape == (3, 12, 12)
    assert entry.weights_sha256 == made.weights_sha256 and entry.network == made.network
    assert entry.preprocessing == made.preprocessing and entry.preprocessing["mean"] == "image"
    assert entry.mean() is not None and np.array_equal(entry.mean(), made.mean())
