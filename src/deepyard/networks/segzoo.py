"""Segmentation networks written as specs, so "Customize" is editing a copy: FCN-AlexNet and a U-Net.

- `fcn_alexnet`: DIGITS' FCN-AlexNet (Long et al., 2015, as DIGITS' semantic-segmentation example shipped it):
  the AlexNet body with Caffe's layer names (conv1 padded by 100, so any input of 1 pixel or more reaches fc6),
  fc6 and fc7 as convolutions (6x6 and 1x1, 4096 wide: an AlexNet classifier's fc6/fc7 weights reshape onto
  them), `score_fr` (1x1 to the classes), `upscore` (a 63x63 transposed convolution of stride 32, one per class,
  starting as bilinear upsampling) and `score`, the crop to the input's size at offset 18. 57 M parameters,
  as DIGITS'; it is the one to start from an AlexNet classification run (deepyard.transfer).
- `unet_spec`: the small U-Net of deepyard.networks.dense (widths 16-32-64-128, two 3x3 conv + batch norm + ReLU
  per level, 2x2 max-pool down) with 2x2 transposed convolutions up, each cropped to its skip's size (so odd
  input sizes work) and joined to it by `concat`.
"""

from __future__ import annotations

from deepyard.networks.spec import NUM_CLASSES, NetworkSpec, spec_from_data
from deepyard.networks.zoo import Layer, alexnet, conv, relu


def fcn_alexnet() -> NetworkSpec:
    body = [dict(layer) for layer in alexnet().to_data()["layers"] if not layer["name"].startswith(("fc", "relu6",
            "relu7", "drop"))]  # fmt: skip
    body[0]["padding"] = 100  # conv1: FCN's pad 100 keeps small inputs alive through the 32x reduction
    head: list[Layer] = [
        conv("fc6", 4096, 6), relu("relu6"), {"name": "drop6", "type": "dropout", "p": 0.5},
        conv("fc7", 4096, 1), relu("relu7"), {"name": "drop7", "type": "dropout", "p": 0.5},
        {"name": "score_fr", "type": "conv", "out_channels": NUM_CLASSES, "kernel": 1},
        {"name": "upscore", "type": "conv_transpose", "out_channels": NUM_CLASSES, "kernel": 63, "stride": 32,
         "groups": NUM_CLASSES, "bias": False, "init": "bilinear"},
        {"name": "score", "type": "crop", "inputs": ["upscore", "input"], "offset": 18},
    ]  # fmt: skip
    return spec_from_data(
        {
            "name": "fcn_alexnet",
            "description": "FCN-AlexNet as in DIGITS' segmentation example (Long et al., 2015); crop to the input.",
            "input": [3, 224, 224],
            "layers": [*body, *head],
        }
    )


def _block(name: str, width: int) -> list[Layer]:
    layers: list[Layer] = []
    for i in (1, 2):
        layers += [
            conv(f"{name}_conv{i}", width, 3, padding=1, bias=False),
            {"name": f"{name}_bn{i}", "type": "batch_norm"},
            relu(f"{name}_relu{i}"),
        ]
    return layers


def unet_spec(widths: tuple[int, ...] = (16, 32, 64, 128)) -> NetworkSpec:
    layers: list[Layer] = []
    for level, width in enumerate(widths):
        if level:
            layers.append({"name": f"pool{level}", "type": "max_pool", "kernel": 2, "ceil_mode": True})
        layers += _block(f"down{level}", width)
    for level in reversed(range(len(widths) - 1)):
        skip = f"down{level}_relu2"
        layers += [
            {"name": f"up{level}", "type": "conv_transpose", "out_channels": widths[level], "kernel": 2, "stride": 2},
            {"name": f"up{level}_crop", "type": "crop", "inputs": [f"up{level}", skip], "offset": [0, 0]},
            {"name": f"up{level}_cat", "type": "concat", "inputs": [skip, f"up{level}_crop"]},
            *_block(f"up{level}", widths[level]),
        ]
    layers.append({"name": "score", "type": "conv", "out_channels": NUM_CLASSES, "kernel": 1})
    return spec_from_data(
        {
            "name": "unet_spec",
            "description": "small U-Net as a spec (Ronneberger et al., 2015): conv_transpose up, crop and concat skips",
            "input": [3, 64, 64],
            "layers": layers,
        }
    )


SEGMENTATION_SPECS = {"fcn_alexnet": fcn_alexnet, "unet_spec": unet_spec}
