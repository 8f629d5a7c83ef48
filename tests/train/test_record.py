"""run.json's typed record: a run's fields with their types; a legacy run is classification; a bad field named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deepyard.config import load_settings
from deepyard.errors import IntegrityError
from deepyard.train.record import RunRecord
from deepyard.train.runs import get_run

LEGACY = Path(__file__).parent.parent / "fixtures" / "legacy" / "home"


def test_a_legacy_run_reads_as_a_classification_record(tmp_path: Path) -> None:
    shutil.copytree(LEGACY, tmp_path / "home")
    record = RunRecord.of(get_run(load_settings(tmp_path / "home"), "20261202-195703-57d2"))
    assert (record.task, record.network.ref, record.network.spec["name"]) == ("classification", "tiny.yaml", "tiny")
    assert record.config.batch_size == 4 and record.config.loss == "cross_entropy" and record.status == "done"


def test_a_field_that_does_not_fit_is_named() -> None:
    info = json.loads((LEGACY / "runs" / "20261202-195703-57d2" / "run.json").read_text())
    info["config"]["batch_size"] = "many"
    with pytest.raises(
        IntegrityError, match=r"run.json of run '20261202-195703-57d2' does not fit its record.*batch_size"
    ):
        RunRecord.of(info)
