"""Per-layer summary (hand-computed MACs and parameters) and the SVG drawing."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from deepyard.networks import render_svg, summarize


def test_lenet_summary_matches_hand_computation() -> None:
    s = summarize("lenet", (1, 28, 28), num_classes=10)
    rows = {r.name: r for r in s.rows}
    # conv: out_C * out_H * out_W * (in_C * k * k); linear: in * out
    assert rows["conv1"].macs == 20 * 24 * 24 * (1 * 5 * 5)
    assert rows["conv2"].macs == 50 * 8 * 8 * (20 * 5 * 5)
    assert rows["ip1"].macs == 800 * 500 and rows["ip2"].macs == 500 * 10
    assert rows["pool1"].macs == 0 and rows["pool1"].output_shape == (20, 12, 12)
    assert rows["conv1"].params == 20 * 25 + 20 and rows["ip1"].params == 800 * 500 + 500
    assert s.params == 431_080 and s.macs == 2_293_000
    assert [r.type for r in s.rows] == ["conv", "max_pool", "conv", "max_pool", "linear", "relu", "linear"]


def test_torchvision_summary_counts_attention() -> None:
    s = summarize("vit_b_16", (3, 224, 224), num_classes=1000)
    assert s.params == 86_567_656
    assert 17.4e9 < s.macs < 17.7e9  # the published 17.6 GMACs include the attention products


def test_svg_shows_every_layer_with_its_shape() -> None:
    s = summarize("googlenet", (3, 224, 224), num_classes=10)
    svg = render_svg(s)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
    assert {"input", "inception_3a_output", "loss3_classifier"} <= titles
    assert "inception_3a_output" in svg and "256x28x28" in svg  # concat of 64 + 128 + 32 + 32 channels
    assert sum(1 for _ in root.iter("{http://www.w3.org/2000/svg}g")) > len(s.rows)
