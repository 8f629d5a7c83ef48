"""Spec validation: every error names the layer and the problem, before anything is built."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from deepyard.errors import SpecError
from deepyard.networks import build_spec, check_spec, spec_from_data


def net(*layers: dict[str, Any], **extra: Any):
    return spec_from_data({"name": "t", "layers": list(layers), **extra})


CONV = {"name": "c", "type": "conv", "out_channels": 4, "kernel": 3}


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([{"name": "x", "type": "convolution"}], r"layer 'x': unknown type 'convolution'; valid types: abs, avg_pool"),
        ([{**CONV, "kernel": 0}], r"layer 'c' \(conv\): kernel = 0: Input should be greater than or equal to 1"),
        ([{**CONV, "groups": 0}], r"layer 'c' \(conv\): groups = 0: Input should be greater than or equal to 1"),
        ([{**CONV, "kernal": 3}], r"unknown parameter\(s\) \['kernal'\]; valid: out_channels, kernel, stride"),
        ([{"name": "d", "type": "dropout", "p": 1.5}], r"layer 'd' \(dropout\): p = 1.5: Input should be less than 1"),
        ([{**CONV, "groups": 3}], r"groups=3 must divide the input channels \(1\) and out_channels \(4\)"),
        (
            [
                {"name": "p", "type": "max_pool", "kernel": 5, "stride": 5},
                {"name": "q", "type": "max_pool", "kernel": 5},
            ],
            r"layer 'q' \(max_pool\) with input shape 1x1x1: output would be 0x0 .* shrinks below 1",
        ),
        ([{**CONV, "inputs": ["nope"]}], r"layer 'c': unknown input 'nope'; valid inputs: input, c"),
        (
            [{**CONV, "inputs": ["b"]}, {"name": "b", "type": "relu", "inputs": ["c"]}],
            r"the layers c -> b -> c form a cycle",
        ),
        (
            [
                CONV,
                {"name": "a", "type": "conv", "out_channels": 4, "kernel": 5, "inputs": ["input"]},
                {"name": "j", "type": "concat", "inputs": ["c", "a"]},
            ],
            r"layer 'j' \(concat\) with input shape 4x3x3, 4x1x1: inputs must match in every dimension but channels",
        ),
        (
            [
                CONV,
                {"name": "a", "type": "conv", "out_channels": 2, "kernel": 3, "inputs": ["input"]},
                {"name": "s", "type": "sum", "inputs": ["c", "a"]},
            ],
            r"layer 's' \(sum\) .*: inputs must have the same shape; got \(4, 3, 3\), \(2, 3, 3\)",
        ),
        ([{"name": "s", "type": "sum"}], r"layer 's' \(sum\) takes at least 2 input\(s\), got 1"),
        ([CONV, {**CONV}], r"layer name 'c' is used twice"),
        ([CONV, {"name": "r", "type": "relu", "inputs": ["input"]}], r"layers \['c'\] do not lead to the output 'r'"),
        (
            [{"name": "f", "type": "reshape", "shape": [7, -1]}],
            r"cannot reshape \(1, 5, 5\) \(25 values\) to \[7, -1\]",
        ),
        ([{"name": "l", "type": "linear", "out_features": "num_classes"}], r"uses 'num_classes' but no class count"),
    ],
)
def test_invalid_specs_name_the_layer_and_problem(layers: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        check_spec(net(*layers), (1, 5, 5))


def test_spec_level_errors_name_the_layer_field() -> None:
    with pytest.raises(SpecError, match=r"layer 'x' field 'type': Field required"):
        spec_from_data({"name": "t", "layers": [CONV, {"name": "x"}]})
    with pytest.raises(SpecError, match=r"not valid YAML at line 3, column 1"):
        from deepyard.networks import parse_spec

        parse_spec("name: t\nlayers: [ {name: a\n")


def test_graph_with_branches_and_residual_sum_builds_and_runs() -> None:
    spec = net(
        {"name": "stem", "type": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "a", "type": "conv", "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "b", "type": "conv", "out_channels": 8, "kernel": 1, "inputs": ["stem"]},
        {"name": "res", "type": "sum", "inputs": ["stem", "a", "b"]},
        {"name": "cat", "type": "concat", "inputs": ["res", "input"]},
        {"name": "gap", "type": "avg_pool", "global": True},
        {"name": "fc", "type": "linear", "out_features": "num_classes"},
    )
    checked = check_spec(spec, (3, 9, 9), num_classes=5)
    assert [n.shape for n in checked.nodes][-3:] == [(11, 9, 9), (11, 1, 1), (5,)]
    model = build_spec(spec, (3, 9, 9), num_classes=5)
    assert model(torch.randn(2, 3, 9, 9)).shape == (2, 5)


@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        ({"type": "conv", "out_channels": 6, "kernel": [3, 5], "stride": 2, "padding": 1, "dilation": 2}, None),
        ({"type": "max_pool", "kernel": 3, "stride": 2, "ceil_mode": True}, None),
        ({"type": "avg_pool", "kernel": 2, "padding": 1}, None),
        ({"type": "max_pool", "global": True}, (4, 1, 1)),
        ({"type": "lrn", "size": 3}, (4, 11, 13)),
        ({"type": "maxout", "pieces": 2}, (2, 11, 13)),
        ({"type": "prelu"}, (4, 11, 13)),
        ({"type": "batch_norm"}, (4, 11, 13)),
        ({"type": "softmax"}, (4, 11, 13)),
        ({"type": "reshape", "shape": [4, -1]}, (4, 143)),
        ({"type": "flatten"}, (572,)),
    ],
)
def test_inferred_shapes_match_pytorch(layer: dict[str, Any], shape: tuple[int, ...] | None) -> None:
    spec = net({"name": "x", **layer})
    checked = check_spec(spec, (4, 11, 13))
    real = tuple(build_spec(spec, (4, 11, 13))(torch.randn(2, 4, 11, 13)).shape[1:])
    assert checked.output_shape == real
    if shape is not None:
        assert real == shape


@pytest.mark.parametrize(
    "kind", ["relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "sigmoid", "tanh", "abs", "softplus"]
)
def test_every_activation_builds_and_keeps_shape(kind: str) -> None:
    model = build_spec(net({"name": "a", "type": kind}), (3, 4, 4))
    x = torch.randn(2, 3, 4, 4)
    y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if kind == "abs":
        assert torch.equal(y, x.abs())


def test_maxout_keeps_the_largest_of_each_group() -> None:
    model = build_spec(net({"name": "m", "type": "maxout", "pieces": 3}), (6, 1, 1))
    x = torch.tensor([1.0, 5.0, 2.0, -1.0, -3.0, -2.0]).reshape(1, 6, 1, 1)
    assert model(x).flatten().tolist() == [5.0, -1.0]
