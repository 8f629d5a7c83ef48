"""`deepyard classify`, `evaluate`, `inspect`, `export` and `run compare-predictions`: use trained models from the
command line.

MODEL is a run id (`ID`, `run:ID`, `ID@best`, `ID@1200` for a snapshot) or a model archive file. torch is imported
inside the verbs, so the other verbs start fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from deepyard.cli.common import console, err_console, print_json, progress_bar
from deepyard.datasets.images import EXTENSIONS, ImageSkipped
from deepyard.errors import InvalidValueError, SourceError

ModelArg = typer.Argument(..., help="Run id (ID, run:ID, ID@best, ID@STEP) or a model archive (.zip).")
SnapshotOpt = typer.Option(None, "--snapshot", help="best (default), last, or a step number.")
JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def _infer() -> Any:
    return importlib.import_module("deepyard.infer")


def _tasks() -> Any:
    return importlib.import_module("deepyard.infer.tasks")


def classify_command(
    ctx: typer.Context,
    model: str = ModelArg,
    inputs: str = typer.Argument(..., help="An image file or URL; a folder of images; or a list file."),
    top: int = typer.Option(5, "--top", min=1, help="How many classes to show per image."),
    base: Path | None = typer.Option(None, "--base", help="Folder that list-file paths are relative to."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Also write the table as CSV here."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per forward pass."),
    snapshot: str | None = SnapshotOpt,
    json: bool = JsonOpt,
) -> None:
    """Classify one image (top-k), or many from a folder or list file (a table; bad files listed with errors); a
    text classifier's run classifies a text, a text file, a table or a folder of texts, as `deepyard predict`."""
    from deepyard.cli.textclass import text_predict

    if text_predict(ctx.obj, model if snapshot is None else f"{model}@{snapshot}", inputs, top, json):
        return
    infer = _infer()
    clf = infer.open_model(ctx.obj, model, snapshot)
    path = Path(inputs)
    if inputs.startswith(("http://", "https://")) or (path.is_file() and path.suffix.lower() in EXTENSIONS):
        try:
            rows = [infer.classify_one(clf, inputs, top)]
        except ImageSkipped as exc:
            raise SourceError(f"{inputs}: {exc.reason}") from None
    else:
        items = infer.read_inputs(path, base, clf.classes, clf.task)
        with progress_bar() as update:
            rows = infer.classify_many(clf, items, top, batch_size, lambda d, t: update("classifying", d, t))
    if csv_out is not None:
        from deepyard.files import write_bytes_atomic
        from deepyard.infer.predict import predictions_csv

        write_bytes_atomic(csv_out, predictions_csv(rows, top).encode("utf-8"))
    if json:
        print_json({"model": clf.info, "predictions": [r.to_json() for r in rows]})
        return
    _print_predictions(rows)


def predict_command(
    ctx: typer.Context,
    model: str = ModelArg,
    inputs: str = typer.Argument(..., help="An image file or a folder of images; a text classifier: a text too."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the masks and overlays (default: the run's)."),
    opacity: float = typer.Option(0.5, "--opacity", help="How strongly the class colours cover the overlay, 0..1."),
    threshold: float | None = typer.Option(
        None, "--threshold", help="Detection: the score every box needs, 0..1 (default: its class's best F1)."
    ),
    snapshot: str | None = SnapshotOpt,
    json: bool = JsonOpt,
) -> None:
    """Segment images (a class-index mask PNG at each image's original size and an overlay, with class areas),
    detect objects (boxes in each image's original pixels with class and score, and an overlay), or classify texts
    (a text, a .txt file, a CSV/JSONL file or a folder of .txt files: the top classes with probabilities)."""
    from deepyard.cli.textclass import text_predict

    if text_predict(ctx.obj, model if snapshot is None else f"{model}@{snapshot}", inputs, 5, json):
        return
    detect = importlib.import_module("deepyard.infer.detect")
    if detect.model_task(ctx.obj, model) == "detection":
        _print_detections(detect.detect_images(ctx.obj, model, Path(inputs), out, snapshot, threshold), json)
        return
    doc = importlib.import_module("deepyard.infer.segment").segment_images(
        ctx.obj, model, Path(inputs), out, snapshot, opacity
    )
    if json:
        print_json(doc)
        return
    table = Table("image", "mask", "areas", box=None)
    for row in doc["predictions"]:
        table.add_row(row["source"], row.get("mask") or f"[red]{row['error']}[/]", row.get("summary", ""))
    console.print(table)
    console.print(f"masks and overlays in {doc['folder']}", highlight=False)


def _print_detections(doc: dict[str, Any], json: bool) -> None:
    if json:
        print_json(doc)
        return
    table = Table("image", "boxes", "overlay", box=None)
    for row in doc["predictions"]:
        table.add_row(row["source"], row.get("summary") or f"[red]{row['error']}[/]", row.get("overlay", ""))
    console.print(table)


def _print_predictions(rows: list[Any]) -> None:
    table = Table("image", "prediction", "true", box=None)
    for row in rows:
        shown = (row.error and f"[red]{row.error}[/]") or row.result.get("summary", "")
        mark = "" if row.correct is None else ("[green]✓[/]" if row.correct else "[red]✗[/]")
        table.add_row(row.source, shown, f"{row.label or ''} {mark}")
    console.print(table)
    labelled = [r for r in rows if r.correct is not None]
    if labelled:
        right = sum(r.correct for r in labelled)
        console.print(f"right on {len(labelled)} labelled images: {right / len(labelled):.2%}")


def compare_predictions_command(
    ctx: typer.Context,
    models: list[str] = typer.Argument(..., help="Runs (ID, ID@SNAPSHOT) or model archives: one column each."),
    images: list[Path] = typer.Option([], "--images", help="An image file, folder or list file; repeat for more."),
    dataset: str | None = typer.Option(None, "--dataset", help="Also take images from this dataset (id or name)."),
    split: str = typer.Option("val", "--split", help="Its split: train, val or test."),
    count: int | None = typer.Option(None, "--count", min=1, help="The first N images of the split (default 10)."),
    offset: int = typer.Option(0, "--offset", min=0, help="Where in the split the first N start."),
    indices: str | None = typer.Option(None, "--indices", help="These images of the split instead: 0,5,9."),
    base: Path | None = typer.Option(None, "--base", help="Folder that list-file paths are relative to."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Also write the table as CSV here."),
    json: bool = JsonOpt,
) -> None:
    """The lab's comparison table: each model's prediction (class and confidence, labels or values) for each image,
    with the true target of images from a dataset split or class folders."""
    picked = _indices(indices)  # before torch is imported: a typo fails at once
    infer = _infer()
    clfs = [infer.open_model(ctx.obj, ref) for ref in models]
    rows = infer.file_images(images, clfs[0], base)
    if dataset is not None:
        rows += infer.split_images(ctx.obj, dataset, split, count, offset, picked)
    table = infer.predict_table(clfs, rows)
    if csv_out is not None:
        from deepyard.files import write_bytes_atomic

        write_bytes_atomic(csv_out, table.to_csv().encode("utf-8"))
    if json:
        print_json(table.to_json())
        return
    shown = Table("image", "true", *(c.title for c in table.columns), box=None)
    for row in table.rows:
        shown.add_row(row.image.item.source, row.image.item.label or "", *(_cell(c) for c in row.cells))
    console.print(shown)
    for j, col in enumerate(table.columns):
        right, labelled = table.right(j)
        if labelled:
            console.print(f"{col.title}: right on {right} of {labelled} labelled images")


def _indices(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidValueError(f"--indices {text!r} must be image indices separated by commas, e.g. 0,5,9") from None


def _cell(cell: Any) -> str:
    correct = cell.prediction.correct
    mark = "" if correct is None else (" [green]✓[/]" if correct else " [red]✗[/]")
    return f"[red]{cell.text}[/]" if cell.prediction.error else cell.text + mark


def evaluate_command(
    ctx: typer.Context,
    model: str = ModelArg,
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset with the same classes (default: the run's)."),
    split: str = typer.Option("val", "--split", help="train, val or test."),
    images: Path | None = typer.Option(None, "--images", help="Labelled images: class folders or a list file."),
    top_n: int = typer.Option(9, "--top-n", min=1, help="Top losses and top images per class to keep."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the pictures (default: in the run folder)."),
    snapshot: str | None = SnapshotOpt,
    json: bool = JsonOpt,
) -> None:
    """The task's metrics and pictures: accuracy, confusion matrix, per-class F1 ... (classification); per-label
    AP and F1 (multi-label); MAE, RMSE, R² and scatter plots (regression); loss, perplexity and bits per
    character (language models)."""
    from deepyard.cli.text import language_model_evaluation

    ref = model if snapshot is None else f"{model}@{snapshot}"
    if images is None and dataset is None and language_model_evaluation(ctx.obj, ref, split, json):
        return
    from deepyard.cli.textclass import text_evaluate

    if images is None and dataset is None and text_evaluate(ctx.obj, ref, split, top_n, out, json):
        return
    with progress_bar() as update:
        doc = _tasks().evaluate_model(ctx.obj, model, dataset, split, images, top_n, out, snapshot,
                                      lambda d, t: update("evaluating", d, t))  # fmt: skip
    if json:
        print_json(doc)
        return
    console.print(f"[bold]{doc['description']}[/]: {doc['count']} images, {_figures(doc)}")
    for key in ("per_class", "per_label", "per_target"):
        if doc.get(key):
            console.print(_rows_table(doc[key]))
    if doc.get("most_confused"):
        pairs = ", ".join(f"{c['actual']}→{c['predicted']} x{c['count']}" for c in doc["most_confused"][:5])
        console.print(f"most confused: {pairs}")
    if doc["skipped"]:
        err_console.print(f"[yellow]{len(doc['skipped'])} unreadable images skipped[/] (see evaluation.json)")
    console.print(f"pictures: {Path(doc['files']['json']).parent}")


def _figures(doc: dict[str, Any]) -> str:
    """The task's metrics, labelled and in their units: `val top-1 97.50%, val top-5 100.00%, val loss 0.0712`."""
    from deepyard.tasks import get_task

    shown = []
    for m in get_task(doc.get("task")).metrics[1:] + get_task(doc.get("task")).metrics[:1]:
        value = doc["metrics"].get(m.name.removeprefix("val_"))
        if value is not None:
            label = m.label.removeprefix("val ")
            shown.append(f"{label} [bold]{value:.2f}%[/]" if m.unit == "%" else f"{label} [bold]{value:.4g}[/]")
    return ", ".join(shown)


def _rows_table(rows: list[dict[str, Any]]) -> Table:
    """A table of per-output figures (per class, label or target), one column per key."""
    table = Table(*rows[0].keys(), box=None)
    for row in rows:
        table.add_row(*("n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    return table


def inspect_command(
    ctx: typer.Context,
    model: str = ModelArg,
    image: str = typer.Argument(..., help="An image file."),
    target: str | None = typer.Option(None, "--class", help="Grad-CAM for this class (default: the predicted)."),
    layer: str | None = typer.Option(None, "--layer", help="Grad-CAM layer (default: the last with feature maps)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the pictures (default: in the run folder)."),
    snapshot: str | None = SnapshotOpt,
    json: bool = JsonOpt,
) -> None:
    """Activations and weights of every layer (pictures + statistics) and a Grad-CAM heat map, for one image."""
    try:
        doc = _tasks().inspect_model(ctx.obj, model, image, target, layer, out, snapshot)
    except ImageSkipped as exc:
        raise SourceError(f"{image}: {exc.reason}") from None
    if json:
        print_json(doc)
        return
    cam = doc["gradcam"]
    console.print(f"Grad-CAM for [bold]{cam['class']}[/] ({cam['probability']:.1%}) at layer {cam['layer']}")
    table = Table("layer", "type", "output", "mean", "std", "weights", box=None)
    params = {w["name"]: w for w in doc["weights"]}
    for a in doc["activations"]:
        w = params.get(a["name"])
        table.add_row(a["name"], a["type"], "x".join(map(str, a["shape"])), f"{a['mean']:.3g}", f"{a['std']:.3g}",
                      f"{w['params']:,}" if w else "")  # fmt: skip
    console.print(table)
    console.print(f"pictures: {doc['folder']}")


def export_command(
    ctx: typer.Context,
    model: str = ModelArg,
    formats: list[str] = typer.Option(
        ["archive", "onnx", "torchscript"],
        "--format",
        help="archive, onnx or torchscript; repeat for several (default: all three).",
    ),
    out: Path | None = typer.Option(None, "--out", help="Folder for the files (default: the run's exports/)."),
    samples: int = typer.Option(64, "--samples", min=1, help="Validation images for the parity check."),
    snapshot: str | None = SnapshotOpt,
    json: bool = JsonOpt,
) -> None:
    """Export, then check each export against PyTorch (max |Δoutput|, the task's agreement, latency). Exit code 3 when a
    check fails; a language model exports archive and onnx, its parity also compares greedy generation."""
    from deepyard.cli.text import language_model_export

    ref = model if snapshot is None else f"{model}@{snapshot}"
    if language_model_export(ctx.obj, ref, formats, out, json):
        return
    from deepyard.cli.textclass import text_export

    if text_export(ctx.obj, ref, formats, out, samples, json):
        return
    doc = _tasks().export_model(ctx.obj, model, formats, out, samples, snapshot)
    if json:
        print_json(doc)
    else:
        table = Table("format", "file", "max |Δlogit|", "agreement", "ms/image (PyTorch → export)", "parity", box=None)
        for r in doc["reports"]:
            ms = r["latency_ms"]
            verdict = "[green]passed[/]" if r["ok"] else "[bold red]FAILED[/]"
            agree = f"{r['agreement']:.1%} {r['agreement_of']}"
            table.add_row(r["format"], r["path"], f"{r['max_abs_diff']:.2e}", agree,
                          f"{ms['pytorch']:.2f} → {ms[r['format']]:.2f}", verdict)  # fmt: skip
        console.print(table)
        console.print(f"parity sample: {doc['sample']}")
    if not doc["ok"]:
        failed = [r["format"] for r in doc["reports"] if not r["ok"]]
        err_console.print(f"[bold red]PARITY CHECK FAILED[/] for {', '.join(failed)}: the exported model does not "
                          "give the PyTorch model's outputs (figures above)")  # fmt: skip
        raise typer.Exit(3)
