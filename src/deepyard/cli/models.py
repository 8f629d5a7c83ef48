"""`deepyard model ...`: the model store (list, show, add, make-pretrained, import, pull, delete)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from deepyard.cli.common import console, print_json

model_app = typer.Typer(help="The model store: pretrained models to fine-tune from (--from store:NAME).",
                        no_args_is_help=True)  # fmt: skip
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout.")
ReplaceOpt = typer.Option(False, "--replace", help="Replace an entry of the same name.")


def _transfer() -> Any:
    return importlib.import_module("deepyard.transfer")


def _show(entry: Any, as_json: bool) -> None:
    doc = entry.to_json()
    if as_json:
        print_json(doc)
        return
    labels = doc.pop("labels")
    shown = ", ".join(labels[:10]) + (f", ... ({len(labels)} in all)" if len(labels) > 10 else "")
    for key, value in {**doc, "network": doc["network"]["ref"], "labels": shown}.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False)


@model_app.command("list")
def list_models(
    ctx: typer.Context,
    index: str | None = typer.Option(None, "--index", help="List a remote store (its URL or index.json URL)."),
    json: bool = JsonOpt,
) -> None:
    """Models in the local store, or in a remote store with --index."""
    t = _transfer()
    rows = t.read_index(ctx.obj, index) if index else [e.to_json() for e in t.list_models(ctx.obj)]
    if json:
        print_json(rows)
        return
    table = Table("name", "network", "classes", "input", "description")
    for r in rows:
        network = r["network"]["ref"] if isinstance(r["network"], dict) else r["network"]
        shape = "x".join(map(str, r["input_shape"])) if r.get("input_shape") else "any"
        table.add_row(r["name"], network, str(r["num_classes"]), shape, r.get("description", ""))
    console.print(table if rows else "no models: try `deepyard model make-pretrained RUN_ID`")


@model_app.command("show")
def show(ctx: typer.Context, name: str = typer.Argument(..., help="Model name."), json: bool = JsonOpt) -> None:
    """One stored model: network, labels, preprocessing, origin, files."""
    _show(_transfer().get_model(ctx.obj, name), json)


@model_app.command("make-pretrained")
def make_pretrained(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id."),
    step: str | None = typer.Option(None, help="Checkpoint step, or 'best' (default: best, else the last)."),
    name: str | None = typer.Option(None, help="Entry name (default: NETWORK-RUNID)."),
    description: str = typer.Option("", help="Description (default: the run's name)."),
    json: bool = JsonOpt,
) -> None:
    """Store a run's checkpoint as a pretrained model, with its labels and preprocessing."""
    _show(_transfer().make_pretrained(ctx.obj, run_id, name, step, description), json)


@model_app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Entry name."),
    source: str = typer.Option(..., "--from", help="pretrained:NAME, timm:NAME, run:ID[@STEP], or a weights file/URL."),
    network: str | None = typer.Option(None, help="The weights' network (needed for a bare weights file)."),
    labels: Path | None = typer.Option(None, help="Labels: one per line, or a class-index JSON (ImageNet's)."),
    description: str = typer.Option("", help="Description."),
    replace: bool = ReplaceOpt,
    json: bool = JsonOpt,
) -> None:
    """Store weights from anywhere `--from` accepts (downloads torchvision weights when online)."""
    t = _transfer()
    names = t.load_labels(labels) if labels else None
    settings = ctx.obj.trusting_urls()  # a URL typed at the keyboard may be fetched
    _show(t.add_model(settings, name, source, network, names, description=description, replace=replace), json)


@model_app.command("import")
def import_archive(
    ctx: typer.Context,
    archive: Path = typer.Argument(..., help="Model archive (.zip) written by `deepyard export` or the web app."),
    name: str | None = typer.Option(None, help="Entry name (default: the archive's file name)."),
    description: str = typer.Option("", help="Description."),
    replace: bool = ReplaceOpt,
    json: bool = JsonOpt,
) -> None:
    """Store a model archive (weights, network, labels, preprocessing) as a pretrained model."""
    _show(_transfer().import_archive(ctx.obj, archive, name, description, replace), json)


@model_app.command("pull")
def pull(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Entry name in the remote store."),
    index: str = typer.Option(..., "--index", help="The remote store's URL (a folder with index.json)."),
    replace: bool = ReplaceOpt,
    json: bool = JsonOpt,
) -> None:
    """Download a model from a remote store (a static HTTP folder) into the local store."""
    _show(_transfer().pull_model(ctx.obj, index, name, replace), json)


@model_app.command("delete")
def delete(ctx: typer.Context, name: str = typer.Argument(..., help="Model name."), json: bool = JsonOpt) -> None:
    """Remove a model from the local store."""
    _transfer().delete_model(ctx.obj, name)
    if json:
        print_json({"deleted": name})
        return
    console.print(f"deleted {name}")
