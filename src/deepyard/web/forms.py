"""Form fields generated from the typed configs (DatasetSpec, TrainConfig and its sections), not retyped.

Each field becomes `{name, label, kind, default, choices, description, min, max, step}`; templates render them
all the same way, so a setting added to a config appears on its page with its default and its help text.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional) for `X | None`."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _bounds(info: FieldInfo) -> dict[str, float]:
    out: dict[str, float] = {}
    for meta in info.metadata:
        if isinstance(meta, (Ge, Gt)):
            out["min"] = float(meta.ge if isinstance(meta, Ge) else meta.gt)  # type: ignore[arg-type]
        if isinstance(meta, (Le, Lt)):
            out["max"] = float(meta.le if isinstance(meta, Le) else meta.lt)  # type: ignore[arg-type]
    return out


def field_specs(model: type[BaseModel], prefix: str = "", skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One descriptor per scalar field of `model` (nested models and lists are left to the page)."""
    fields = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        kind_type, optional = _unwrap(info.annotation)
        default = None if isinstance(info.default, BaseModel) or info.is_required() else info.default
        if isinstance(default, enum.Enum):
            default = default.value
        field: dict[str, Any] = {
            "name": prefix + name,
            "label": name.replace("_", " "),
            "optional": optional,
            "description": info.description or "",
            "default": default,
            **_bounds(info),
        }
        origin = typing.get_origin(kind_type)
        if origin is typing.Literal:
            field.update(kind="select", choices=[str(c) for c in typing.get_args(kind_type)])
        elif isinstance(kind_type, type) and issubclass(kind_type, enum.Enum):
            field.update(kind="select", choices=[m.value for m in kind_type])
        elif kind_type is bool:
            field.update(kind="checkbox")
        elif kind_type is int:
            field.update(kind="number", step="1")
        elif kind_type is float:
            field.update(kind="number", step="any")
        elif kind_type is str:
            field.update(kind="text")
        else:
            continue
        fields.append(field)
    return fields
