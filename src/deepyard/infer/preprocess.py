"""The preprocessing a model was trained with, as plain data, applied to new images exactly as in training.

Two stages, the same two as training: the dataset build (decode, channels, resize mode, size: `load_pixels`) turns a
file into stored pixels; the trainer's evaluation transform (mean subtraction, centre crop, scale by 1/255:
`to_input`) turns stored pixels into the network's input. Exported models (ONNX, TorchScript) contain the second
stage, so they take resized pixels in 0..255 and give logits.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from deepyard.datasets.images import FORMATS, Geometry, load_image, load_image_bytes, resize
from deepyard.datasets.spec import DatasetSpec, Fill, ResizeMode

NOISE_SEED = 0  # padding noise for images classified one by one: fixed, so a result is reproducible


@dataclass(frozen=True)
class Preprocessing:
    """How an image file becomes the network's input."""

    width: int
    height: int
    channels: int
    resize_mode: str = "squash"
    fill: str = "noise"
    fill_value: int = 0
    alpha_background: int = 255
    max_pixels: int = 178_956_970
    mean: str = "none"  # none, image or pixel
    crop_size: int | None = None
    input_mean: tuple[float, ...] | None = None  # per channel on the 0..1 scale; replaces `mean` when set
    input_std: tuple[float, ...] | None = None  # per channel on the 0..1 scale: the input is divided by it
    mean_pixels: np.ndarray | None = field(default=None, compare=False, repr=False)  # (H, W, C) float32

    @classmethod
    def from_dataset(cls, spec: DatasetSpec, mean: str, crop_size: int | None, mean_image: np.ndarray | None,
                     input_mean: list[float] | None = None, input_std: list[float] | None = None) -> (
        Preprocessing
    ):  # fmt: skip
        return cls(
            width=spec.width, height=spec.height, channels=spec.channels, resize_mode=spec.resize_mode.value,
            fill=spec.fill.value, fill_value=spec.fill_value, alpha_background=spec.alpha_background,
            max_pixels=spec.max_pixels, mean="none" if input_mean is not None else mean, crop_size=crop_size,
            input_mean=_floats(input_mean), input_std=_floats(input_std),
            mean_pixels=None if mean == "none" or mean_image is None or input_mean is not None
            else mean_image.astype(np.float32),
        )  # fmt: skip

    @classmethod
    def from_config(cls, spec: DatasetSpec, config: dict[str, Any], mean_image: np.ndarray | None) -> Preprocessing:
        """As a run with this TrainConfig (as data) trained on a dataset built with `spec`."""
        return cls.from_dataset(spec, config.get("mean", "image"), config.get("crop_size"), mean_image,
                                config.get("input_mean"), config.get("input_std"))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """Everything but the mean image (stored beside it as an array)."""
        return {
            "width": self.width, "height": self.height, "channels": self.channels, "resize_mode": self.resize_mode,
            "fill": self.fill, "fill_value": self.fill_value, "alpha_background": self.alpha_background,
            "max_pixels": self.max_pixels, "mean": self.mean, "crop_size": self.crop_size,
            "input_shape": list(self.input_shape), "scale": 1 / 255,
            "input_mean": _listed(self.input_mean), "input_std": _listed(self.input_std),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any], mean_pixels: np.ndarray | None) -> Preprocessing:
        keys = ("width", "height", "channels", "resize_mode", "fill", "fill_value", "alpha_background", "max_pixels",
                "mean", "crop_size")  # fmt: skip
        return cls(**{k: data[k] for k in keys if k in data}, input_mean=_floats(data.get("input_mean")),
                   input_std=_floats(data.get("input_std")), mean_pixels=mean_pixels)  # fmt: skip

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.width, self.height, self.channels, ResizeMode(self.resize_mode), Fill(self.fill),
                        self.fill_value, self.max_pixels, self.alpha_background)  # fmt: skip

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the network's input."""
        side = self.crop_size
        return (self.channels, side or self.height, side or self.width)

    def load_pixels(self, source: str | bytes | np.ndarray) -> np.ndarray:
        """A file path, a file's bytes or an (H, W[, C]) array → (H, W, C) uint8 at the dataset's size.

        Raises `ImageSkipped` with a readable reason for anything that is not a usable image. Pixels already at the
        dataset's (H, W, C) are used as they are (a dataset's stored images: what training saw).
        """
        geo = self.geometry
        if isinstance(source, np.ndarray):
            if source.shape == (self.height, self.width, self.channels) and source.dtype == np.uint8:
                return np.array(source)
            source = source[:, :, 0] if source.ndim == 3 and source.shape[2] == 1 else source  # (H, W): mode L
        img = load_image_bytes(source, geo) if isinstance(source, bytes) else load_image(source, geo)
        pixels = resize(np.asarray(img), geo, NOISE_SEED)
        return pixels if pixels.flags.writeable else pixels.copy()

    def input_module(self) -> InputTransform:
        std = None if self.input_std is None else torch.tensor(self.input_std).view(-1, 1, 1)
        return InputTransform(self.mean_tensor(), self.crop_size, std)

    def mean_tensor(self) -> torch.Tensor | None:
        """The mean to subtract, (C, H, W) or (C, 1, 1), in pixel units; None without mean subtraction."""
        if self.input_mean is not None:
            return (torch.tensor(self.input_mean) * 255).view(-1, 1, 1)
        if self.mean == "none" or self.mean_pixels is None:
            return None
        mean = torch.from_numpy(np.ascontiguousarray(self.mean_pixels)).permute(2, 0, 1).float()
        return mean.mean(dim=(1, 2), keepdim=True) if self.mean == "pixel" else mean


class InputTransform(nn.Module):
    """Stored pixels (B, C, H, W) in 0..255 → network input: minus the mean, centre crop, times 1/255, divided by
    the per-channel std when there is one.

    The same arithmetic as the trainer's evaluation transform (`train.data.Preprocessor` with train=False), as a
    module so that exported models carry it.
    """

    def __init__(self, mean: torch.Tensor | None, crop_size: int | None, std: torch.Tensor | None = None) -> None:
        super().__init__()
        self.crop_size = crop_size
        self.subtract = mean is not None
        self.divide = std is not None
        self.mean: torch.Tensor
        self.inv_std: torch.Tensor
        self.register_buffer("mean", mean if mean is not None else torch.zeros(1), persistent=False)
        self.register_buffer("inv_std", 1.0 / std if std is not None else torch.ones(1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float()
        if self.subtract:
            x = x - self.mean
        if self.crop_size is not None:
            h, w = x.shape[-2], x.shape[-1]
            top, left = (h - self.crop_size) // 2, (w - self.crop_size) // 2
            x = x[:, :, top : top + self.crop_size, left : left + self.crop_size]
        x = x * (1.0 / 255.0)
        return x * self.inv_std if self.divide else x


def header_size(source: bytes | Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header, reading no pixel data; None when it is not an image we
    decode (loading it then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            fp = io.BytesIO(source) if isinstance(source, bytes) else source
            with Image.open(fp, formats=FORMATS) as img:
                width, height = img.size
    except Image.DecompressionBombError:  # so large that Pillow refuses even to open it
        return (2**31 - 1, 2**31 - 1)
    except (OSError, SyntaxError, ValueError, EOFError):  # not an image, or a damaged header
        return None
    return int(width), int(height)


def to_batch(pixels: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 images → one (B, C, H, W) uint8 tensor."""
    arr = np.stack(pixels) if isinstance(pixels, list) else pixels
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)


def _floats(values: Any) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def _listed(values: tuple[float, ...] | None) -> list[float] | None:
    return None if values is None else list(values)
