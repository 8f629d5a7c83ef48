"""Tokenizers: exact round trips (character vocabulary and byte-level BPE), JSON save/load, bad input named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepyard.errors import InvalidValueError
from deepyard.text.tokenizer import (
    BpeTokenizer,
    CharTokenizer,
    load_tokenizer,
    save_tokenizer,
    tokenizer_from_json,
    train_tokenizer,
)

CORPUS = "First Citizen:\nBefore we proceed any further, hear me speak.\n\tÉté, naïve — 東京 😀 \r\n" * 40
ODD = "unseen: ÿ ☃ 𝄞 \x01 tab\tand\r\nCRLF, trailing spaces   "


def test_char_round_trip_is_exact() -> None:
    tok = CharTokenizer.train([CORPUS])
    assert tok.decode(tok.encode(CORPUS)) == CORPUS
    assert tok.vocab_size == len(set(CORPUS))
    assert tok.encode_array(CORPUS).dtype == np.uint16


def test_bpe_round_trip_is_exact_for_any_text() -> None:
    tok = BpeTokenizer.train([CORPUS], vocab_size=300)
    for text in (CORPUS, ODD, "", " ", "\n\n"):
        assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(CORPUS)) < len(CORPUS)  # merges were learnt


def test_saved_tokenizers_load_and_encode_the_same(tmp_path: Path) -> None:
    for kind in ("char", "bpe"):
        tok = train_tokenizer(kind, [CORPUS], 300)
        save_tokenizer(tok, tmp_path)
        again = load_tokenizer(tmp_path)
        assert again.kind == kind and again.encode(CORPUS) == tok.encode(CORPUS)
        assert again.names() == tok.names()


def test_unknown_character_is_named() -> None:
    tok = CharTokenizer.train(["abc"])
    with pytest.raises(InvalidValueError, match=r"'z'.*3 characters"):
        tok.encode("abz")


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidValueError, match="'char' or 'bpe'"):
        train_tokenizer("word", ["abc"], 300)
    with pytest.raises(InvalidValueError, match="not a tokenizer"):
        tokenizer_from_json({"kind": "pickle"})
