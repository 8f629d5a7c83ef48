"""The layer types a spec may use: for each, its parameters (typed, with ranges), its output shape, and its module.

Shapes exclude the batch: (C, H, W) for images, (F,) for flat features. Output shapes are computed here, before
anything is built, so a bad spec gets a message that names the layer, the shapes and the valid range. Each type
also counts its parameters from the shapes, so a layer too large for the memory is refused before a weight is
allocated. Every number is finite and bounded. Adding a layer type is adding one `register(...)` call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from deepyard.errors import SpecError, choices

Shape = tuple[int, ...]
SIZE_MAX = 65_536  # kernels, strides, paddings, dilations, groups, pieces
WIDTH_MAX = 1 << 24  # channels and features of one layer (16,777,216)
Positive = Annotated[int, Field(ge=1, le=SIZE_MAX)]
NonNegative = Annotated[int, Field(ge=0, le=SIZE_MAX)]
Pair = int | tuple[int, int]
PositivePair = Positive | tuple[Positive, Positive]  # a size, or (height, width)
NonNegativePair = NonNegative | tuple[NonNegative, NonNegative]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _no_weights(p: Any, shapes: list[Shape]) -> int:
    return 0


@dataclass(frozen=True)
class LayerType:
    name: str
    params: type[Params]
    shape: Callable[[Any, list[Shape]], Shape]
    build: Callable[[Any, list[Shape]], nn.Module]
    min_inputs: int = 1
    max_inputs: int | None = 1
    doc: str = ""
    count: Callable[[Any, list[Shape]], int] = _no_weights  # parameters and buffers the module will hold


LAYER_TYPES: dict[str, LayerType] = {}


def register(layer: LayerType) -> None:
    if layer.name in LAYER_TYPES:
        raise ValueError(f"layer type {layer.name!r} is registered twice")
    LAYER_TYPES[layer.name] = layer


def get_layer_type(name: str, layer: str) -> LayerType:
    if name not in LAYER_TYPES:
        raise SpecError(f"layer {layer!r}: unknown type {name!r}; valid types: {', '.join(sorted(LAYER_TYPES))}")
    return LAYER_TYPES[name]


def parse_params(kind: LayerType, raw: dict[str, Any], layer: str) -> Params:
    """Validate a layer's parameters; unknown names and out-of-range values name the valid ones."""
    names = [field.alias or name for name, field in kind.params.model_fields.items()]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        valid = ", ".join(names) or "none"
        raise SpecError(f"layer {layer!r} ({kind.name}): unknown parameter(s) {unknown}; valid: {valid}")
    try:
        return kind.params.model_validate(raw)
    except ValidationError as exc:
        first: dict[object, str] = {}  # a union (size or pair) reports once per member: keep the first
        for e in exc.errors():
            field = e["loc"][0] if e["loc"] else "params"
            first.setdefault(field, f"{field} = {raw.get(str(field))!r}: {e['msg']}")
        problems = list(first.values())
        raise SpecError(f"layer {layer!r} ({kind.name}): " + "; ".join(problems)) from None


def _pair(v: Pair) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _image(shapes: list[Shape], what: str) -> tuple[int, int, int]:
    if len(shapes[0]) != 3:
        raise ValueError(f"{what} needs an image input (C, H, W), got shape {shapes[0]}")
    c, h, w = shapes[0]
    return c, h, w


# ---------------------------------------------------------------- convolution and pooling


class ConvParams(Params):
    out_channels: int = Field(ge=1, le=WIDTH_MAX)
    kernel: PositivePair = 3
    stride: PositivePair = 1
    padding: NonNegativePair = 0
    dilation: PositivePair = 1
    groups: int = Field(1, ge=1, le=WIDTH_MAX)
    bias: bool = True


def _sliding(size: int, kernel: int, stride: int, pad: int, dilation: int = 1, ceil: bool = False) -> int:
    span = (size + 2 * pad - dilation * (kernel - 1) - 1) / stride
    out = (math.ceil(span) if ceil else math.floor(span)) + 1
    if ceil and (out - 1) * stride >= size + pad:  # PyTorch: the last window must start inside the input
        out -= 1
    return out


def _spatial(h: int, w: int, k: Pair, s: Pair, p: Pair, d: Pair = 1, ceil: bool = False) -> tuple[int, int]:
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _pair(k), _pair(s), _pair(p), _pair(d)
    oh, ow = _sliding(h, kh, sh, ph, dh, ceil), _sliding(w, kw, sw, pw, dw, ceil)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"output would be {oh}x{ow} from a {h}x{w} input (kernel {kh}x{kw}, stride {sh}x{sw}, "
            f"padding {ph}x{pw}): the spatial size shrinks below 1; use a larger input or a smaller kernel/stride"
        )
    return oh, ow


def _conv_shape(p: ConvParams, shapes: list[Shape]) -> Shape:
    c, h, w = _image(shapes, "conv")
    if c % p.groups or p.out_channels % p.groups:
        raise ValueError(f"groups={p.groups} must divide the input channels ({c}) and out_channels ({p.out_channels})")
    return (p.out_channels, *_spatial(h, w, p.kernel, p.stride, p.padding, p.dilation))


def _conv_build(p: ConvParams, shapes: list[Shape]) -> nn.Module:
    return nn.Conv2d(shapes[0][0], p.out_channels, _pair(p.kernel), _pair(p.stride), _pair(p.padding),
                     _pair(p.dilation), p.groups, p.bias)  # fmt: skip


def _conv_count(p: ConvParams, shapes: list[Shape]) -> int:
    kh, kw = _pair(p.kernel)
    return p.out_channels * (shapes[0][0] // p.groups) * kh * kw + (p.out_channels if p.bias else 0)


register(LayerType("conv", ConvParams, _conv_shape, _conv_build, doc="2-D convolution (Caffe Convolution)",
                   count=_conv_count))  # fmt: skip


class PoolParams(Params):
    kernel: PositivePair | None = None  # required unless global
    stride: PositivePair | None = None  # default: the kernel
    padding: NonNegativePair = 0
    ceil_mode: bool = False  # Caffe rounds up; PyTorch's default rounds down
    global_: bool = Field(False, alias="global")


def _pool_shape(p: PoolParams, shapes: list[Shape]) -> Shape:
    c, h, w = _image(shapes, "pooling")
    if p.global_:
        return (c, 1, 1)
    if p.kernel is None:
        raise ValueError("kernel is required (or set global: true)")
    (kh, kw), (ph, pw) = _pair(p.kernel), _pair(p.padding)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"padding {p.padding} must be between 0 and half the kernel ({kh // 2}x{kw // 2})")
    return (c, *_spatial(h, w, p.kernel, p.stride or p.kernel, p.padding, 1, p.ceil_mode))


def _pool_builder(kind: str) -> Callable[[PoolParams, list[Shape]], nn.Module]:
    def build(p: PoolParams, shapes: list[Shape]) -> nn.Module:
        if p.global_:
            return nn.AdaptiveMaxPool2d(1) if kind == "max" else nn.AdaptiveAvgPool2d(1)
        assert p.kernel is not None
        args = (_pair(p.kernel), _pair(p.stride or p.kernel), _pair(p.padding))
        return (
            nn.MaxPool2d(*args, ceil_mode=p.ceil_mode) if kind == "max" else nn.AvgPool2d(*args, ceil_mode=p.ceil_mode)
        )

    return build


register(LayerType("max_pool", PoolParams, _pool_shape, _pool_builder("max"), doc="max pooling (global: over H, W)"))
register(LayerType("avg_pool", PoolParams, _pool_shape, _pool_builder("avg"), doc="average pooling"))


# ---------------------------------------------------------------- dense, shape and normalisation layers


class LinearParams(Params):
    out_features: int = Field(ge=1, le=WIDTH_MAX)
    bias: bool = True


def _linear_build(p: LinearParams, shapes: list[Shape]) -> nn.Module:
    linear = nn.Linear(math.prod(shapes[0]), p.out_features, p.bias)
    return nn.Sequential(nn.Flatten(), linear) if len(shapes[0]) > 1 else linear


register(
    LayerType("linear", LinearParams, lambda p, s: (p.out_features,), _linear_build,
              doc="inner product (fully connected); flattens an image input first, as Caffe's InnerProduct",
              count=lambda p, s: math.prod(s[0]) * p.out_features + (p.out_features if p.bias else 0))
)  # fmt: skip


class NoParams(Params):
    pass


register(LayerType("flatten", NoParams, lambda p, s: (math.prod(s[0]),), lambda p, s: nn.Flatten(), doc="to (C*H*W,)"))


class DropoutParams(Params):
    p: float = Field(0.5, ge=0, lt=1)


register(LayerType("dropout", DropoutParams, lambda p, s: s[0], lambda p, s: nn.Dropout(p.p), doc="dropout"))


class BatchNormParams(Params):
    eps: float = Field(1e-5, gt=0, le=1)
    momentum: float = Field(0.1, gt=0, le=1)


def _bn_build(p: BatchNormParams, shapes: list[Shape]) -> nn.Module:
    cls = nn.BatchNorm2d if len(shapes[0]) == 3 else nn.BatchNorm1d
    return cls(shapes[0][0], eps=p.eps, momentum=p.momentum)


def _bn_count(p: BatchNormParams, shapes: list[Shape]) -> int:
    return 4 * shapes[0][0]  # weight, bias, running mean and variance


register(LayerType("batch_norm", BatchNormParams, lambda p, s: s[0], _bn_build, doc="batch normalization",
                   count=_bn_count))  # fmt: skip


class LRNParams(Params):
    size: int = Field(5, ge=1, le=SIZE_MAX)
    alpha: float = Field(1e-4, ge=0, le=1e6)
    beta: float = Field(0.75, ge=0, le=1e6)
    k: float = Field(1.0, gt=0, le=1e6)


def _lrn_shape(p: LRNParams, shapes: list[Shape]) -> Shape:
    _image(shapes, "lrn")
    return shapes[0]


register(
    LayerType("lrn", LRNParams, _lrn_shape, lambda p, s: nn.LocalResponseNorm(p.size, p.alpha, p.beta, p.k),
              doc="local response normalization across channels (AlexNet, GoogLeNet)")
)  # fmt: skip


class ReshapeParams(Params):
    shape: list[Annotated[int, Field(ge=-1, le=WIDTH_MAX)]] = Field(min_length=1, max_length=8)  # no batch; one -1


def _reshape_shape(p: ReshapeParams, shapes: list[Shape]) -> Shape:
    total, known = math.prod(shapes[0]), math.prod(d for d in p.shape if d != -1)
    if p.shape.count(-1) > 1 or any(d == 0 or d < -1 for d in p.shape):
        raise ValueError(f"shape {p.shape}: sizes must be positive, with at most one -1")
    if -1 in p.shape:
        if total % known:
            raise ValueError(f"cannot reshape {shapes[0]} ({total} values) to {p.shape}")
        return tuple(total // known if d == -1 else d for d in p.shape)
    if known != total:
        raise ValueError(f"cannot reshape {shapes[0]} ({total} values) to {tuple(p.shape)} ({known} values)")
    return tuple(p.shape)


class Reshape(nn.Module):
    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


register(LayerType("reshape", ReshapeParams, _reshape_shape, lambda p, s: Reshape(_reshape_shape(p, s)), doc="reshape"))


# ---------------------------------------------------------------- activations


def _same(p: Params, shapes: list[Shape]) -> Shape:
    return shapes[0]


class Abs(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs()


for _name, _factory, _doc in [
    ("relu", lambda p, s: nn.ReLU(), "max(0, x)"),
    ("gelu", lambda p, s: nn.GELU(), "Gaussian error linear unit"),
    ("silu", lambda p, s: nn.SiLU(), "x * sigmoid(x) (swish)"),
    ("sigmoid", lambda p, s: nn.Sigmoid(), "logistic"),
    ("tanh", lambda p, s: nn.Tanh(), "hyperbolic tangent"),
    ("abs", lambda p, s: Abs(), "absolute value (Caffe AbsVal)"),
]:
    register(LayerType(_name, NoParams, _same, _factory, doc=_doc))


class LeakyParams(Params):
    negative_slope: float = Field(0.01, ge=0, le=1e6)


class PReLUParams(Params):
    shared: bool = False  # one slope for all channels, else one per channel


class ELUParams(Params):
    alpha: float = Field(1.0, gt=0, le=1e6)


class SoftplusParams(Params):
    beta: float = Field(1.0, gt=0, le=1e6)
    threshold: float = Field(20.0, gt=0, le=1e6)


class SoftmaxParams(Params):
    pass


register(LayerType("leaky_relu", LeakyParams, _same, lambda p, s: nn.LeakyReLU(p.negative_slope), doc="leaky ReLU"))
register(LayerType("prelu", PReLUParams, _same, lambda p, s: nn.PReLU(1 if p.shared else s[0][0]), doc="learned slope",
                   count=lambda p, s: 1 if p.shared else s[0][0]))  # fmt: skip
register(LayerType("elu", ELUParams, _same, lambda p, s: nn.ELU(p.alpha), doc="exponential linear unit"))
register(LayerType("softplus", SoftplusParams, _same, lambda p, s: nn.Softplus(p.beta, p.threshold), doc="softplus"))
register(LayerType("softmax", SoftmaxParams, _same, lambda p, s: nn.Softmax(dim=1), doc="softmax over channels"))


class MaxoutParams(Params):
    pieces: int = Field(2, ge=2, le=SIZE_MAX)  # channels are split into groups of this many; each keeps its maximum


def _maxout_shape(p: MaxoutParams, shapes: list[Shape]) -> Shape:
    c = shapes[0][0]
    if c % p.pieces:
        raise ValueError(f"pieces={p.pieces} must divide the input channels ({c})")
    return (c // p.pieces, *shapes[0][1:])


class Maxout(nn.Module):
    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, ...) -> (B, C / pieces, ...)
        b, c = x.shape[:2]
        return x.reshape(b, c // self.pieces, self.pieces, *x.shape[2:]).amax(dim=2)


register(LayerType("maxout", MaxoutParams, _maxout_shape, lambda p, s: Maxout(p.pieces), doc="max over channel groups"))


# ---------------------------------------------------------------- merging branches


class ConcatParams(Params):
    axis: Literal["channels"] = "channels"


def _concat_shape(p: ConcatParams, shapes: list[Shape]) -> Shape:
    rest = {s[1:] for s in shapes}
    if len(rest) > 1 or len({len(s) for s in shapes}) > 1:
        raise ValueError(f"inputs must match in every dimension but channels; got shapes {', '.join(map(str, shapes))}")
    return (sum(s[0] for s in shapes), *shapes[0][1:])


class Concat(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class Sum(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


def _sum_shape(p: NoParams, shapes: list[Shape]) -> Shape:
    if len(set(shapes)) > 1:
        raise ValueError(f"inputs must have the same shape; got {', '.join(map(str, shapes))}")
    return shapes[0]


register(LayerType("concat", ConcatParams, _concat_shape, lambda p, s: Concat(), 2, None, "join along channels"))
register(LayerType("sum", NoParams, _sum_shape, lambda p, s: Sum(), 2, None, "element-wise sum (Caffe Eltwise)"))


def valid_types() -> str:
    return choices(sorted(LAYER_TYPES))
