"""Using a trained language model: load a run's snapshot with its tokenizer, generate text, evaluate.

`open_language_model(settings, "RUN[@best|@last|@STEP]")` gives the model (eval mode), the dataset's tokenizer and
context; `generate_text` samples a continuation of a prompt (default: the start of the validation split), and
`start_generation` gives the same text piece by piece (the web's streamed Generate box);
`evaluate_language_model` computes the task's validation metrics (loss in nats per token, perplexity, bits per
character) over a split with the trainer's own meter, so `deepyard evaluate` and training report the same figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deepyard.config import Settings
from deepyard.datasets import Manifest, get_dataset, open_split
from deepyard.datasets.catalog import dataset_dir
from deepyard.errors import InvalidValueError, choices
from deepyard.files import write_json_atomic
from deepyard.infer.model import checkpoint_path, parse_model_ref
from deepyard.tasks import get_task
from deepyard.text.generate import check_generation, stream
from deepyard.text.store import TokenBatches
from deepyard.text.tokenizer import Tokenizer, load_tokenizer
from deepyard.train import runs
from deepyard.train.checkpoint import load_checkpoint

DEFAULT_PROMPT_TOKENS = 16


@dataclass
class LanguageModelRun:
    model: nn.Module
    tokenizer: Tokenizer
    context: int
    manifest: Manifest
    info: dict[str, Any] = field(default_factory=dict)  # run, snapshot, step
    network: str = ""  # the network's registered name

    def default_prompt(self, settings: Settings) -> str:
        split = "val" if "val" in self.manifest.splits else "train"
        store: Any = open_split(settings, self.manifest, split)
        return self.tokenizer.decode(store.block(0, DEFAULT_PROMPT_TOKENS).tolist())


def open_language_model(settings: Settings, ref: str) -> LanguageModelRun:
    run_id, snap = parse_model_ref(ref)
    info = runs.get_run(settings, run_id)
    manifest = get_dataset(settings, info["dataset"])
    if manifest.task != "language-model":
        raise InvalidValueError(f"run {info['id']!r} is a {manifest.task} model, not a language model; "
                                "use deepyard classify for it")  # fmt: skip
    path = checkpoint_path(settings, info["id"], snap)
    context = manifest.shape[0]
    model = runs.build_run_model(info, (1, context, 1), len(manifest.classes), settings)
    data = load_checkpoint(path)
    model.load_state_dict(data["model"])
    model.eval()
    tokenizer = load_tokenizer(dataset_dir(settings, manifest.id))
    state = data.get("state", {})
    details = {"run": info["id"], "snapshot": path.stem.removeprefix("step-").lstrip("0") or path.stem,
               "step": state.get("step"), "dataset": manifest.id}  # fmt: skip
    return LanguageModelRun(model, tokenizer, context, manifest, details, str(info["network"]["ref"]))


def stream_text(
    lm: LanguageModelRun, prompt: str, length: int, temperature: float, top_k: int | None, seed: int
) -> Generator[str, None, None]:
    """The continuation of `prompt`, piece by piece as the tokens come (each piece decodes whole characters). A
    prompt the vocabulary cannot encode, or a bad setting, is refused here, before the first piece is asked for;
    closing the iterator stops the generation."""
    ids = lm.tokenizer.encode(prompt)
    check_generation(ids, length, temperature, top_k)
    return _pieces(lm, ids, length, temperature, top_k, seed)


def _pieces(
    lm: LanguageModelRun, ids: list[int], length: int, temperature: float, top_k: int | None, seed: int
) -> Generator[str, None, None]:
    pending: list[int] = []
    for token in stream(lm.model, ids, length, lm.context, temperature, top_k, seed):
        pending.append(token)
        piece = lm.tokenizer.decode(pending)
        if "\ufffd" not in piece[-1:]:  # a BPE token may end inside a UTF-8 character: wait for the rest
            pending = []
            yield piece
    if pending:
        yield lm.tokenizer.decode(pending)


def generate_text(
    settings: Settings, ref: str, prompt: str | None = None, length: int = 500, temperature: float = 0.8,
    top_k: int | None = None, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    found = start_generation(settings, ref, prompt, length, temperature, top_k, seed)
    started = time.perf_counter()
    text = "".join(found.pieces)
    return {**found.head(), "text": text, **found.tail(time.perf_counter() - started)}


@dataclass
class Generation:
    """A generation about to run: its model and prompt, and the pieces of text as they are made."""

    model: dict[str, Any]  # run, snapshot, step, dataset
    prompt: str
    length: int
    temperature: float
    top_k: int | None
    seed: int
    pieces: Generator[str, None, None]

    def head(self) -> dict[str, Any]:
        return {"model": self.model, "prompt": self.prompt, "length": self.length, "temperature": self.temperature,
                "top_k": self.top_k, "seed": self.seed}  # fmt: skip

    def tail(self, seconds: float) -> dict[str, Any]:
        return {"seconds": round(seconds, 3), "tokens_per_s": round(self.length / max(seconds, 1e-9), 1)}


def start_generation(
    settings: Settings, ref: str, prompt: str | None = None, length: int = 500, temperature: float = 0.8,
    top_k: int | None = None, seed: int = 0,
) -> Generation:  # fmt: skip
    """Load the model and check the prompt and settings (a bad one raises now); the text comes from `pieces`."""
    lm = open_language_model(settings, ref)
    prompt = lm.default_prompt(settings) if prompt is None else prompt
    pieces = stream_text(lm, prompt, length, temperature, top_k, seed)
    return Generation(lm.info, prompt, length, temperature, top_k, seed, pieces)


@torch.no_grad()
def evaluate_language_model(
    settings: Settings, ref: str, split: str = "val", batch_size: int = 64,
    on_progress: Callable[[int, int], None] | None = None, tag: str | None = None, out: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Loss, perplexity and bits per character over `split`, written as evaluation.json in `out` (default:
    `runs/<id>/evaluations/<split>-<snapshot>[-<tag>]/`); `on_progress(batches done, batches)`."""
    lm = open_language_model(settings, ref)
    if split not in lm.manifest.splits:
        raise InvalidValueError(f"split {split!r} is not one of {choices(lm.manifest.splits)}")
    task = get_task(lm.manifest.task)
    store: Any = open_split(settings, lm.manifest, split)
    batches = TokenBatches(store, batch_size, torch.device("cpu"), 0, False)
    meter = task.meter(lm.manifest.classes, lm.manifest.target_stats)
    criterion = task.criterion(task.losses[0], lm.manifest.classes, lm.manifest.target_stats, None)
    for done, (x, y) in enumerate(batches.batches(0), 1):
        outputs = lm.model(x)
        meter.update(outputs, y, criterion(outputs, y)["cross_entropy"])
        if on_progress is not None:
            on_progress(done, batches.batches_per_epoch)
    metrics = meter.compute(meter.sums())
    name = f"{split}-{lm.info['snapshot']}" + (f"-{tag}" if tag else "")
    folder = out or runs.run_dir(settings, lm.info["run"]) / "evaluations" / name
    tokens = int(meter.sums()[1])
    doc = {"model": lm.info, "split": split, "tokens": tokens, **metrics, "tokenizer": lm.tokenizer.kind,
           "vocab_size": lm.tokenizer.vocab_size, "task": lm.manifest.task, "count": tokens,
           "description": f"{lm.manifest.name} ({split})",
           "metrics": {k.removeprefix("val_"): v for k, v in metrics.items()},
           "files": {"json": str(folder / "evaluation.json")}}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "evaluation.json", doc)
    return doc
