"""NetworkSpec: a network as plain data (YAML or JSON), so it can be stored, diffed and edited in a text box.

A spec is a list of named layers. Each layer has a `type`, its parameters, and optionally `inputs` (the names of
the layers it reads; default: the layer before it, or the network input for the first). That covers plain
sequences and graphs (Inception branches, residual sums). Shapes are inferred, so no layer states its input size;
an output size written `num_classes` is filled in from the dataset. Checking and building live in `graph`.

A spec is bounded before it is looked at: at most MAX_LAYERS layers, SPEC_TEXT_MAX characters of text and
DEPTH_MAX levels of nesting (a 50,000-deep YAML list is refused while parsing, not by a RecursionError).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deepyard.errors import InvalidValueError, SpecError
from deepyard.limits import NAME_MAX, check_data, parse_yaml, yaml_problem

NUM_CLASSES = "num_classes"  # placeholder for the dataset's class count
INPUT = "input"  # the name by which layers refer to the network input
MAX_LAYERS = 2000  # layers of one spec (GoogLeNet has 142; a 10,000-layer spec is refused at once)
SPEC_TEXT_MAX = 2_000_000  # characters of spec text (MAX_LAYERS layers take about 150,000)


class LayerSpec(BaseModel):
    """One layer: name, type, inputs, and its type's parameters (checked by the layer registry)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")
    type: str = Field(max_length=NAME_MAX)
    inputs: list[str] | None = Field(None, max_length=MAX_LAYERS)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class NetworkSpec(BaseModel):
    """A whole network. `input` is its intended (channels, height, width), for listings and the view."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field("", max_length=10_000)
    input: tuple[int, int, int] | None = None
    layers: list[LayerSpec] = Field(min_length=1, max_length=MAX_LAYERS)
    output: str | None = Field(None, max_length=NAME_MAX)  # default: the last layer

    def to_data(self) -> dict[str, Any]:
        """Plain data with a stable key order: name, type, inputs, then parameters."""
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        if self.input is not None:
            data["input"] = list(self.input)
        data["layers"] = [_layer_data(layer) for layer in self.layers]
        if self.output is not None:
            data["output"] = self.output
        return data


def _layer_data(layer: LayerSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"name": layer.name, "type": layer.type}
    if layer.inputs is not None:
        data["inputs"] = list(layer.inputs)
    data.update(layer.params)
    return data


def spec_from_data(data: Any, source: str = "spec") -> NetworkSpec:
    """Validate plain data as a NetworkSpec; errors name the layer (by name or position) and the field."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: a network spec is a mapping with 'name' and 'layers', got {type(data).__name__}")
    layers = data.get("layers")
    if isinstance(layers, list) and len(layers) > MAX_LAYERS:
        raise SpecError(f"{source}: {len(layers):,} layers; a spec has at most {MAX_LAYERS:,} (MAX_LAYERS)")
    try:
        check_data(data, source)
    except InvalidValueError as exc:
        raise SpecError(str(exc)) from None
    try:
        return NetworkSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{source}: " + "; ".join(_describe(err, data) for err in exc.errors())) from None


def _describe(err: Any, data: dict[str, Any]) -> str:
    loc = list(err["loc"])
    where = ".".join(str(p) for p in loc) or "spec"
    if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
        layers = data.get("layers") or []
        name = layers[loc[1]].get("name") if loc[1] < len(layers) and isinstance(layers[loc[1]], dict) else None
        field = ".".join(str(p) for p in loc[2:]) or "layer"
        where = f"layer {name!r}" if name else f"layer #{loc[1] + 1}"
        where += f" field {field!r}"
    return f"{where}: {err['msg']}"


def parse_spec(text: str, source: str = "spec") -> NetworkSpec:
    """Parse YAML (a superset of JSON) text into a NetworkSpec."""
    if len(text) > SPEC_TEXT_MAX:
        raise SpecError(f"{source}: {len(text):,} characters of text; a spec has at most {SPEC_TEXT_MAX:,}")
    try:
        data = parse_yaml(text, source)
    except InvalidValueError as exc:
        raise SpecError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML {yaml_problem(exc)}") from None
    return spec_from_data(data, source)


def dump_yaml(spec: NetworkSpec) -> str:
    """YAML with one line per layer (flow style), the form people edit."""
    data = spec.to_data()
    out = ""
    for key, value in data.items():  # one key at a time: a mapping of scalars alone would come out as {...}
        if key in ("layers", "output"):
            continue
        if isinstance(value, list):
            out += f"{key}: {yaml.safe_dump(value, default_flow_style=True).strip()}\n"
        else:
            out += yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False, width=120)
    out += "layers:\n"
    for layer in data["layers"]:
        out += "  - " + yaml.safe_dump(layer, sort_keys=False, default_flow_style=True, width=10_000).strip() + "\n"
    if "output" in data:
        out += yaml.safe_dump({"output": data["output"]}, sort_keys=False)
    return out


def dump_json(spec: NetworkSpec) -> str:
    return json.dumps(spec.to_data(), indent=2)
