"""Tokenizers of language-model datasets: a character vocabulary, or a byte-level BPE (Hugging Face `tokenizers`).

Both round-trip exactly: `decode(encode(text)) == text` for any text the vocabulary covers (a character vocabulary
covers the characters of the corpus it was built from; byte-level BPE covers every string). A tokenizer is saved
as plain JSON (`tokenizer.json` in the dataset, and in exported archives): `{"kind": "char", "chars": [...]}` or
`{"kind": "bpe", "model": <the tokenizers library's own JSON>}`; loading never runs code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from deepyard.errors import InvalidValueError, choices
from deepyard.files import write_json_atomic

KINDS = ("char", "bpe")
FILE = "tokenizer.json"


class Tokenizer:
    kind: str

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def names(self) -> list[str]:
        """Each token as text, in id order (the dataset's output names)."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def encode_array(self, text: str) -> np.ndarray:
        """The tokens of `text` as the smallest unsigned array that holds the vocabulary."""
        return np.asarray(self.encode(text), dtype=token_dtype(self.vocab_size))


def token_dtype(vocab_size: int) -> type[np.unsignedinteger[Any]]:
    return np.uint16 if vocab_size <= 65536 else np.uint32


class CharTokenizer(Tokenizer):
    kind = "char"

    def __init__(self, chars: Iterable[str]) -> None:
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        seen: set[str] = set()
        for text in texts:
            seen.update(text)
        return cls(sorted(seen))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.index[c] for c in text]
        except KeyError:
            missing = sorted({c for c in text if c not in self.index})
            raise InvalidValueError(
                f"the text has {len(missing)} character(s) the vocabulary does not have: "
                f"{', '.join(repr(c) for c in missing[:10])}; the vocabulary has {len(self.chars)} characters"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def names(self) -> list[str]:
        return list(self.chars)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "char", "chars": self.chars}


class BpeTokenizer(Tokenizer):
    """GPT-2 style byte-level BPE: every string encodes (bytes are the base alphabet), decoding is exact."""

    kind = "bpe"

    def __init__(self, model: Any) -> None:
        self.model = model

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> BpeTokenizer:
        from tokenizers import Tokenizer as HfTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        model = HfTokenizer(models.BPE())
        model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        model.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
            special_tokens=[],
        )  # fmt: skip
        model.train_from_iterator(texts, trainer=trainer)
        return cls(model)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_vocab_size())

    def encode(self, text: str) -> list[int]:
        return list(self.model.encode(text).ids) if text else []

    def decode(self, ids: Iterable[int]) -> str:
        return str(self.model.decode([int(i) for i in ids], skip_special_tokens=False))

    def names(self) -> list[str]:
        vocab = self.model.get_vocab()
        names = [""] * len(vocab)
        for token, i in vocab.items():
            names[i] = token
        return names

    def to_json(self) -> dict[str, Any]:
        return {"kind": "bpe", "model": json.loads(self.model.to_str())}


def train_tokenizer(kind: str, texts: list[str], vocab_size: int) -> Tokenizer:
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "bpe":
        return BpeTokenizer.train(texts, vocab_size)
    raise InvalidValueError(f"tokenizer {kind!r} is not known; use {choices(KINDS)}")


def tokenizer_from_json(data: dict[str, Any]) -> Tokenizer:
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "char" and isinstance(data.get("chars"), list):
        return CharTokenizer(str(c) for c in data["chars"])
    if kind == "bpe" and isinstance(data.get("model"), dict):
        from tokenizers import Tokenizer as HfTokenizer

        return BpeTokenizer(HfTokenizer.from_str(json.dumps(data["model"])))
    raise InvalidValueError(f"not a tokenizer: kind {kind!r}; use {choices(KINDS)}")


def save_tokenizer(tokenizer: Tokenizer, folder: Path) -> None:
    write_json_atomic(folder / FILE, tokenizer.to_json())


def load_tokenizer(folder: Path) -> Tokenizer:
    return tokenizer_from_json(json.loads((folder / FILE).read_text(encoding="utf-8")))
