"""Read IDX files (the MNIST, Fashion-MNIST, EMNIST and KMNIST layout), gzipped or not.

Format: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per dimension, then the data
in C order. Returns numpy arrays; says nothing about what the arrays mean.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np

from deepyard.errors import SourceError

_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read a whole IDX file (`.gz` or plain) into an array in native byte order."""
    try:
        with path.open("rb") as fp:
            gzipped = fp.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as fp:
            data = fp.read()
    except (OSError, EOFError) as exc:
        raise SourceError(f"cannot read IDX file {str(path)!r}: {exc}") from None
    return parse_idx(data, str(path))


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise SourceError(f"{name!r} is not an IDX file (it must start with two zero bytes)")
    code, ndim = data[2], data[3]
    if code not in _TYPES:
        valid = ", ".join(f"0x{c:02X}" for c in _TYPES)
        raise SourceError(f"{name!r}: unknown IDX type code 0x{code:02X}; valid: {valid}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise SourceError(f"{name!r}: IDX header declares {ndim} dimensions but the file is too short")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _TYPES[code]
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise SourceError(f"{name!r}: IDX shape {tuple(shape)} needs {expected:,} bytes, the file has {len(data):,}")
    arr: np.ndarray = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file (N, H, W[, C]) uint8 and its labels file (N,) as int64, checking they agree."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim not in (3, 4) or x.dtype != np.uint8:
        raise SourceError(
            f"{str(images)!r}: expected uint8 images of shape (N, H, W) or (N, H, W, C), got {x.dtype} {tuple(x.shape)}"
        )
    if y.ndim != 1:
        raise SourceError(f"{str(labels)!r}: expected a 1-D labels array, got shape {tuple(y.shape)}")
    if len(x) != len(y):
        raise SourceError(f"{str(images)!r} has {len(x):,} images but {str(labels)!r} has {len(y):,} labels")
    return x, y.astype(np.int64)
