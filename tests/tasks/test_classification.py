"""The classification task's hooks: losses by hand, the meter against the evaluation metrics."""

from __future__ import annotations

import math

import pytest
import torch

from deepyard.tasks.classification import CLASSIFICATION
from deepyard.train.config import make_config

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
TARGETS = torch.tensor([0, 1])


def test_losses_against_hand_computation() -> None:
    def loss(**settings: object) -> float:
        config = make_config(**settings)
        name = CLASSIFICATION.losses[0] if config.loss == "auto" else config.loss
        terms = CLASSIFICATION.criterion(name, ["a", "b", "c"], {}, config)(LOGITS, TARGETS)
        return float(sum(terms.values()))

    logsumexp = [math.log(sum(math.exp(v) for v in row)) for row in LOGITS.tolist()]
    ce = ((logsumexp[0] - 2.0) + (logsumexp[1] - 0.2)) / 2
    assert loss() == pytest.approx(ce)
    smooth = 0.1
    nll = [logsumexp[i] - LOGITS[i, t].item() for i, t in enumerate(TARGETS.tolist())]
    uniform = [sum(logsumexp[i] - v for v in LOGITS[i].tolist()) / 3 for i in range(2)]
    smoothed = sum((1 - smooth) * nll[i] + smooth * uniform[i] for i in range(2)) / 2
    assert loss(label_smoothing=smooth) == pytest.approx(smoothed)
    # multi-class hinge: mean over samples of sum_{j != y} max(0, 1 - x_y + x_j) / K
    hinge = (max(0, 1 - 2 + 0.5) + max(0, 1 - 2 - 1) + max(0, 1 - 0.2 + 0.1) + max(0, 1 - 0.2 + 3)) / 3 / 2
    assert loss(loss="hinge") == pytest.approx(hinge)
    onehot = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    assert loss(loss="mse") == pytest.approx(float(((LOGITS - onehot) ** 2).mean()))
    sig = torch.sigmoid(LOGITS)
    bce = -(onehot * torch.log(sig) + (1 - onehot) * torch.log(1 - sig)).mean()
    assert loss(loss="bce") == pytest.approx(float(bce))
