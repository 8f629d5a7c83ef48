"""Text classification: one class per text (issue 16's second text task).

The dataset is built by the task itself (`own_build`, deepyard.text.classbuild): a folder with a sub-folder of
.txt files per class, or CSV/JSONL with `text` and `label` columns, tokenized with the language model's
tokenizers (a character vocabulary or byte-level BPE) and stored as padded rows of token ids
(deepyard.text.sequences). The targets, losses, metrics (loss, top-1, top-5), predictions, the report (confusion
matrix, per-class F1, most-confused pairs, top losses) and the export's top-1 agreement are image
classification's; what differs is the input: rows of ids go to the network as they are, the report's examples
are texts (attached by deepyard.text.classify) and its only picture is the confusion matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from deepyard.errors import SourceError
from deepyard.tasks.base import EvalContext, Report, register_task
from deepyard.tasks.classification import Classification

if TYPE_CHECKING:
    import torch

    from deepyard.datasets.catalog import Manifest
    from deepyard.datasets.sources import Readable
    from deepyard.datasets.spec import DatasetSpec


class TextClassification(Classification):
    name = "text-classification"
    title = "Text classification"
    input_kind = "sequences"
    network_output = None
    target_format = "one class per text (int64 index)"
    sources = "a folder with a sub-folder of .txt files per class; CSV, TSV or JSONL with 'text' and 'label' columns"
    export_formats = ("archive", "onnx")
    template_names = ("predict.html", "evaluate.html", "run.html", "dataset.html")  # run: the Classify text box
    own_build = True
    own_inference = True
    # Measured on the generated negation set and on tiny-shakespeare speakers (tests/text/test_textclass_gate.py):
    # the bag of n-grams converges in a few epochs at a higher rate than the image default.
    recipe: ClassVar[dict[str, Any]] = {"epochs": 8, "batch_size": 32, "solver.lr": 0.01, "solver.weight_decay": 0.0}

    # ---- datasets

    def check_source(self, spec: DatasetSpec) -> None:
        from deepyard.text.labelled import check_labelled_source

        source: Any = spec.source
        if getattr(source, "kind", None) != "labelled-text":
            raise SourceError(f"text classification reads labelled texts, not a {getattr(source, 'kind', '?')!r} "
                              "source")  # fmt: skip
        if spec.test_pct > 0:
            raise SourceError("text classification has train and validation splits only; leave --test-pct at 0")
        check_labelled_source(Path(source.train))
        if source.val is not None:
            check_labelled_source(Path(source.val))

    def build_dataset(
        self, spec: DatasetSpec, readable: Readable | None, work: Path, dataset_id: str, progress: Any
    ) -> Manifest:
        from deepyard.text.classbuild import build_labelled_text_dataset

        return build_labelled_text_dataset(spec, readable, work, dataset_id, progress)

    # ---- training

    def split_batches(
        self, store: Any, batch_size: int, device: Any, seed: int, train: bool, shard: Any, in_memory: bool,
        workers: int,
    ) -> Any:  # fmt: skip
        from deepyard.text.sequences import SequenceBatches

        return SequenceBatches(store, batch_size, device, seed, train, shard)

    def transform(self, preprocess: Any, pixels: torch.Tensor, targets: torch.Tensor, train: bool) -> Any:
        return pixels, targets  # token ids go to the network as they are

    def default_network(self, shape: tuple[int, int, int]) -> tuple[str, str]:
        return "bag-ngrams", f"texts of up to {shape[0]} tokens: the fast, strong baseline"

    # ---- inference

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
        from deepyard import pictures

        report = super().evaluate(outputs, targets, _no_pictures(ctx))
        return Report(report.doc, {"confusion.png": pictures.confusion_png(np.array(report.doc["confusion"]),
                                                                           report.doc["classes"])})  # fmt: skip

    def evaluate_run(
        self, settings: Any, ref: str, split: str, top_n: int, out: Path | None, on_progress: Any, tag: str | None
    ) -> dict[str, Any]:
        from deepyard.text.classify import evaluate_text_classifier

        return evaluate_text_classifier(settings, ref, split, top_n, out, on_progress, tag)

    def export_run(
        self, settings: Any, ref: str, formats: list[str], out: Path | None, samples: int, on_progress: Any,
        tag: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        from deepyard.text.classexport import export_text_classifier
        from deepyard.text.export import export_folder

        folder = out or export_folder(settings, ref, tag)
        return export_text_classifier(settings, ref, formats, folder, samples, on_progress)


def _no_pictures(ctx: EvalContext) -> EvalContext:
    """The context with a 1x1 stand-in for each example's picture: texts have none (the image grids that
    classification draws from them are dropped)."""
    return EvalContext(ctx.names, ctx.stats, ctx.sources, lambda ix: np.zeros((len(ix), 1, 1, 3), np.uint8),
                       ctx.top_n, ctx.loss)  # fmt: skip


register_task(TextClassification())
