"""`deepyard network ...`: list, show, check, view.

`deepyard.networks` (and so torch) is imported inside the verbs: the other verbs start without it.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from deepyard.cli.common import console, print_json
from deepyard.errors import InvalidValueError
from deepyard.files import write_bytes_atomic

Shape = tuple[int, ...]


def _networks() -> Any:
    return importlib.import_module("deepyard.networks")


network_app = typer.Typer(help="Standard networks, network specs, checks and drawings.", no_args_is_help=True)

JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout instead of tables.")
ClassesOpt = typer.Option(10, "--classes", min=1, help="Class count that fills `num_classes`.")
InputOpt = typer.Option(None, "--input", help="Input shape CxHxW (default: the network's own).")
NetworkArg = typer.Argument(
    ..., help="A standard network name, torchvision:NAME, timm:NAME, or a .yaml/.json/.py file."
)


def parse_input(text: str) -> Shape:
    """`CxHxW`, e.g. 1x28x28."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InvalidValueError(f"input {text!r} is not CxHxW with positive sizes (for example 1x28x28 or 3x224x224)")
    c, h, w = (int(p) for p in parts)
    return c, h, w


def _input_for(ref: str, given: str | None) -> Shape:
    networks = _networks()
    if given:
        return parse_input(given)
    parsed = networks.parse_ref(ref)
    if parsed.kind in ("python", "torchvision", "timm"):
        raise InvalidValueError(f"give --input CxHxW for {ref!r}")
    entry = networks.get_network(ref) if networks.is_torchvision(parsed) else networks.load_spec(parsed)
    spec_input = entry.input
    if spec_input is None:
        raise InvalidValueError(f"{ref!r} states no intended input; give --input CxHxW")
    return tuple(spec_input)


def _si(n: int) -> str:
    """3 significant figures with a unit: 431 K, 2.29 M, 17.6 G."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return str(n)


@network_app.command("list")
def list_(
    json: bool = JsonOpt,
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (the README's is made so)."),
) -> None:
    """The standard networks with their intended input, parameters and multiply-accumulates (MACs)."""
    networks = _networks()
    rows = [(e, networks.summarize(e.name, e.input, num_classes=1000)) for e in networks.list_networks()]
    detectors = _detectors() if not markdown else []
    text = [] if markdown else _text_networks()  # the README's table is the image networks'
    if json:
        print_json([{"name": e.name, "family": e.family, "input": list(e.input), "params": s.params,
                     "macs": s.macs, "description": e.description} for e, s in rows] + text + detectors)  # fmt: skip
        return
    cells = [(e.name, "x".join(map(str, e.input)), _si(s.params), _si(s.macs), e.description) for e, s in rows]
    if markdown:
        print("| network | input | parameters (1000 classes) | MACs per image | what |\n|---|---|---:|---:|---|")
        print("\n".join("| " + " | ".join(c) + " |" for c in cells))
        return
    table = Table("network", "input", "params", "MACs", "what", title="standard networks (at 1000 classes)")
    for c in cells:
        table.add_row(*c)
    console.print(table)
    boxes = Table("network", "params", "what", title="object detectors (--task detection datasets; at 91 classes)")
    for d in detectors:
        boxes.add_row(d["name"], _si(d["params"]), d["description"])
    console.print(boxes)
    lm = Table("network", "params", "MACs", "what", title="language models (65 tokens, per 128-token block)")
    for r in text:
        if r.get("task") != "text-classification":
            lm.add_row(r["name"], _si(r["params"]), _si(r["macs"]), r["description"])
    console.print(lm)
    tc = Table("network", "params", "MACs", "what", title="text classifiers (1,026 tokens, 256 per text, 4 classes)")
    for r in text:
        if r.get("task") == "text-classification":
            tc.add_row(r["name"], _si(r["params"]), _si(r["macs"]), r["description"])
    console.print(tc)


def _text_networks() -> list[dict[str, Any]]:
    """The language-model networks (deepyard.text.networks) at a 65-token vocabulary and a 128-token context."""
    from deepyard.text.classifiers import text_classifier_rows
    from deepyard.text.summary import text_network_rows

    return text_network_rows() + text_classifier_rows()


def _detectors() -> list[dict[str, Any]]:
    """torchvision's detection families (deepyard.networks.detection), counted on the meta device (no weights)."""
    import torch

    from deepyard.networks.detection import DETECTORS, build_detector

    found = []
    for name, description in DETECTORS.items():
        with torch.device("meta"):
            params = sum(p.numel() for p in build_detector(name, (3, 320, 320), 91).parameters())
        found.append({"name": name, "family": "detection", "task": "detection", "input": [3, 320, 320],
                      "params": params, "macs": None, "description": description})  # fmt: skip
    return found


@network_app.command("show")
def show(
    name: str = typer.Argument(..., help="A standard spec network or a spec file."),
    format: str = typer.Option("yaml", "--format", help="yaml or json."),
) -> None:
    """Print a network's spec (copy it to customise it)."""
    networks = _networks()
    spec = networks.load_spec(name)
    if format not in ("yaml", "json"):
        raise InvalidValueError(f"format {format!r} is not valid; use 'yaml' or 'json'")
    print(networks.dump_yaml(spec) if format == "yaml" else networks.dump_json(spec))


@network_app.command("check")
def check(
    ctx: typer.Context,
    ref: str = NetworkArg,
    input: str | None = InputOpt,
    classes: int = ClassesOpt,
    json: bool = JsonOpt,
) -> None:
    """Check a network for an input shape: every layer's output shape, or the first problem."""
    shape, summary = _summary(ctx, ref, input, classes)
    if json:
        output = list(summary.rows[-1].output_shape)
        print_json({"ok": True, "network": summary.network, "input": list(shape), "output": output,
                    "params": summary.params, "macs": summary.macs})  # fmt: skip
        return
    out = "x".join(map(str, summary.rows[-1].output_shape))
    console.print(f"[green]ok[/]: {summary.network} takes {'x'.join(map(str, shape))} -> {out}, "
                  f"{summary.params:,} parameters, {summary.macs:,} MACs per image")  # fmt: skip


def _summary(ctx: typer.Context, ref: str, given: str | None, classes: int) -> tuple[Shape, Any]:
    """(input shape, summary) of a network; a language model's input is its context (`--input 256`, default
    128) and `--classes` its vocabulary size."""
    from deepyard.text.classifiers import is_text_classifier
    from deepyard.text.networks import is_text_network

    if is_text_classifier(ref):  # its input is the tokens per text (`--input 256`), `--classes` its classes
        from deepyard.text.classifiers import summarize_text_classifier

        if given is not None and not given.isdigit():
            raise InvalidValueError(f"input {given!r} of a text classifier is its length, a number of tokens")
        return (int(given or 256),), summarize_text_classifier(ref, int(given or 256), classes)
    if is_text_network(ref):
        from deepyard.text.summary import LIST_CONTEXT, summarize_text_network

        if given is not None and not given.isdigit():
            raise InvalidValueError(f"input {given!r} of a language model is its context, a number of tokens")
        return (int(given or LIST_CONTEXT),), summarize_text_network(ref, int(given or LIST_CONTEXT), classes)
    shape = _input_for(ref, given)
    return shape, _networks().summarize(ref, shape, classes, ctx.obj)


@network_app.command("view")
def view(
    ctx: typer.Context,
    ref: str = NetworkArg,
    input: str | None = InputOpt,
    classes: int = ClassesOpt,
    out: Path | None = typer.Option(None, "--out", help="SVG file to write (default: NAME.svg)."),
    json: bool = JsonOpt,
) -> None:
    """Draw the network as an SVG graph and print its summary table (layer, output, params, MACs)."""
    networks = _networks()
    shape, summary = _summary(ctx, ref, input, classes)
    name = summary.network if ":" in summary.network else Path(summary.network).stem  # a sized name keeps its dots
    target = out or Path(re.sub(r"[^\w.-]+", "_", name) + ".svg")
    write_bytes_atomic(target.absolute(), networks.render_svg(summary).encode("utf-8"))
    if json:
        print_json({"svg": str(target), "network": summary.network, "input": list(shape), "params": summary.params,
                    "macs": summary.macs, "layers": [
                        {"name": r.name, "type": r.type, "inputs": list(r.inputs), "output_shape": list(r.output_shape),
                         "params": r.params, "macs": r.macs} for r in summary.rows]})  # fmt: skip
        return
    table = Table(
        "layer", "type", "output", "params", "MACs", title=f"{summary.network} at {'x'.join(map(str, shape))}"
    )
    for r in summary.rows:
        table.add_row(r.name, r.type, "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.macs:,}")
    table.add_row("[bold]total", "", "", f"[bold]{summary.params:,}", f"[bold]{summary.macs:,}")
    console.print(table)
    console.print(f"graph written to {target}")
