"""Networks: plain-data specs, the layer registry, the standard zoo, torchvision families, summary and view.

Public API: `parse_ref` (a network reference as a typed `NetworkRef`), `parse_spec`, `dump_yaml`, `dump_json`,
`check_spec`, `build_network`, `list_networks`, `get_network`, `load_spec`, `summarize`, `render_svg`.
"""

from __future__ import annotations

from deepyard.networks.graph import CheckedNetwork, SpecNet, build_spec, check_spec
from deepyard.networks.ref import NetworkRef, parse_ref
from deepyard.networks.registry import (
    NetworkEntry,
    build_network,
    get_network,
    is_torchvision,
    list_networks,
    load_spec,
)
from deepyard.networks.spec import NUM_CLASSES, LayerSpec, NetworkSpec, dump_json, dump_yaml, parse_spec, spec_from_data
from deepyard.networks.summary import LayerRow, Summary, summarize
from deepyard.networks.view import render_svg

__all__ = [
    "NUM_CLASSES",
    "CheckedNetwork",
    "LayerRow",
    "LayerSpec",
    "NetworkEntry",
    "NetworkRef",
    "NetworkSpec",
    "SpecNet",
    "Summary",
    "build_network",
    "build_spec",
    "check_spec",
    "dump_json",
    "dump_yaml",
    "get_network",
    "is_torchvision",
    "list_networks",
    "load_spec",
    "parse_ref",
    "parse_spec",
    "render_svg",
    "spec_from_data",
    "summarize",
]
