"""The input-kind seam: what the examples of a dataset are, beside the task that says what their targets are.

Images, token sequences (language models: deepyard.text) and rows of token ids (text classification). The store
reader, the training data path and inference preprocessing ask the input kind for the example shape and the store, never
`manifest.shape` directly. Registered by name, like tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from deepyard.errors import InvalidValueError, choices


class InputKind:
    name: ClassVar[str]
    description: ClassVar[str]
    noun: ClassVar[str]  # what the examples are called in messages: "images", "texts"
    batch_noun: ClassVar[str] = ""  # what a progress count of evaluation counts, when not `noun` ("batches of ...")

    def example_shape(self, stored: tuple[int, ...]) -> tuple[int, ...]:
        """The tensor shape of one example as the network sees it, from the manifest's stored shape."""
        raise NotImplementedError

    def open_store(self, folder: Path, stored: tuple[int, ...], targets: Any, in_memory: bool) -> Any:
        raise NotImplementedError


class Images(InputKind):
    name = "image"
    description = "images, stored as uint8 (H, W, C) pixels at the dataset's size"
    noun = "images"

    def example_shape(self, stored: tuple[int, ...]) -> tuple[int, int, int]:
        height, width, channels = stored
        return (channels, height, width)

    def open_store(self, folder: Path, stored: tuple[int, ...], targets: Any, in_memory: bool) -> Any:
        from deepyard.datasets.store import ImageStore

        return ImageStore(folder, stored[2], in_memory=in_memory, targets=targets)


class Tokens(InputKind):
    """Token ids back to back in one memory-mapped array per split; the manifest's stored shape is
    (context, 1, 1), so a network sees (1, context, 1): one block of `context` tokens."""

    name = "tokens"
    description = "token sequences (text), stored as uint16/uint32 token ids, read in blocks of the context"
    noun = "tokens"
    batch_noun = "batches of tokens"  # a language model is evaluated block batch by block batch

    def example_shape(self, stored: tuple[int, ...]) -> tuple[int, int, int]:
        return (1, stored[0], 1)

    def open_store(self, folder: Path, stored: tuple[int, ...], targets: Any, in_memory: bool) -> Any:
        from deepyard.text.store import TokenStore

        return TokenStore(folder, stored[0], targets)


class Sequences(InputKind):
    """One row of token ids per example, padded to the dataset's length (text classification:
    deepyard.text.sequences); the manifest's stored shape is (length, 1, vocabulary)."""

    name = "sequences"
    description = "texts as rows of token ids (uint16/uint32, padded to the dataset's length), one per example"
    noun = "texts"

    def example_shape(self, stored: tuple[int, ...]) -> tuple[int, int, int]:
        return (1, stored[0], 1)

    def open_store(self, folder: Path, stored: tuple[int, ...], targets: Any, in_memory: bool) -> Any:
        from deepyard.text.sequences import SequenceStore

        return SequenceStore(folder, stored[0], targets)


_KINDS: dict[str, InputKind] = {"image": Images(), "tokens": Tokens(), "sequences": Sequences()}


def get_input_kind(name: str) -> InputKind:
    if name not in _KINDS:
        raise InvalidValueError(f"input kind {name!r} is not known; use {choices(sorted(_KINDS))}")
    return _KINDS[name]
