"""/api/v1/networks: the standard list, a network's spec, checking a posted spec (live validation), SVG view."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import Field

from deepyard.errors import InvalidValueError
from deepyard.limits import NAME_MAX
from deepyard.networks import (
    NetworkSpec,
    Summary,
    dump_yaml,
    get_network,
    is_torchvision,
    load_spec,
    parse_spec,
    render_svg,
    summarize,
)
from deepyard.networks.graph import INPUT_MAX
from deepyard.networks.spec import SPEC_TEXT_MAX
from deepyard.web import views
from deepyard.web.deps import IdPath, RequestModel, SettingsDep

router = APIRouter(prefix="/networks", tags=["networks"])
SVG = "image/svg+xml"


@router.get("")
def list_(settings: SettingsDep) -> list[dict[str, Any]]:
    """The standard networks with intended input, parameters and MACs (at 1000 classes)."""
    return views.list_standard_networks(settings)


@router.get("/{name}/spec")
def spec(name: IdPath) -> dict[str, Any]:
    """A standard spec network as YAML text (to customise it) and as data."""
    network = load_spec(_standard_name(name))
    return {"name": network.name, "yaml": dump_yaml(network), "spec": network.to_data()}


Side = Annotated[int, Field(ge=1, le=INPUT_MAX)]


class CheckRequest(RequestModel):
    network: str | None = Field(None, max_length=NAME_MAX, description="A standard network name (or give `spec`).")
    spec: str | None = Field(None, max_length=SPEC_TEXT_MAX, description="A network spec as YAML or JSON text.")
    input: tuple[Side, Side, Side] | None = Field(None, description="(C, H, W); default: the network's own.")
    classes: int = Field(10, ge=1, le=100_000)


def _standard_name(name: str) -> str:
    """Only names from the registry: a request never names a file on the server."""
    get_network(name)
    return name


def _resolve(body: CheckRequest) -> tuple[str | NetworkSpec, tuple[int, int, int]]:
    if (body.network is None) == (body.spec is None):
        raise InvalidValueError("give exactly one of 'network' (a standard name) or 'spec' (YAML text)")
    if body.spec is not None:
        parsed = parse_spec(body.spec, source="spec")
        ref: str | NetworkSpec = parsed
        intended: tuple[int, ...] | None = parsed.input
    else:
        name = _standard_name(body.network or "")
        ref = name
        intended = get_network(name).input if is_torchvision(name) else load_spec(name).input
    shape = body.input or intended
    if shape is None:
        raise InvalidValueError("the spec states no 'input'; give input as [C, H, W]")
    return ref, (int(shape[0]), int(shape[1]), int(shape[2]))


def _summary_json(s: Summary) -> dict[str, Any]:
    return {
        "ok": True,
        "network": s.network,
        "input": list(s.input_shape),
        "params": s.params,
        "macs": s.macs,
        "output": list(s.rows[-1].output_shape) if s.rows else [],
        "layers": [
            {
                "name": r.name,
                "type": r.type,
                "inputs": list(r.inputs),
                "output_shape": list(r.output_shape),
                "params": r.params,
                "macs": r.macs,
            }
            for r in s.rows
        ],
    }


@router.post("/check")
def check(body: CheckRequest, settings: SettingsDep) -> dict[str, Any]:
    """Check a network for an input shape: every layer's shape, or 422 with the first problem (names the layer)."""
    ref, shape = _resolve(body)
    return _summary_json(summarize(ref, shape, body.classes, settings))


@router.post("/view", response_class=Response, responses={200: {"content": {SVG: {}}}})
def view(body: CheckRequest, settings: SettingsDep) -> Response:
    """The network drawn as SVG (Graphviz)."""
    ref, shape = _resolve(body)
    return Response(render_svg(summarize(ref, shape, body.classes, settings)), media_type=SVG)
