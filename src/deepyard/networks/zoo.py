"""The standard networks written as specs, so "Customize" is editing a copy.

Each function returns plain data: `deepyard network show NAME` prints it as YAML. Layer names follow the Caffe
originals that DIGITS shipped. Measured results belong with the training recipes (see the README).
"""

from __future__ import annotations

from typing import Any

from deepyard.networks.spec import NUM_CLASSES, NetworkSpec, spec_from_data

Layer = dict[str, Any]


def conv(name: str, out: int, kernel: int, stride: int = 1, padding: int = 0, groups: int = 1, **more: Any) -> Layer:
    layer: Layer = {"name": name, "type": "conv", "out_channels": out, "kernel": kernel}
    if stride != 1:
        layer["stride"] = stride
    if padding:
        layer["padding"] = padding
    if groups != 1:
        layer["groups"] = groups
    return {**layer, **more}


def relu(name: str, **more: Any) -> Layer:
    return {"name": name, "type": "relu", **more}


def lenet() -> NetworkSpec:
    """The classic Caffe MNIST LeNet of the "Getting started" lab."""
    return spec_from_data(
        {
            "name": "lenet",
            "description": "LeNet as in Caffe's MNIST example and the DIGITS lab (LeCun et al., 1998).",
            "input": [1, 28, 28],
            "layers": [
                conv("conv1", 20, 5),
                {"name": "pool1", "type": "max_pool", "kernel": 2, "stride": 2},
                conv("conv2", 50, 5),
                {"name": "pool2", "type": "max_pool", "kernel": 2, "stride": 2},
                {"name": "ip1", "type": "linear", "out_features": 500},
                relu("relu1"),
                {"name": "ip2", "type": "linear", "out_features": NUM_CLASSES},
            ],
        }
    )


def _pool(name: str, kernel: int = 3, stride: int = 2, kind: str = "max_pool", **more: Any) -> Layer:
    return {"name": name, "type": kind, "kernel": kernel, "stride": stride, **more}


def _lrn(name: str) -> Layer:
    return {"name": name, "type": "lrn", "size": 5, "alpha": 0.0001, "beta": 0.75}


def _classifier(hidden: int, first: int, dropout: float = 0.5) -> list[Layer]:
    layers: list[Layer] = []
    for i in (first, first + 1):
        layers += [
            {"name": f"fc{i}", "type": "linear", "out_features": hidden},
            relu(f"relu{i}"),
            {"name": f"drop{i}", "type": "dropout", "p": dropout},
        ]
    return [*layers, {"name": f"fc{first + 2}", "type": "linear", "out_features": NUM_CLASSES}]


def alexnet() -> NetworkSpec:
    """BVLC AlexNet (Krizhevsky et al., 2012) as DIGITS shipped it: grouped convolutions and LRN."""
    layers = [
        conv("conv1", 96, 11, stride=4), relu("relu1"), _lrn("norm1"), _pool("pool1"),
        conv("conv2", 256, 5, padding=2, groups=2), relu("relu2"), _lrn("norm2"), _pool("pool2"),
        conv("conv3", 384, 3, padding=1), relu("relu3"),
        conv("conv4", 384, 3, padding=1, groups=2), relu("relu4"),
        conv("conv5", 256, 3, padding=1, groups=2), relu("relu5"), _pool("pool5"),
        *_classifier(4096, 6),
    ]  # fmt: skip
    return spec_from_data(
        {
            "name": "alexnet",
            "description": "BVLC AlexNet; 227x227 crops of 256x256 images.",
            "input": [3, 227, 227],
            "layers": layers,
        }
    )


# GoogLeNet inception modules: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection)
_INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}  # fmt: skip


def _inception(key: str, source: str) -> list[Layer]:
    c1, r3, c3, r5, c5, pp = _INCEPTION[key]
    p = f"inception_{key}"
    return [
        conv(f"{p}_1x1", c1, 1, inputs=[source]), relu(f"{p}_relu_1x1"),
        conv(f"{p}_3x3_reduce", r3, 1, inputs=[source]), relu(f"{p}_relu_3x3_reduce"),
        conv(f"{p}_3x3", c3, 3, padding=1), relu(f"{p}_relu_3x3"),
        conv(f"{p}_5x5_reduce", r5, 1, inputs=[source]), relu(f"{p}_relu_5x5_reduce"),
        conv(f"{p}_5x5", c5, 5, padding=2), relu(f"{p}_relu_5x5"),
        _pool(f"{p}_pool", 3, 1, padding=1, inputs=[source]),
        conv(f"{p}_pool_proj", pp, 1), relu(f"{p}_relu_pool_proj"),
        {"name": f"{p}_output", "type": "concat",
         "inputs": [f"{p}_relu_1x1", f"{p}_relu_3x3", f"{p}_relu_5x5", f"{p}_relu_pool_proj"]},
    ]  # fmt: skip


def googlenet() -> NetworkSpec:
    """BVLC GoogLeNet / Inception v1 (Szegedy et al., 2014), without the two auxiliary classifiers."""
    layers: list[Layer] = [
        conv("conv1_7x7_s2", 64, 7, stride=2, padding=3), relu("conv1_relu_7x7"),
        _pool("pool1_3x3_s2", ceil_mode=True), _lrn("pool1_norm1"),
        conv("conv2_3x3_reduce", 64, 1), relu("conv2_relu_3x3_reduce"),
        conv("conv2_3x3", 192, 3, padding=1), relu("conv2_relu_3x3"), _lrn("conv2_norm2"),
        _pool("pool2_3x3_s2", ceil_mode=True),
    ]  # fmt: skip
    previous = "pool2_3x3_s2"
    for key in _INCEPTION:
        layers += _inception(key, previous)
        previous = f"inception_{key}_output"
        if key in ("3b", "4e"):
            name = "pool3_3x3_s2" if key == "3b" else "pool4_3x3_s2"
            layers.append(_pool(name, ceil_mode=True))
            previous = name
    layers += [
        {"name": "pool5_7x7_s1", "type": "avg_pool", "global": True},
        {"name": "pool5_drop_7x7_s1", "type": "dropout", "p": 0.4},
        {"name": "loss3_classifier", "type": "linear", "out_features": NUM_CLASSES},
    ]
    return spec_from_data(
        {
            "name": "googlenet",
            "description": "BVLC GoogLeNet (Inception v1); 224x224 crops of 256x256 images.",
            "input": [3, 224, 224],
            "layers": layers,
        }
    )


def vgg16() -> NetworkSpec:
    """VGG-16 (Simonyan and Zisserman, 2014), configuration D."""
    layers: list[Layer] = []
    for block, (width, depth) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, depth + 1):
            layers += [conv(f"conv{block}_{i}", width, 3, padding=1), relu(f"relu{block}_{i}")]
        layers.append(_pool(f"pool{block}", 2, 2))
    layers += _classifier(4096, 6)
    return spec_from_data(
        {
            "name": "vgg16",
            "description": "VGG-16 (configuration D); 224x224 inputs.",
            "input": [3, 224, 224],
            "layers": layers,
        }
    )


SPEC_NETWORKS = {"lenet": lenet, "alexnet": alexnet, "googlenet": googlenet, "vgg16": vgg16}
