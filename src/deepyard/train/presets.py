"""Named training presets: settings applied under a run's own (a file, flags and --set pairs win over them).

- `default`: TrainConfig's own defaults, Deepyard's recipe, chosen by measurement (`bench/recipes.py`, the README's
  recipe table).
- `digits`: DIGITS' classic settings (Caffe's SGD: momentum 0.9, base lr 0.01 stepped down 10x every third of
  training, weight decay lr/100, 30 epochs), for replaying the DIGITS lab as it was.

`deepyard train --preset digits`, `"preset": "digits"` in `POST /api/v1/runs`, a button on the New run page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepyard.errors import InvalidValueError, choices


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    settings: dict[str, Any]  # dotted TrainConfig keys, as make_config takes them

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "settings": dict(self.settings)}


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("default", "Deepyard's recipe (the defaults): measured best across the standard networks", {}),
        Preset(
            "digits",
            "DIGITS' classic settings: SGD with momentum 0.9, lr 0.01 stepped down 10x every third, weight decay "
            "lr/100, 30 epochs (Caffe's solver as DIGITS set it)",
            {
                "epochs": 30,
                "solver.type": "sgd",
                "solver.lr": 0.01,
                "solver.momentum": 0.9,
                "solver.weight_decay": 1e-4,
                "schedule.policy": "step",
                "schedule.step_size": 33,
                "schedule.gamma": 0.1,
                "schedule.warmup_pct": 0,
                "label_smoothing": 0,
            },
        ),
    )
}


def preset_settings(name: str | None) -> dict[str, Any]:
    """The settings of preset `name` (None: none); an unknown name is refused, naming the presets."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise InvalidValueError(f"preset {name!r} is not one of {choices(PRESETS)}")
    return dict(PRESETS[name].settings)


def with_preset(name: str | None, config: dict[str, Any]) -> dict[str, Any]:
    """`config` (TrainConfig data, nested sections) over preset `name`'s settings: what a request's config means
    when it names a preset (its own values win)."""
    out: dict[str, Any] = {}
    for key, value in preset_settings(name).items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out
