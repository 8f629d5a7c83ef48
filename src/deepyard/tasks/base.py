"""The task seam: what a kind of model (classification, multi-label, regression, ...) decides, in one class.

A task names its targets (how they are read from a source, stored per split and collated into a batch), what
augmentation does to them, how many outputs the network needs, its losses, its validation metrics (one
DDP-reducible `Meter`, used by the trainer's validation and by `deepyard evaluate`), prediction, evaluation,
the export parity check, its default network and the partial templates the web app shows. The dataset build,
the trainer, the inference code, the CLI and the pages ask the task and know nothing task-specific.

Tasks are registered by name, as job kinds are: a duplicate name raises, an unknown one raises with the valid
names. Dense per-image targets (a class index, a multi-hot vector, a vector of values) are stored as one NumPy
array per split (`targets_file`); a task with ragged targets (boxes) overrides `load_targets` and `collate`.

This module imports nothing from the rest of Deepyard but its errors: datasets, train and infer build on it.
Task modules import torch inside the hooks that use it, so that a dataset build's workers and the CLI's start
never load it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from deepyard.errors import InvalidValueError, NotFoundError, choices

if TYPE_CHECKING:
    import torch
    from torch import nn

    from deepyard.datasets.catalog import Manifest
    from deepyard.datasets.sources import Listing, Readable
    from deepyard.datasets.spec import DatasetSpec

Predicted = dict[str, Any]  # one example's prediction, JSON-ready: predicted, summary, and the task's details
Criterion = Callable[["torch.Tensor", "torch.Tensor"], dict[str, "torch.Tensor"]]  # (outputs, targets) -> named terms
TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_TASK = "classification"  # what datasets, runs and archives made before tasks existed are


@dataclass(frozen=True)
class MetricInfo:
    """One validation metric: its name in metrics.jsonl (`val_...`), how to show it, and which way is better."""

    name: str
    label: str
    unit: str = ""  # "%" for percentages (0..100), "" for plain numbers
    higher_is_better: bool = True


class Meter:
    """Validation metrics as sums in one float64 tensor, so DDP ranks add them with one all_reduce.

    `update` adds a batch (outputs and targets on the device; `loss` is the batch's mean loss), `sums` is the
    tensor to reduce, `compute(sums)` turns the (reduced) sums into `{metric name: value}`.
    """

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        raise NotImplementedError

    def sums(self) -> torch.Tensor:
        raise NotImplementedError

    def compute(self, sums: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def gather(self) -> None:
        """Under DDP, on every rank after the sums are reduced and before `compute`: a meter whose metric is no
        sum (a detector's mAP) collects here what the other ranks saw. Nothing by default."""


@dataclass
class Report:
    """A whole evaluation: JSON-ready figures, and the pictures a task draws from them."""

    doc: dict[str, Any]
    pictures: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes


class Task:
    """Base class of every task. Subclasses set the class attributes and implement the hooks."""

    name: ClassVar[str]
    title: ClassVar[str]  # shown in menus: "Image classification"
    input_kind: ClassVar[str] = "image"  # see deepyard.tasks.inputs
    target_format: ClassVar[str]  # one line: what a target is
    sources: ClassVar[str]  # one line: the source layouts it reads
    targets_file: ClassVar[str] = "targets.npy"
    losses: ClassVar[tuple[str, ...]]  # the first is the default
    metrics: ClassVar[tuple[MetricInfo, ...]]  # val_loss first; the second is the headline figure
    template_names: ClassVar[tuple[str, ...]] = ("predict.html", "evaluate.html")
    export_formats: ClassVar[tuple[str, ...]] = ("archive", "onnx", "torchscript")  # what `deepyard export` writes
    # The batch an ONNX/TorchScript export is traced at (None: any batch, a dynamic axis). 1: a model whose trace
    # unrolls a loop over the batch (torchvision's detectors); the export takes one image and is run image by image.
    export_batch: ClassVar[int | None] = None
    calibrated: ClassVar[bool] = False  # whether a trained model is calibrated on validation before use
    exact: ClassVar[bool] = True  # whether a prediction can be right or wrong (false for values)
    label_tokens: ClassVar[int | None] = 1  # words of a target after a path in a labelled list (None: all the rest)
    own_build: ClassVar[bool] = False  # True: `build_dataset` builds the whole store (inputs other than images)
    # The task's default recipe: dotted TrainConfig keys ("epochs", "solver.clip_grad_norm") applied under a named
    # preset's settings and the user's own (a file, flags, --set), so `deepyard train --dataset D` trains well
    # without flags. Empty: TrainConfig's defaults (measured on image classification, `bench/recipes.py`).
    recipe: ClassVar[dict[str, Any]] = {}
    # Which of the standard network table's networks fit (NetworkEntry.output: "class" logits, "pixel" logits);
    # None: the task's networks are listed elsewhere (detectors, text networks), the New run page shows none.
    network_output: ClassVar[str | None] = "class"
    # True: the task's targets are boxes that follow a crop, so it takes augment.iou_crop and augment.zoom_out
    # (deepyard.train.tasking.check_task_augment refuses them by name for any other task)
    box_augment: ClassVar[bool] = False
    # True: the task evaluates and exports a run's model itself (`evaluate_run`, `export_run`: inputs other than
    # images); False: deepyard.infer.tasks does, through `evaluate`, `predict` and the image preprocessing. The
    # job kinds "evaluate" and "export", the REST routes and the CLI reach both through deepyard.infer.tasks.
    own_inference: ClassVar[bool] = False

    # ---- datasets

    def list_source(self, spec: DatasetSpec, readable: Readable | None) -> Listing:
        """The output names and the items of every split, with their targets (`Item.target`)."""
        raise NotImplementedError

    def check_source(self, spec: DatasetSpec) -> None:
        """The cheap checks at submit (files exist, layout is right); raise SourceError naming the problem."""
        raise NotImplementedError

    def target_array(self, targets: Sequence[Any], names: Sequence[str]) -> np.ndarray:
        """The stored targets of one split, from the listed items' targets."""
        raise NotImplementedError

    def per_output(self, targets: np.ndarray, names: Sequence[str]) -> list[int]:
        """Images per output name (class or label) in a split; [] where counting makes no sense."""
        return []

    def target_stats(self, train: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        """What the task keeps about the training targets in the manifest (regression: mean and std)."""
        return {}

    def caption(self, target: np.ndarray, names: Sequence[str]) -> str:
        """One example's target as text (gallery captions, reports)."""
        raise NotImplementedError

    def having(self, targets: np.ndarray, output: int) -> np.ndarray:
        """Boolean mask of the examples whose target has output `output` (the gallery's class filter)."""
        raise NotImplementedError

    def store_targets(self, folder: Path, targets: Sequence[Any], names: Sequence[str], spec: DatasetSpec) -> None:
        """Write one split's targets (the kept items', in order) into its folder: by default `target_array` as
        one .npy. A task whose targets are images (masks) decodes and resizes them here, with the spec's size."""
        np.save(folder / self.targets_file, self.target_array(targets, names))

    def build_dataset(
        self, spec: DatasetSpec, readable: Readable | None, work: Path, dataset_id: str,
        progress: Callable[[str, int, int], None],
    ) -> Manifest:  # fmt: skip
        """A task with `own_build` writes its whole dataset into `work` (the build's folder, committed by the
        caller) and returns the manifest; image tasks are built by `deepyard.datasets.build` from `list_source`."""
        raise NotImplementedError

    def load_targets(self, folder: Path) -> np.ndarray:
        targets: np.ndarray = np.load(folder / self.targets_file, allow_pickle=False)
        return targets

    def collate(self, targets: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The targets of a batch: rows `index` of the split's targets."""
        return targets.index_select(0, index)

    def transform(
        self, preprocess: Callable[..., torch.Tensor], pixels: torch.Tensor, targets: torch.Tensor, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Model inputs and targets of a batch: uint8 pixels through the preprocessor (augmentation, mean, crop).
        Image-level targets do not move with the pixels; a task whose targets do (boxes, masks) overrides this."""
        return preprocess(pixels, train=train), targets

    # ---- networks and training

    def split_batches(
        self, store: Any, batch_size: int, device: torch.device, seed: int, train: bool, shard: Any, in_memory: bool,
        workers: int,
    ) -> Any:  # fmt: skip
        """The trainer's batches of one split (`batches(epoch, start)`, `batches_per_epoch`, `count`): by default
        deepyard.train.data.SplitBatches over the image store, with this task's `collate`."""
        from deepyard.train.data import SplitBatches

        return SplitBatches(store, batch_size, device, seed, train, shard, in_memory, workers, self.collate)

    def train_callbacks(self) -> list[Any]:
        """deepyard.train.callbacks.Callback objects the trainer adds to every run of this task (after the
        built-ins): a language model's validation sample."""
        return []

    def outputs(self, names: Sequence[str]) -> int:
        """The network's output size for a dataset with these output names."""
        return len(names)

    def criterion(self, loss: str, names: Sequence[str], stats: dict[str, Any], config: Any) -> Criterion:
        raise NotImplementedError

    def training_terms(self, model: nn.Module, x: Any, y: Any, criterion: Criterion) -> dict[str, torch.Tensor]:
        """The named loss terms of one training batch (inside the run's autocast). By default the criterion of the
        model's outputs; a task whose models compute their loss from the targets (torchvision's detectors in
        training mode) calls the model with them."""
        return criterion(model(x), y)

    def validation_batch(
        self, model: nn.Module, x: Any, y: Any, criterion: Criterion, autocast: Callable[[], Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(float outputs for the meter, the batch's loss) of one validation batch, the model in eval mode."""
        import torch

        with autocast():
            outputs = model(x)
        terms = list(criterion(outputs, y).values())
        return outputs.float(), terms[0] if len(terms) == 1 else torch.stack(terms).sum()

    def inference_model(self, model: nn.Module) -> nn.Module:
        """The trained model as inference uses it (evaluate, predict, export): a tensor in, a tensor out. By
        default the model itself; a detector is wrapped so that it returns padded boxes."""
        return model

    def meter(self, names: Sequence[str], stats: dict[str, Any]) -> Meter:
        raise NotImplementedError

    def default_network(self, shape: tuple[int, int, int]) -> tuple[str, str]:
        """(network, why): a standard network for (H, W, C) inputs that trains well without flags."""
        height, width, channels = shape
        if channels == 1 and max(height, width) <= 64:
            return "lenet", f"small ({width}x{height}) grayscale images"
        return "resnet18", f"{width}x{height} {'grayscale' if channels == 1 else 'colour'} images"

    # ---- inference

    def calibrate(self, outputs: np.ndarray, targets: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        """What a trained model settles on the validation split before use (multi-label: thresholds)."""
        return {}

    def predict(
        self, outputs: torch.Tensor, names: Sequence[str], stats: dict[str, Any], k: int
    ) -> list[dict[str, Any]]:
        """Per row of (B, K) float outputs, a JSON-ready prediction with a `summary` line."""
        raise NotImplementedError

    def confidence(self, predicted: Predicted) -> float | None:
        """How sure one prediction (from `predict`) is, 0..1, where the task has one figure for it; None where it
        has not (values, several labels). By default the probability of the first of a ranked `top` list (what
        classification predicts: the predicted class's probability)."""
        top = predicted.get("top")
        return float(top[0]["probability"]) if top else None

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
        raise NotImplementedError

    def eval_outputs(self, outputs: torch.Tensor) -> torch.Tensor:
        """What an evaluation keeps of one batch's outputs for `evaluate` (and `Evaluation.outputs`): by default
        all of them; a task whose outputs are large per image keeps less, or streams (`eval_stream`)."""
        return outputs

    def eval_stream(self, ctx: EvalContext) -> EvalStream | None:
        """An evaluation accumulated batch by batch, for a task whose outputs are too large to keep for every
        example (segmentation: K logits a pixel); `deepyard evaluate` then keeps no outputs and takes the report
        from the stream. None (the default): `eval_outputs` of every batch are kept and `evaluate` reads them."""
        return None

    def agreement(self, expected: np.ndarray, exported: np.ndarray, stats: dict[str, Any]) -> tuple[str, float]:
        """(what agrees, fraction) between two exports' outputs on the same inputs; parity needs 1.0."""
        raise NotImplementedError

    def output_difference(self, expected: np.ndarray, exported: np.ndarray) -> float:
        """The largest difference between two exports' outputs that parity reports (and bounds). By default the
        raw largest absolute difference; a task whose outputs may be reordered (tied scores) compares matched rows."""
        return float(np.abs(expected - exported).max()) if expected.size else 0.0

    def evaluate_run(
        self, settings: Any, ref: str, split: str, top_n: int, out: Path | None,
        on_progress: Callable[[int, int], None] | None, tag: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        """A task with `own_inference` evaluates run `ref` (RUN[@SNAPSHOT]) on a split of its dataset and writes
        evaluation.json in `out`, by default `runs/<id>/evaluations/<split>-<snapshot>[-<tag>]/`. Returns it, with
        `description`, `count`, `task`, `metrics` and `files` (`json`: that file); `on_progress(done, total)`."""
        raise NotImplementedError

    def export_run(
        self, settings: Any, ref: str, formats: list[str], out: Path | None, samples: int,
        on_progress: Callable[[int, int], None] | None, tag: str | None,
    ) -> dict[str, Any]:  # fmt: skip
        """A task with `own_inference` exports run `ref` to each of `formats` (of `export_formats`) in `out`, by
        default `runs/<id>/exports/[<tag>/]`, each checked against PyTorch. Returns `{"model", "ok", "reports"}`,
        each report with `format`, `path`, `ok` and a one-line `summary`; `on_progress(formats done, formats)`."""
        raise NotImplementedError

    def target_of(self, text: str, names: Sequence[str]) -> Any:
        """A target as a user writes it after a path in a labelled list, in the form `target_array` takes."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "input_kind": self.input_kind,
            "target_format": self.target_format, "sources": self.sources, "losses": list(self.losses),
            "metrics": [m.name for m in self.metrics], "monitor": self.monitors(), "recipe": dict(self.recipe),
        }  # fmt: skip

    def format_metrics(self, metrics: dict[str, float], names: Sequence[str] | None = None) -> str:
        """`val loss 0.0712, val top-1 97.50%, ...`: the task's metrics that are present, labelled, in units."""
        shown = []
        for m in self.metrics:
            if names is not None and m.name not in names:
                continue
            value = metrics.get(m.name)
            if isinstance(value, int | float):
                shown.append(f"{m.label} {value:.2f}%" if m.unit == "%" else f"{m.label} {value:.4f}")
        return ", ".join(shown)

    def headline(self, metrics: dict[str, float]) -> str:
        """The task's headline figure (classification: val top-1) as text, or `-`."""
        return self.format_metrics(metrics, [self.metrics[1].name]).removeprefix(self.metrics[1].label + " ") or "-"

    def monitors(self) -> list[str]:
        return [m.name for m in self.metrics]

    def template(self, name: str) -> str:
        """The Jinja name of one of this task's partial templates (under deepyard/tasks/templates/)."""
        if name not in self.template_names:
            raise NotFoundError(f"task {self.name!r} has no template {name!r}")
        return f"{self.name}/{name}"


class EvalStream:
    """A task's evaluation report built batch by batch (`Task.eval_stream`), keeping only what the report needs
    (segmentation: the pixel confusion matrix and the lowest-IoU images' masks), so memory does not grow with the
    number of examples. Its report equals `Task.evaluate` of all the outputs at once."""

    def update(self, outputs: torch.Tensor, targets: np.ndarray, indices: np.ndarray) -> None:
        """One batch: the model's float outputs (B, ...) on the CPU, their targets (B, ...), and their positions
        in the evaluated data (B,) (what `EvalContext.sources` and `pictures` are indexed by)."""
        raise NotImplementedError

    def report(self) -> Report:
        raise NotImplementedError


@dataclass
class EvalContext:
    """What an evaluation knows besides outputs and targets."""

    names: list[str]
    stats: dict[str, Any]
    sources: list[str]  # what to call each example
    pictures: Callable[[np.ndarray], np.ndarray]  # indices -> (B, H, W, C) uint8, for image grids
    top_n: int = 9
    loss: str = ""


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    _TASKS[task.name] = task
    return task


def get_task(name: str | None) -> Task:
    """The registered task `name` (None: classification, what everything made before tasks is)."""
    name = name or DEFAULT_TASK
    if name not in _TASKS:
        raise InvalidValueError(f"task {name!r} is not known; use {choices(sorted(_TASKS))}")
    return _TASKS[name]


def task_names() -> list[str]:
    return sorted(_TASKS)


def list_tasks() -> list[Task]:
    return [_TASKS[n] for n in task_names()]
