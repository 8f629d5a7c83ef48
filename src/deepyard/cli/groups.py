"""`deepyard group ...`: put datasets and runs in a group (the home page gathers them), take them out, list groups."""

from __future__ import annotations

from contextlib import closing

import typer
from rich.table import Table

from deepyard import db, groups
from deepyard.cli.common import console, print_json
from deepyard.config import Settings
from deepyard.datasets import find_dataset
from deepyard.errors import NotFoundError
from deepyard.train.runs import list_runs

group_app = typer.Typer(help="Groups gather datasets and runs on the home page.", no_args_is_help=True)
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout.")
RefsArg = typer.Argument(..., help="Run ids, dataset ids or dataset names.")


def _resolve(settings: Settings, ref: str) -> tuple[str, str]:
    """(kind, id) of a run id, or of a dataset id or name."""
    if any(r["id"] == ref for r in list_runs(settings)):
        return "run", ref
    found = find_dataset(settings, ref)
    if found is None:
        raise NotFoundError(f"no run or dataset {ref!r}; `deepyard run list` and `deepyard dataset list` show them")
    return "dataset", found.id


def _set(settings: Settings, refs: list[str], name: str | None) -> list[tuple[str, str]]:
    resolved = [_resolve(settings, ref) for ref in refs]  # all checked before any changes
    with closing(db.connect(settings)) as conn:
        for kind in groups.KINDS:
            groups.set_group(conn, kind, [ref for k, ref in resolved if k == kind], name)
    return resolved


@group_app.command("set")
def set_command(
    ctx: typer.Context, name: str = typer.Argument(..., help="Group name."), refs: list[str] = RefsArg
) -> None:
    """Put runs and datasets in group NAME (moving them out of any other)."""
    stored = groups.check_name(name)
    for kind, ref in _set(ctx.obj, refs, stored):
        console.print(f"{kind} {ref}: group {stored!r}" if stored else f"{kind} {ref}: no group")


@group_app.command("clear")
def clear_command(ctx: typer.Context, refs: list[str] = RefsArg) -> None:
    """Take runs and datasets out of their group."""
    for kind, ref in _set(ctx.obj, refs, None):
        console.print(f"{kind} {ref}: no group")


@group_app.command("list")
def list_command(ctx: typer.Context, json_: bool = JsonOpt) -> None:
    """Every group and what is in it."""
    with closing(db.connect(ctx.obj)) as conn:
        found = groups.members(conn)
    if json_:
        print_json(found)
        return
    table = Table("group", "datasets", "runs")
    for g in found:
        table.add_row(g["name"], ", ".join(g["datasets"]) or "-", ", ".join(g["runs"]) or "-")
    console.print(table if found else "no groups yet: `deepyard group set NAME RUN_OR_DATASET...`")
