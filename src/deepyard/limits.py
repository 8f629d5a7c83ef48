"""Limits on what a user may submit, shared by every entry point (web, CLI, jobs), each error naming its limit.

What this module covers: the length of names (runs, datasets, jobs), the nesting depth and the text of submitted
data (specs, settings, request bodies), and the size of a training sweep. Numeric ranges live on the typed
configs themselves (`TrainConfig`, `DatasetSpec`, layer parameters), a network's size in `deepyard.networks`, and
an image's pixel count at the route that decodes it. `parse_yaml` reads YAML (or JSON) text with the nesting
limit applied while parsing. Imports only PyYAML, so the CLI's fast verbs can use it.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml

from deepyard.errors import InvalidValueError

NAME_MAX = 200  # characters of a run, dataset or job name (the home page lists every one)
DEPTH_MAX = 32  # nesting levels of submitted JSON/YAML data (a spec needs 4, settings 3)
SWEEP_MAX = 64  # runs one training request may queue (learning rates x batch sizes)


def check_name(value: object, what: str = "name") -> str | None:
    """A name as stored: whitespace collapsed to single spaces, at most NAME_MAX characters; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValueError(f"{what} must be text, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidValueError(f"{what} has a NUL byte")
    name = " ".join(value.split())
    if len(name) > NAME_MAX:
        raise InvalidValueError(f"{what} {name[:40]!r}... is {len(name):,} characters long; at most {NAME_MAX}")
    return name


def check_data(data: Any, what: str = "data") -> None:
    """Refuse submitted data nested deeper than DEPTH_MAX lists or mappings, or holding text with a NUL byte or
    that is not valid Unicode (a lone surrogate such as \\ud800, which JSON can spell but nothing can store).
    Walked without recursion, keys included."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_unicode(node, what)
        elif isinstance(node, dict | list | tuple):
            if depth >= DEPTH_MAX:
                raise _too_deep(what)
            children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)


def parse_yaml(text: str, what: str = "text") -> Any:
    """`yaml.safe_load(text)`, refusing nesting deeper than DEPTH_MAX (InvalidValueError) from the parser's events,
    before PyYAML's recursive composer could hit Python's recursion limit. Malformed text raises PyYAML's own
    YAMLError, with its line and column. Through libyaml when PyYAML has it (a 2,000-layer spec: 0.1 s, not 1.5)."""
    fast = getattr(yaml, "CSafeLoader", None)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=fast or yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > DEPTH_MAX:
                    raise _too_deep(what)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        if fast is not None:
            return yaml.load(text, Loader=fast)  # CSafeLoader: the safe loader, in C
    except yaml.YAMLError as exc:
        if "nesting depth" in str(exc):  # libyaml's own limit (1000 levels)
            raise _too_deep(what) from None
        # malformed: safe_load below says where, in PyYAML's words
    try:
        return yaml.safe_load(text)
    except RecursionError:  # libyaml and PyYAML disagreed on where the text went wrong, and PyYAML went deep
        raise _too_deep(what) from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error on one line: `at line 3, column 1: did not find expected key`."""
    mark = getattr(exc, "problem_mark", None)
    where = f"at line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return where + problem


def _too_deep(what: str) -> InvalidValueError:
    return InvalidValueError(f"{what} is nested more than {DEPTH_MAX} levels deep (the limit, DEPTH_MAX)")


def _check_unicode(text: str, what: str) -> None:
    if "\x00" in text:
        raise InvalidValueError(f"{what} has text with a NUL byte (at position {text.index(chr(0))})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError(
            f"{what} has text that is not valid Unicode (character {text[exc.start]!r} at position {exc.start})"
        ) from None


def shown(value: object) -> str:
    """`repr(value)` cut short for an error message: a 10 MB string or a 50,000-deep list stays one line."""
    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother, short.maxlist, short.maxdict = 3, 80, 80, 6, 6
    return short.repr(value)


def check_sweep(count: int) -> None:
    """A training request queues one run per combination: at most SWEEP_MAX."""
    if count > SWEEP_MAX:
        raise InvalidValueError(
            f"this sweep would queue {count:,} runs; at most {SWEEP_MAX} (SWEEP_MAX) per request: give fewer "
            "learning rates or batch sizes"
        )
