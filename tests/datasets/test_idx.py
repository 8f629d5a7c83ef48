"""The IDX reader on synthetic files (any IDX set of that layout) and on the real MNIST files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from deepyard.datasets.idx import parse_idx, read_idx, read_idx_pair
from deepyard.errors import SourceError


def idx_bytes(arr: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def test_reads_every_type_code_gzipped_or_not(tmp_path: Path) -> None:
    cases = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}
    for code, dtype in cases.items():
        arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
        plain, packed = tmp_path / f"{code}.idx", tmp_path / f"{code}.idx.gz"
        plain.write_bytes(idx_bytes(arr, code))
        packed.write_bytes(gzip.compress(idx_bytes(arr, code)))
        for path in (plain, packed):
            out = read_idx(path)
            assert out.dtype == np.dtype(dtype) and (out == arr).all()


def test_size_mismatch_and_bad_magic_are_clear_errors() -> None:
    good = idx_bytes(np.zeros((2, 2), np.uint8), 0x08)
    with pytest.raises(SourceError, match=r"needs 16 bytes, the file has 15"):
        parse_idx(good[:-1])
    with pytest.raises(SourceError, match="not an IDX file"):
        parse_idx(b"\x89PNG....")
    with pytest.raises(SourceError, match="unknown IDX type code 0x07"):
        parse_idx(bytes([0, 0, 7, 1, 0, 0, 0, 0]))


def test_pair_must_agree_in_length(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(idx_bytes(np.zeros((3, 2, 2), np.uint8), 0x08))
    (tmp_path / "y").write_bytes(idx_bytes(np.zeros(2, np.uint8), 0x08))
    with pytest.raises(SourceError, match=r"has 3 images but .* has 2 labels"):
        read_idx_pair(tmp_path / "x", tmp_path / "y")


def test_real_mnist_files(mnist_dir: Path) -> None:
    x, y = read_idx_pair(mnist_dir / "t10k-images-idx3-ubyte.gz", mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
