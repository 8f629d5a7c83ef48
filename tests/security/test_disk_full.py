"""Probe: a full disk fails a build, a job or a checkpoint within seconds, says so, and leaves nothing half-written.

The home lies on a real small file system: a tmpfs mounted in a private mount namespace (`unshare --mount
--map-root-user`, so no privileges are needed and nothing outside the test sees it), and the console script
runs inside it. The subprocess timeouts are safeguards against the hang this probe found (a build on a full
disk waited forever for a worker killed writing through its memory map), not timing assertions.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_class_folders

SAFEGUARD_S = 120


def _in_small_home(home: Path, size: str, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` (sh) with a `size` tmpfs mounted on `home`, in a mount namespace of its own."""
    assert shutil.which("unshare"), "util-linux's unshare is missing"
    home.mkdir(parents=True, exist_ok=True)
    inner = f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(home))} && {script}"
    return subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", inner], capture_output=True,
                          text=True, timeout=SAFEGUARD_S)  # fmt: skip


def _deepyard(home: Path, *args: str) -> str:
    return shlex.join([sys.executable, "-m", "deepyard", "--home", str(home), *args])


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """600 small images: 7 MB once stored raw at 64x64, far more than the 1 MB home."""
    make_class_folders(tmp_path / "data" / "pics", {"a": 300, "b": 300}, size=(8, 8))
    return tmp_path / "data" / "pics"


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_a_build_on_a_full_disk_fails_at_once_and_keeps_nothing(images: Path, tmp_path: Path, encoding: str) -> None:
    home = tmp_path / "home"
    build = _deepyard(home, "dataset", "create", str(images), "--size", "64x64", "--encoding", encoding,
                      "--workers", "2")  # fmt: skip
    listing = _deepyard(home, "dataset", "list", "--json")
    proc = _in_small_home(home, "1m", f"{build}; echo rc=$?; ls -A {home}/datasets; {listing}")
    assert "rc=2" in proc.stdout, proc.stdout + proc.stderr
    assert "disk full at" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert ".build-" not in proc.stdout  # the half-written build was removed
    assert proc.stdout.strip().endswith("[]")  # no dataset appears


def test_a_checkpoint_on_a_full_disk_names_the_path_and_leaves_no_temporary(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = (
        "import torch, os\n"
        "from pathlib import Path\n"
        "from deepyard.errors import DiskFullError\n"
        "from deepyard.train.checkpoint import save_checkpoint\n"
        f"home = Path({str(home)!r})\n"
        "try:\n"
        "    save_checkpoint(home / 'ckpt' / 'step-1.pt', {'model': {'w': torch.zeros(1_000_000)}})\n"
        "except DiskFullError as exc:\n"
        "    print('ERROR', exc)\n"
        "print('LEFT', sorted(os.listdir(home / 'ckpt')))\n"
    )
    (tmp_path / "probe.py").write_text(script)
    proc = _in_small_home(home, "1m", shlex.join([sys.executable, str(tmp_path / "probe.py")]))
    assert f"ERROR disk full at '{home}/ckpt/step-1.pt'" in proc.stdout, proc.stdout + proc.stderr
    assert "LEFT []" in proc.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_dataset_job_on_a_full_disk_fails_and_the_server_stays_usable(images: Path, tmp_path: Path) -> None:
    home, port = tmp_path / "home", _free_port()
    serve = _deepyard(home, "serve", "--port", str(port))
    env = {**os.environ, "DEEPYARD_DATA_ROOTS": str(images.parent)}
    home.mkdir()
    inner = f"mount -t tmpfs -o size=2m tmpfs {shlex.quote(str(home))} && exec {serve}"
    proc = subprocess.Popen(["unshare", "--mount", "--map-root-user", "sh", "-c", inner], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(proc, url)
        spec = {"name": "big", "source": {"kind": "folder", "train": str(images)}, "width": 64, "height": 64,
                "encoding": "raw"}  # fmt: skip
        with httpx.Client(base_url=url, timeout=30) as c:
            job = c.post("/api/v1/datasets", json={"spec": spec}).json()["job"]
            deadline = time.monotonic() + SAFEGUARD_S
            while (job := c.get(f"/api/v1/jobs/{job['id']}").json())["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
            assert job["status"] == "failed" and "disk full at" in job["error"], job
            assert c.get("/api/v1/datasets").json() == []
            assert c.get("/api/v1/jobs").status_code == 200
            assert c.delete(f"/api/v1/jobs/{job['id']}").status_code == 200
    finally:
        proc.send_signal(2)  # Ctrl-C
        code = proc.wait(timeout=60)
    assert code in (0, 1, -2, 130), code


def _wait_up(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + SAFEGUARD_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server ended before it answered"
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def test_full_disk_messages_are_one_line(tmp_path: Path) -> None:
    from deepyard.errors import disk_full

    err = disk_full(OSError(28, "No space left on device", "/x/y"))
    assert err is not None and str(err).startswith("disk full at '/x/y'")
    assert disk_full(OSError(2, "No such file")) is None
    assert json.dumps(str(err)).count("\\n") == 0


def _die(chunk: object) -> None:
    os._exit(1)  # what a worker killed by SIGBUS or the OOM killer looks like to the pool


def test_a_worker_that_dies_fails_the_build_instead_of_hanging(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepyard.config import load_settings
    from deepyard.datasets import build, make_spec
    from deepyard.errors import SourceError

    settings = load_settings(tmp_path / "home2", data_roots=[])
    spec = make_spec(name="x", source={"kind": "folder", "train": images}, width=16, height=16, encoding="raw")
    monkeypatch.setattr(build, "process_chunk", _die)
    with pytest.raises(SourceError, match="a decoding worker process died"):
        build.create_dataset(settings, spec, workers=2)
    assert [p.name for p in settings.datasets_dir.iterdir()] == []
