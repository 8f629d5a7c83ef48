"""Weight files, torchvision weights through torchvision's loader (offline: a clear error; cached: loaded), labels
files, and unknown sources. timm: tests/transfer/test_timm.py."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from deepyard.config import Settings
from deepyard.errors import IntegrityError, NotFoundError, SourceError
from deepyard.networks import build_network
from deepyard.transfer import describe_torchvision, load_labels, load_pretrained, save_safetensors, state_hash
from tests.conftest import REPO

IMAGENET_INDEX = REPO.parent / "shared" / "data" / "imagenet-labels" / "imagenet_class_index.json"


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache, and every HTTP(S) request sent to a closed local port: really offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("https_proxy", "http_proxy", "HTTPS_PROXY", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_safetensors_and_plain_torch_files_load_the_same(settings: Settings, tmp_path: Path) -> None:
    state = build_network("lenet", (1, 28, 28), 10).state_dict()
    save_safetensors(tmp_path / "w.safetensors", state)
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    a = load_pretrained(settings, str(tmp_path / "w.safetensors"))
    b = load_pretrained(settings, str(tmp_path / "w.pth"))
    assert a.sha256 == b.sha256 == state_hash(state) and a.kind == "file" and a.network is None


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this ran",))


def test_a_weights_file_carrying_code_is_refused(settings: Settings, tmp_path: Path) -> None:
    torch.save({"model": {}, "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(IntegrityError, match="not plain tensor data"):
        load_pretrained(settings, str(tmp_path / "evil.pt"))
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(IntegrityError):
        load_pretrained(settings, str(tmp_path / "evil.pth"))


def test_torchvision_weights_offline_name_the_weights_and_the_way_out(settings: Settings, offline_hub: Path) -> None:
    with pytest.raises(SourceError) as info:
        load_pretrained(settings, "pretrained:mobilenet_v3_small")
    message = str(info.value)
    assert "MobileNet_V3_Small_Weights.IMAGENET1K_V1" in message and "mobilenet_v3_small-047dcff4.pth" in message
    assert str(offline_hub) in message and "--network mobilenet_v3_small" in message


def test_torchvision_weights_from_the_hub_cache_with_labels_and_preprocessing(
    settings: Settings, offline_hub: Path
) -> None:
    torch.manual_seed(0)
    state = build_network("mobilenet_v3_small", (3, 224, 224), 1000).state_dict()
    offline_hub.mkdir(parents=True)
    torch.save(state, offline_hub / "mobilenet_v3_small-047dcff4.pth")  # where torchvision's loader caches it
    start = load_pretrained(settings, "pretrained:mobilenet_v3_small.IMAGENET1K_V1")
    assert start.sha256 == state_hash(state) and start.network == {"ref": "mobilenet_v3_small", "spec": None}
    assert start.labels is not None and len(start.labels) == 1000 and start.labels[0] == "tench"
    prep = start.preprocessing
    assert prep["mean"] == [0.485, 0.456, 0.406] and prep["std"] == [0.229, 0.224, 0.225]
    assert prep["crop_size"] == [224] and prep["resize_size"] == [256]


def test_torchvision_names(settings: Settings) -> None:
    described = describe_torchvision("ResNet18_Weights.IMAGENET1K_V1")
    assert described["model"] == "resnet18" and described["url"].endswith("resnet18-f37072fd.pth")
    with pytest.raises(NotFoundError, match="no torchvision model or weights named 'resnet19'"):
        load_pretrained(settings, "pretrained:resnet19")
    with pytest.raises(NotFoundError, match="'resnet18' has no weights 'IMAGENET9K'; valid: IMAGENET1K_V1"):
        load_pretrained(settings, "pretrained:resnet18.IMAGENET9K")


def test_unknown_sources_list_the_valid_forms(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match=r"valid: pretrained:NAME, timm:NAME, store:NAME, run:ID\[@STEP\]"):
        load_pretrained(settings, "imagenet-resnet")
    with pytest.raises(NotFoundError, match=r"weights file '/nope\.safetensors' does not exist"):
        load_pretrained(settings, "/nope.safetensors")


def test_labels_from_text_and_from_the_imagenet_class_index(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("cat\ndog\n\n")
    assert load_labels(tmp_path / "labels.txt") == ["cat", "dog"]
    imagenet = load_labels(IMAGENET_INDEX)
    assert len(imagenet) == 1000 and imagenet[0] == "tench" and imagenet[999] == "toilet_tissue"
