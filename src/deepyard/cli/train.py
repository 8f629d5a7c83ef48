"""`deepyard train` and `deepyard run ...` (list, show, delete, rename, note, resume, lr-find, batch-size).

Every TrainConfig field is reachable: the common ones as flags, any of them with `--set key=value` (dotted keys
for sections: `--set solver.momentum=0.95 --set augment.invert=0.5`) or from a YAML/JSON `--config` file.
torch is imported inside the verbs, so the other verbs start fast.
"""

from __future__ import annotations

import importlib
import signal
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from deepyard import db, groups
from deepyard.cli.common import console, err_console, print_json
from deepyard.errors import InvalidValueError
from deepyard.limits import parse_yaml, yaml_problem

run_app = typer.Typer(
    help="Training runs: list, show, delete, resume, and the LR and batch-size finders.", no_args_is_help=True
)
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout.")
SetOpt = typer.Option([], "--set", help="Any training setting as key=value (dotted keys: solver.lr=0.1).")
ConfigOpt = typer.Option(None, "--config", help="YAML or JSON file of training settings.")


def _train() -> Any:
    return importlib.import_module("deepyard.train")


def _transfer() -> Any:
    """deepyard.transfer: a run starts there (its source's weights, the fine-tune settings), then trains."""
    return importlib.import_module("deepyard.transfer")


def build_config(
    config_file: Path | None,
    sets: list[str],
    flags: dict[str, Any],
    preset: str | None = None,
    settings: Any = None,
    dataset: str | None = None,
) -> Any:
    """Settings from the task's recipe (of `dataset`, given with the settings), then a preset, then a file, then
    flags, then --set pairs (later wins). The user's own settings are checked before the dataset is looked up, so
    a bad value is named whatever the dataset."""
    from deepyard.train.presets import base_settings, preset_settings

    own: dict[str, Any] = {}
    if config_file is not None:
        own.update(_flatten(load_settings_file(config_file)))
    own.update({k: v for k, v in flags.items() if v is not None})
    for pair in sets:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidValueError(f"--set {pair!r} is not key=value (for example --set solver.lr=0.1)")
        try:
            own[key.strip()] = parse_yaml(value, f"--set {key.strip()[:80]}")
        except yaml.YAMLError as exc:
            raise InvalidValueError(f"--set {pair[:80]!r}: the value is not valid YAML {yaml_problem(exc)}") from None
    config = _train().make_config(**{**preset_settings(preset), **own})
    if dataset is None:
        return config
    from deepyard.datasets import get_dataset

    return _train().make_config(**{**base_settings(get_dataset(settings, dataset).task, preset), **own})


def load_settings_file(path: Path) -> dict[str, Any]:
    """A `--config` file's settings: a YAML or JSON mapping; a missing, unreadable, malformed or too deeply
    nested file is one InvalidValueError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidValueError(
            f"--config {str(path)!r} cannot be read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        loaded = parse_yaml(text, f"--config {str(path)!r}") or {}
    except yaml.YAMLError as exc:
        raise InvalidValueError(f"--config {str(path)!r} is not valid YAML or JSON {yaml_problem(exc)}") from None
    if not isinstance(loaded, dict):
        raise InvalidValueError(f"--config {str(path)!r}: expected a mapping of settings, got {type(loaded).__name__}")
    return loaded


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in ("solver", "schedule", "augment", "finetune"):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class _ProgressCallback:
    """Draws a step bar on stderr and prints each validation."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.task: Any = None

    def __getattr__(self, name: str) -> Any:  # hooks it does not use
        return lambda *args: None

    def on_train_start(self, run: Any) -> None:
        if run.start_report is not None:
            self.bar.console.print("pretrained weights: " + run.start_report.summary(), highlight=False)
        self.task = self.bar.add_task("training", total=run.total_steps, completed=run.state.step)

    def on_step_end(self, run: Any, info: Any) -> None:
        self.bar.update(self.task, completed=run.state.step)

    def on_validation_end(self, run: Any, metrics: dict[str, float]) -> None:
        epoch = run.state.step / run.steps_per_epoch
        self.bar.console.print(f"epoch {epoch:.2f}: {run.task.format_metrics(metrics)}")

    def on_advice(self, run: Any, text: str) -> None:
        self.bar.console.print(f"[bold yellow]note:[/] {text}")


def _run_with_progress(fn: Any) -> Any:
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=err_console)  # fmt: skip
    stop = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        stop.set()
        err_console.print("stopping after this step and writing a checkpoint (Ctrl-C again to stop at once)")

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        with bar:
            result = fn(callbacks=[_ProgressCallback(bar)], stop=stop)
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.stop_reason == "aborted":
        err_console.print(f"stopped; `deepyard run resume {result.run_id}` continues from the checkpoint")
    return result


def train_command(
    ctx: typer.Context,
    dataset: str = typer.Option(..., "--dataset", help="Dataset id or name."),
    network: str | None = typer.Option(
        None,
        "--network",
        help="Standard network, torchvision:NAME, timm:NAME, or a spec file (default: the --from one's, else the "
        "task's default for the dataset, which is printed).",
    ),
    source: str | None = typer.Option(
        None, "--from", help="Start from pretrained:NAME, store:NAME, run:ID[@STEP], timm:NAME, or a weights file/URL."
    ),
    freeze: list[str] = typer.Option([], "--freeze", help="Keep these parameters/modules frozen (glob; repeatable)."),
    train_last: int | None = typer.Option(None, help="Train only the last N parametrised layers."),
    head_epochs: float | None = typer.Option(None, help="Train only the new head this many epochs, then all."),
    body_lr_mult: float | None = typer.Option(None, help="Learning-rate multiplier of all but the head."),
    epochs: float | None = typer.Option(None, help="Epochs (default 30, or the task's recipe: `deepyard task list`)."),
    batch_size: int | None = typer.Option(None, help="Batch size (default 64, or the task's recipe)."),
    lr: float | None = typer.Option(None, "--lr", help="Base learning rate (default 0.003, for adamw)."),
    solver: str | None = typer.Option(None, help="sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw."),
    policy: str | None = typer.Option(None, help="fixed, step, multistep, exp, inv, poly, sigmoid, cosine, onecycle."),
    seed: int | None = typer.Option(None, help="Random seed (default 0)."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    name: str | None = typer.Option(None, help="Run name."),
    group: str | None = typer.Option(None, help="Group the run joins (the home page gathers a group's runs)."),
    preset: str | None = typer.Option(
        None, "--preset", help="Settings under yours: default (Deepyard's recipe) or digits (DIGITS' classic SGD)."
    ),
    config: Path | None = ConfigOpt,
    set_: list[str] = SetOpt,
    json: bool = JsonOpt,
) -> None:
    """Train a network on a dataset, with a progress bar; prints the final metrics."""
    flags = {"epochs": epochs, "batch_size": batch_size, "solver.lr": lr, "solver.type": solver,
             "schedule.policy": policy, "seed": seed, "device": device, "finetune.freeze": freeze or None,
             "finetune.train_last": train_last, "finetune.head_epochs": head_epochs,
             "finetune.body_lr_mult": body_lr_mult}  # fmt: skip
    cfg = build_config(config, set_, flags, preset, ctx.obj, dataset)
    if network is None and source is None:
        from deepyard.datasets import get_dataset
        from deepyard.train.tasking import default_network

        network, why = default_network(get_dataset(ctx.obj, dataset))
        err_console.print(f"network: [bold]{network}[/], the default for {why} (choose another with --network)")
    stored = groups.check_name(group)

    def join_group(run_id: str) -> None:  # as soon as the run exists
        with closing(db.connect(ctx.obj)) as conn:
            groups.set_group(conn, "run", [run_id], stored)

    result = _run_with_progress(
        lambda **kw: _transfer().train_from(
            ctx.obj.trusting_urls(),
            dataset,
            network,
            cfg,
            name=name,
            source=source,
            on_created=join_group if stored else None,
            **kw,
        )
    )
    _print_result(result, json)


def _print_result(result: Any, as_json: bool) -> None:
    doc = {"run": result.run_id, "folder": str(result.folder), "steps": result.steps, "epochs": result.epochs,
           "stop_reason": result.stop_reason, "last_val": result.last_val, "best": result.best,
           "best_step": result.best_step, "seconds": round(result.seconds, 2)}  # fmt: skip
    if as_json:
        print_json(doc)
        return
    for key, value in doc.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False)


def _as_seen(settings: Any, info: dict[str, Any], grouped: dict[str, str]) -> dict[str, Any]:
    """run.json with the status people should see ("interrupted" when nothing trains it any more) and its group."""
    from deepyard.jobs import run_status

    return {**info, "status": run_status(settings, info), "group": grouped.get(info["id"])}


def _groups(settings: Any) -> dict[str, str]:
    with closing(db.connect(settings)) as conn:
        return groups.groups_of(conn, "run")


@run_app.command("list")
def list_runs(ctx: typer.Context, json: bool = JsonOpt) -> None:
    """Runs in the home, oldest first (a damaged one as damaged, with the reason)."""
    from deepyard.cli.datasets import print_damaged
    from deepyard.stored import Damaged
    from deepyard.train.runs import scan_runs

    grouped = _groups(ctx.obj)
    found = [r if isinstance(r, Damaged) else _as_seen(ctx.obj, r, grouped) for r in scan_runs(ctx.obj)]
    if json:
        print_json([r.to_json() if isinstance(r, Damaged) else r for r in found])
        return
    table = Table("id", "name", "group", "task", "status", "epochs", "headline", "created")
    for r in found:
        if isinstance(r, Damaged):
            table.add_row(r.id, "(see below)", grouped.get(r.id) or "-", "-", "[bold red]damaged[/]", "-", "-", "-")
            continue
        table.add_row(r["id"], r["name"], r["group"] or "-", r["task"], r["status"], str(r["config"]["epochs"]),
                      _headline(r), r["created"])  # fmt: skip
    console.print(table if found else "no runs yet: try `deepyard train --dataset mnist --network lenet`")
    print_damaged(r for r in found if isinstance(r, Damaged))


def _headline(info: dict[str, Any]) -> str:
    """The task's headline metric at the run's end (classification: `val top-1 97.50%`)."""
    from deepyard.tasks import get_task

    result = info.get("result")
    val = result.get("last_val") if isinstance(result, dict) else None
    task = get_task(info.get("task"))
    return f"{task.metrics[1].label} {task.headline(val)}" if isinstance(val, dict) and val else "-"


@run_app.command("show")
def show_run(ctx: typer.Context, run_id: str = typer.Argument(..., help="Run id."), json: bool = JsonOpt) -> None:
    """A run's settings, status and final metrics (for a damaged one, the reason)."""
    from deepyard.cli.datasets import print_damaged
    from deepyard.stored import Damaged
    from deepyard.train.runs import load_run

    found = load_run(ctx.obj, run_id)
    info = found.to_json() if isinstance(found, Damaged) else _as_seen(ctx.obj, found, _groups(ctx.obj))
    if json:
        print_json(info)
    elif isinstance(found, Damaged):
        print_damaged([found])
    else:
        console.print_json(data=info)


@run_app.command("delete")
def delete_run(ctx: typer.Context, run_id: str = typer.Argument(..., help="Run id."), json: bool = JsonOpt) -> None:
    """Delete a run and its files (also a damaged one); refused while it is queued or running."""
    from deepyard import jobs
    from deepyard.stored import Damaged
    from deepyard.train.runs import delete_run as remove_run
    from deepyard.train.runs import load_run

    info = load_run(ctx.obj, run_id)
    busy = jobs.list_jobs(ctx.obj, jobs.ACTIVE, target=run_id)
    status = busy[0].status if busy else "damaged" if isinstance(info, Damaged) else jobs.run_status(ctx.obj, info)
    if status in jobs.ACTIVE:
        raise InvalidValueError(f"run {run_id!r} is {status}; stop it (`deepyard jobs abort`, or Ctrl-C where it "
                                "trains) before deleting it")  # fmt: skip
    remove_run(ctx.obj, run_id)
    jobs.forget_target(ctx.obj, "run", run_id)  # its finished jobs, group and owner records go with it
    name = None if isinstance(info, Damaged) else info["name"]
    if json:
        print_json({"deleted": run_id, "name": name})
    else:
        console.print(f"deleted run {run_id} ({name or 'damaged'})", highlight=False)


@run_app.command("rename")
def rename_run(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id."),
    name: str = typer.Argument(..., help="The new name."),
) -> None:
    """Rename a run (also while it trains)."""
    from deepyard.train.runs import annotate_run

    console.print(f"run {run_id}: {annotate_run(ctx.obj, run_id, name=name)['name']!r}")


@run_app.command("note")
def note_run(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Run id."),
    text: str = typer.Argument(..., help="The notes ('' clears them; '-' reads them from stdin)."),
) -> None:
    """Set a run's notes (shown on its page and in the compare table)."""
    import sys

    from deepyard.train.runs import annotate_run

    annotate_run(ctx.obj, run_id, notes=sys.stdin.read() if text == "-" else text)
    console.print(f"run {run_id}: notes saved")


@run_app.command("resume")
def resume(ctx: typer.Context, run_id: str = typer.Argument(..., help="Run id."), json: bool = JsonOpt) -> None:
    """Continue a stopped or killed run from its last checkpoint, exactly."""
    result = _run_with_progress(lambda **kw: _transfer().resume_from(ctx.obj, run_id, **kw))
    _print_result(result, json)


@run_app.command("lr-find")
def lr_find(
    ctx: typer.Context,
    dataset: str = typer.Option(..., "--dataset"),
    network: str = typer.Option(..., "--network"),
    steps: int = typer.Option(200, min=10, help="Steps of the sweep."),
    config: Path | None = ConfigOpt,
    set_: list[str] = SetOpt,
    json: bool = JsonOpt,
) -> None:
    """LR range test: sweep the learning rate and suggest the one where the loss falls fastest."""
    finders = importlib.import_module("deepyard.train.finders")
    cfg = build_config(config, set_, {}, None, ctx.obj, dataset)
    start = _transfer().start_new(ctx.obj, None, network, cfg)  # fine-tune settings freeze as in the run
    result = finders.lr_range_test(ctx.obj, dataset, network, cfg, steps=steps, run_start=start)
    if json:
        print_json({"suggestion": result.suggestion, "lrs": result.lrs, "losses": result.losses})
        return
    console.print(f"suggested learning rate: [bold]{result.suggestion:.3g}[/] ({len(result.lrs)} steps swept)")


@run_app.command("batch-size")
def batch_size(
    ctx: typer.Context,
    dataset: str = typer.Option(..., "--dataset"),
    network: str = typer.Option(..., "--network"),
    config: Path | None = ConfigOpt,
    set_: list[str] = SetOpt,
    json: bool = JsonOpt,
) -> None:
    """The largest batch size whose training step fits in the device's memory."""
    finders = importlib.import_module("deepyard.train.finders")
    cfg = build_config(config, set_, {}, None, ctx.obj, dataset)
    start = _transfer().start_new(ctx.obj, None, network, cfg)
    found = finders.find_batch_size(ctx.obj, dataset, network, cfg, run_start=start)
    if json:
        print_json({"batch_size": found})
        return
    console.print(f"largest batch that fits: [bold]{found}[/]")
