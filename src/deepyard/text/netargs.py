"""The sizes of a text network, written in its name: `char-lstm:layers=3,hidden=512`, `gpt-mini:embedding=192`,
`text-cnn:filters=200,widths=2-3-4`.

A text network (deepyard.text.networks, deepyard.text.classifiers) is built by name, so its name is what a run
records, an export rebuilds from and a sweep chooses among; the sizes ride in it. After the registered name and a
colon come `key=value` pairs separated by commas; the keys are the network's own settings (the fields of its
configuration or the arguments of its constructor), each typed and bounded, and a bad key or value is refused
naming the valid ones, at submit (before a job is queued) as everywhere a name is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deepyard.errors import InvalidValueError, choices

# The largest value of each size (beyond them a network no longer fits a machine we run on); others: LIMIT.
LIMITS = {"layers": 64, "heads": 64, "hidden": 8192, "embedding": 8192, "dim": 8192, "filters": 4096,
          "buckets": 1 << 22, "max_n": 6, "widths": 32}  # fmt: skip
LIMIT = 1 << 16
CELLS = ("lstm", "gru")


def split_name(name: str) -> tuple[str, str]:
    """(registered name, the text after its colon: '' when the name gives no sizes)."""
    base, _, args = name.partition(":")
    return base, args


def parse_sizes(name: str, kinds: Mapping[str, str]) -> dict[str, Any]:
    """The `key=value` pairs of `name` (after its colon), each parsed as `kinds[key]` ('int', 'float', 'str' or
    'tuple[int, ...]', written 3-4-5) and checked: whole sizes from 1 to their limit, rates in [0, 1)."""
    _, text = split_name(name)
    if not text:
        return {}
    out: dict[str, Any] = {}
    for pair in text.split(","):
        key, eq, raw = (part.strip() for part in pair.partition("="))
        if not eq or not key or not raw:
            raise InvalidValueError(f"network {name!r}: {pair.strip()!r} is not key=value; write e.g. "
                                    f"{split_name(name)[0]}:{next(iter(kinds))}=VALUE")  # fmt: skip
        if key not in kinds:
            raise InvalidValueError(f"network {name!r} has no setting {key!r}; valid: {choices(kinds)}")
        if key in out:
            raise InvalidValueError(f"network {name!r} sets {key!r} twice")
        out[key] = _value(name, key, raw, kinds[key])
    return out


def _value(name: str, key: str, raw: str, kind: str) -> Any:
    parse: Callable[[str], Any] = {"int": int, "float": float, "str": str}.get(kind, int)
    parts = raw.split("-") if kind.startswith("tuple") else [raw]
    try:
        values = [parse(p) for p in parts]
    except ValueError:
        what = "whole numbers joined by '-' (3-4-5)" if kind.startswith("tuple") else f"a {kind}"
        raise InvalidValueError(f"network {name!r}: {key}={raw!r} must be {what}") from None
    for v in values:
        if kind == "float" and not 0 <= v < 1:
            raise InvalidValueError(f"network {name!r}: {key}={v} must be in [0, 1)")
        if kind == "str" and key == "cell" and v not in CELLS:
            raise InvalidValueError(f"network {name!r}: cell={v!r} is not one of {choices(CELLS)}")
        if kind != "float" and kind != "str" and not 1 <= v <= LIMITS.get(key, LIMIT):
            raise InvalidValueError(f"network {name!r}: {key}={v} must be from 1 to {LIMITS.get(key, LIMIT)}")
    return tuple(values) if kind.startswith("tuple") else values[0]
