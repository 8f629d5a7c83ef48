"""Text-classification networks: forward and backward, padding that changes nothing, the n-gram hashing, the
summary `deepyard network view` draws, and the names the run machinery builds."""

from __future__ import annotations

import pytest
import torch

from deepyard.errors import InvalidValueError
from deepyard.text.classifiers import (
    TEXT_CLASSIFIERS,
    BagOfNgrams,
    build_text_classifier,
    summarize_text_classifier,
)
from deepyard.text.networks import build_text_network, is_text_network


@pytest.mark.parametrize("name", sorted(TEXT_CLASSIFIERS))
def test_every_text_classifier_runs_forward_and_backward(name: str) -> None:
    model = build_text_classifier(name, (40, 16, 1), 3)
    ids = torch.randint(2, 40, (4, 16))
    ids[0, 5:] = 0  # a short text
    logits = model(ids)
    assert logits.shape == (4, 3)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert is_text_network(name) and type(build_text_network(name, (40, 16, 1), 3)) is type(model)


@pytest.mark.parametrize("name", ["bag-ngrams", "text-cnn"])
def test_padding_does_not_change_the_prediction(name: str) -> None:
    torch.manual_seed(0)
    model = build_text_classifier(name, (40, 24, 1), 3).eval()
    ids = torch.randint(2, 40, (1, 10))
    padded = torch.cat([ids, torch.zeros(1, 14, dtype=torch.long)], dim=1)
    assert torch.allclose(model(ids), model(padded), atol=1e-6)


def test_ngrams_hash_within_the_buckets_and_skip_padding() -> None:
    bag = BagOfNgrams(vocab=10, classes=2, max_n=3, buckets=64)
    rows = bag.ngrams(torch.tensor([[3, 4, 5, 0, 0]]))
    assert rows.shape == (1, 5 + 4 + 3)
    grams = rows[0, 5:]
    assert (grams[:2] >= 10).all() and (grams[:2] < 74).all() and grams[2:4].tolist() == [0, 0]  # bigrams
    assert grams[4] >= 10 and grams[5:].tolist() == [0, 0]  # one trigram, two touching padding
    order = bag.ngrams(torch.tensor([[4, 3, 5, 0, 0]]))[0, 5:]
    assert order[0] != grams[0]  # word order reaches the bag through the n-grams


def test_summary_rows_and_unknown_names() -> None:
    s = summarize_text_classifier("text-cnn", length=32, classes=5, vocab=50)
    assert sum(r.params for r in s.rows) == s.params
    rows = {r.name: r for r in s.rows}
    assert rows["convs.2"].inputs == ("embed",) and rows["head"].inputs == ("convs.0", "convs.1", "convs.2")
    assert rows["head"].output_shape == (5,)
    with pytest.raises(InvalidValueError, match="use one of bag-ngrams, text-cnn, text-bigru"):
        build_text_classifier("text-lstm", (50, 32, 1), 5)
