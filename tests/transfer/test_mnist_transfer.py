"""The issue's gate (about 20 s on an idle 2-core CPU): LeNet pretrained on MNIST digits 0-4, fine-tuned with a
frozen body on 50 images per class of digits 5-9, beats the same network trained from scratch on the same 250
images, on held-out 5-9 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.datasets.idx import read_idx_pair
from deepyard.datasets.mnist import find_mnist_files
from deepyard.train import get_run, make_config, train
from deepyard.transfer import make_pretrained, train_from

PRETRAIN = {"epochs": 1, "batch_size": 64, "solver.type": "nesterov", "solver.lr": 0.05, "precision": "fp32",
            "schedule.policy": "onecycle", "schedule.pct_start": 15}  # fmt: skip
PRE_PER_CLASS = 3000
SMALL = {"epochs": 10, "batch_size": 25, "solver.type": "momentum", "solver.lr": 0.05, "precision": "fp32"}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An uncompressed IDX file (the MNIST format) of a uint8 array."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())
    return path


def pick(images: np.ndarray, labels: np.ndarray, digits: range, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `per_class` images of each digit, in file order."""
    index = np.sort(np.concatenate([np.flatnonzero(labels == d)[:per_class] for d in digits]))
    return images[index], labels[index]


def build(settings: Settings, folder: Path, name: str, train: tuple[np.ndarray, np.ndarray],
          val: tuple[np.ndarray, np.ndarray]) -> str:  # fmt: skip
    """A dataset of real MNIST digits, through IDX files holding just these images."""
    files = {}
    for split, (images, labels) in (("train", train), ("val", val)):
        files[f"{split}_images"] = write_idx(folder / f"{split}-images.idx", images)
        files[f"{split}_labels"] = write_idx(folder / f"{split}-labels.idx", labels)
    spec = make_spec(name=name, source={"kind": "idx", **files}, channels=1, width=28, height=28, encoding="raw")
    return create_dataset(settings, spec, workers=0).id


@pytest.mark.slow
def test_finetuned_lenet_beats_scratch_on_250_images(settings: Settings, mnist_dir: Path, tmp_path: Path) -> None:
    files = find_mnist_files(mnist_dir)
    train_x, train_y = read_idx_pair(files["train_images"], files["train_labels"])
    test_x, test_y = read_idx_pair(files["test_images"], files["test_labels"])
    digits04 = build(settings, tmp_path / "a", "digits04", pick(train_x, train_y, range(5), PRE_PER_CLASS),
                     pick(test_x, test_y, range(5), 100))  # fmt: skip
    digits59 = build(settings, tmp_path / "b", "digits59", pick(train_x, train_y, range(5, 10), 50),
                     pick(test_x, test_y, range(5, 10), 200))  # fmt: skip

    pretrained = train(settings, digits04, "lenet", make_config(**PRETRAIN))
    entry = make_pretrained(settings, pretrained.run_id, name="lenet-04")
    assert entry.labels == ["0", "1", "2", "3", "4"] and entry.input_shape == (1, 28, 28)

    finetuned = train_from(
        settings, digits59, None, make_config(**SMALL, **{"finetune.freeze": ["conv*"]}), source="store:lenet-04"
    )
    scratch = train(settings, digits59, "lenet", make_config(**SMALL))
    a, b, c = pretrained.last_val["val_top1"], finetuned.last_val["val_top1"], scratch.last_val["val_top1"]
    figures = f"pretrain on 0-4: {a:.2f}%; on 5-9 from 250 images: fine-tuned {b:.2f}%, from scratch {c:.2f}%"
    print(figures)
    report = get_run(settings, finetuned.run_id)["source"]["report"]
    reset = "classifier head, reset for the new classes"
    assert report["reinitialised"] == {"layers.ip2.weight": reset, "layers.ip2.bias": reset}, report
    assert report["loaded"] == 6 and report["skipped"] == {} and a > 98, figures
    assert b > c, figures
