"""The spec language's dense-prediction layers (conv_transpose, upsample, crop) and the segmentation specs built
from them (fcn_alexnet, fcn8s, unet_spec): shapes against PyTorch, errors naming the layer, the bilinear start, summary
and drawing, and a few training steps of each spec on a tiny generated segmentation dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepyard.config import Settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.errors import SpecError
from deepyard.networks import build_spec, check_spec, dump_yaml, load_spec, parse_spec, render_svg, summarize
from deepyard.networks.segzoo import SEGMENTATION_SPECS
from deepyard.networks.uplayers import bilinear_kernel
from deepyard.train import make_config, train
from tests.networks.test_graph import net
from tests.tasks.segdata import write_scenes

SHAPE = (4, 11, 13)


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        ({"type": "conv_transpose", "out_channels": 6, "kernel": 4, "stride": 2, "padding": 1}, (6, 22, 26)),
        (
            {
                "type": "conv_transpose",
                "out_channels": 2,
                "kernel": [3, 5],
                "stride": [2, 3],
                "output_padding": 1,
                "dilation": 2,
            },
            (2, 26, 46),
        ),
        (
            {"type": "conv_transpose", "out_channels": 4, "kernel": 4, "stride": 2, "groups": 4, "init": "bilinear"},
            (4, 24, 28),
        ),
        ({"type": "upsample", "scale": 2}, (4, 22, 26)),
        ({"type": "upsample", "scale": [1.5, 0.5], "mode": "bilinear"}, (4, 16, 6)),
        ({"type": "upsample", "size": [20, 7], "mode": "bilinear"}, (4, 20, 7)),
    ],
)
def test_inferred_shapes_match_pytorch(layer: dict[str, Any], expected: tuple[int, ...]) -> None:
    spec = net({"name": "x", **layer})
    checked = check_spec(spec, SHAPE)
    real = tuple(build_spec(spec, SHAPE)(torch.randn(2, *SHAPE)).shape[1:])
    assert checked.output_shape == real == expected


def test_upsample_is_interpolation_and_crop_keeps_the_reference_window() -> None:
    x = torch.randn(2, *SHAPE)
    up = build_spec(net({"name": "u", "type": "upsample", "scale": 2, "mode": "bilinear"}), SHAPE)
    assert torch.equal(up(x), F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
    near = build_spec(net({"name": "u", "type": "upsample", "scale": 3}), SHAPE)
    assert torch.equal(near(x)[:, :, ::3, ::3], x)
    layers = [{"name": "big", "type": "upsample", "scale": 2},
              {"name": "small", "type": "conv", "out_channels": 1, "kernel": 3, "inputs": ["input"]}]  # fmt: skip
    centred = net(*layers, {"name": "c", "type": "crop", "inputs": ["big", "small"]})
    assert check_spec(centred, SHAPE).output_shape == (4, 9, 11)
    big = F.interpolate(x, scale_factor=2, mode="nearest")
    assert torch.equal(build_spec(centred, SHAPE)(x), big[:, :, 6:15, 7:18])  # (22 - 9) // 2, (26 - 11) // 2
    placed = net(*layers, {"name": "c", "type": "crop", "inputs": ["big", "small"], "offset": [2, 5]})
    assert torch.equal(build_spec(placed, SHAPE)(x), big[:, :, 2:11, 5:16])
    other = torch.randn(1, 4, 15, 17)  # another input size: the window follows the reference
    assert build_spec(centred, SHAPE)(other).shape == (1, 4, 13, 15)


def test_bilinear_start_upsamples_a_ramp_into_a_ramp() -> None:
    assert torch.allclose(bilinear_kernel(4, 4)[1], torch.tensor([0.1875, 0.5625, 0.5625, 0.1875]))
    spec = net({"name": "up", "type": "conv_transpose", "out_channels": 2, "kernel": 4, "stride": 2, "padding": 1,
                "groups": 2, "bias": False, "init": "bilinear"})  # fmt: skip
    ramp = torch.arange(8.0).repeat(8, 1).expand(1, 2, 8, 8)
    out = build_spec(spec, (2, 8, 8))(ramp)[0, 1]
    steps = out[4, 1:-1].diff()  # away from the borders, every step is half a step of the input
    assert torch.allclose(steps, torch.full_like(steps, 0.5))


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            [{"name": "t", "type": "conv_transpose", "out_channels": 2, "stride": 2, "output_padding": 2}],
            r"layer 't' \(conv_transpose\) with input shape 4x11x13: output_padding 2x2 must be smaller than the str",
        ),
        (
            [{"name": "t", "type": "conv_transpose", "out_channels": 3, "init": "bilinear"}],
            r"layer 't' \(conv_transpose\) .*init: bilinear .* needs as many output channels as input \(4\)",
        ),
        (
            [{"name": "t", "type": "conv_transpose", "out_channels": 2, "init": "bicubic"}],
            r"layer 't' \(conv_transpose\): init = 'bicubic': Input should be 'default' or 'bilinear'",
        ),
        (
            [{"name": "u", "type": "upsample", "scale": 2, "mode": "area"}],
            r"layer 'u' \(upsample\): mode = 'area': Input should be 'nearest' or 'bilinear'",
        ),
        (
            [{"name": "u", "type": "upsample", "scale": 2, "size": 8}],
            r"layer 'u' \(upsample\): .*give exactly one of scale \(a factor\) and size",
        ),
        ([{"name": "u", "type": "upsample"}], r"layer 'u' \(upsample\): .*give exactly one of scale"),
        ([{"name": "u", "type": "upsample", "scale": 0}], r"layer 'u' \(upsample\): scale = 0: .*greater than 0"),
        ([{"name": "c", "type": "crop"}], r"layer 'c' \(crop\) takes exactly 2 input\(s\), got 1"),
        (
            [{"name": "u", "type": "upsample", "scale": 2}, {"name": "c", "type": "crop", "inputs": ["input", "u"]}],
            r"layer 'c' \(crop\) with input shape 4x11x13, 4x22x26: a 22x26 window .* does not fit in the 11x13 input",
        ),
        (
            [
                {"name": "u", "type": "upsample", "scale": 2},
                {"name": "c", "type": "crop", "inputs": ["u", "input"], "offset": [12, 0]},
            ],
            r"layer 'c' \(crop\) .*: a 11x13 window \(the reference's size\) at offset 12x0 does not fit in the 22x26",
        ),
        (
            [{"name": "c", "type": "crop", "inputs": ["input", "input"], "offset": "middle"}],
            r"layer 'c' \(crop\): offset = 'middle'",
        ),
    ],
)
def test_invalid_dense_layers_name_the_layer_and_the_valid_values(layers: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        check_spec(net(*layers), SHAPE)


@pytest.mark.parametrize("name", list(SEGMENTATION_SPECS))
def test_segmentation_specs_round_trip_summarise_and_draw(name: str) -> None:
    spec = load_spec(name)
    assert parse_spec(dump_yaml(spec)) == spec
    summary = summarize(name, (3, 64, 64), num_classes=4)
    ups = [r for r in summary.rows if r.type == "conv_transpose"]
    assert ups and all(r.macs > 0 for r in ups)
    assert summary.rows[-1].output_shape == (4, 64, 64)
    svg = render_svg(summary)
    assert "conv_transpose" in svg and "crop" in svg


@pytest.fixture
def shapes(settings: Settings, tmp_path: Path) -> str:
    write_scenes(tmp_path / "shapes", 8, "palette", seed=5, size=32)
    spec = make_spec(name="shapes", task="segmentation", width=32, height=32, val_pct=25,
                     source={"kind": "masks", "train": tmp_path / "shapes"})  # fmt: skip
    return create_dataset(settings, spec).id


# fcn_alexnet's 57 M parameters (DIGITS' fc6/fc7 widths) take about 3 s a step on 2 loaded cores: slow. fcn8s
# (134 M, VGG-16 on a 230x230 padded input) took 203 s here at load 6, too near test-slow's 4 minutes: a narrow
# fcn8s trains in the fast tests instead (tests/networks/test_segzoo.py), the full one runs forward there
@pytest.mark.parametrize("name", ["unet_spec", pytest.param("fcn_alexnet", marks=pytest.mark.slow)])
def test_segmentation_spec_trains_a_few_steps(settings: Settings, shapes: str, name: str) -> None:
    config = make_config(epochs=2, batch_size=3, device="cpu", precision="fp32")
    result = train(settings, shapes, name, config)
    assert result.steps == 4 and set(result.last_val) >= {"val_loss", "val_miou"}
    assert np.isfinite(result.last_val["val_loss"]) and 0 <= result.last_val["val_miou"] <= 100
