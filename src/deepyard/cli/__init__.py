"""The `deepyard` command: thin Typer verbs over the domain packages.

Each verb parses options, calls one domain function and prints the result: a Rich table, or with `--json` one
JSON document on stdout (progress always goes to stderr). A DeepyardError becomes a one-line message on stderr
and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from deepyard import __version__
from deepyard.cli.common import err_console
from deepyard.cli.datasets import dataset_app
from deepyard.cli.db import db_app
from deepyard.cli.groups import group_app
from deepyard.cli.infer import (
    classify_command,
    compare_predictions_command,
    evaluate_command,
    export_command,
    inspect_command,
    predict_command,
)
from deepyard.cli.jobs import jobs_app
from deepyard.cli.models import model_app
from deepyard.cli.networks import network_app
from deepyard.cli.serve import serve_command, user_app
from deepyard.cli.sweeps import sweep_app
from deepyard.cli.tasks import task_app
from deepyard.cli.text import generate_command
from deepyard.cli.train import run_app, train_command
from deepyard.config import load_settings
from deepyard.errors import DeepyardError, disk_full

app = typer.Typer(
    name="deepyard",
    help="Deepyard: build image datasets, train networks, look inside them, and export them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(task_app, name="task")
app.add_typer(dataset_app, name="dataset")
app.add_typer(network_app, name="network")
app.command("train")(train_command)
run_app.command("compare-predictions")(compare_predictions_command)
app.add_typer(run_app, name="run")
app.add_typer(model_app, name="model")
app.command("classify")(classify_command)
app.command("predict")(predict_command)
app.command("evaluate")(evaluate_command)
app.command("inspect")(inspect_command)
app.command("generate")(generate_command)
app.command("export")(export_command)
app.command("serve")(serve_command)
app.add_typer(user_app, name="user")
app.add_typer(jobs_app, name="jobs")
app.add_typer(sweep_app, name="sweep")
app.add_typer(group_app, name="group")
app.add_typer(db_app, name="db")


def _version(value: bool) -> None:
    if value:
        print(f"deepyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="State folder (default: $DEEPYARD_HOME, else ~/.deepyard).", show_default=False
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    ctx.obj = load_settings(home)


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: run the app, turning DeepyardErrors into one line and exit code 2."""
    try:
        return app(args=argv)
    except DeepyardError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (OSError, RuntimeError) as exc:  # a full disk anywhere is one line too; anything else keeps its traceback
        full = disk_full(exc)
        if full is None:
            raise
        err_console.print(f"[bold red]error:[/] {full}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
