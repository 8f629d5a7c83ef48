"""train does not import transfer (transfer builds on train and hands the trainer its start). Read from the source
with ast, so an import inside a function counts too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.test_layering import imported

TRAIN = Path(__file__).resolve().parents[2] / "src" / "deepyard" / "train"


@pytest.mark.parametrize("module", sorted(p.name for p in TRAIN.glob("*.py")))
def test_train_imports_no_transfer_module(module: str) -> None:
    assert sorted(m for m in imported(TRAIN / module) if m.startswith("deepyard.transfer")) == []
