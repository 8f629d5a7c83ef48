"""Resize modes on known shapes, and mode normalisation (16-bit, CMYK, palette transparency, EXIF, grey/colour)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deepyard.datasets.images import Geometry, ImageSkipped, decode_stored, encode, load_image, resize
from deepyard.datasets.spec import Fill, ResizeMode


def geo(width: int, height: int, mode: str, channels: int = 3, fill: Fill = Fill.constant) -> Geometry:
    return Geometry(width, height, channels, ResizeMode(mode), fill, 7, 10**8, 255)


def halves(width: int = 40, height: int = 20) -> Image.Image:
    """Left half red, right half blue."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2] = (255, 0, 0)
    arr[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(arr)


def test_squash_ignores_aspect_ratio() -> None:
    out = resize(halves(), geo(10, 10, "squash"))
    assert out.shape == (10, 10, 3)
    assert (out[:, :4] == (255, 0, 0)).all() and (out[:, 6:] == (0, 0, 255)).all()


def test_crop_fits_short_side_and_centre_crops() -> None:
    # 40x20 scaled by max(10/40, 10/20) = 0.5 to 20x10, then the middle 10 columns: 5 red, 5 blue.
    out = resize(halves(), geo(10, 10, "crop"))
    assert out.shape == (10, 10, 3)
    assert (out[:, :4] == (255, 0, 0)).all() and (out[:, 6:] == (0, 0, 255)).all()
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 15:25] = 200  # only the centre survives a crop to 10 columns at scale 0.5
    out = resize(Image.fromarray(wide), geo(10, 10, "crop"))
    assert out[:, 3:7].min() >= 150 and out[:, 0].max() < 60 and out[:, 9].max() < 60


def test_fill_fits_long_side_and_pads_short_side() -> None:
    # 40x20 scaled by min(0.25, 0.5) to 10x5, pasted at row (10 - 5) // 2 = 2 on a constant-7 canvas.
    out = resize(halves(), geo(10, 10, "fill"))
    assert out.shape == (10, 10, 3)
    assert (out[:2] == 7).all() and (out[7:] == 7).all()
    assert (out[2:7, :4] == (255, 0, 0)).all()


def test_half_crop_crops_long_side_and_pads_short_side() -> None:
    # Mean ratio (0.25 + 0.5) / 2 = 0.375: 40x20 -> 15x8; 15 columns cropped to 10, 8 rows padded to 10.
    out = resize(halves(), geo(10, 10, "half_crop"))
    assert out.shape == (10, 10, 3)
    assert (out[0] == 7).all() and (out[9] == 7).all()
    assert not (out[1:9] == 7).all(axis=-1).any()


def test_noise_fill_is_random_but_seeded() -> None:
    g = geo(10, 10, "fill", fill=Fill.noise)
    a = resize(halves(), g, 1)
    b = resize(halves(), g, 1)
    c = resize(halves(), g, 2)
    assert (a == b).all() and not (a[:2] == c[:2]).all()
    assert len(np.unique(a[:2])) > 20  # noise, not a constant


def test_grayscale_output_has_one_channel_and_uses_luma() -> None:
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    img = load_image(red, geo(4, 4, "squash", channels=1))
    assert img.mode == "L" and np.asarray(img)[0, 0] == 76  # ITU-R 601-2: 0.299 * 255
    grey = load_image(np.full((4, 4), 100, np.uint8), geo(4, 4, "squash", channels=3))
    assert grey.mode == "RGB" and tuple(np.asarray(grey)[0, 0]) == (100, 100, 100)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path, fmt: str) -> None:
    ramp = np.linspace(0, 65535, 64 * 8).astype(np.uint16).reshape(8, 64)
    path = tmp_path / f"deep.{fmt.lower()}"
    Image.fromarray(ramp).save(path, format=fmt)
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    out = np.asarray(load_image(str(path), geo(64, 8, "squash", channels=1)))
    expected = np.round(ramp / 257.0)
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert out.min() == 0 and out.max() == 255 and 100 < np.median(out) < 155


def test_cmyk_jpeg_becomes_rgb(tmp_path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("RGB", (16, 16), (200, 30, 30)).convert("CMYK").save(path, quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    out = np.asarray(load_image(str(path), geo(16, 16, "squash")))
    assert np.abs(out.astype(int) - (200, 30, 30)).max() < 12


def test_palette_transparency_is_composited_on_the_background(tmp_path) -> None:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (0, 0, 4, 8))  # left half red, right half index 0 = transparent black
    path = tmp_path / "pal.png"
    img.save(path, transparency=0)
    out = np.asarray(load_image(str(path), geo(8, 8, "squash")))
    assert (out[:, :4] == (255, 0, 0)).all()
    assert (out[:, 4:] == 255).all()  # alpha_background 255, not the palette's black


def test_exif_orientation_is_applied(tmp_path) -> None:
    arr = np.zeros((10, 20), np.uint8)
    arr[:, 10:] = 255  # stored: left black, right white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=100)
    out = np.asarray(load_image(str(path), geo(10, 20, "squash", channels=1)))
    assert out.shape == (20, 10)  # displayed portrait
    assert out[:8].max() < 40 and out[12:].min() > 215  # top black, bottom white


def test_png_round_trip_is_lossless() -> None:
    arr = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    assert (decode_stored(encode(arr, "png"), 3) == arr).all()
    grey = arr[:, :, :1]
    assert (decode_stored(encode(grey, "png"), 1) == grey).all()


def test_jpeg_round_trip_is_close() -> None:
    arr = np.full((16, 16, 3), (120, 60, 200), np.uint8)
    out = decode_stored(encode(arr, "jpeg", 95), 3)
    assert np.abs(out.astype(int) - arr).max() <= 4


def test_bomb_over_pixel_limit_is_refused_before_decoding(tmp_path) -> None:
    path = tmp_path / "big.png"
    Image.new("1", (6000, 5000)).save(path)  # 30 M pixels in a few kB
    g = Geometry(8, 8, 1, ResizeMode.squash, Fill.constant, 0, 10_000_000, 255)
    with pytest.raises(ImageSkipped, match="decompression bomb: 6000x5000"):
        load_image(str(path), g)


def test_encode_is_a_valid_png() -> None:
    data = encode(np.zeros((3, 3, 1), np.uint8), "png")
    with Image.open(io.BytesIO(data)) as check:
        assert check.format == "PNG"
