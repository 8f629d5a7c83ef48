"""Use a trained model: classify, evaluate, look inside, export.

Public API (the CLI, the job system and the web server call these):
`open_model`, `load_run_model`, `snapshots` (model loading), `classify_one`, `classify_many`, `read_inputs`
(prediction), `evaluate`, `split_data`, `labelled_data`, `write_pictures` (evaluation), `activations`, `weights`,
`grad_cam`, `inspect_image` (looking inside), `write_archive`, `read_archive`, `export`, `export_all`,
`validation_sample` (export and parity), `predict_table`, `split_images`, `upload_image`, `file_images` (the
comparison table of images by models).
"""

from __future__ import annotations

from deepyard.infer.archive import read_archive, write_archive
from deepyard.infer.comparison import (
    PredictionTable,
    TableImage,
    file_images,
    predict_table,
    split_images,
    upload_image,
)
from deepyard.infer.evaluate import Evaluation, evaluate, labelled_data, split_data, write_pictures
from deepyard.infer.export import FORMATS, ParityReport, export, export_all, validation_sample
from deepyard.infer.inspect import activations, grad_cam, inspect_image, weights
from deepyard.infer.model import TrainedModel, load_run_model, open_model, snapshots
from deepyard.infer.predict import Labelled, Prediction, classify_many, classify_one, read_inputs

__all__ = [
    "FORMATS",
    "Evaluation",
    "Labelled",
    "ParityReport",
    "Prediction",
    "PredictionTable",
    "TableImage",
    "TrainedModel",
    "activations",
    "classify_many",
    "classify_one",
    "evaluate",
    "export",
    "export_all",
    "file_images",
    "grad_cam",
    "inspect_image",
    "labelled_data",
    "load_run_model",
    "open_model",
    "predict_table",
    "read_archive",
    "read_inputs",
    "snapshots",
    "split_data",
    "split_images",
    "upload_image",
    "validation_sample",
    "weights",
    "write_archive",
    "write_pictures",
]
