"""timm networks and weights, for real: `timm:NAME` networks built for any channel and class count, timm's
pretrained weights read by timm's own loader from a Hugging Face cache the test fills (offline, as on a machine
without the hub), a fine-tune from them with their normalisation, and the message when timm is not installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from deepyard.config import Settings, load_settings
from deepyard.errors import NotFoundError, SourceError, SpecError
from deepyard.infer import load_run_model
from deepyard.networks import build_network
from tests.cli.test_datasets_cli import DEEPYARD
from tests.infer.test_export import check_readme_snippet
from tests.train.conftest import write_bars

REVISION = "0123456789abcdef0123456789abcdef01234567"


def test_timm_networks_build_for_any_channels_and_classes() -> None:
    model = build_network("timm:resnet18", (1, 32, 32), 7)
    assert model.conv1.in_channels == 1 and model.fc.out_features == 7  # type: ignore[union-attr]
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 7)
    with pytest.raises(NotFoundError, match=r"timm has no model 'resnet19x'; for example: .*resnet"):
        build_network("timm:resnet19x", (3, 32, 32), 7)
    vit = build_network("timm:vit_tiny_patch16_224", (1, 32, 48), 7)  # a fixed-size model gets the data's size
    assert vit(torch.zeros(2, 1, 32, 48)).shape == (2, 7)
    with pytest.raises(SpecError, match=r"timm:convnext_atto cannot take input 3x3x3: .*Kernel size"):
        build_network("timm:convnext_atto", (3, 3, 3), 7)


def fill_hf_cache(home: Path, repo: str) -> dict[str, torch.Tensor]:
    """Lay out the Hugging Face cache as a download would (refs/main → snapshots/REVISION/model.safetensors)."""
    model = timm.create_model(repo.split("/")[1].split(".")[0], pretrained=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    folder = home / "hub" / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(REVISION)
    (folder / "snapshots" / REVISION).mkdir(parents=True)
    save_file(state, str(folder / "snapshots" / REVISION / "model.safetensors"))
    return state


def deepyard(home: Path, hf_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([*DEEPYARD, "--home", str(home), *args], capture_output=True, text=True, env=env)


def test_fine_tune_from_timm_weights_read_by_timm_from_its_cache(tmp_path: Path) -> None:
    hf_home, home = tmp_path / "hf", tmp_path / "home"
    state = fill_hf_cache(hf_home, "timm/resnet18.a1_in1k")
    write_bars(tmp_path / "bars", per_class=8)
    made = deepyard(home, hf_home, "dataset", "create", str(tmp_path / "bars"), "--size", "32x32", "--json")
    assert made.returncode == 0, made.stderr

    trained = deepyard(home, hf_home, "train", "--dataset", "bars", "--from", "timm:resnet18", "--epochs", "1",
                       "--batch-size", "8", "--device", "cpu", "--json")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    run_id = json.loads(trained.stdout)["run"]
    info = json.loads((home / "runs" / run_id / "run.json").read_text())
    assert info["network"] == {"ref": "timm:resnet18", "spec": None}
    report = info["source"]["report"]
    assert report["loaded"] == len([k for k in state if not k.startswith("fc.")])  # all but the 1000-class head
    assert set(report["reinitialised"]) == {"fc.weight", "fc.bias"}
    assert info["config"]["input_mean"] == [0.485, 0.456, 0.406]  # timm's record of what the weights expect
    assert info["config"]["input_std"] == [0.229, 0.224, 0.225]

    image = next((tmp_path / "bars").rglob("*.png"))
    classified = deepyard(home, hf_home, "classify", run_id, str(image), "--json")
    assert classified.returncode == 0, classified.stderr
    assert len(json.loads(classified.stdout)["predictions"][0]["top"]) == 3
    clf = load_run_model(load_settings(home), run_id)  # the README's plain-PyTorch snippet reads its archive too
    check_readme_snippet(clf, image, tmp_path / "timm.zip")

    missing = deepyard(home, hf_home, "model", "add", "r34", "--from", "timm:resnet34")
    assert missing.returncode == 2
    assert "cannot load timm weights for 'resnet34'" in missing.stderr and "HF_HOME" in missing.stderr


def test_timm_missing_is_a_clear_error(tmp_path: Path) -> None:
    """In a process where timm cannot be imported (as where it is not installed)."""
    code = (
        "import sys; sys.modules['timm'] = None\n"
        "from deepyard.config import load_settings\n"
        "from deepyard.transfer import load_pretrained\n"
        f"load_pretrained(load_settings({str(tmp_path)!r}), 'timm:resnet50')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "DeepyardError: timm:resnet50 needs the timm package, which is not installed" in proc.stderr


def test_timm_weights_offline_without_a_cache_say_how_to_get_them(tmp_path: Path) -> None:
    code = "from deepyard.transfer.weights import load_timm_state; load_timm_state('resnet18')"
    env = {**os.environ, "HF_HOME": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert f"{SourceError.__name__}: cannot load timm weights for 'resnet18'" in proc.stderr
    assert "--from path/to/model.safetensors --network timm:resnet18" in proc.stderr


def test_a_train_job_with_an_unknown_timm_network_is_refused_at_submit(settings: Settings, tiny: str) -> None:
    from deepyard.jobs import list_jobs, submit

    with pytest.raises(NotFoundError, match="timm has no model 'resnet19x'"):
        submit(settings, "train", {"dataset": tiny, "network": "timm:resnet19x"})
    assert list_jobs(settings) == []
    assert submit(settings, "train", {"dataset": tiny, "network": "timm:resnet18"}).params["network"] == "timm:resnet18"
