"""Pictures as PNG bytes, drawn with Pillow: confusion-matrix heat map, captioned image grids, tiled feature maps,
histograms and heat-map overlays. The web UI shows the same files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (30, 30, 30)


def font(size: int = 12) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] → RGB uint8 along a perceptually ordered ramp (dark blue → teal → yellow, like viridis)."""
    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float64)
    pos = np.clip(values, 0, 1) * (len(stops) - 1)
    low = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    frac = (pos - low)[..., None]
    rgb: np.ndarray = (stops[low] * (1 - frac) + stops[low + 1] * frac).round().astype(np.uint8)
    return rgb


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1) or (H, W, 3) uint8 → (H, W, 3)."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def confusion_png(confusion: np.ndarray, classes: Sequence[str], cell: int = 0) -> bytes:
    """Heat map of the row-normalised confusion matrix (recall per cell), counts written in the cells."""
    k = len(classes)
    cell = cell or max(14, min(48, 720 // max(k, 1)))
    label_font = font(11)
    caption = "rows: true class · columns: predicted"
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = min(160, 8 + round(max(measure.textlength(c[:20], font=label_font) for c in classes)))
    top = label_w
    width = max(label_w + cell * k + 10, label_w + round(measure.textlength(caption, font=label_font)) + 8)
    img = Image.new("RGB", (width, top + cell * k + 30), BACKGROUND)  # wide enough for the caption
    draw = ImageDraw.Draw(img)
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape, np.float64), where=rows > 0)
    colours = colormap(share)
    small = font(max(8, min(12, cell // 3)))
    for i in range(k):
        for j in range(k):
            x, y = label_w + j * cell, top + i * cell
            rgb = tuple(int(c) for c in colours[i, j])
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=rgb)
            if cell >= 20 and confusion[i, j]:
                ink = INK if share[i, j] > 0.6 else (255, 255, 255)
                draw.text((x + cell / 2, y + cell / 2), str(int(confusion[i, j])), fill=ink, font=small, anchor="mm")
    for i, name in enumerate(classes):
        draw.text((label_w - 4, top + i * cell + cell / 2), name[:20], fill=INK, font=label_font, anchor="rm")
        column = Image.new("RGBA", (label_w, cell), (0, 0, 0, 0))
        ImageDraw.Draw(column).text((4, cell / 2), name[:20], fill=INK, font=label_font, anchor="lm")
        img.paste(column.rotate(90, expand=True), (label_w + i * cell, 0), column.rotate(90, expand=True))
    draw.text((label_w, top + cell * k + 8), caption, fill=INK, font=label_font)
    return png(img)


# What a caption writes instead of a character the font has no glyph for (Pillow's default font has no arrow: it
# drew a box in "7 → 1"); anything else it lacks is left as it is. Arrows, times, at least/most, dashes, squared, micro.
PLAIN = {"\u2192": "->", "\u2190": "<-", "\u00d7": "x", "\u2265": ">=", "\u2264": "<=", "\u2013": "-",
         "\u2014": "-", "\u00b2": "^2", "\u00b5": "u"}  # fmt: skip


def drawable(text: str, face: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> str:
    """`text` with each character of PLAIN that `face` cannot draw written the plain way."""
    if text.isascii():
        return text
    missing = _missing_glyph(face)
    return "".join(PLAIN[ch] if ch in PLAIN and _glyph(face, ch) == missing else ch for ch in text)


def _glyph(face: ImageFont.FreeTypeFont | ImageFont.ImageFont, ch: str) -> bytes:
    mask = face.getmask(ch)
    return bytes(mask) + bytes(str(mask.size), "ascii")


def _missing_glyph(face: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> bytes:
    return _glyph(face, "\uffff")  # a noncharacter: the font's "no glyph" box


def fit_text(
    draw: ImageDraw.ImageDraw, text: str, face: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float
) -> str:
    """`text` as it fits in `width` pixels (characters the font cannot draw written plainly first): whole, or cut
    short with an ellipsis."""
    text = drawable(text, face)
    if draw.textlength(text, font=face) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=face) > width:
        text = text[:-1]
    return text + "…"


def grid_png(
    images: Sequence[np.ndarray], captions: Sequence[str], columns: int = 8, tile: int = 96, empty: str = "none"
) -> bytes:
    """Images scaled to `tile` pixels wide in a grid, each with a caption under it; `empty` written when none."""
    if not images:
        img = Image.new("RGB", (max(tile, 8 * len(empty) + 16), 32), BACKGROUND)
        ImageDraw.Draw(img).text((8, 16), empty, fill=INK, font=font(12), anchor="lm")
        return png(img)
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    caption_h = 30
    img = Image.new("RGB", (columns * (tile + 6), rows * (tile + caption_h)), BACKGROUND)
    draw = ImageDraw.Draw(img)
    small = font(10)
    for n, (pixels, caption) in enumerate(zip(images, captions, strict=True)):
        x, y = (n % columns) * (tile + 6), (n // columns) * (tile + caption_h)
        shrink = pixels.shape[0] > tile or pixels.shape[1] > tile  # smoothly: drawn labels stay whole
        thumb = Image.fromarray(to_rgb(pixels)).resize((tile, tile), Image.Resampling.LANCZOS if shrink
                                                       else Image.Resampling.NEAREST)  # fmt: skip
        img.paste(thumb, (x + 3, y))
        for line, text in enumerate(caption.split("\n")[:2]):
            draw.text((x + 3, y + tile + 2 + 12 * line), fit_text(draw, text, small, tile), fill=INK, font=small)
    return png(img)


def sheet_png(images: Sequence[np.ndarray], columns: int, tile: int = 96) -> bytes:
    """Images scaled to `tile` pixels, edge to edge in rows of `columns` and no captions: a sheet that a page cuts
    into tiles (CSS background positions) and captions in HTML, at reading size and in the page's fonts."""
    columns = max(1, columns)
    rows = max(1, -(-len(images) // columns))
    img = Image.new("RGB", (columns * tile, rows * tile), BACKGROUND)
    for n, pixels in enumerate(images):
        shrink = pixels.shape[0] > tile or pixels.shape[1] > tile  # smoothly: drawn labels stay whole
        thumb = Image.fromarray(to_rgb(pixels)).resize((tile, tile), Image.Resampling.LANCZOS if shrink
                                                       else Image.Resampling.NEAREST)  # fmt: skip
        img.paste(thumb, ((n % columns) * tile, (n // columns) * tile))
    return png(img)


def tiles(maps: np.ndarray, columns: int = 0, pad: int = 1, scale: int = 0) -> np.ndarray:
    """(N, H, W) float maps → one (rows*H, cols*W) uint8 image, each map scaled to its own min..max."""
    n, h, w = maps.shape
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = -(-n // columns)
    low = maps.reshape(n, -1).min(axis=1)[:, None, None]
    high = maps.reshape(n, -1).max(axis=1)[:, None, None]
    norm = np.divide(maps - low, high - low, out=np.zeros_like(maps, dtype=np.float64), where=(high - low) > 0)
    out = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = (norm[i] * 255).round()
    if scale == 0:
        scale = max(1, 256 // max(out.shape))
    return np.kron(out, np.ones((scale, scale), np.uint8)) if scale > 1 else out


def histogram_png(counts: Sequence[int], edges: Sequence[float], width: int = 240, height: int = 80) -> bytes:
    """Bars of a histogram with its range written under it."""
    img = Image.new("RGB", (width, height + 16), BACKGROUND)
    draw = ImageDraw.Draw(img)
    peak = max(max(counts), 1)
    bar = width / len(counts)
    for i, count in enumerate(counts):
        top = height - height * count / peak
        draw.rectangle([i * bar, top, (i + 1) * bar - 1, height], fill=(59, 82, 139))
    small = font(10)
    draw.text((0, height + 2), f"{edges[0]:.3g}", fill=INK, font=small)
    draw.text((width, height + 2), f"{edges[-1]:.3g}", fill=INK, font=small, anchor="ra")
    return png(img)


def overlay(pixels: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heat map (same H, W) over an image: RGB uint8."""
    base = to_rgb(pixels).astype(np.float64)
    mixed: np.ndarray = (base * (1 - alpha) + colormap(heat).astype(np.float64) * alpha).round().astype(np.uint8)
    return mixed


def enlarge(pixels: np.ndarray, side: int = 224) -> Image.Image:
    """An image scaled up (nearest) so small inputs such as 28x28 digits are visible."""
    img = Image.fromarray(to_rgb(pixels))
    scale = max(1, side // max(img.size))
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def scatter_png(true: np.ndarray, predicted: np.ndarray, title: str, size: int = 360) -> bytes:
    """Predicted against true values, with the y = x line: points on the line are right."""
    img = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(img)
    pad = 36
    values = np.concatenate([true, predicted]) if len(true) else np.zeros(1)
    low, high = float(values.min()), float(values.max())
    high = high if high > low else low + 1.0

    def at(x: float, y: float) -> tuple[float, float]:
        span = size - 2 * pad
        return pad + (x - low) / (high - low) * span, size - pad - (y - low) / (high - low) * span

    draw.rectangle([pad, pad, size - pad, size - pad], outline=(180, 180, 180))
    draw.line([at(low, low), at(high, high)], fill=(200, 60, 60), width=1)
    for x, y in zip(true.tolist(), predicted.tolist(), strict=True):
        cx, cy = at(x, y)
        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=(33, 100, 160))
    small = font(11)
    draw.text((pad, 8), title, fill=INK, font=font(12))
    draw.text((pad, size - pad + 6), f"true {low:.3g} … {high:.3g}", fill=INK, font=small)
    draw.text((4, pad - 14), "predicted", fill=INK, font=small)
    return png(img)
