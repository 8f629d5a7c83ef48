"""Language-model networks: the talks' char-RNN (LSTM or GRU) and a small GPT, registered by name.

Every network maps (B, T) int64 token ids to (B, T, V) next-token logits for a vocabulary of V tokens and a
context of up to T tokens (the dataset's `--context`; the trainer passes it as the input shape (1, T, 1)). The
GPT follows nanoGPT (pre-norm blocks, GELU MLP, tied input and output embeddings) with causal attention through
`torch.nn.functional.scaled_dot_product_attention`. Sizes are the named configurations below (`CharRNNConfig`,
`GPTConfig`); `deepyard network list` shows them with their parameter counts for a 65-character vocabulary. A
name may change any field of its configuration after a colon (deepyard.text.netargs): `char-lstm:layers=3,
hidden=512`, `gpt-mini:layers=6,heads=6,embedding=192`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepyard.errors import InvalidValueError
from deepyard.text.netargs import parse_sizes, split_name


@dataclass(frozen=True)
class CharRNNConfig:
    cell: str = "lstm"  # lstm or gru
    layers: int = 2
    hidden: int = 256
    embedding: int = 64
    dropout: float = 0.1


@dataclass(frozen=True)
class GPTConfig:
    layers: int = 4
    heads: int = 4
    embedding: int = 128
    dropout: float = 0.1


class CharRNN(nn.Module):
    """Embedding, a stacked LSTM or GRU, a linear decoder (Karpathy's char-rnn)."""

    def __init__(self, cfg: CharRNNConfig, vocab: int, context: int) -> None:
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(vocab, cfg.embedding)
        rnn = nn.LSTM if cfg.cell == "lstm" else nn.GRU
        self.rnn = rnn(
            cfg.embedding, cfg.hidden, cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(idx))  # (B, T, H)
        logits: torch.Tensor = self.head(self.drop(out))  # (B, T, V)
        return logits


class _Attention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.heads, self.dropout = cfg.heads, cfg.dropout
        self.qkv = nn.Linear(cfg.embedding, 3 * cfg.embedding)
        self.proj = nn.Linear(cfg.embedding, cfg.embedding)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, h, T, d)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        out: torch.Tensor = self.drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))
        return out


class _Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.embedding), nn.LayerNorm(cfg.embedding)
        self.attn = _Attention(cfg)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.embedding, 4 * cfg.embedding), nn.GELU(), nn.Linear(4 * cfg.embedding, cfg.embedding),
            nn.Dropout(cfg.dropout),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        out: torch.Tensor = x + self.mlp(self.ln2(x))
        return out


class GPT(nn.Module):
    """A small decoder-only transformer (nanoGPT's `GPT`)."""

    def __init__(self, cfg: GPTConfig, vocab: int, context: int) -> None:
        super().__init__()
        if cfg.embedding % cfg.heads:
            raise InvalidValueError(f"embedding {cfg.embedding} is not a multiple of heads {cfg.heads}")
        self.context = context
        self.tok = nn.Embedding(vocab, cfg.embedding)
        self.pos = nn.Embedding(context, cfg.embedding)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(cfg.embedding)
        self.head = nn.Linear(cfg.embedding, vocab, bias=False)
        self.apply(_init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):  # GPT-2's scaled residual init
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.layers))
        self.head.weight = self.tok.weight  # tied

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.drop(self.tok(idx) + self.pos(torch.arange(t, device=idx.device)))
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.head(self.ln(x))
        return logits


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 0.02)


TEXT_NETWORKS: dict[str, tuple[Any, str]] = {
    "char-lstm": (CharRNNConfig("lstm"), "char-RNN: 2-layer LSTM, 256 hidden, dropout 0.1 (Karpathy, 2015)"),
    "char-gru": (CharRNNConfig("gru"), "char-RNN: 2-layer GRU, 256 hidden, dropout 0.1"),
    "char-lstm-large": (CharRNNConfig("lstm", 3, 512, 128, 0.2), "char-RNN: 3-layer LSTM, 512 hidden, dropout 0.2"),
    "gpt-mini": (GPTConfig(4, 4, 128, 0.1), "small GPT: 4 layers, 4 heads, embedding 128, dropout 0.1 (nanoGPT)"),
    "gpt-small": (GPTConfig(6, 6, 384, 0.2), "GPT: 6 layers, 6 heads, embedding 384, dropout 0.2 (nanoGPT's "
                  "shakespeare-char)"),
}  # fmt: skip


def is_text_network(name: str) -> bool:
    """A language model's or a text classifier's network (deepyard.text.classifiers): built by name. A registered
    name with sizes that do not parse raises InvalidValueError naming the bad one (it is a text network, wrongly
    sized: refused where it is checked, at submit)."""
    from deepyard.text.classifiers import is_text_classifier

    if split_name(name)[0] in TEXT_NETWORKS:
        text_config(name)
        return True
    return is_text_classifier(name)


def text_config(name: str) -> CharRNNConfig | GPTConfig:
    """The configuration `name` gives: its registered one with the sizes after its colon."""
    base = split_name(name)[0]
    if base not in TEXT_NETWORKS:
        raise InvalidValueError(f"no language-model network {base!r}; use one of {', '.join(TEXT_NETWORKS)}")
    registered: CharRNNConfig | GPTConfig = TEXT_NETWORKS[base][0]
    kinds = {f.name: str(f.type) for f in dataclasses.fields(registered)}
    cfg = dataclasses.replace(registered, **parse_sizes(name, kinds))
    if isinstance(cfg, GPTConfig) and cfg.embedding % cfg.heads:
        raise InvalidValueError(f"network {name!r}: embedding {cfg.embedding} must be a multiple of heads "
                                f"{cfg.heads} (each head takes embedding / heads)")  # fmt: skip
    return cfg


MAX_PARAMETERS = 1_000_000_000  # 16 GB to train with AdamW in fp32 (weights, gradients, two moments)


def text_network_parameters(name: str, input_shape: tuple[int, ...], vocab: int) -> int:
    """The parameters network `name` has for these data, counted on the meta device (nothing allocated);
    InvalidValueError above MAX_PARAMETERS: each size is bounded alone, and together they can still make a network
    no machine trains (gpt-mini:layers=64,embedding=8192,heads=64: 51 billion)."""
    with torch.device("meta"):
        model = _build(name, input_shape, vocab)
    count = sum(p.numel() for p in model.parameters())
    if count > MAX_PARAMETERS:
        gigabytes = count * 16 / 1e9
        raise InvalidValueError(f"network {name!r} has {count:,} parameters for these data ({gigabytes:,.0f} GB to "
                                f"train with AdamW); at most {MAX_PARAMETERS:,}: give it smaller sizes")  # fmt: skip
    return count


def build_text_network(name: str, input_shape: tuple[int, ...], vocab: int) -> nn.Module:
    """Network `name` for a context of `input_shape[1]` tokens (input shape (1, T, 1)) and `vocab` tokens; a text
    classifier for input shape (vocabulary, length, 1) and `vocab` classes. Its size is checked first (on the meta
    device), so an oversized name is refused, never allocated."""
    text_network_parameters(name, input_shape, vocab)
    return _build(name, input_shape, vocab)


def _build(name: str, input_shape: tuple[int, ...], vocab: int) -> nn.Module:
    from deepyard.text.classifiers import build_text_classifier, is_text_classifier

    if is_text_classifier(name):
        return build_text_classifier(name, input_shape, vocab)
    cfg = text_config(name)
    context = int(input_shape[1]) if len(input_shape) == 3 else int(input_shape[-1])
    if isinstance(cfg, GPTConfig):
        return GPT(cfg, vocab, context)
    return CharRNN(cfg, vocab, context)
