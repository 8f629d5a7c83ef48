"""Decode one image robustly, normalise its mode, resize it to the dataset's shape, and encode it.

Every way a file can be bad ends in `ImageSkipped` with a reason a person can read; nothing else escapes
`load_image`. Covers: empty, non-image and unsupported files, decompression bombs, truncated or corrupt data,
EXIF orientation, CMYK, palette and alpha transparency, 16-bit and float images, grey↔colour conversion.
It does not decide which files to look at (see `sources`) or where pixels go (see `store`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepyard.datasets.spec import DatasetSpec, Fill, ResizeMode

# File extensions looked at when walking folders, and the Pillow decoders allowed to open them. Restricting the
# decoders keeps exotic formats (EPS runs Ghostscript, for one) out of a build.
EXTENSIONS: Final = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".pbm", ".pnm", ".tif", ".tiff", ".webp", ".gif"}
)
FORMATS: Final = ("PNG", "JPEG", "BMP", "PPM", "TIFF", "WEBP", "GIF")


class ImageSkipped(Exception):
    """This image cannot be used; `reason` says why in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Geometry:
    """Target shape and how to reach it."""

    width: int
    height: int
    channels: int  # 1 or 3
    resize_mode: ResizeMode
    fill: Fill
    fill_value: int
    max_pixels: int
    alpha_background: int


def spec_geometry(spec: DatasetSpec) -> Geometry:
    """The geometry a dataset spec asks for."""
    return Geometry(spec.width, spec.height, spec.channels, spec.resize_mode, spec.fill, spec.fill_value,
                    spec.max_pixels, spec.alpha_background)  # fmt: skip


def load_image(source: str | np.ndarray, geo: Geometry) -> Image.Image:
    """Decode a file path or an (H, W[, C]) uint8 array into a PIL image of mode L or RGB, EXIF-oriented."""
    if isinstance(source, np.ndarray):
        return _normalise_mode(Image.fromarray(source), geo.channels, geo.alpha_background)
    try:
        with open(source, "rb", buffering=0) as raw:
            data = raw.read()  # one read: Pillow's many small reads are cheaper on memory
    except OSError as exc:
        raise ImageSkipped(f"cannot read: {exc.strerror or exc}") from None
    if not data:
        raise ImageSkipped("empty file (0 bytes)")
    return _decode(io.BytesIO(data), geo)


def load_image_bytes(data: bytes, geo: Geometry) -> Image.Image:
    """As `load_image`, for the bytes of an image file (an upload)."""
    if not data:
        raise ImageSkipped("empty file (0 bytes)")
    return _decode(io.BytesIO(data), geo)


def _decode(fp: io.BytesIO, geo: Geometry) -> Image.Image:
    with warnings.catch_warnings():
        # Our own pixel limit applies (below); Pillow's warning at its default limit would be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img: Image.Image = Image.open(fp, formats=FORMATS)
        except Image.DecompressionBombError as exc:
            raise ImageSkipped(f"decompression bomb: {exc}") from None
        except UnidentifiedImageError:
            raise ImageSkipped(_unidentified_reason(fp)) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:  # Pillow's words for a broken header
            raise ImageSkipped(f"corrupt or truncated image header: {exc}") from None
        width, height = img.size
        if width * height > geo.max_pixels:
            raise ImageSkipped(
                f"decompression bomb: {width}x{height} = {width * height:,} pixels, "
                f"over the limit of {geo.max_pixels:,}"
            )
        try:
            if img.format == "JPEG":
                img.draft("RGB" if geo.channels == 3 else "L", _needed_size(img.size, geo))
            img.load()
            if img.format == "TIFF" or "exif" in img.info:  # the check is cheap, the transpose is not
                img = ImageOps.exif_transpose(img)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise ImageSkipped(f"corrupt or truncated {img.format} data: {exc}") from None
    return _normalise_mode(img, geo.channels, geo.alpha_background)


def _unidentified_reason(fp: io.BytesIO) -> str:
    """Tell an image in a format we do not decode from a file that is no image at all."""
    fp.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other = Image.open(fp)
            fmt = other.format
    except Exception:
        return "not an image (no known image format)"
    return f"unsupported image format {fmt}; supported: {', '.join(FORMATS)}"


def _needed_size(size: tuple[int, int], geo: Geometry) -> tuple[int, int]:
    """The smallest decoded size that still resizes to the target without upsampling (for JPEG draft)."""
    scale = _scale(size, geo)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _normalise_mode(img: Image.Image, channels: int, background: int) -> Image.Image:
    """Bring any Pillow mode to L (channels=1) or RGB (channels=3)."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        img = _sixteen_to_eight(np.asarray(img))
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        arr = arr * 255.0 if np.nanmax(arr, initial=0.0) <= 1.0 else arr
        img = Image.fromarray(np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8))
    elif (mode == "P" and "transparency" in img.info) or mode in ("PA", "RGBa", "La"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        img = _composite(img, background)
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)


def _sixteen_to_eight(arr: np.ndarray) -> Image.Image:
    """Scale 16-bit (or wider integer) samples to 8 bits, keeping the full range (not clipping at 255)."""
    wide = arr.astype(np.int64)
    top = int(wide.max(initial=0))
    if top <= 65535:
        scaled = (np.clip(wide, 0, 65535) * 255 + 32767) // 65535
    else:  # 32-bit data: stretch its own range
        scaled = np.clip(wide, 0, None) * 255 // top
    return Image.fromarray(scaled.astype(np.uint8))


def _composite(img: Image.Image, background: int) -> Image.Image:
    """Flatten transparency onto a uniform grey level."""
    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (background, background, background, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def _scale(size: tuple[int, int], geo: Geometry) -> float:
    """Uniform scale factor of each mode (squash has none: it scales the axes separately)."""
    rx, ry = geo.width / size[0], geo.height / size[1]
    if geo.resize_mode is ResizeMode.crop:
        return max(rx, ry)
    if geo.resize_mode is ResizeMode.fill:
        return min(rx, ry)
    if geo.resize_mode is ResizeMode.half_crop:
        return (rx + ry) / 2
    return max(rx, ry)  # squash: draft must not go below either target side


def resize(
    img: Image.Image | np.ndarray,
    geo: Geometry,
    noise_seed: object = None,
    resample: Image.Resampling = Image.Resampling.BILINEAR,
) -> np.ndarray:
    """Resize an image (or its (H, W[, C]) pixels) to (height, width, channels) uint8 with the spec's mode.

    `noise_seed` seeds the noise padding (numpy SeedSequence entropy), so padding is reproducible. `resample`:
    NEAREST for masks of class indices, which must never be interpolated.
    """
    size = (img.shape[1], img.shape[0]) if isinstance(img, np.ndarray) else img.size
    if geo.resize_mode is ResizeMode.squash:
        scaled_size = (geo.width, geo.height)
    else:
        scale = _scale(size, geo)
        scaled_size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    if size != scaled_size:
        img = (Image.fromarray(img) if isinstance(img, np.ndarray) else img).resize(scaled_size, resample)
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return _centre_on_canvas(arr, geo, noise_seed)


def _centre_on_canvas(arr: np.ndarray, geo: Geometry, noise_seed: object) -> np.ndarray:
    """Centre-crop each axis that is too long, and pad each axis that is too short."""
    h, w = arr.shape[:2]
    top, left = max(0, (h - geo.height) // 2), max(0, (w - geo.width) // 2)
    arr = arr[top : top + geo.height, left : left + geo.width]
    h, w = arr.shape[:2]
    if (h, w) == (geo.height, geo.width):
        return np.ascontiguousarray(arr)
    shape = (geo.height, geo.width, arr.shape[2])
    if geo.fill is Fill.noise:
        rng = np.random.default_rng(noise_seed)  # type: ignore[arg-type]
        canvas = rng.integers(0, 256, size=shape, dtype=np.uint8)
    else:
        canvas = np.full(shape, geo.fill_value, dtype=np.uint8)
    y, x = (geo.height - h) // 2, (geo.width - w) // 2
    canvas[y : y + h, x : x + w] = arr
    return canvas


def encode(arr: np.ndarray, fmt: str, jpeg_quality: int = 90) -> bytes:
    """Encode an (H, W, C) uint8 array as PNG or JPEG bytes."""
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=jpeg_quality)
    return buf.getvalue()


def decode_stored(blob: bytes | memoryview, channels: int) -> np.ndarray:
    """Decode bytes written by `encode` back to (H, W, C) uint8."""
    with Image.open(io.BytesIO(blob)) as img:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"))
    return arr[:, :, None] if arr.ndim == 2 else arr
