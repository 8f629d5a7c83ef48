"""Check a NetworkSpec against an input shape and class count, then build it into an `nn.Module`.

Checking resolves every layer's inputs, orders the graph (reporting cycles and unknown inputs), validates each
layer's parameters and infers every output shape, all before a single weight is allocated. Each problem raises
SpecError naming the layer: an unknown type (with the valid ones), a bad parameter (with its range), a shape
mismatch (with both shapes), a cycle, an unknown input, a spatial size that shrinks below 1, or a layer whose
weights or outputs would not fit in the machine's memory (estimated from the shapes, 4 bytes a value). Checking
takes time linear in the number of layers and connections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import psutil
import torch
from torch import nn

from deepyard.errors import SpecError
from deepyard.networks import uplayers  # noqa: F401  (registers conv_transpose, upsample, crop)
from deepyard.networks.layers import LayerType, Params, Shape, get_layer_type, parse_params
from deepyard.networks.spec import INPUT, NUM_CLASSES, NetworkSpec

INPUT_MAX = 16_384  # channels, height or width of a network's input
BYTES_PER_VALUE = 4  # float32 weights and activations


@dataclass(frozen=True)
class Node:
    name: str
    kind: LayerType
    params: Params
    inputs: tuple[str, ...]
    shape: Shape  # output shape, without the batch


@dataclass(frozen=True)
class CheckedNetwork:
    spec: NetworkSpec
    input_shape: Shape
    nodes: tuple[Node, ...]  # in execution order
    output: str

    @property
    def output_shape(self) -> Shape:
        return next(n.shape for n in self.nodes if n.name == self.output)


def check_spec(spec: NetworkSpec, input_shape: Shape, num_classes: int | None = None) -> CheckedNetwork:
    """Validate `spec` for inputs of `input_shape` (C, H, W); `num_classes` fills the placeholder."""
    _check_input_shape(input_shape)
    inputs = _resolve_inputs(spec)
    order = _topological_order(spec, inputs)
    output = spec.output or spec.layers[-1].name
    if output not in inputs:
        raise SpecError(f"output {output!r} is not a layer; layers: {', '.join(inputs)}")
    _check_all_used(inputs, output)
    by_name = {layer.name: layer for layer in spec.layers}
    shapes: dict[str, Shape] = {INPUT: tuple(input_shape)}
    nodes = []
    budget = _Budget()
    for name in order:
        layer = by_name[name]
        kind = get_layer_type(layer.type, name)
        params = parse_params(kind, _fill_num_classes(layer.params, num_classes, name), name)
        ins = inputs[name]
        _check_arity(kind, ins, name)
        in_shapes = [shapes[i] for i in ins]
        try:
            shapes[name] = tuple(kind.shape(params, in_shapes))
        except ValueError as exc:
            raise SpecError(f"layer {name!r} ({kind.name}) with input shape {_fmt(in_shapes)}: {exc}") from None
        budget.add(name, kind, kind.count(params, in_shapes), math.prod(shapes[name]))
        nodes.append(Node(name, kind, params, ins, shapes[name]))
    return CheckedNetwork(spec, tuple(input_shape), tuple(nodes), output)


def _fmt(shapes: list[Shape]) -> str:
    return ", ".join("x".join(map(str, s)) for s in shapes)


def _check_input_shape(shape: Shape) -> None:
    if len(shape) != 3 or not all(isinstance(d, int) and 1 <= d <= INPUT_MAX for d in shape):
        raise SpecError(
            f"input shape {list(shape)} must be [channels, height, width], each from 1 to {INPUT_MAX:,} (INPUT_MAX)"
        )


class _Budget:
    """Running totals of weights and of activations per image; a layer that takes them over the memory is named."""

    def __init__(self) -> None:
        self.limit = psutil.virtual_memory().total  # bytes of RAM in this machine
        self.weights = self.outputs = 0

    def add(self, name: str, kind: LayerType, weights: int, outputs: int) -> None:
        self.weights += weights
        self.outputs += outputs
        for what, total, own in (("weights", self.weights, weights), ("outputs per image", self.outputs, outputs)):
            if total * BYTES_PER_VALUE > self.limit:
                raise SpecError(
                    f"layer {name!r} ({kind.name}) has {own:,} {what}: the network would need "
                    f"{_gib(total * BYTES_PER_VALUE)} for its {what}, more than the memory available "
                    f"({_gib(self.limit)}); make the layer smaller"
                )


def _gib(n: int) -> str:
    return f"{n / 1024**3:,.1f} GiB"


def _resolve_inputs(spec: NetworkSpec) -> dict[str, tuple[str, ...]]:
    inputs: dict[str, tuple[str, ...]] = {}
    previous = INPUT
    for layer in spec.layers:
        if layer.name == INPUT or layer.name in inputs:
            raise SpecError(f"layer name {layer.name!r} is used twice (or is the reserved name {INPUT!r})")
        inputs[layer.name] = tuple(layer.inputs) if layer.inputs is not None else (previous,)
        previous = layer.name
    for name, ins in inputs.items():
        for i in ins:
            if i != INPUT and i not in inputs:
                valid = ", ".join([INPUT, *inputs])
                raise SpecError(f"layer {name!r}: unknown input {i!r}; valid inputs: {valid}")
    return inputs


def _topological_order(spec: NetworkSpec, inputs: dict[str, tuple[str, ...]]) -> list[str]:
    """Layers in an order where each comes after its inputs, in waves (each wave in spec order); reports cycles.

    Kahn's algorithm: linear in layers and connections (a 2,000-layer chain takes milliseconds)."""
    position = {layer.name: i for i, layer in enumerate(spec.layers)}
    waiting = {name: len(set(ins) - {INPUT}) for name, ins in inputs.items()}
    readers: dict[str, list[str]] = {name: [] for name in inputs}
    for name, ins in inputs.items():
        for i in set(ins) - {INPUT}:
            readers[i].append(name)
    wave = [name for name in inputs if waiting[name] == 0]
    order: list[str] = []
    while wave:
        order.extend(wave)
        following = []
        for name in wave:
            for reader in readers[name]:
                waiting[reader] -= 1
                if waiting[reader] == 0:
                    following.append(reader)
        wave = sorted(following, key=position.__getitem__)
    if len(order) < len(inputs):
        done = set(order)
        pending = [n for n in inputs if n not in done]
        raise SpecError(f"the layers {_cycle(pending, inputs)} form a cycle: each one feeds the next")
    return order


def _cycle(pending: list[str], inputs: dict[str, tuple[str, ...]]) -> str:
    """Follow unresolved inputs from a stuck layer until a name repeats: that loop is the cycle."""
    path, name = [], pending[0]
    while name not in path:
        path.append(name)
        name = next(i for i in inputs[name] if i in pending)
    loop = path[path.index(name) :]
    return " -> ".join([*loop, loop[0]])


def _check_all_used(inputs: dict[str, tuple[str, ...]], output: str) -> None:
    used, stack = set(), [output]
    while stack:
        name = stack.pop()
        if name != INPUT and name not in used:
            used.add(name)
            stack.extend(inputs[name])
    unused = [n for n in inputs if n not in used]
    if unused:
        raise SpecError(f"layers {unused} do not lead to the output {output!r}; remove them or connect them")


def _fill_num_classes(params: dict[str, Any], num_classes: int | None, layer: str) -> dict[str, Any]:
    if NUM_CLASSES not in params.values():
        return params
    if num_classes is None:
        raise SpecError(f"layer {layer!r} uses {NUM_CLASSES!r} but no class count was given (use a dataset)")
    return {k: (num_classes if v == NUM_CLASSES else v) for k, v in params.items()}


def _check_arity(kind: LayerType, ins: tuple[str, ...], name: str) -> None:
    low, high = kind.min_inputs, kind.max_inputs
    if len(ins) < low or (high is not None and len(ins) > high):
        want = f"exactly {low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
        raise SpecError(f"layer {name!r} ({kind.name}) takes {want} input(s), got {len(ins)}: {list(ins)}")


class SpecNet(nn.Module):
    """The module built from a checked spec: one submodule per layer, run in graph order."""

    def __init__(self, checked: CheckedNetwork) -> None:
        super().__init__()
        shapes = {INPUT: checked.input_shape} | {n.name: n.shape for n in checked.nodes}
        self.layers = nn.ModuleDict(
            {n.name: n.kind.build(n.params, [shapes[i] for i in n.inputs]) for n in checked.nodes}
        )
        self.plan = [(n.name, n.inputs) for n in checked.nodes]
        self.layer_types = {n.name: n.kind.name for n in checked.nodes}
        self.shapes = {n.name: n.shape for n in checked.nodes}  # output shapes, without the batch
        self.output = checked.output
        self.spec_name = checked.spec.name
        # the head, declared by the spec itself: every layer whose size is the `num_classes` placeholder
        self.head_layers = [layer.name for layer in checked.spec.layers if NUM_CLASSES in layer.params.values()]

    def declared_heads(self) -> list[str]:
        """Module names of the head layers (the last Linear or 1x1 Conv2d inside each), the main one last."""
        found = []
        for layer in self.head_layers:
            prefix = f"layers.{layer}"
            inner = [n for n, m in self.named_modules() if n == prefix or n.startswith(prefix + ".")
                     if isinstance(m, nn.Linear | nn.Conv2d)]  # fmt: skip
            found.extend(inner[-1:])
        return found

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {INPUT: x}
        for name, ins in self.plan:
            values[name] = self.layers[name](*[values[i] for i in ins])
        return values[self.output]


def build_spec(spec: NetworkSpec, input_shape: Shape, num_classes: int | None = None) -> SpecNet:
    """Check and build in one step."""
    return SpecNet(check_spec(spec, input_shape, num_classes))
