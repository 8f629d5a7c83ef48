"""A network reference, parsed once: what the text a user gives (`--network`, a job's `network`, run.json's
`network.ref`) names, as a typed value the registry, the jobs and the transfer code dispatch on.

The forms: a standard name (`lenet`, `resnet18`), `torchvision:NAME`, `timm:NAME`, a spec file (`.yaml`,
`.yml`, `.json`) and a Python file (`.py`). Parsing is syntax only: whether a standard name or a library model
exists, and whether a file can be read or run, is decided where it is used (deepyard.networks.registry), so an
unknown name still lists the valid ones. `str(parse_ref(text)) == text` for every reference that parses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from deepyard.errors import InvalidValueError

Kind = Literal["standard", "torchvision", "timm", "spec_file", "python"]
KINDS: tuple[Kind, ...] = get_args(Kind)
PREFIXES: dict[Kind, str] = {"torchvision": "torchvision:", "timm": "timm:"}
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
FORMS = "a standard network name, torchvision:NAME, timm:NAME, a spec file (.yaml, .yml, .json) or a Python file (.py)"


@dataclass(frozen=True)
class NetworkRef:
    kind: Kind
    name: str  # the standard or library model name; for a file, its path as given
    path: Path | None = None  # spec_file and python: the file

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidValueError(f"network kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.name or (self.path is not None) != self.is_file:
            raise InvalidValueError(f"network reference {self.kind}:{self.name!r} is incomplete; valid: {FORMS}")

    @property
    def is_file(self) -> bool:
        return self.kind in ("spec_file", "python")

    def __str__(self) -> str:
        return PREFIXES.get(self.kind, "") + self.name


def parse_ref(text: str | NetworkRef) -> NetworkRef:
    """The reference `text` names (a NetworkRef is returned as is); InvalidValueError names the valid forms."""
    if isinstance(text, NetworkRef):
        return text
    if not isinstance(text, str) or not text.strip():
        raise InvalidValueError(f"network {text!r} is not a network reference; valid: {FORMS}")
    for kind, prefix in PREFIXES.items():
        if text.startswith(prefix):
            if not text.removeprefix(prefix).strip():
                raise InvalidValueError(f"network {text!r} names no model after {prefix!r}; valid: {FORMS}")
            return NetworkRef(kind, text.removeprefix(prefix))
    suffix = Path(text).suffix.lower()
    if suffix == ".py":
        return NetworkRef("python", text, Path(text))
    if suffix in SPEC_SUFFIXES:
        return NetworkRef("spec_file", text, Path(text))
    return NetworkRef("standard", text)
