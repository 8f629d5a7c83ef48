"""MNIST import from the shared IDX files, class-folder export, and download over real HTTP with MD5 checks."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepyard.config import Settings
from deepyard.datasets import import_mnist, open_split
from deepyard.datasets.idx import read_idx_pair
from deepyard.datasets.mnist import FILES, download_mnist, export_class_folders, find_mnist_files
from deepyard.errors import IntegrityError, NotFoundError


def test_import_subset_keeps_pixels_and_labels(settings: Settings, mnist_dir: Path) -> None:
    m = import_mnist(settings, mnist_dir, max_per_class=50, val_max_per_class=20, name="mnist small")
    assert m.shape == (28, 28, 1) and m.classes == [str(d) for d in range(10)]
    assert m.splits["train"].per_class == [50] * 10 and m.splits["val"].per_class == [20] * 10
    x, y = read_idx_pair(mnist_dir / "train-images-idx3-ubyte.gz", mnist_dir / "train-labels-idx1-ubyte.gz")
    store = open_split(settings, m, "train")
    sources = [int(s.split("#")[1]) for s in json.loads((store.folder / "sources.json").read_text())]
    assert (store.to_array()[:, :, :, 0] == x[sources]).all()
    assert (store.labels == y[sources]).all()


def test_full_import_counts(settings: Settings, mnist_dir: Path) -> None:
    m = import_mnist(settings, mnist_dir)
    assert (m.splits["train"].count, m.splits["val"].count) == (60000, 10000)
    assert m.encoding == "raw" and m.skipped == 0


def test_export_writes_the_lab_layout(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 3, 0, 1, 3], np.uint8)
    files = {}
    for split in ("train", "test"):
        for kind, arr, code in (("images", images, 3), ("labels", labels, 1)):
            path = tmp_path / f"{split}-{kind}"
            header = bytes([0, 0, 8, code]) + b"".join(n.to_bytes(4, "big") for n in arr.shape)
            path.write_bytes(header + arr.tobytes())
            files[f"{split}_{kind}"] = path
    out = export_class_folders(files, tmp_path / "png")
    assert sorted(p.name for p in (out / "train").iterdir()) == ["0", "1", "3"]
    assert sorted(p.name for p in (out / "train" / "3").iterdir()) == ["00001.png", "00003.png", "00006.png"]
    with Image.open(out / "test" / "1" / "00005.png") as img:
        assert (np.asarray(img) == images[4]).all()
    assert not (tmp_path / "png.partial").exists()


def test_missing_files_name_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"train-images-idx3-ubyte.gz.*--download"):
        find_mnist_files(tmp_path)


@pytest.fixture
def mirror(tmp_path: Path, mnist_dir: Path) -> Iterator[tuple[str, str]]:
    """Two real HTTP mirrors on localhost: one serving corrupted files, one serving the originals."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    for name, _ in FILES.values():
        shutil.copy(mnist_dir / name, good / name)
        (bad / name).write_bytes(b"corrupted")
    servers = []
    for folder in (bad, good):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield tuple(f"http://127.0.0.1:{s.server_address[1]}/" for s in servers)  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_download_checks_md5_and_falls_back_to_the_next_mirror(tmp_path: Path, mirror: tuple[str, str]) -> None:
    bad, good = mirror
    files = download_mnist(tmp_path / "dl", mirrors=(bad, good), timeout=10)
    assert sorted(p.name for p in files.values()) == sorted(n for n, _ in FILES.values())
    with pytest.raises(IntegrityError, match=r"MD5 .* differs from the published"):
        download_mnist(tmp_path / "dl2", mirrors=(bad,), timeout=10)
