"""Layer types for dense prediction (segmentation): transposed convolution, upsampling, and crop to a layer's size.

- `conv_transpose`: Caffe's Deconvolution, (H - 1) * stride - 2 * padding + dilation * (kernel - 1) +
  output_padding + 1; `init: bilinear` starts each output channel as bilinear upsampling of its input channel
  (FCN's upscore: `groups` equal to the channels, or in = out channels), which the network may then learn.
- `upsample`: nearest or bilinear interpolation by `scale` (a number or [height, width] factors; the output is
  floor(size * scale)) or to a fixed `size`; exactly one of the two.
- `crop`: reads two inputs, the tensor to crop and a reference layer (or `input`), and keeps a window of the
  reference's height and width at `offset` ([top, left], or `center`), as Caffe's Crop layer with axis 2; a window
  that does not fit names both shapes.
Skip connections are `concat` and `sum` over named `inputs` (deepyard.networks.layers).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from deepyard.networks.layers import (
    SIZE_MAX,
    ConvParams,
    LayerType,
    NonNegativePair,
    Params,
    PositivePair,
    Shape,
    _image,
    _pair,
    register,
)

# ---------------------------------------------------------------- transposed convolution


class ConvTransposeParams(ConvParams):  # conv's parameters (kernel 3 by default), and:
    output_padding: NonNegativePair = 0  # added to one side of the output (below the stride or dilation)
    init: Literal["default", "bilinear"] = "default"


def _transposed(size: int, kernel: int, stride: int, pad: int, extra: int, dilation: int) -> int:
    return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + extra + 1


def _conv_transpose_shape(p: ConvTransposeParams, shapes: list[Shape]) -> Shape:
    c, h, w = _image(shapes, "conv_transpose")
    if c % p.groups or p.out_channels % p.groups:
        raise ValueError(f"groups={p.groups} must divide the input channels ({c}) and out_channels ({p.out_channels})")
    (kh, kw), (sh, sw), (ph, pw), (oh, ow), (dh, dw) = map(
        _pair, (p.kernel, p.stride, p.padding, p.output_padding, p.dilation)
    )
    if oh >= max(sh, dh) or ow >= max(sw, dw):
        raise ValueError(
            f"output_padding {oh}x{ow} must be smaller than the stride ({sh}x{sw}) or the dilation ({dh}x{dw})"
        )
    if p.init == "bilinear" and not (p.groups == c == p.out_channels or (p.groups == 1 and c == p.out_channels)):
        raise ValueError(
            f"init: bilinear upsamples each channel on its own: it needs as many output channels as input ({c}), "
            f"got out_channels={p.out_channels}, groups={p.groups}"
        )
    out = (_transposed(h, kh, sh, ph, oh, dh), _transposed(w, kw, sw, pw, ow, dw))
    if min(out) < 1 or max(out) > SIZE_MAX:
        raise ValueError(f"output would be {out[0]}x{out[1]} from a {h}x{w} input; sizes are 1 to {SIZE_MAX:,}")
    return (p.out_channels, *out)


def bilinear_kernel(kh: int, kw: int) -> torch.Tensor:
    """(kh, kw) weights of bilinear upsampling (FCN's upsample_filt, Caffe's bilinear filler)."""

    def axis(k: int) -> torch.Tensor:
        factor = (k + 1) // 2
        centre = factor - 1 if k % 2 == 1 else factor - 0.5
        return 1 - (torch.arange(k, dtype=torch.float32) - centre).abs() / factor

    return axis(kh)[:, None] * axis(kw)[None, :]


def _conv_transpose_build(p: ConvTransposeParams, shapes: list[Shape]) -> nn.Module:
    layer = nn.ConvTranspose2d(
        shapes[0][0], p.out_channels, _pair(p.kernel), _pair(p.stride), _pair(p.padding), _pair(p.output_padding),
        p.groups, p.bias, _pair(p.dilation),
    )  # fmt: skip
    if p.init == "bilinear" and layer.weight.device.type != "meta":
        with torch.no_grad():
            layer.weight.zero_()
            kernel = bilinear_kernel(*_pair(p.kernel))
            if p.groups == 1:  # weight (in, out, kh, kw): channel i to channel i only
                for i in range(p.out_channels):
                    layer.weight[i, i] = kernel
            else:  # weight (in, 1, kh, kw)
                layer.weight[:, 0] = kernel
            if layer.bias is not None:
                layer.bias.zero_()
    return layer


def _conv_transpose_count(p: ConvTransposeParams, shapes: list[Shape]) -> int:
    kh, kw = _pair(p.kernel)
    return shapes[0][0] * (p.out_channels // p.groups) * kh * kw + (p.out_channels if p.bias else 0)


register(
    LayerType("conv_transpose", ConvTransposeParams, _conv_transpose_shape, _conv_transpose_build,
              doc="transposed convolution (Caffe Deconvolution); init: bilinear for FCN's upscore",
              count=_conv_transpose_count)
)  # fmt: skip


# ---------------------------------------------------------------- upsampling

Scale = Annotated[float, Field(gt=0, le=256)]


class UpsampleParams(Params):
    mode: Literal["nearest", "bilinear"] = "nearest"
    scale: Scale | tuple[Scale, Scale] | None = None  # a factor, or [height, width] factors
    size: PositivePair | None = None  # or a fixed output size

    @model_validator(mode="after")
    def _one_of(self) -> UpsampleParams:
        if (self.scale is None) == (self.size is None):
            raise ValueError("give exactly one of scale (a factor) and size (an output size)")
        return self


def _factors(p: UpsampleParams) -> tuple[float, float]:
    assert p.scale is not None
    return (p.scale, p.scale) if isinstance(p.scale, int | float) else (float(p.scale[0]), float(p.scale[1]))


def _upsample_shape(p: UpsampleParams, shapes: list[Shape]) -> Shape:
    c, h, w = _image(shapes, "upsample")
    if p.size is not None:
        return (c, *_pair(p.size))
    fh, fw = _factors(p)
    out = (math.floor(h * fh), math.floor(w * fw))
    if min(out) < 1 or max(out) > SIZE_MAX:
        raise ValueError(f"output would be {out[0]}x{out[1]} from a {h}x{w} input by scale {p.scale}")
    return (c, *out)


class Upsample(nn.Module):
    """By a scale, the output size follows the input's (a fully convolutional network takes any size)."""

    def __init__(self, scale: tuple[float, float] | None, size: tuple[int, int] | None, mode: str) -> None:
        super().__init__()
        self.scale, self.size, self.mode = scale, size, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C, H', W')
        size = self.size
        if self.scale is not None:
            size = (math.floor(x.shape[-2] * self.scale[0]), math.floor(x.shape[-1] * self.scale[1]))
        if self.mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _upsample_build(p: UpsampleParams, shapes: list[Shape]) -> nn.Module:
    return Upsample(_factors(p) if p.scale is not None else None, _pair(p.size) if p.size else None, p.mode)


register(LayerType("upsample", UpsampleParams, _upsample_shape, _upsample_build,
                   doc="nearest or bilinear upsampling by a scale or to a size"))  # fmt: skip


# ---------------------------------------------------------------- crop to a reference layer's size


class CropParams(Params):
    offset: Literal["center"] | NonNegativePair = "center"  # [top, left] of the window, or centred


def _window(p: CropParams, shapes: list[Shape]) -> tuple[int, int, int, int]:
    _, h, w = _image(shapes, "crop")
    if len(shapes[1]) != 3:
        raise ValueError(f"the reference (second input) must be an image (C, H, W), got shape {shapes[1]}")
    rh, rw = shapes[1][1:]
    top, left = ((h - rh) // 2, (w - rw) // 2) if p.offset == "center" else _pair(p.offset)
    if rh > h or rw > w or top + rh > h or left + rw > w or top < 0 or left < 0:
        raise ValueError(
            f"a {rh}x{rw} window (the reference's size) at offset {top}x{left} does not fit in the {h}x{w} input "
            f"to crop; crop reads [layer to crop, reference], the reference the smaller"
        )
    return top, left, rh, rw


class Crop(nn.Module):
    """The window follows the reference's size at run time, so the network takes other input sizes too."""

    def __init__(self, offset: tuple[int, int] | None) -> None:
        super().__init__()
        self.offset = offset  # None: centred

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:  # (B, C, H, W), (B, C', h, w)
        h, w = reference.shape[-2], reference.shape[-1]
        top, left = self.offset if self.offset is not None else ((x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2)
        return x[:, :, top : top + h, left : left + w]


def _crop_build(p: CropParams, shapes: list[Shape]) -> nn.Module:
    _window(p, shapes)
    return Crop(None if p.offset == "center" else _pair(p.offset))


register(LayerType("crop", CropParams, lambda p, s: (s[0][0], *_window(p, s)[2:]), _crop_build, 2, 2,
                   "crop to the second input's height and width (Caffe Crop, axis 2)"))  # fmt: skip
