"""On-line augmentation of whole batches on the training device, and cropping.

Input and output: float (B, C, H, W) in pixel units (0 to 255), before mean subtraction. Every random draw comes
from one `torch.Generator`, whose state is saved in checkpoints, so a resumed run draws the same augmentations.
Each operation is vectorised over the batch: no per-image Python loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deepyard.errors import InvalidValueError
from deepyard.train.config import AugmentConfig


def check_augment(a: AugmentConfig, shape: tuple[int, int, int]) -> None:
    """Refuse settings the dataset's images cannot take, before training starts."""
    c, h, w = shape
    if a.rot90 in ("rot90", "rotall") and h != w:
        raise InvalidValueError(f"augment.rot90={a.rot90!r} needs square images; these are {w}x{h} (use rot180)")
    if (a.hsv_h or a.hsv_s or a.hsv_v) and c != 3:
        raise InvalidValueError("augment.hsv_* shifts need colour (3-channel) images; this dataset has 1 channel")


def augment(x: torch.Tensor, a: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Apply the augmentations of `a` to a batch (B, C, H, W) of pixel values."""
    b = x.shape[0]
    if a.invert:
        x = torch.where(_coin(b, a.invert, g, x), 255.0 - x, x)
    if a.flip in ("lr", "lrud"):
        x = torch.where(_coin(b, 0.5, g, x), x.flip(3), x)
    if a.flip in ("ud", "lrud"):
        x = torch.where(_coin(b, 0.5, g, x), x.flip(2), x)
    if a.rot90 != "none":
        x = _quarter_turns(x, a.rot90, g)
    if a.rotation or a.scale:
        x = _affine(x, a.rotation, a.scale, g)
    if a.contrast:
        factor = 1 + a.contrast * (2 * _uniform(b, g, x) - 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * factor.clamp(min=0) + mean
    if a.hsv_h or a.hsv_s or a.hsv_v:
        x = _hsv_shift(x, a, g)
    if a.noise:
        x = x + torch.randn(x.shape, generator=g, device=x.device) * (a.noise * 255.0)
    return x.clamp(0, 255)


def _uniform(b: int, g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, 1) uniform draws in [0, 1)."""
    return torch.rand(b, 1, 1, 1, generator=g, device=like.device)


def _coin(b: int, p: float, g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return _uniform(b, g, like) < p


def _quarter_turns(x: torch.Tensor, mode: str, g: torch.Generator) -> torch.Tensor:
    choices = {"rot90": [0, 1], "rot180": [0, 2], "rotall": [0, 1, 2, 3]}[mode]
    pick = torch.randint(len(choices), (x.shape[0],), generator=g, device=x.device)
    out = x.clone()
    for i, k in enumerate(choices):
        if k:
            mask = pick == i
            out[mask] = torch.rot90(x[mask], k, dims=(2, 3))
    return out


def _affine(x: torch.Tensor, degrees: float, scale_std: float, g: torch.Generator) -> torch.Tensor:
    """Rotate by U(-degrees, degrees) and zoom by 1 + N(0, scale_std), about the centre; zeros fill."""
    b = x.shape[0]
    angle = (torch.rand(b, generator=g, device=x.device) * 2 - 1) * math.radians(degrees)
    zoom = (1 + torch.randn(b, generator=g, device=x.device) * scale_std).clamp(0.5, 2.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _hsv_shift(x: torch.Tensor, a: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    h, s, v = rgb_to_hsv(x / 255.0).unbind(1)
    b = x.shape[0]
    shift = torch.randn(3, b, 1, 1, generator=g, device=x.device)
    h = (h + shift[0] * a.hsv_h) % 1.0
    s = (s + shift[1] * a.hsv_s).clamp(0, 1)
    v = (v + shift[2] * a.hsv_v).clamp(0, 1)
    return hsv_to_rgb(torch.stack([h, s, v], 1)) * 255.0


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> HSV in [0, 1]."""
    red, green, blue = rgb.unbind(1)
    maxc = rgb.amax(1)
    delta = maxc - rgb.amin(1)
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        maxc == red,
        (green - blue) / safe % 6,
        torch.where(maxc == green, (blue - red) / safe + 2, (red - green) / safe + 4),
    )
    hue = torch.where(delta > 0, hue / 6, torch.zeros_like(hue))
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack([hue, sat, maxc], 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) HSV in [0, 1] -> RGB in [0, 1]."""
    h, s, v = hsv.unbind(1)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)  # R, G, B
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def crop(x: torch.Tensor, size: int, g: torch.Generator | None) -> torch.Tensor:
    """Square crops of `size`: random per image when `g` is given (training), else the centre."""
    b, _, h, w = x.shape
    if size > min(h, w):
        raise InvalidValueError(f"crop_size {size} is larger than the images ({w}x{h})")
    if g is None:
        top, left = (h - size) // 2, (w - size) // 2
        return x[:, :, top : top + size, left : left + size]
    tops = torch.randint(h - size + 1, (b,), generator=g, device=x.device)
    lefts = torch.randint(w - size + 1, (b,), generator=g, device=x.device)
    span = torch.arange(size, device=x.device)
    rows = (tops[:, None] + span)[:, None, :, None]  # (B, 1, size, 1)
    cols = (lefts[:, None] + span)[:, None, None, :]  # (B, 1, 1, size)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return x[batch, channel, rows, cols]
