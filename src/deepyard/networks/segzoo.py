"""Segmentation networks written as specs, so "Customize" is editing a copy: FCN-AlexNet, FCN-8s and a U-Net.

- `fcn_alexnet`: DIGITS' FCN-AlexNet (Long et al., 2015, as DIGITS' semantic-segmentation example shipped it):
  the AlexNet body with Caffe's layer names (conv1 padded by 100, so any input of 1 pixel or more reaches fc6),
  fc6 and fc7 as convolutions (6x6 and 1x1, 4096 wide: an AlexNet classifier's fc6/fc7 weights reshape onto
  them), `score_fr` (1x1 to the classes), `upscore` (a 63x63 transposed convolution of stride 32, one per class,
  starting as bilinear upsampling) and `score`, the crop to the input's size at offset 18. 57 M parameters,
  as DIGITS'; it is the one to start from an AlexNet classification run (deepyard.transfer).
- `fcn8s`: DIGITS' other FCN, FCN-8s (Long et al., 2015; fcn.berkeleyvision.org's voc-fcn8s): the VGG-16 body
  with its Caffe names (conv1_1 padded by 100; 2x2 max-pools in Caffe's ceil mode, which the crop offsets below
  assume), fc6 (7x7, 4096) and fc7 (1x1) as convolutions (a VGG-16 classifier's fc6/fc7 reshape onto them), and
  three score layers: `score_fr` on fc7, `score_pool4` on pool4, `score_pool3` on pool3. The coarse scores go up
  2x (`upscore2`), are summed with pool4's cropped at offset 5 (`fuse_pool4`), up 2x again (`upscore_pool4`),
  summed with pool3's cropped at offset 9 (`fuse_pool3`), and up 8x (`upscore8`, a 16x16 transposed convolution)
  to `score`, the crop to the input's size at offset 31. The offsets are Caffe's: they fit every input size of
  1 pixel or more. Every transposed convolution is one per class, starting as bilinear upsampling. 134 M
  parameters at 21 classes, as DIGITS'; `fcn8s(widths, fc)` is the same graph narrower.
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


_VGG16_DEPTHS = (2, 2, 3, 3, 3)  # convolutions per block (configuration D)


def fcn8s(widths: tuple[int, ...] = (64, 128, 256, 512, 512), fc: int = 4096) -> NetworkSpec:
    layers: list[Layer] = []
    for block, (width, depth) in enumerate(zip(widths, _VGG16_DEPTHS, strict=True), start=1):
        for i in range(1, depth + 1):
            pad = 100 if block == i == 1 else 1  # conv1_1: FCN's pad 100 keeps small inputs alive through 32x
            layers += [conv(f"conv{block}_{i}", width, 3, padding=pad), relu(f"relu{block}_{i}")]
        layers.append({"name": f"pool{block}", "type": "max_pool", "kernel": 2, "stride": 2, "ceil_mode": True})

    def up(name: str, source: str, kernel: int, stride: int) -> Layer:
        return {
            "name": name,
            "type": "conv_transpose",
            "out_channels": NUM_CLASSES,
            "kernel": kernel,
            "stride": stride,
            "groups": NUM_CLASSES,
            "bias": False,
            "init": "bilinear",
            "inputs": [source],
        }

    def skip(pool: str, onto: str, offset: int) -> list[Layer]:  # score a pool's output, crop it to `onto`, add
        return [
            {"name": f"score_{pool}", "type": "conv", "out_channels": NUM_CLASSES, "kernel": 1, "inputs": [pool]},
            {"name": f"score_{pool}c", "type": "crop", "inputs": [f"score_{pool}", onto], "offset": offset},
            {"name": f"fuse_{pool}", "type": "sum", "inputs": [onto, f"score_{pool}c"]},
        ]

    layers += [
        conv("fc6", fc, 7), relu("relu6"), {"name": "drop6", "type": "dropout", "p": 0.5},
        conv("fc7", fc, 1), relu("relu7"), {"name": "drop7", "type": "dropout", "p": 0.5},
        {"name": "score_fr", "type": "conv", "out_channels": NUM_CLASSES, "kernel": 1},
        up("upscore2", "score_fr", 4, 2), *skip("pool4", "upscore2", 5),
        up("upscore_pool4", "fuse_pool4", 4, 2), *skip("pool3", "upscore_pool4", 9),
        up("upscore8", "fuse_pool3", 16, 8),
        {"name": "score", "type": "crop", "inputs": ["upscore8", "input"], "offset": 31},
    ]  # fmt: skip
    return spec_from_data(
        {
            "name": "fcn8s",
            "description": "FCN-8s as in DIGITS' segmentation example (Long et al., 2015): VGG-16, pool3/pool4 skips.",
            "input": [3, 224, 224],
            "layers": layers,
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


SEGMENTATION_SPECS = {"fcn_alexnet": fcn_alexnet, "fcn8s": fcn8s, "unet_spec": unet_spec}
