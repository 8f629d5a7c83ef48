"""`deepyard task list`: the registered task types, their input kind, target format, metrics and recipe."""

from __future__ import annotations

import typer
from rich.table import Table

from deepyard.cli.common import console, print_json

task_app = typer.Typer(help="Task types: what a dataset's targets are and how a model of them is trained.",
                       no_args_is_help=True)  # fmt: skip
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout.")


@task_app.command("list")
def list_command(json: bool = JsonOpt) -> None:
    """Every registered task: input kind, target format, sources, losses, metrics and its default recipe (the
    training settings under a preset's and yours)."""
    from deepyard.tasks import list_tasks

    docs = [t.describe() for t in list_tasks()]
    if json:
        print_json(docs)
        return
    table = Table("task", "input", "targets", "losses", "metrics", "recipe", box=None)
    for d in docs:
        recipe = " ".join(f"{k}={v}" for k, v in d["recipe"].items()) or "-"
        table.add_row(d["name"], d["input_kind"], d["target_format"], ", ".join(d["losses"]), ", ".join(d["metrics"]),
                      recipe)  # fmt: skip
    console.print(table)
