"""`deepyard generate RUN`: text from a language model; and `deepyard evaluate` of a language model.

torch is imported inside the verbs, so the other verbs start fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from deepyard.cli.common import console, print_json


def _use() -> Any:
    return importlib.import_module("deepyard.text.use")


def generate_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="A language model's run id (ID, run:ID, ID@best, ID@last, ID@STEP)."),
    prompt: str | None = typer.Option(None, "--prompt", help="Text to continue (default: the validation start)."),
    length: int = typer.Option(500, "--length", help="Tokens to generate (characters, for a char model)."),
    temperature: float = typer.Option(0.8, "--temperature", help="0 is greedy; higher is more random."),
    top_k: int | None = typer.Option(None, "--top-k", help="Sample only among the K likeliest tokens."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling: the same seed gives the same text."),
    json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Generate text from a trained language model, printed as it is made."""
    use = _use()
    if json:
        print_json(use.generate_text(ctx.obj, model, prompt, length, temperature, top_k, seed))
        return
    found = use.start_generation(ctx.obj, model, prompt, length, temperature, top_k, seed)  # refused before output
    sys.stdout.write(found.prompt)
    for piece in found.pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")


def language_model_evaluation(settings: Any, model: str, split: str, json: bool) -> bool:
    """`deepyard evaluate` of a language-model run: val loss, perplexity, bits per character. False when `model`
    is not a language-model run (the image evaluation goes on)."""
    if not is_language_model_run(settings, model):
        return False
    doc = _use().evaluate_language_model(settings, model, split)
    if json:
        print_json(doc)
    else:
        console.print(f"[bold]{doc['split']}[/]: {doc['tokens']:,} tokens, loss {doc['val_loss']:.4f} nats/token, "
                      f"perplexity {doc['val_perplexity']:.3f}, {doc['val_bpc']:.4f} bits/char")  # fmt: skip
    return True


def is_language_model_run(settings: Any, model: str) -> bool:
    if model.endswith(".zip"):
        return False
    from deepyard.datasets import get_dataset
    from deepyard.errors import DeepyardError
    from deepyard.infer.model import parse_model_ref
    from deepyard.train import runs

    try:
        info = runs.get_run(settings, parse_model_ref(model)[0])
        return get_dataset(settings, info["dataset"]).task == "language-model"
    except DeepyardError:
        return False


def language_model_export(settings: Any, model: str, formats: list[str], out: Any, json: bool) -> bool:
    """`deepyard export` of a language-model run (archive and ONNX, parity with greedy generation); exit code 3
    when a check fails. False when `model` is not a language-model run."""
    if not is_language_model_run(settings, model):
        return False
    from pathlib import Path

    from deepyard.infer.model import parse_model_ref
    from deepyard.text.export import FORMATS, export_language_model
    from deepyard.train.runs import run_dir

    wanted = [f for f in formats if f in FORMATS] if formats == ["archive", "onnx", "torchscript"] else formats
    folder = Path(out) if out else run_dir(settings, parse_model_ref(model)[0]) / "exports" / "cli"
    doc = export_language_model(settings, model, wanted, folder)
    if json:
        print_json(doc)
    else:
        for r in doc["reports"]:
            verdict = "[green]passed[/]" if r["ok"] else "[bold red]PARITY CHECK FAILED[/]"
            console.print(f"{r['format']}: {r['file']}  max |Δlogit| {r['max_abs_diff']:.2e}, next-token agreement "
                          f"{r['agreement']:.1%}, greedy text {'the same' if r['greedy_same'] else 'DIFFERENT'}: "
                          f"{verdict}")  # fmt: skip
    if not doc["ok"]:
        raise typer.Exit(3)
    return True
