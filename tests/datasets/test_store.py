"""The store's readers: raw and encoded, memory-mapped or in RAM; compaction keeps the .npy valid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.datasets.store import ImageStore, compact_raw, create_raw, open_raw_for_writing
from deepyard.errors import NotFoundError
from tests.conftest import make_class_folders


@pytest.mark.parametrize("encoding", ["raw", "png", "jpeg"])
def test_batches_come_back_in_the_order_asked(settings: Settings, tmp_path: Path, encoding: str) -> None:
    written = make_class_folders(tmp_path / "d", {"a": 6, "b": 6}, size=(16, 16))
    spec = make_spec(name="s", source={"kind": "folder", "train": tmp_path / "d"}, width=16, height=16,
                     val_pct=0, encoding=encoding)  # fmt: skip
    m = create_dataset(settings, spec)
    expected = np.stack(written["a"] + written["b"]).astype(int)
    order = np.array([7, 0, 11, 3])
    for in_memory in (False, True):
        store = open_split(settings, m, "train", in_memory=in_memory)
        batch = store.get_batch(order)
        assert batch.shape == (4, 16, 16, 3) and batch.dtype == np.uint8
        if encoding == "jpeg":  # lossy: each image must still be nearest to the one asked for
            distance = np.abs(batch[:, None].astype(int) - expected[None]).mean(axis=(2, 3, 4))
            assert distance.argmin(axis=1).tolist() == order.tolist()
        else:
            assert (batch == expected[order]).all()
            assert (store.get(5) == expected[5]).all()
    assert (store.folder / ("images.npy" if encoding == "raw" else "images.bin")).is_file()


def test_compaction_rewrites_a_loadable_npy(tmp_path: Path) -> None:
    create_raw(tmp_path, 1000, (3, 2, 1))
    arr = open_raw_for_writing(tmp_path)
    arr[:] = (np.arange(1000) % 251).astype(np.uint8).repeat(6).reshape(1000, 3, 2, 1)
    arr.flush()
    del arr
    keep = np.ones(1000, bool)
    keep[[0, 10, 11, 999]] = False
    compact_raw(tmp_path, keep)
    out = np.load(tmp_path / "images.npy")
    assert out.shape == (996, 3, 2, 1)
    assert (out[:, 0, 0, 0] == np.flatnonzero(keep) % 251).all()


def test_missing_split_and_store_are_clear_errors(settings: Settings, tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", {"a": 2, "b": 2})
    m = create_dataset(settings, make_spec(name="s", source={"kind": "folder", "train": tmp_path / "d"}, val_pct=0))
    with pytest.raises(NotFoundError, match="has no 'test' split; it has train"):
        open_split(settings, m, "test")
    with pytest.raises(NotFoundError, match="no image store"):
        ImageStore(tmp_path, 3)
