"""Model archive round trip, ONNX and TorchScript parity, the plain-PyTorch snippet, and refusal of pickles."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from deepyard.errors import IntegrityError, InvalidValueError
from deepyard.infer import export, export_all, load_run_model, read_archive, validation_sample, write_archive
from deepyard.infer.export import Deployable, check_parity, load_exported
from deepyard.infer.model import TrainedModel, checkpoint_path
from deepyard.train.checkpoint import load_checkpoint
from tests.conftest import REPO
from tests.infer.conftest import Trained


@pytest.fixture(scope="module")
def sample(trained: Trained) -> np.ndarray:
    return validation_sample(trained.settings, trained.dataset, n=16)


def test_archive_round_trip(trained: Trained, sample: np.ndarray, tmp_path: Path) -> None:
    clf = load_run_model(trained.settings, trained.run_id)
    path = write_archive(clf, tmp_path / "bars.zip")
    with zipfile.ZipFile(path) as zf:
        assert set(zf.namelist()) == {"model.safetensors", "network.json", "labels.txt", "preprocess.json",
                                      "mean.npy", "info.json", "task.json"}  # fmt: skip
        info = json.loads(zf.read("info.json"))
    assert info["run"] == trained.run_id and info["dataset"]["id"] == trained.dataset and info["snapshot"] == "best"
    back = read_archive(path)
    assert back.classes == clf.classes and back.preprocessing == clf.preprocessing
    assert np.array_equal(back.preprocessing.mean_pixels, clf.preprocessing.mean_pixels)  # type: ignore[arg-type]
    pixels = torch.from_numpy(sample).permute(0, 3, 1, 2)
    assert torch.equal(back.outputs(pixels), clf.outputs(pixels))
    image = trained.images / "class1" / "004.png"
    assert back.preprocessing.load_pixels(str(image)).tolist() == clf.preprocessing.load_pixels(str(image)).tolist()


@pytest.mark.parametrize("fmt", ["archive", "onnx", "torchscript"])
def test_export_parity(trained: Trained, sample: np.ndarray, tmp_path: Path, fmt: str) -> None:
    clf = load_run_model(trained.settings, trained.run_id)
    report = export(clf, fmt, tmp_path / f"model.{fmt}", sample)
    assert report.ok, report.summary()
    assert (
        report.samples == 16
        and (report.agreement, report.agreement_of) == (1.0, "top-1")
        and report.max_abs_diff <= report.tolerance
    )
    assert set(report.latency_ms) == {"pytorch", fmt} and all(v > 0 for v in report.latency_ms.values())
    assert Path(report.path).stat().st_size == report.size_bytes > 1000


def test_onnx_has_a_dynamic_batch(trained: Trained, sample: np.ndarray, tmp_path: Path) -> None:
    import onnxruntime as ort  # type: ignore[import-untyped]

    clf = load_run_model(trained.settings, trained.run_id)
    reports = export_all(clf, ["onnx"], tmp_path, sample[:2])
    session = ort.InferenceSession(reports[0].path, providers=["CPUExecutionProvider"])
    for batch in (1, 5, 16):
        x = sample[:batch].transpose(0, 3, 1, 2).astype(np.float32)
        out = session.run(["logits"], {"pixels": x})[0]
        assert out.shape == (batch, 3)
        expected = clf.outputs(torch.from_numpy(sample[:batch]).permute(0, 3, 1, 2)).numpy()
        np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    assert json.loads((tmp_path / "parity.json").read_text())[0]["format"] == "onnx"


def test_a_failed_parity_check_says_so_with_its_figures(trained: Trained, sample: np.ndarray, tmp_path: Path) -> None:
    """A real export checked against a model whose weights moved since: the check must fail, with figures."""
    clf = load_run_model(trained.settings, trained.run_id)
    assert export(clf, "torchscript", tmp_path / "m.pt", sample).ok
    moved = load_run_model(trained.settings, trained.run_id)
    with torch.no_grad():
        for p in moved.model.parameters():
            p.add_(torch.randn_like(p))
    pixels = torch.from_numpy(sample).permute(0, 3, 1, 2).float()
    report = check_parity("torchscript", tmp_path / "m.pt", Deployable(moved.transform, moved.model).eval(),
                          load_exported("torchscript", tmp_path / "m.pt"), pixels, moved)  # fmt: skip
    assert not report.ok and report.max_abs_diff > report.tolerance
    assert re.search(r"torchscript: parity FAILED: max \|Δlogit\| \d\.\d\de[+-]\d\d", report.summary())


def test_unknown_format_is_named(trained: Trained, sample: np.ndarray, tmp_path: Path) -> None:
    clf = load_run_model(trained.settings, trained.run_id)
    with pytest.raises(InvalidValueError, match=r"'tflite' is not one of 'archive', 'onnx' or 'torchscript'"):
        export_all(clf, ["onnx", "tflite"], tmp_path, sample)


def test_readme_snippet_loads_an_archive_with_plain_pytorch(trained: Trained, sample: np.ndarray,
                                                            tmp_path: Path) -> None:  # fmt: skip
    """The snippet printed in the README, run as written on a real archive: with the run's mean subtraction, and
    with a pretrained network's per-channel normalisation."""
    image = trained.images / "class2" / "010.png"
    plain = load_run_model(trained.settings, trained.run_id)
    channels = plain.preprocessing.channels
    normalised = dataclasses.replace(plain, preprocessing=dataclasses.replace(
        plain.preprocessing, input_mean=(0.4,) * channels, input_std=(0.2,) * channels))  # fmt: skip
    for clf in (plain, normalised):
        check_readme_snippet(clf, image, tmp_path / "model.zip")


def check_readme_snippet(clf: TrainedModel, image: Path, archive: Path) -> None:
    """Run the README's archive snippet on `clf` written as an archive: the same probabilities as Deepyard's."""
    readme = (REPO / "README.md").read_text()
    code = re.search(r"<!-- archive-snippet:start -->\n```python\n(.*?)```", readme, re.S)
    assert code, "README lacks the archive snippet"
    write_archive(clf, archive)
    scope: dict[str, object] = {"ARCHIVE": str(archive), "IMAGE": str(image)}
    exec(compile(code.group(1), "README snippet", "exec"), scope)
    expected = clf.outputs([clf.preprocessing.load_pixels(str(image))]).softmax(1)[0]
    torch.testing.assert_close(scope["probs"], expected, rtol=1e-4, atol=1e-5)
    assert scope["label"] == clf.classes[int(expected.argmax())]


def test_pickled_checkpoint_and_archive_are_refused(trained: Trained, tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("this code must never run",))

    checkpoint = checkpoint_path(trained.settings, trained.run_id)
    data = load_checkpoint(checkpoint)
    evil = tmp_path / "evil.pt"
    torch.save({**data, "extra": Boom()}, evil)
    with pytest.raises(IntegrityError, match="refusing checkpoint"):
        load_checkpoint(evil)
    clf = load_run_model(trained.settings, trained.run_id)
    good = write_archive(clf, tmp_path / "good.zip")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, src.read(item) if item != "model.safetensors" else pickle.dumps(Boom()))
    with pytest.raises(IntegrityError, match="damaged"):
        read_archive(bad)
    mean = io.BytesIO()
    np.save(mean, np.array([Boom()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "bad2.zip", "w") as dst:
        for item in src.namelist():
            dst.writestr(item, src.read(item) if item != "mean.npy" else mean.getvalue())
    with pytest.raises(IntegrityError, match="damaged"):
        read_archive(tmp_path / "bad2.zip")
