"""`deepyard sweep ...`: create, list, show, stop, resume, best. A sweep's trials run as train jobs on a scheduler
(`deepyard jobs work` or the server), as many at once as it has slots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from deepyard.cli.common import console, print_json
from deepyard.cli.train import ConfigOpt, SetOpt, build_config, load_settings_file

sweep_app = typer.Typer(help="Search training settings with Optuna: trials as train jobs, pruned early.",
                        no_args_is_help=True)  # fmt: skip
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout.")
IdArg = typer.Argument(..., help="Sweep id.")


def _sweeps() -> Any:
    import deepyard.sweeps

    return deepyard.sweeps


def changed_settings(config: Any) -> dict[str, Any]:
    """The settings of `config` that differ from TrainConfig's defaults, as dotted keys."""
    from deepyard.train import TrainConfig

    return _diff(config.model_dump(mode="json"), TrainConfig().model_dump(mode="json"))


def _diff(data: dict[str, Any], default: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            found.update(_diff(value, default.get(key) or {}, f"{prefix}{key}."))
        elif value != default.get(key):
            found[f"{prefix}{key}"] = value
    return found


@sweep_app.command("create")
def create(
    ctx: typer.Context,
    dataset: str = typer.Option(..., "--dataset", help="Dataset id or name."),
    network: list[str] = typer.Option([], "--network", help="Network (repeat for a choice; default: the task's)."),
    space: Path = typer.Option(..., "--space", help="YAML/JSON: key -> {type: float|int|choice, ...}."),
    trials: int | None = typer.Option(None, "--trials", help="Budget: trials to run."),
    minutes: float | None = typer.Option(None, "--minutes", help="Budget: no trial starts after this long."),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe, random or grid."),
    prune: str = typer.Option("none", "--prune", help="none, median or halving."),
    objective: str = typer.Option("val_loss", "--objective", help="A metric the task monitors (val_top1...)."),
    name: str | None = typer.Option(None, "--name", help="Shown in lists; trials are named '<name> #N'."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler."),
    group: str | None = typer.Option(None, "--group", help="Group the trials' runs join."),
    config: Path | None = ConfigOpt,
    set_: list[str] = SetOpt,
    json_: bool = JsonOpt,
) -> None:
    """Create a sweep (validated before anything is queued); the scheduler starts its trials."""
    fixed = changed_settings(build_config(config, set_, {}))
    data = {"dataset": dataset, "networks": network or None, "space": load_settings_file(space), "config": fixed,
            "trials": trials, "max_seconds": None if minutes is None else minutes * 60, "sampler": sampler,
            "prune": prune, "objective": objective, "name": name, "seed": seed}  # fmt: skip
    sweep_id = _sweeps().create_sweep(ctx.obj, data, group=group)
    summary = _sweeps().get_sweep(ctx.obj, sweep_id)
    if json_:
        print_json(summary)
    else:
        console.print(f"sweep {sweep_id}: {summary['status']} (a scheduler runs its trials: `deepyard jobs work`)")


@sweep_app.command("list")
def list_command(ctx: typer.Context, json_: bool = JsonOpt) -> None:
    """Sweeps, oldest first."""
    found = _sweeps().list_sweeps(ctx.obj)
    if json_:
        print_json(found)
        return
    table = Table("id", "name", "status", "trials", "pruned", "objective", "best", "best run")
    for s in found:
        best = s["best"] or {}
        planned = f"{s['total']}/{s['planned']}" if s["planned"] else str(s["total"])
        table.add_row(s["id"], s["name"] or "-", s["status"], planned, str(s["counts"]["pruned"]), s["objective"],
                      _num(best.get("value")), best.get("run") or "-")  # fmt: skip
    console.print(table if found else "no sweeps")


@sweep_app.command("show")
def show(ctx: typer.Context, sweep_id: str = IdArg, json_: bool = JsonOpt) -> None:
    """One sweep: its settings and every trial (state, drawn settings, objective, run, time to its best)."""
    summary = _sweeps().get_sweep(ctx.obj, sweep_id)
    if json_:
        print_json(summary)
        return
    console.print(f"sweep {summary['id']}: {summary['status']}, {summary['total']} trial(s), {summary['objective']} "
                  f"({summary['direction']}), {summary['elapsed_s']:.0f} s")  # fmt: skip
    keys = sorted(summary["space"])
    table = Table("#", "state", *keys, summary["objective"], "to best (s)", "images", "run")
    for t in summary["trials"]:
        last = t["milestones"][-1] if t["milestones"] else {}
        table.add_row(str(t["number"]), t["state"], *(_num(t["params"].get(k)) for k in keys), _num(t["value"]),
                      _num(last.get("wall")), str(last.get("images", "-")), t["run"] or "-")  # fmt: skip
    console.print(table)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@sweep_app.command("stop")
def stop(ctx: typer.Context, sweep_id: str = IdArg) -> None:
    """No new trials; running ones stop with a checkpoint, to continue with `sweep resume`."""
    _sweeps().stop_sweep(ctx.obj, sweep_id)
    console.print(f"sweep {sweep_id}: stopped")


@sweep_app.command("resume")
def resume(ctx: typer.Context, sweep_id: str = IdArg) -> None:
    """Continue a stopped sweep: its stopped trials resume from their checkpoints, then new ones start."""
    _sweeps().resume_sweep(ctx.obj, sweep_id)
    console.print(f"sweep {sweep_id}: running")


@sweep_app.command("best")
def best(ctx: typer.Context, sweep_id: str = IdArg, json_: bool = JsonOpt) -> None:
    """The best finished trial's run id (use it as any run: classify, evaluate, export, --from run:ID)."""
    run_id = _sweeps().best_run(ctx.obj, sweep_id)
    if json_:
        print_json({"sweep": sweep_id, "run": run_id, "best": _sweeps().get_sweep(ctx.obj, sweep_id)["best"]})
    else:
        typer.echo(run_id)
