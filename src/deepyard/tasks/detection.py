"""Object detection: boxes with a class each, any number per image (none: a negative image).

Targets: (N, M, 6) float32 per split, rows (x1, y1, x2, y2, class, iscrowd) in the stored image's pixels, unused
rows of class -1 (see `deepyard.datasets.boxes`, which also reads COCO, VOC, YOLO and KITTI sources and moves the
boxes through the resize). Networks: torchvision's detectors (`deepyard.networks.detection`); the model computes
its own losses from the targets in training mode (`training_terms`), each logged as `train_<term>`
(`train_classifier`, `train_box_reg`, `train_objectness`, `train_rpn_box_reg` for Faster R-CNN). Augmentation
moves the boxes with the pixels (torchvision.transforms.v2 on `tv_tensors.BoundingBoxes`): `augment.flip`,
`augment.scale` (zoom and shift), SSD's `augment.iou_crop` (RandomIoUCrop) and `augment.zoom_out` (RandomZoomOut,
the canvas filled with the run's mean colour, black without mean subtraction), each resized back to the batch's
size, and `augment.contrast` and `augment.hsv_*` (photometric). The run's mean subtraction and scale apply before
the model's own normalisation, in training and in inference alike.

Outputs, everywhere outside training (validation, `evaluate`, `predict`, exports): (B, D, 6) float, rows
(x1, y1, x2, y2, score, class) in the stored image's pixels, best first, unused rows of class -1 (`DetectionOutputs`).
Validation metrics: val_loss (the model's losses on the validation batch, computed in training mode with batch
norm in evaluation mode), COCO mAP@[.5:.95] (`val_map`, the headline) and mAP@.5 (`val_map50`), in %, through
torchmetrics' MeanAveragePrecision with the pycocotools backend. Under DDP, every rank's predictions are gathered
(`DetectionMeter.gather`), so the mAP is the whole validation split's, as one process computes it; the loss is
summed across ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from deepyard.errors import InvalidValueError, SourceError, choices
from deepyard.tasks.base import Criterion, EvalContext, Meter, MetricInfo, Report, Task, register_task
from deepyard.tasks.boxaugment import augment_boxes, zoom_fill

if TYPE_CHECKING:
    import torch
    from torch import nn

    from deepyard.datasets.sources import Listing, Readable
    from deepyard.datasets.spec import DatasetSpec

MAX_DETECTIONS = 100  # rows of the padded outputs (torchvision's detections_per_img default)
SMALL = 160  # images up to this side get fcos_small by default


def pad_detections(found: list[dict[str, torch.Tensor]], rows: int = MAX_DETECTIONS) -> torch.Tensor:
    """torchvision's per-image `{boxes, scores, labels}` (labels from 1) -> (B, rows, 6) padded outputs. Written
    with tensor operations only (concatenate, then cut), so that a trace keeps the number of detections dynamic."""
    import torch

    padding = torch.zeros(rows, 6)
    padding[:, 5] = -1
    out = []
    for det in found:
        got = torch.cat([det["boxes"].float(), det["scores"].float()[:, None], det["labels"].float()[:, None] - 1], 1)
        out.append(torch.cat([got, padding.to(got.device)])[:rows])
    return torch.stack(out) if out else torch.zeros(0, rows, 6)


def _detector_module() -> type:
    from torch import nn

    class DetectionOutputs(nn.Module):
        """A torchvision detector in evaluation mode as a tensor function: (B, C, H, W) input -> (B, D, 6)."""

        def __init__(self, detector: nn.Module) -> None:
            super().__init__()
            self.detector = detector

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return pad_detections(self.detector(_three(list(x))))

    return DetectionOutputs


def _three(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """torchvision's detectors normalise three channels: a grey image is repeated."""
    return [im.expand(3, -1, -1) if im.shape[0] == 1 else im for im in images]


def _targets(targets: torch.Tensor, train: bool) -> list[dict[str, torch.Tensor]]:
    """(B, M, 6) stored targets -> torchvision's per-image `{boxes, labels}` (labels from 1); crowd boxes are
    left out of training, as torchvision's references do, and kept (marked) for the metrics."""
    out = []
    for t in targets:
        rows = t[t[:, 4] >= 0]
        if train:
            rows = rows[rows[:, 5] == 0]
        out.append({"boxes": rows[:, :4].float(), "labels": rows[:, 4].long() + 1, "iscrowd": rows[:, 5].long()})
    return out


class DetectionMeter(Meter):
    """Validation loss sums plus torchmetrics' MeanAveragePrecision over the images seen. Each image's predictions
    and true boxes are kept (at most MAX_DETECTIONS rows each), so that under DDP `gather` can hand every rank all
    of them; the metric is computed from them at the end."""

    def __init__(self, class_metrics: bool = False) -> None:
        self.class_metrics = class_metrics
        self.preds: list[dict[str, torch.Tensor]] = []
        self.truth: list[dict[str, torch.Tensor]] = []
        self.loss = 0.0
        self.counted = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, loss: torch.Tensor) -> None:
        outputs, targets = outputs.detach().float().cpu(), targets.detach().float().cpu()
        for det in outputs:
            rows = det[det[:, 5] >= 0]
            self.preds.append({"boxes": rows[:, :4], "scores": rows[:, 4], "labels": rows[:, 5].long()})
        self.truth += [{"boxes": t["boxes"], "labels": t["labels"] - 1, "iscrowd": t["iscrowd"]}
                       for t in _targets(targets, train=False)]  # fmt: skip
        if bool(loss.isfinite()):
            self.loss += float(loss) * len(outputs)
            self.counted += len(outputs)

    def gather(self) -> None:
        """Every rank's images, in the split's order: the validation shards are strided (rank r holds images r,
        r + W, r + 2W, ...), so image j of rank r is image j W + r. Each rank then computes the whole split's mAP,
        the one a single process computes."""
        import torch.distributed as dist

        shards: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(shards, (self.preds, self.truth))
        longest = max(len(preds) for preds, _ in shards)
        order = [(r, j) for j in range(longest) for r in range(len(shards)) if j < len(shards[r][0])]
        self.preds = [shards[r][0][j] for r, j in order]
        self.truth = [shards[r][1][j] for r, j in order]

    def sums(self) -> torch.Tensor:
        import torch

        return torch.tensor([self.loss, float(self.counted)], dtype=torch.float64)

    def compute(self, sums: torch.Tensor) -> dict[str, float]:
        found = self.results()
        out = {"val_map": 100 * max(float(found["map"]), 0.0), "val_map50": 100 * max(float(found["map_50"]), 0.0)}
        if sums[1] > 0:
            out = {"val_loss": float(sums[0] / sums[1]), **out}
        return out

    def results(self) -> dict[str, Any]:
        import warnings

        from torchmetrics.detection import MeanAveragePrecision

        # sync_on_compute off: under DDP, `gather` has already brought every rank's images here
        metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools",
                                      class_metrics=self.class_metrics, sync_on_compute=False)  # fmt: skip
        if self.preds:
            metric.update(self.preds, self.truth)
        with warnings.catch_warnings():  # torchmetrics warns when a class has no box at all
            warnings.simplefilter("ignore", UserWarning)
            found: dict[str, Any] = metric.compute()
        return found


class Detection(Task):
    network_output = None
    name = "detection"
    title = "Object detection"
    target_format = "boxes (x1 y1 x2 y2) with a class each, any number per image"
    sources = (
        "COCO JSON; Pascal VOC (Annotations/ + JPEGImages/); YOLO (images/ + labels/); KITTI (image_2/ + label_2/)"
    )
    targets_file = "boxes.npy"
    losses = ("model",)  # the detector's own losses
    metrics = (
        MetricInfo("val_loss", "val loss", higher_is_better=False),
        MetricInfo("val_map", "val mAP", "%"),
        MetricInfo("val_map50", "val mAP@.5", "%"),
    )
    exact = False
    label_tokens = None
    calibrated = True  # each class's score threshold: the best F1 on validation
    box_augment = True  # augment.iou_crop and augment.zoom_out
    # The default recipe (`deepyard train --dataset D` without flags), measured with fcos_small on 800 generated
    # 64x64 scenes (the quality gate, tests/tasks/test_detection.py): AdamW, one-cycle, batch 16.
    recipe: ClassVar[dict[str, Any]] = {"epochs": 8, "batch_size": 16, "solver.lr": 0.003, "augment.flip": "lr"}
    export_batch = 1  # a detector's trace unrolls its loop over the images
    # dataset: the boxes/masks panel and gallery; infer: the run page's Detect/Segment one (both in vision.js)
    template_names = ("predict.html", "evaluate.html", "dataset.html", "infer.html")

    # ---- datasets

    def list_source(self, spec: DatasetSpec, readable: Readable | None) -> Listing:
        from deepyard.datasets.boxes import list_detection

        return list_detection(spec, readable)

    def check_source(self, spec: DatasetSpec) -> None:
        from deepyard.datasets.boxformats import detect_format
        from deepyard.datasets.spec import DetectionSource

        src = spec.source
        if not isinstance(src, DetectionSource):
            raise SourceError(f"a {src.kind} source has no boxes; give a COCO JSON file or a VOC, YOLO or KITTI folder")
        for path in (src.train, src.val, src.test):
            if path is not None:
                detect_format(path)  # missing, or a layout of no known format

    def target_array(self, targets: Sequence[Any], names: Sequence[str]) -> np.ndarray:
        from deepyard.datasets.boxes import target_array

        return target_array(targets)

    def per_output(self, targets: np.ndarray, names: Sequence[str]) -> list[int]:
        """Boxes per class."""
        classes = targets[:, :, 4].astype(np.int64).ravel()
        counts: list[int] = np.bincount(classes[classes >= 0], minlength=len(names)).tolist()
        return counts

    def caption(self, target: np.ndarray, names: Sequence[str]) -> str:
        classes = target[:, 4][target[:, 4] >= 0].astype(int)
        if not len(classes):
            return "(no object)"
        counts = np.bincount(classes, minlength=len(names))
        return ", ".join(f"{n} {names[i]}" for i, n in enumerate(counts) if n)

    def having(self, targets: np.ndarray, output: int) -> np.ndarray:
        mask: np.ndarray = (targets[:, :, 4] == output).any(axis=1)
        return mask

    def transform(
        self, preprocess: Callable[..., torch.Tensor], pixels: torch.Tensor, targets: torch.Tensor, train: bool
    ) -> tuple[Any, Any]:
        """(list of (C, H, W) inputs, list of torchvision targets); in training, box-aware augmentation first."""
        x = pixels.float()
        if train:
            x, targets = augment_boxes(x, targets, getattr(preprocess, "aug", None), zoom_fill(preprocess))
        return _three(list(preprocess(x, train=False))), targets

    # ---- networks and training

    def outputs(self, names: Sequence[str]) -> int:
        return len(names) + 1  # the background is class 0

    def default_network(self, shape: tuple[int, int, int]) -> tuple[str, str]:
        from deepyard.networks.detection import DEFAULT_DETECTOR

        height, width, _ = shape
        if max(height, width) <= SMALL:
            return (
                "fcos_small",
                f"small ({width}x{height}) images: a 0.4 M-parameter FCOS that trains in minutes on a CPU",
            )
        return DEFAULT_DETECTOR, "the fastest torchvision detector on a CPU"

    def criterion(self, loss: str, names: Sequence[str], stats: dict[str, Any], config: Any) -> Criterion:
        if loss != "model":
            raise InvalidValueError(f"loss {loss!r} does not apply to detection; use {choices(self.losses)}")

        def criterion(outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
            import torch

            if isinstance(outputs, dict):  # the detector's named losses
                return {k.removeprefix("loss_"): v for k, v in outputs.items()}
            return {"loss": torch.tensor(float("nan"))}  # detections carry no loss (evaluate: not reported)

        return criterion

    def training_terms(self, model: nn.Module, x: Any, y: Any, criterion: Criterion) -> dict[str, torch.Tensor]:
        return criterion(model(x, _targets(y, train=True)), y)

    def validation_batch(
        self, model: nn.Module, x: Any, y: Any, criterion: Criterion, autocast: Callable[[], Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Detections (padded) and the losses of the same batch, computed in training mode with batch norm in
        evaluation mode (torchvision's detectors give losses only in training mode)."""
        import torch

        with autocast():
            outputs = pad_detections(model(x))
            model.train()
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
            try:
                terms = criterion(model(x, _targets(y, train=True)), y)
            finally:
                model.eval()
        return outputs.to(y.device), torch.stack(list(terms.values())).sum().float()

    def meter(self, names: Sequence[str], stats: dict[str, Any]) -> Meter:
        return DetectionMeter()

    def inference_model(self, model: nn.Module) -> nn.Module:
        module: nn.Module = _detector_module()(model)
        return module

    # ---- inference

    def calibrate(self, outputs: np.ndarray, targets: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
        """Each class's score threshold with the best F1 on these (validation) outputs (IoU 0.5); 0.5 for a class
        never seen."""
        from deepyard.tasks.boxreport import best_thresholds

        return best_thresholds(outputs, targets, names)

    def predict(
        self, outputs: torch.Tensor, names: Sequence[str], stats: dict[str, Any], k: int
    ) -> list[dict[str, Any]]:
        """Boxes above their class's threshold (`stats["threshold"]`, when given, for every class)."""
        from deepyard.tasks.boxreport import above, class_thresholds

        cuts = class_thresholds(stats, len(names))
        said = f"{cuts[0]:g}" if len(set(cuts.tolist())) == 1 else "the class thresholds"
        rows = []
        for det in outputs.float().numpy():
            boxes = [{"box": [round(float(v), 2) for v in r[:4]], "class": names[int(r[5])], "score": float(r[4])}
                     for r in above(det, cuts)]  # fmt: skip
            counts: dict[str, int] = {}
            for b in boxes:
                counts[str(b["class"])] = counts.get(str(b["class"]), 0) + 1
            summary = ", ".join(f"{n} {c}" for c, n in counts.items()) or f"no object above {said}"
            rows.append({"predicted": summary, "boxes": boxes, "threshold": float(cuts.min()),
                         "thresholds": dict(zip(names, cuts.tolist(), strict=True)), "summary": summary})  # fmt: skip
        return rows

    def confidence(self, predicted: dict[str, Any]) -> float | None:
        return None

    def target_of(self, text: str, names: Sequence[str]) -> Any:
        raise InvalidValueError("detection targets are boxes; evaluate a detection dataset split, not a list")

    def agreement(self, expected: np.ndarray, exported: np.ndarray, stats: dict[str, Any]) -> tuple[str, float]:
        from deepyard.tasks.boxmetrics import matching_boxes

        cuts = stats.get("thresholds") or [stats.get("threshold", 0.5)]  # the lowest class threshold: every box kept
        return "boxes matched (IoU >= 0.9, same class)", matching_boxes(expected, exported, float(min(cuts)))

    def output_difference(self, expected: np.ndarray, exported: np.ndarray) -> float:
        """The largest score difference of matched boxes (rows may be reordered where scores tie)."""
        from deepyard.tasks.boxmetrics import score_difference

        return score_difference(expected, exported)

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray, ctx: EvalContext) -> Report:
        from deepyard.tasks.boxreport import detection_report

        return detection_report(outputs, targets, ctx)


DETECTION = register_task(Detection())
