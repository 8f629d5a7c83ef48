"""Text-classification networks, registered by name: a bag of hashed n-grams (fastText), a CNN over embeddings
(Kim, 2014) and a bidirectional GRU.

Every network maps (B, L) int64 ids (deepyard.text.sequences: 0 pads, 1 is unknown) to (B, K) class logits. The
trainer passes the dataset's (vocabulary, length, 1) as the input shape: a sequence's "channels" are its
vocabulary (one-hot), its height the stored length. Padding never counts: the bag averages only real tokens and
n-grams (EmbeddingBag's padding_idx), the CNN and the GRU pool only over real positions. A name may change any
argument of its network after a colon (deepyard.text.netargs): `bag-ngrams:max_n=2,dim=64`, `text-cnn:filters=200,
widths=2-3-4`, `text-bigru:hidden=256`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepyard.errors import InvalidValueError
from deepyard.text.netargs import parse_sizes, split_name

_PRIME, _MODULUS = 1_000_003, 2_147_483_647  # n-gram hashing: h = (h * P + id) mod M stays inside int64


class BagOfNgrams(nn.Module):
    """fastText (Joulin et al., 2016): the mean of the embeddings of the tokens and of their hashed n-grams
    (n = 2..`max_n`, `buckets` rows shared by all n-grams), then one linear layer. With a character tokenizer the
    n-grams are fastText's sub-word character n-grams; with BPE they are word n-grams (of sub-words)."""

    def __init__(self, vocab: int, classes: int, max_n: int = 3, buckets: int = 1 << 17, dim: int = 32,
                 dropout: float = 0.2) -> None:  # fmt: skip
        super().__init__()
        self.vocab, self.max_n, self.buckets = vocab, max_n, buckets
        self.bag = nn.EmbeddingBag(vocab + buckets, dim, mode="mean", padding_idx=0)
        nn.init.uniform_(self.bag.weight, -1.0 / dim, 1.0 / dim)
        with torch.no_grad():
            self.bag.weight[0].zero_()
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(dim, classes)

    def ngrams(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, M) rows of the bag: the ids, then each n-gram's bucket (0 where it touches padding)."""
        feats = [idx]
        length = idx.shape[1]
        for n in range(2, self.max_n + 1):
            if length < n:
                break
            h = torch.zeros_like(idx[:, : length - n + 1])
            valid = torch.ones_like(h, dtype=torch.bool)
            for j in range(n):
                part = idx[:, j : length - n + 1 + j]
                h = torch.remainder(h * _PRIME + part, _MODULUS)
                valid = valid & (part != 0)
            feats.append(torch.where(valid, torch.remainder(h, self.buckets) + self.vocab, torch.zeros_like(h)))
        return torch.cat(feats, dim=1)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        rows = self.ngrams(idx)
        if torch.onnx.is_in_onnx_export():  # ONNX has no EmbeddingBag with padding_idx: the same mean, spelled out
            real = (rows != 0).unsqueeze(2).float()
            bag = (F.embedding(rows, self.bag.weight) * real).sum(1) / real.sum(1).clamp(min=1.0)
        else:
            bag = self.bag(rows)
        logits: torch.Tensor = self.head(self.drop(bag))
        return logits


class TextCNN(nn.Module):
    """Kim (2014): embeddings, 1-D convolutions of widths 3, 4, 5 (100 filters each), ReLU, max over the windows
    inside the text (a text shorter than a window: its first, padded one), dropout 0.5, one linear layer."""

    def __init__(self, vocab: int, classes: int, dim: int = 128, filters: int = 100,
                 widths: tuple[int, ...] = (3, 4, 5), dropout: float = 0.5) -> None:  # fmt: skip
        super().__init__()
        self.widths = widths
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(dim, filters, w) for w in widths)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(filters * len(widths), classes)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.shape[1] < max(self.widths):
            idx = F.pad(idx, (0, max(self.widths) - idx.shape[1]))
        x = self.embed(idx).transpose(1, 2)  # (B, D, L)
        real = idx != 0
        pooled = []
        for w, conv in zip(self.widths, self.convs, strict=True):
            y = F.relu(conv(x))  # (B, F, L - w + 1)
            inside = real[:, w - 1 : w - 1 + y.shape[2]].clone()  # the window ends on a real token: all of it is
            inside[:, 0] = True  # a text shorter than the window still has its first one
            pooled.append(y.masked_fill(~inside.unsqueeze(1), 0.0).amax(dim=2))  # ReLU >= 0: 0 is a neutral fill
        logits: torch.Tensor = self.head(self.drop(torch.cat(pooled, dim=1)))
        return logits


class BiGRU(nn.Module):
    """Embeddings, a bidirectional GRU, the max and the mean of its outputs over the real positions, dropout,
    one linear layer. Rows are padded at the end, so the backward direction reads the padding first (zeros)."""

    def __init__(self, vocab: int, classes: int, dim: int = 128, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.rnn = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden, classes)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(idx))  # (B, L, 2H)
        real = (idx != 0).unsqueeze(2).to(out.dtype)
        mean = (out * real).sum(1) / real.sum(1).clamp(min=1.0)
        top = out.masked_fill(real == 0, -1e4).amax(dim=1)
        logits: torch.Tensor = self.head(self.drop(torch.cat([top, mean], dim=1)))
        return logits


TEXT_CLASSIFIERS: dict[str, tuple[Callable[[int, int], nn.Module], str]] = {
    "bag-ngrams": (BagOfNgrams, "bag of tokens and hashed 2- and 3-grams (131 K buckets, 32 dims), linear: "
                   "fastText (Joulin et al., 2016)"),
    "text-cnn": (TextCNN, "CNN over embeddings: widths 3-5, 100 filters each, max over time (Kim, 2014)"),
    "text-bigru": (BiGRU, "bidirectional GRU, 128 hidden, max and mean pooling"),
}  # fmt: skip


def is_text_classifier(name: str) -> bool:
    """A registered text classifier's name; with sizes that do not parse, InvalidValueError names the bad one."""
    if split_name(name)[0] not in TEXT_CLASSIFIERS:
        return False
    classifier_sizes(name)
    return True


def classifier_sizes(name: str) -> dict[str, Any]:
    """The constructor arguments the sizes after `name`'s colon give (none: the registered network's)."""
    base = split_name(name)[0]
    if base not in TEXT_CLASSIFIERS:
        raise InvalidValueError(f"no text-classification network {base!r}; use one of {', '.join(TEXT_CLASSIFIERS)}")
    params = list(inspect.signature(TEXT_CLASSIFIERS[base][0]).parameters.values())[2:]  # after vocab, classes
    return parse_sizes(name, {p.name: str(p.annotation) for p in params})


def build_text_classifier(name: str, input_shape: tuple[int, ...], classes: int) -> nn.Module:
    """Network `name` for input shape (vocabulary, length, 1) and `classes` outputs."""
    sizes = classifier_sizes(name)
    return TEXT_CLASSIFIERS[split_name(name)[0]][0](int(input_shape[0]), classes, **sizes)


def summarize_text_classifier(name: str, length: int = 256, classes: int = 4, vocab: int = 1026) -> Any:
    """`deepyard network view/list`: one row per part with its output shape, parameters and MACs per text
    (convolutions and the GRU: weights x length; the head: its weights; embeddings are lookups)."""
    from deepyard.networks.summary import LayerRow, Summary

    model = build_text_classifier(name, (vocab, length, 1), classes).eval()
    parts: list[tuple[str, nn.Module]] = []
    for n, m in model.named_children():
        if isinstance(m, nn.ModuleList):
            parts += [(f"{n}.{i}", child) for i, child in enumerate(m)]
        elif not isinstance(m, nn.Dropout):
            parts.append((n, m))
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: shapes.__setitem__(n, _shape(out))) for n, m in parts]
    with torch.no_grad():
        model(torch.ones(1, length, dtype=torch.long))
    for h in hooks:
        h.remove()
    rows: list[Any] = []
    previous: tuple[str, ...] = ("input",)
    branches = tuple(p for p, _ in parts if "." in p)  # the CNN's convolutions read the embeddings side by side
    for part, module in parts:
        weights = sum(p.numel() for p in module.parameters() if p.dim() > 1)
        macs = 0 if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) else weights
        macs *= 1 if isinstance(module, nn.Linear) else length
        rows.append(LayerRow(part, type(module).__name__, previous, shapes.get(part, ()),
                             sum(p.numel() for p in module.parameters()), macs))  # fmt: skip
        previous = (part,) if "." not in part else previous
        if part == branches[-1:][0] if branches else False:
            previous = branches
    return Summary(name, (length,), tuple(rows), sum(p.numel() for p in model.parameters()), sum(r.macs for r in rows))


def _shape(out: Any) -> tuple[int, ...]:
    tensor = out[0] if isinstance(out, tuple) else out
    if isinstance(tensor, torch.Tensor):
        return tuple(tensor.shape[1:])
    return ()


def text_classifier_rows(length: int = 256, classes: int = 4, vocab: int = 1026) -> list[dict[str, Any]]:
    """`network list`: each text classifier at a 1,024-token vocabulary, 256 tokens per text and 4 classes."""
    found = []
    for name, (_, description) in TEXT_CLASSIFIERS.items():
        s = summarize_text_classifier(name, length, classes, vocab)
        found.append({"name": name, "family": "text-classifier", "task": "text-classification", "input": [length],
                      "params": s.params, "macs": s.macs, "description": description})  # fmt: skip
    return found
