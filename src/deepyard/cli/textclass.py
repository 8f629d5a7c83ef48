"""Text classification in the CLI: `deepyard predict RUN TEXT|FILE|FOLDER`, `deepyard evaluate RUN`, `deepyard
export RUN` and `deepyard dataset show` of a text-classification run or dataset.

The verbs call these first; each returns False when the model or dataset is not text classification (the
image path goes on). torch is imported inside, so the other verbs start fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from deepyard.cli.common import console, err_console, print_json
from deepyard.files import printable


def _classify() -> Any:
    return importlib.import_module("deepyard.text.classify")


def is_text_classifier(settings: Any, model: str) -> bool:
    return bool(_classify().is_text_classifier_ref(settings, model))


def text_predict(settings: Any, model: str, given: str, k: int, json: bool) -> bool:
    if not is_text_classifier(settings, model):
        return False
    use = _classify()
    clf = use.open_text_classifier(settings, model)
    texts, skipped = use.predict_inputs(given, clf.classes)
    rows = use.classify_texts(clf, texts, k)
    if json:
        print_json({"model": clf.info, "predictions": rows,
                    "skipped": [{"source": s.path, "error": s.reason} for s in skipped]})  # fmt: skip
        return True
    table = Table("text", "prediction", "true", box=None)
    for row in rows:
        mark = "" if row["correct"] is None else ("[green]✓[/]" if row["correct"] else "[red]✗[/]")
        shown = row["source"] if row["source"] != "text" else row["text"][:60]
        table.add_row(printable(shown), row["summary"], f"{row['label'] or ''} {mark}")
    console.print(table)
    for s in skipped:
        err_console.print(f"skipped {printable(s.path)}: {s.reason}", highlight=False)
    labelled = [r for r in rows if r["correct"] is not None]
    if labelled:
        console.print(
            f"right on {len(labelled)} labelled texts: {sum(r['correct'] for r in labelled) / len(labelled):.2%}"
        )
    return True


def text_evaluate(settings: Any, model: str, split: str, top_n: int, out: Path | None, json: bool) -> bool:
    if not is_text_classifier(settings, model):
        return False
    doc = _classify().evaluate_text_classifier(settings, model, split, top_n, out)
    if json:
        print_json(doc)
        return True
    m = doc["metrics"]
    console.print(f"[bold]{doc['description']}[/]: {doc['count']} texts, top-1 [bold]{m['top1']:.2f}%[/], "
                  f"top-5 {m['top5']:.2f}%, loss {m['loss']:.4f}")  # fmt: skip
    table = Table("class", "precision", "recall", "f1", "support", box=None)
    for r in doc["per_class"]:
        table.add_row(printable(r["name"]), f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                      str(r["support"]))  # fmt: skip
    console.print(table)
    if doc["most_confused"]:
        console.print("most confused: " + ", ".join(f"{c['actual']}→{c['predicted']} x{c['count']}"
                                                     for c in doc["most_confused"][:5]))  # fmt: skip
    for e in doc["top_losses"][:5]:
        console.print(f"[red]{printable(e['label'])} → {printable(e['predicted'])}[/] ({e['probability']:.0%}): "
                      f"{printable(e['text'][:100])!r}", highlight=False)  # fmt: skip
    console.print(f"report: {doc['files']['json']}")
    return True


def text_export(settings: Any, model: str, formats: list[str], out: Path | None, samples: int, json: bool) -> bool:
    if not is_text_classifier(settings, model):
        return False
    from deepyard.infer.model import parse_model_ref
    from deepyard.text.classexport import FORMATS, export_text_classifier
    from deepyard.train.runs import run_dir

    wanted = list(FORMATS) if formats == ["archive", "onnx", "torchscript"] else formats
    folder = out or run_dir(settings, parse_model_ref(model)[0]) / "exports" / "cli"
    doc = export_text_classifier(settings, model, wanted, folder, samples)
    if json:
        print_json(doc)
    else:
        for r in doc["reports"]:
            verdict = "[green]passed[/]" if r["ok"] else "[bold red]PARITY CHECK FAILED[/]"
            console.print(f"{r['format']}: {r['file']}  max |Δprobability| {r['max_prob_diff']:.2e}, top-1 "
                          f"agreement {r['top1_agreement']:.1%} on {doc['samples']} texts: {verdict}",
                          highlight=False)  # fmt: skip
    if not doc["ok"]:
        raise typer.Exit(3)
    return True


def show_text_dataset(m: Any, report: dict[str, Any]) -> None:
    """`dataset show` of a text-classification dataset: texts per class, lengths, what was skipped."""
    stats = m.target_stats
    console.print(f"[bold]{m.name}[/] ({m.id}): text classification, {stats['tokenizer']} tokenizer, vocabulary "
                  f"{stats['vocab_size']:,} (with padding and unknown), {stats['max_length']} tokens per text "
                  f"(truncated: {', '.join(f'{k} {v}' for k, v in stats['truncated'].items())}), "
                  f"{m.size_bytes / 1e6:,.1f} MB, built in {m.build_seconds:.1f} s", highlight=False)  # fmt: skip
    within = sum(m.duplicates["within"].values())
    leaks = ", ".join(f"{k} {v}" for k, v in m.duplicates["across"].items() if v)
    console.print(
        f"duplicates: {within} repeated inside a split" + (f"; [bold red]leaked:[/] {leaks}" if leaks else "")
    )
    lengths = report.get("text", {}).get("lengths", {}).get("per_class", {})
    table = Table("class", *(f"{s} texts" for s in m.splits), "train tokens min / median / max", box=None)
    for i, cls in enumerate(m.classes):
        t = lengths.get(cls, {}).get("train")
        table.add_row(printable(cls), *(str(s.per_class[i]) for s in m.splits.values()),
                      f"{t['min']} / {t['median']:g} / {t['max']}" if t else "")  # fmt: skip
    table.add_row("[bold]texts", *(f"[bold]{s.count}" for s in m.splits.values()), "")
    console.print(table)
    for d in m.dropped_classes:
        console.print(f"dropped class {printable(str(d['class']))} ({d['count']} texts): {d['reason']}")
    for r in report.get("replaced", [])[:10]:
        console.print(f"replaced {r['bytes']} undecodable byte(s) in {printable(r['path'])}", highlight=False)
    for entry in report["skipped"][:20]:
        console.print(f"skipped {printable(entry['path'])}: {entry['reason']}", highlight=False)
    if len(report["skipped"]) > 20:
        console.print(f"... and {len(report['skipped']) - 20} more in report.json")
