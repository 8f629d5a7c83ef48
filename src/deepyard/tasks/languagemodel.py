"""The language-model task: next-token prediction over a token corpus (a character vocabulary or byte-level BPE).

The dataset is built by the task itself (`own_build`, deepyard.text.build): a text file, a folder of text files
or JSONL with a `text` field, split into contiguous blocks, stored as one memory-mapped token array per split.
Training draws random blocks of the dataset's context (deepyard.text.store.TokenBatches); the metrics are the
validation loss in nats per token, the perplexity and the bits per character (bits per token over the validation
split's characters per token; equal to loss / ln 2 for a character vocabulary). A sample is generated at every
validation and appended to the run's `samples.jsonl`, which the run page shows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from deepyard.errors import SourceError
from deepyard.tasks.base import Criterion, EvalContext, Meter, MetricInfo, Report, Task, register_task

if TYPE_CHECKING:
    import torch

    from deepyard.datasets.catalog import Manifest
    from deepyard.datasets.sources import Readable
    from deepyard.datasets.spec import DatasetSpec

SAMPLES = "samples.jsonl"  # in the run folder: {"step", "prompt", "text"} per validation
SAMPLE_TOKENS = 200  # tokens generated at each validation
SAMPLE_PROMPT = 16  # tokens of the validation split that start it


class LMMeter(Meter):
    """Sums of (token loss, tokens): val_loss (nats per token), val_perplexity, val_bpc."""

    def __init__(self, chars_per_token: float) -> None:
        import torch

        self.chars_per_token = chars_per_token or 1.0
        self.total = torch.zeros(2, dtype=torch.float64)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        n = targets.numel()
        self.total += torch_tensor([float(loss) * n, n])

    def sums(self) -> torch.Tensor:
        return self.total

    def compute(self, sums: torch.Tensor) -> dict[str, float]:
        loss = float(sums[0] / max(1.0, float(sums[1])))
        return {"val_loss": loss, "val_perplexity": math.exp(min(loss, 50.0)),
                "val_bpc": loss / math.log(2) / self.chars_per_token}  # fmt: skip


def torch_tensor(values: list[float]) -> torch.Tensor:
    import torch

    return torch.tensor(values, dtype=torch.float64)


class LanguageModel(Task):
    name = "language-model"
    title = "Language model"
    input_kind = "tokens"
    network_output = None
    target_format = "the next token at every position of a block of the context"
    sources = "a text file, a folder of text files, or JSONL with a 'text' field"
    targets_file = "tokens.npy"
    losses = ("cross_entropy",)
    metrics = (
        MetricInfo("val_loss", "val loss", higher_is_better=False),
        MetricInfo("val_perplexity", "val perplexity", higher_is_better=False),
        MetricInfo("val_bpc", "val bits/char", higher_is_better=False),
    )
    exact = False
    own_build = True
    own_inference = True
    export_formats = ("archive", "onnx")
    # the dataset page's text panel and the run page's evaluation; the run page's panels are web/templates/run.html
    template_names = ("dataset.html", "evaluate.html")
    # The default recipe (`deepyard train --dataset D` without flags), measured on tiny-shakespeare at the default
    # context (128 characters) with char-lstm, AdamW lr 0.003 one-cycle, one torch thread on this project's 2-core
    # CPU: 2.2 epochs of 16 blocks per step (1,078 steps) reach val loss 1.538 nats/char (2.22 bits/char) in 127 s
    # (batch 32: 1.677 in 539 steps; batch 32 for 4 epochs: 1.522 in twice the time); clipping at 1 keeps the
    # recurrent networks stable. TrainConfig's 30 epochs of 64 blocks would take about half an hour there.
    recipe: ClassVar[dict[str, Any]] = {"epochs": 2.2, "batch_size": 16, "solver.clip_grad_norm": 1.0}

    # ---- datasets

    def check_source(self, spec: DatasetSpec) -> None:
        source: Any = spec.source
        if getattr(source, "kind", None) != "text":
            raise SourceError(f"a language model reads a text source, not {getattr(source, 'kind', '?')!r}")
        if not Path(source.train).exists():
            raise SourceError(f"{str(source.train)!r} does not exist; give a text file, a folder of text files or "
                              "a .jsonl file")  # fmt: skip

    def build_dataset(
        self, spec: DatasetSpec, readable: Readable | None, work: Path, dataset_id: str, progress: Any
    ) -> Manifest:
        from deepyard.text.build import build_text_dataset

        return build_text_dataset(spec, readable, work, dataset_id, progress)

    def load_targets(self, folder: Path) -> np.ndarray:
        from deepyard.text.store import load_tokens

        return load_tokens(folder)

    def caption(self, target: np.ndarray, names: Sequence[str]) -> str:
        return "".join(names[int(i)] for i in np.ravel(target))

    def having(self, targets: np.ndarray, output: int) -> np.ndarray:
        mask: np.ndarray = np.asarray(targets) == output
        return mask

    # ---- training

    def split_batches(
        self, store: Any, batch_size: int, device: Any, seed: int, train: bool, shard: Any, in_memory: bool,
        workers: int,
    ) -> Any:  # fmt: skip
        from deepyard.text.store import TokenBatches

        return TokenBatches(store, batch_size, device, seed, train, shard.rank, shard.world)

    def transform(self, preprocess: Any, pixels: torch.Tensor, targets: torch.Tensor, train: bool) -> Any:
        return pixels, targets  # token ids go to the network as they are

    def criterion(self, loss: str, names: Sequence[str], stats: dict[str, Any], config: Any) -> Criterion:
        import torch.nn.functional as F

        smoothing = float(getattr(config, "label_smoothing", 0.0) or 0.0)

        def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
            flat = outputs.reshape(-1, outputs.shape[-1]).float()
            return {"cross_entropy": F.cross_entropy(flat, targets.reshape(-1), label_smoothing=smoothing)}

        return cross_entropy

    def meter(self, names: Sequence[str], stats: dict[str, Any]) -> Meter:
        return LMMeter(float(stats.get("chars_per_token", 1.0)))

    def default_network(self, shape: tuple[int, int, int]) -> tuple[str, str]:
        return "char-lstm", f"text in blocks of {shape[0]} tokens"

    def train_callbacks(self) -> list[Any]:
        from deepyard.text.sampling import ValidationSample

        return [ValidationSample()]

    # ---- inference

    def predict(self, outputs: torch.Tensor, names: Sequence[str], stats: dict[str, Any], k: int) -> list[Any]:
        probs = outputs.float().softmax(-1)
        top = probs.topk(min(k, probs.shape[-1]), dim=-1)
        return [
            {"predicted": names[int(i[0])], "summary": f"next: {names[int(i[0])]!r} ({float(p[0]):.1%})",
             "top": [{"token": names[int(j)], "probability": float(q)} for j, q in zip(i, p, strict=True)]}
            for i, p in zip(top.indices, top.values, strict=True)
        ]  # fmt: skip

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
        raise NotImplementedError("language models are evaluated by evaluate_run (deepyard.text.use)")

    def evaluate_run(
        self, settings: Any, ref: str, split: str, top_n: int, out: Path | None, on_progress: Any, tag: str | None
    ) -> dict[str, Any]:
        from deepyard.text.use import evaluate_language_model

        return evaluate_language_model(settings, ref, split, on_progress=on_progress, tag=tag, out=out)

    def export_run(
        self, settings: Any, ref: str, formats: list[str], out: Path | None, samples: int, on_progress: Any,
        tag: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        from deepyard.text.export import export_folder, export_language_model

        return export_language_model(settings, ref, formats, out or export_folder(settings, ref, tag), on_progress)

    def agreement(self, expected: np.ndarray, exported: np.ndarray, stats: dict[str, Any]) -> tuple[str, float]:
        same = expected.argmax(-1) == exported.argmax(-1)
        return "next-token argmax", float(same.mean()) if same.size else 1.0

    def target_of(self, text: str, names: Sequence[str]) -> Any:
        return text


def read_samples(folder: Path) -> list[dict[str, Any]]:
    """The validation samples of a run, oldest first (lines that do not parse are left out)."""
    path = folder / SAMPLES
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("text"), str):
            found.append(row)
    return found


register_task(LanguageModel())
