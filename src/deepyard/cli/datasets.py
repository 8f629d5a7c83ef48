"""`deepyard dataset ...`: create, import mnist, list, show, export, delete."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import typer
from rich.table import Table

from deepyard import datasets
from deepyard.cli.common import console, err_console, print_json, progress_bar
from deepyard.config import Settings
from deepyard.datasets.catalog import REPORT, Manifest, dataset_dir, load_dataset, read_report, scan_datasets
from deepyard.datasets.segsource import mask_source_fields
from deepyard.datasets.spec import DatasetSpec, Encoding, Fill, ResizeMode, default_name, parse_size, source_fields
from deepyard.files import printable
from deepyard.stored import Damaged
from deepyard.train.runs import delete_unused_dataset

dataset_app = typer.Typer(help="Build and manage image-classification datasets.", no_args_is_help=True)
import_app = typer.Typer(help="Import a standard dataset.", no_args_is_help=True)
dataset_app.add_typer(import_app, name="import")

_F = DatasetSpec.model_fields


def _help(field: str) -> str:
    return _F[field].description or ""


JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout instead of tables.")
WorkersOpt = typer.Option(None, "--workers", help="Decoding processes (default: one per CPU; small builds: none).")
ReuseOpt = typer.Option(False, "--reuse", help="Return an existing dataset with the same options instead.")


@dataset_app.command("create")
def create(
    ctx: typer.Context,
    source: Path = typer.Argument(
        ..., help="Folder of class (or label) sub-folders, a CSV file with a header, or a list file."
    ),
    task: str = typer.Option(
        _F["task"].default, help="classification, multilabel, regression, segmentation... (deepyard task list)."
    ),
    name: str | None = typer.Option(None, help="Dataset name (default: the source's name; a COCO JSON file's folder)."),
    val: Path | None = typer.Option(None, help="Separate validation folder (or list file) with the same classes."),
    test: Path | None = typer.Option(None, help="Separate test folder (or list file) with the same classes."),
    labels: Path | None = typer.Option(None, help="Labels file (one class per line) for a list file's indices."),
    base: Path | None = typer.Option(None, help="Folder that relative paths in list files start from."),
    masks: Path | None = typer.Option(None, help="Segmentation: the masks folder (default: SOURCE/masks)."),
    classes: Path | None = typer.Option(None, help="Segmentation: class names, or `name r g b` colour-map lines."),
    resize_masks: bool = typer.Option(False, help="Segmentation: resize a mask of another size (nearest)."),
    box_format: str = typer.Option(
        "auto", "--format", help="Detection: auto, coco, voc, yolo or kitti (auto: told from the files)."
    ),
    tokenizer: str = typer.Option(
        "char", help="char (a character vocabulary) or bpe (byte-level); text classification's default: bpe."
    ),
    vocab_size: int = typer.Option(1024, help="Language model: the BPE vocabulary size (257 to 65536)."),
    context: int = typer.Option(128, help="Language model: tokens per training block (the model's context)."),
    max_length: int | None = typer.Option(
        None, help="Text classification: tokens kept per text (default: the 95th percentile, at most 1024)."
    ),
    channels: int = typer.Option(_F["channels"].default, help=_help("channels")),
    size: str = typer.Option("256x256", help="Image size WxH, e.g. 28x28."),
    resize_mode: ResizeMode = typer.Option(_F["resize_mode"].default, help=_help("resize_mode")),
    fill: Fill = typer.Option(_F["fill"].default, help=_help("fill")),
    fill_value: int = typer.Option(_F["fill_value"].default, help=_help("fill_value")),
    encoding: Encoding = typer.Option(_F["encoding"].default, help=_help("encoding")),
    jpeg_quality: int = typer.Option(_F["jpeg_quality"].default, help=_help("jpeg_quality")),
    val_pct: float = typer.Option(_F["val_pct"].default, help=_help("val_pct")),
    test_pct: float = typer.Option(_F["test_pct"].default, help=_help("test_pct")),
    min_per_class: int = typer.Option(_F["min_per_class"].default, help=_help("min_per_class")),
    max_per_class: int | None = typer.Option(None, help=_help("max_per_class")),
    val_max_per_class: int | None = typer.Option(None, help=_help("val_max_per_class")),
    test_max_per_class: int | None = typer.Option(None, help=_help("test_max_per_class")),
    seed: int = typer.Option(_F["seed"].default, help=_help("seed")),
    max_pixels: int = typer.Option(_F["max_pixels"].default, help=_help("max_pixels")),
    workers: int | None = WorkersOpt,
    reuse: bool = ReuseOpt,
    json: bool = JsonOpt,
) -> None:
    """Build a dataset of any task from class (label) folders, a CSV file or list files; bad files are reported."""
    options = {k: v for k, v in locals().items() if k in _F and k not in ("name", "source")}
    if task == "detection" and getattr(ctx.get_parameter_source("resize_mode"), "name", "DEFAULT") == "DEFAULT":
        options["resize_mode"] = ResizeMode.fill  # boxes letterbox (fit the long side, pad) unless asked otherwise
    if task == "language-model" and getattr(ctx.get_parameter_source("val_pct"), "name", "") == "DEFAULT":
        options["val_pct"] = 10.0  # a corpus keeps 90% for training (nanoGPT's split) unless asked otherwise
    if task == "text-classification" and getattr(ctx.get_parameter_source("tokenizer"), "name", "") == "DEFAULT":
        tokenizer = "bpe"  # a text's class is in its words: BPE 65.5% against char 50% on the README's speakers
    width, height = parse_size(size)
    spec = datasets.make_spec(
        name=name or default_name(source),
        source=mask_source_fields(source, masks, classes, base, val, test, resize_masks)
        if task == "segmentation"
        else _detection_source(source, box_format, base, val, test)
        if task == "detection"
        else _text_source(source, tokenizer, vocab_size, context)
        if task == "language-model"
        else _labelled_text_source(source, val, tokenizer, vocab_size, max_length)
        if task == "text-classification"
        else source_fields(source, labels, base, val, test),
        **options,
        width=width,
        height=height,
    )
    with progress_bar() as report:
        manifest = datasets.create_dataset(ctx.obj, spec, progress=report, workers=workers, reuse=reuse)
    _show(ctx.obj, manifest, json)


def _detection_source(
    source: Path, fmt: str, base: Path | None, val: Path | None, test: Path | None
) -> dict[str, object]:
    """A detection source; the format auto picks is said on stderr."""
    from deepyard.datasets.boxformats import detect_format

    if fmt == "auto":
        err_console.print(f"annotation format: {detect_format(source)} (told from the files)")
    return {"kind": "detection", "train": source, "format": fmt, "base": base, "val": val, "test": test}


def _text_source(source: Path, tokenizer: str, vocab_size: int, context: int) -> dict[str, object]:
    """A language model's corpus and tokenizer (deepyard.datasets.spec.TextSource)."""
    return {"kind": "text", "train": source, "tokenizer": tokenizer, "vocab_size": vocab_size, "context": context}


def _labelled_text_source(
    source: Path, val: Path | None, tokenizer: str, vocab_size: int, max_length: int | None
) -> dict[str, object]:
    """Labelled texts (deepyard.datasets.spec.LabelledTextSource)."""
    return {"kind": "labelled-text", "train": source, "val": val, "tokenizer": tokenizer, "vocab_size": vocab_size,
            "max_length": max_length}  # fmt: skip


@import_app.command("mnist")
def import_mnist(
    ctx: typer.Context,
    from_dir: Path | None = typer.Option(None, "--from", help="Folder holding the four MNIST IDX files."),
    download: bool = typer.Option(False, help="Fetch missing files from a public mirror, checking their MD5s."),
    export: Path | None = typer.Option(None, help="Also write the images as class folders of PNGs here."),
    name: str = typer.Option("mnist", help="Dataset name."),
    channels: int = typer.Option(1, help=_help("channels")),
    size: str = typer.Option("28x28", help="Image size WxH."),
    max_per_class: int | None = typer.Option(None, help="Training images per class (1000 ≈ the lab's 1/6)."),
    val_max_per_class: int | None = typer.Option(None, help="Validation (t10k) images per class."),
    seed: int = typer.Option(0, help=_help("seed")),
    workers: int | None = WorkersOpt,
    reuse: bool = ReuseOpt,
    json: bool = JsonOpt,
) -> None:
    """Import MNIST (train → train, t10k → val) from IDX files."""
    settings: Settings = ctx.obj
    if from_dir is None and not download:
        raise typer.BadParameter("give --from DIR, or --download", param_hint="--from")
    folder = from_dir or settings.downloads_dir / "mnist"
    width, height = parse_size(size)
    with progress_bar() as report:
        manifest = datasets.import_mnist(
            settings, folder, download=download, export_to=export, progress=report, workers=workers,
            reuse=reuse, name=name, channels=channels, width=width, height=height,
            max_per_class=max_per_class, val_max_per_class=val_max_per_class, seed=seed,
        )  # fmt: skip
    _show(settings, manifest, json)


@dataset_app.command("list")
def list_(ctx: typer.Context, json: bool = JsonOpt) -> None:
    """List the datasets in the home (a damaged one as damaged, with the reason)."""
    found = scan_datasets(ctx.obj)
    if json:
        print_json([m.to_json() if isinstance(m, Damaged) else m.model_dump(mode="json") for m in found])
        return
    table = Table("id", "name", "classes", "train", "val", "test", "shape", "encoding", "created")
    for m in found:
        if isinstance(m, Damaged):
            table.add_row(m.id, "[bold red]damaged[/] (see below)", *["-"] * 7)
            continue
        counts = [str(m.splits[s].count) if s in m.splits else "-" for s in ("train", "val", "test")]
        shape = "x".join(map(str, m.shape))
        table.add_row(m.id, m.name, str(len(m.classes)), *counts, shape, m.encoding, m.created)
    console.print(table if found else "no datasets yet: try `deepyard dataset create FOLDER`")
    print_damaged(d for d in found if isinstance(d, Damaged))


def print_damaged(found: Iterable[Damaged]) -> None:
    """One line per damaged item: its id, the reason, and how to delete it."""
    for d in found:
        console.print(f"damaged {d.kind} {d.id}: {d.reason} (delete it with `deepyard {d.kind} delete {d.id}`)",
                      highlight=False, markup=False, soft_wrap=True)  # fmt: skip


@dataset_app.command("show")
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Dataset id or name."),
    json: bool = JsonOpt,
) -> None:
    """Show a dataset's summary and its build report (for a damaged one, the reason)."""
    found = load_dataset(ctx.obj, ref)
    if not isinstance(found, Damaged):
        _show(ctx.obj, found, json)
    elif json:
        print_json(found.to_json())
    else:
        print_damaged([found])


@dataset_app.command("export")
def export(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Dataset id or name (a detection dataset)."),
    fmt: str = typer.Option(..., "--format", help="coco, voc, yolo or kitti."),
    out: Path | None = typer.Option(None, "--out", help="A new folder (default: ./<name>-<format>)."),
    json: bool = JsonOpt,
) -> None:
    """Write a detection dataset back out as COCO, VOC, YOLO or KITTI: each split's stored images and their boxes,
    one folder per split, which `dataset create` reads back."""
    from deepyard.datasets.boxexport import export_detection

    manifest = datasets.get_dataset(ctx.obj, ref)
    doc = export_detection(ctx.obj, manifest, fmt, out or Path(f"{manifest.name}-{fmt}"))
    if json:
        print_json(doc)
        return
    for split, info in doc["splits"].items():
        console.print(f"{split}: {info['images']} images, {info['boxes']} boxes -> {info['path']}", highlight=False)
    for note in doc["notes"]:
        err_console.print(f"note: {note}", highlight=False)


@dataset_app.command("delete")
def delete(
    ctx: typer.Context, ref: str = typer.Argument(..., help="Dataset id or name."), json: bool = JsonOpt
) -> None:
    """Delete a dataset and its files (also a damaged one); refused while runs use it (delete those first)."""
    found = delete_unused_dataset(ctx.obj, ref)
    from deepyard.jobs import forget_target

    forget_target(ctx.obj, "dataset", found.id)  # its finished jobs, group and owner records go with it
    name = None if isinstance(found, Damaged) else found.name
    if json:
        print_json({"deleted": found.id, "name": name})
    else:
        console.print(f"deleted dataset {found.id} ({name or 'damaged'})", highlight=False)


def _show(settings: Settings, m: Manifest, as_json: bool) -> None:
    folder = dataset_dir(settings, m.id)
    report = read_report(folder)
    if as_json:
        print_json({"manifest": m.model_dump(mode="json"), "path": str(folder), "report": report})
        return
    if m.task == "text-classification":
        from deepyard.cli.textclass import show_text_dataset

        show_text_dataset(m, report)
        return
    info = Table.grid(padding=(0, 2))
    for key, value in [
        ("id", m.id),
        ("name", m.name),
        ("task", m.task),
        ("path", str(folder)),
        ("shape", f"{m.shape[1]}x{m.shape[0]}, {m.shape[2]} channel(s), {m.spec.resize_mode.value}"),
        ("encoding", f"{m.encoding}, {m.size_bytes / 1e6:,.1f} MB"),
        ("skipped", f"{m.skipped} file(s)" + (" (listed below)" if m.skipped else "")),
        ("duplicates", _duplicates_text(m)),
        ("built in", f"{m.build_seconds:.1f} s"),
    ]:
        info.add_row(f"[bold]{key}", value)
    console.print(info)
    counted = all(len(s.per_class) == len(m.classes) for s in m.splits.values())
    table = Table("output", *m.splits, title="images per class (label)" if counted else "images; targets")
    for i, cls in enumerate(m.classes):
        stats = m.target_stats
        cells = [str(s.per_class[i]) for s in m.splits.values()] if counted else ["" for _ in m.splits]
        if not counted and stats.get("mean"):  # values: the training mean and std
            cells[0] = f"mean {stats['mean'][i]:.4g}, std {stats['std'][i]:.4g}"
        table.add_row(printable(cls), *cells)
    table.add_row("[bold]images", *(f"[bold]{s.count}" for s in m.splits.values()))
    console.print(table)
    for dropped in m.dropped_classes:
        console.print(f"dropped class {dropped['class']!s} ({dropped['count']} images): {dropped['reason']}")
    if report.get("damaged"):
        err_console.print(f"[bold red]report damaged:[/] {report['damaged']}; the dataset itself is usable")
    for entry in report["skipped"][:20]:
        console.print(f"skipped {printable(entry['path'])}: {entry['reason']}", highlight=False)
    if len(report["skipped"]) > 20:
        console.print(f"... and {len(report['skipped']) - 20} more in {folder / REPORT}")


def _duplicates_text(m: Manifest) -> str:
    within = sum(m.duplicates["within"].values())
    leaks = {k: v for k, v in m.duplicates["across"].items() if v}
    text = f"{within} repeated inside a split"
    if leaks:
        text += "; [bold red]leaked across splits:[/] " + ", ".join(f"{k} {v}" for k, v in leaks.items())
    return text
