"""Per-layer summary of any network: output shape, parameters and multiply-accumulates, at a given input size.

Works on spec networks and torchvision models alike: the model is built on the meta device (no weights are
allocated, so even VGG-16 costs milliseconds), traced with torch.fx, and run node by node on shapes only under
PyTorch's FlopCounterMode. MACs are FLOPs / 2 (one multiply and one add), counted for convolutions, matrix
products and attention; element-wise work (activations, normalisation, pooling) is not counted, as is usual.
A spec network's layers other than convolutions and linear layers are not run at all: their output shapes are
known from the check, and running element-wise ops on the meta device costs milliseconds each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepyard.config import Settings
from deepyard.errors import SpecError
from deepyard.networks.graph import SpecNet
from deepyard.networks.layers import Shape
from deepyard.networks.registry import build_network
from deepyard.networks.spec import NetworkSpec

COUNTED = ("conv", "conv_transpose", "linear")  # the spec layer types with multiply-accumulates; the others are not run


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    inputs: tuple[str, ...]
    output_shape: Shape  # without the batch
    params: int
    macs: int  # per image


@dataclass(frozen=True)
class Summary:
    network: str
    input_shape: Shape
    rows: tuple[LayerRow, ...]
    params: int
    macs: int


def summarize(
    ref: str | NetworkSpec, input_shape: Shape, num_classes: int = 10, settings: Settings | None = None
) -> Summary:
    """Summarise network `ref` (a name, spec file, spec or allowed Python file) for inputs of `input_shape`."""
    with torch.device("meta"):
        model = build_network(ref, input_shape, num_classes, settings)
    name = ref.name if isinstance(ref, NetworkSpec) else str(ref)
    return summarize_model(model, input_shape, name)


def summarize_model(model: nn.Module, input_shape: Shape, name: str) -> Summary:
    model = model.to("meta").eval()
    spec_types = model.layer_types if isinstance(model, SpecNet) else None
    try:
        graph = torch.fx.GraphModule(model, _Tracer(spec=spec_types is not None).trace(model))
    except Exception as exc:  # tracing is best effort for arbitrary (Python-file) models
        raise SpecError(f"network {name!r} cannot be traced for a summary: {exc}") from None
    shapes = model.shapes if isinstance(model, SpecNet) else None
    profiler = _Profiler(graph, spec_types, shapes)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused attention kernel hides its FLOPs from the counter
    try:
        with torch.no_grad():
            profiler.run(torch.empty(1, *input_shape, device="meta"))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    rows = tuple(profiler.rows)
    total_params = sum(p.numel() for p in model.parameters())
    return Summary(name, tuple(input_shape), rows, total_params, sum(r.macs for r in rows))


class _Tracer(torch.fx.Tracer):
    """For spec networks, each layer is one node, whatever modules it is made of."""

    def __init__(self, spec: bool) -> None:
        super().__init__()
        self.spec = spec

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if self.spec:
            return module_qualified_name.startswith("layers.") and module_qualified_name.count(".") == 1
        return super().is_leaf_module(m, module_qualified_name)


class _Profiler(torch.fx.Interpreter):
    """Runs the traced graph node by node, recording each node's output shape, parameters and MACs."""

    def __init__(
        self, graph: torch.fx.GraphModule, spec_types: dict[str, str] | None, shapes: dict[str, Shape] | None
    ) -> None:
        super().__init__(graph)
        self.rows: list[LayerRow] = []
        self.spec_types = spec_types
        self.shapes = shapes or {}
        self.names: dict[str, str] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        counter = FlopCounterMode(display=False)
        known = self._known_output(n)
        if known is not None:
            out = known
        else:
            with counter:
                out = super().run_node(n)
        if n.op in ("placeholder", "output"):
            self.names[n.name] = "input"
            return out
        name, kind, params = self._describe(n)
        self.names[n.name] = name
        first = next((o for o in out if isinstance(o, torch.Tensor)), None) if isinstance(out, tuple | list) else out
        if isinstance(first, torch.Tensor):  # modules such as attention return (output, weights)
            shape = tuple(first.shape[1:]) if n.op != "get_attr" else tuple(first.shape)
            inputs = tuple(self.names.get(i.name, i.name) for i in n.all_input_nodes)
            self.rows.append(LayerRow(name, kind, inputs, shape, params, counter.get_total_flops() // 2))
        return out

    def _known_output(self, n: torch.fx.Node) -> torch.Tensor | None:
        """A spec layer without MACs: an empty meta tensor of its checked output shape (nothing is run)."""
        if n.op != "call_module" or not self.spec_types:
            return None
        name = str(n.target).removeprefix("layers.")
        if self.spec_types.get(name) in COUNTED or name not in self.shapes:
            return None
        return torch.empty(1, *self.shapes[name], device="meta")

    def _describe(self, n: torch.fx.Node) -> tuple[str, str, int]:
        if n.op == "call_module":
            module = self.fetch_attr(str(n.target))
            name = str(n.target).removeprefix("layers.")
            kind = self.spec_types.get(name) if self.spec_types else None
            return name, kind or type(module).__name__, sum(p.numel() for p in module.parameters())
        if n.op == "get_attr":
            attr = self.fetch_attr(str(n.target))
            return str(n.target), "parameter", attr.numel() if isinstance(attr, torch.Tensor) else 0
        target = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n.target))
        return n.name, str(target), 0
