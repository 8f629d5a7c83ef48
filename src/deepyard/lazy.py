"""Package attributes loaded on first use (PEP 562), so importing a package does not import torch.

A package lists where each public name lives and sets `__getattr__ = lazy_getattr(__name__, WHERE, globals())`;
type checkers read the same names from an `if TYPE_CHECKING:` import block beside it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, where: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `package.<where[name]>` the first time `name` is asked for."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        namespace[name] = value  # once loaded, a plain attribute
        return value

    return __getattr__
