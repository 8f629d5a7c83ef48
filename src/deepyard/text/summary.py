"""Summaries of the language-model networks for `deepyard network list/view/check`: one row per part (embedding,
recurrent stack or transformer block, head) with its output shape, parameters and multiply-accumulates per block
of the context, in the networks' own `Summary` record, so `network view` draws them with the same renderer.

MACs count the weight multiplications per token times the context (attention's T x T products are added for GPT
blocks); embeddings are lookups (0 MACs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from deepyard.networks.summary import LayerRow, Summary
from deepyard.text.networks import TEXT_NETWORKS, build_text_network

LIST_VOCAB, LIST_CONTEXT = 65, 128  # tiny-shakespeare's characters, the default context


def _parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    parts: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            parts.extend((f"{name}.{i}", m) for i, m in enumerate(child))
        elif not isinstance(child, nn.Dropout):
            parts.append((name, child))
    return parts


def summarize_text_network(name: str, context: int = LIST_CONTEXT, vocab: int = LIST_VOCAB) -> Summary:
    model = build_text_network(name, (1, context, 1), vocab).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for part, module in _parts(model):

        def hook(_m: nn.Module, _i: Any, out: Any, part: str = part) -> None:
            tensor = out[0] if isinstance(out, tuple) else out
            shapes[part] = tuple(tensor.shape[1:] if tensor.dim() == 3 else tensor.shape)  # pos: (T, C)

        hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.zeros(1, context, dtype=torch.long))
    for h in hooks:
        h.remove()
    rows: list[LayerRow] = []
    previous: tuple[str, ...] = ("input",)
    seen: set[int] = set()
    for part, module in _parts(model):
        params = sum(p.numel() for p in module.parameters() if id(p) not in seen)  # tied weights count once
        seen.update(id(p) for p in module.parameters())
        weights = 0 if isinstance(module, nn.Embedding) else sum(p.numel() for p in module.parameters() if p.dim() > 1)
        macs = weights * context
        if part.startswith("blocks."):
            macs += 2 * context * context * shapes[part][-1]  # q k^T and the attention-weighted v
        inputs = ("input",) if part == "pos" else previous
        rows.append(LayerRow(part, type(module).__name__, inputs, shapes.get(part, ()), params, macs))
        previous = ("tok", "pos") if part == "pos" else (part,)  # GPT: token + position embeddings
    total = sum(p.numel() for p in model.parameters())
    return Summary(name, (context,), tuple(rows), total, sum(r.macs for r in rows))


def text_network_rows() -> list[dict[str, Any]]:
    """`network list`: each language-model network at a 65-token vocabulary and a 128-token context."""
    found = []
    for name, (_, description) in TEXT_NETWORKS.items():
        s = summarize_text_network(name)
        found.append({"name": name, "family": "text", "input": [LIST_CONTEXT], "params": s.params, "macs": s.macs,
                      "description": description})  # fmt: skip
    return found
