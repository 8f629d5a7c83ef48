"""Sampling text from a language model: temperature, top-k, a seeded generator; temperature 0 is greedy.

The model sees at most its context (the last `context` tokens); sampling draws from its own `torch.Generator`, so
generating during training (the validation sample) never moves the training's random streams.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from deepyard.errors import InvalidValueError


def check_sampling(length: int, temperature: float, top_k: int | None) -> None:
    if not 1 <= length <= 100_000:
        raise InvalidValueError(f"length {length} is out of range; use 1 to 100000 tokens")
    if not 0 <= temperature <= 100:
        raise InvalidValueError(f"temperature {temperature:g} is out of range; use 0 (greedy) to 100")
    if top_k is not None and top_k < 1:
        raise InvalidValueError(f"top-k {top_k} must be at least 1 (or left out: every token)")


def check_generation(prompt: list[int], length: int, temperature: float, top_k: int | None) -> None:
    """What `stream` refuses, checked before its first token (a generator runs nothing until asked)."""
    check_sampling(length, temperature, top_k)
    if not prompt:
        raise InvalidValueError("the prompt has no tokens; give some text (or leave it out for the default)")


@torch.no_grad()
def stream(
    model: nn.Module, prompt: list[int], length: int, context: int, temperature: float = 0.8,
    top_k: int | None = None, seed: int = 0, device: torch.device | str = "cpu",
) -> Iterator[int]:  # fmt: skip
    """The next `length` token ids after `prompt` (at least one id), one at a time."""
    check_generation(prompt, length, temperature, top_k)
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    ids = torch.tensor([prompt], dtype=torch.long, device=device)
    try:
        for _ in range(length):
            logits = model(ids[:, -context:])[:, -1, :].float()  # (1, V)
            if temperature == 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None and top_k < logits.shape[-1]:
                    kth = torch.topk(logits, top_k).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            ids = torch.cat([ids, nxt], dim=1)
            yield int(nxt)
    finally:
        model.train(was_training)


def generate(
    model: nn.Module, prompt: list[int], length: int, context: int, temperature: float = 0.8,
    top_k: int | None = None, seed: int = 0, device: torch.device | str = "cpu",
) -> list[int]:  # fmt: skip
    return list(stream(model, prompt, length, context, temperature, top_k, seed, device))
