"""Named training presets: settings applied under a run's own (a file, flags and --set pairs win over them), and
over the dataset's task's default recipe (`Task.recipe`): a run's settings are the task's recipe, under the
preset's, under the user's own. Every entry point that builds a training config for a dataset layers them so
(`deepyard train`, the train and find jobs' checks at submit, sweeps' fixed settings), and the job or run stores
the result whole, so it trains the same later whatever the recipe becomes.

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


def recipe_settings(task: str | None) -> dict[str, Any]:
    """Task `task`'s default recipe as dotted TrainConfig keys ({} for a task without one; None: classification)."""
    from deepyard.tasks import get_task

    return dict(get_task(task).recipe)


def base_settings(task: str | None, preset: str | None) -> dict[str, Any]:
    """The settings under a user's own for a dataset of `task`: the task's recipe, then preset `preset`'s."""
    return {**recipe_settings(task), **preset_settings(preset)}


def with_preset(name: str | None, config: dict[str, Any], task: str | None = None) -> dict[str, Any]:
    """`config` (TrainConfig data, nested sections or dotted keys) over preset `name`'s settings, over `task`'s
    recipe when given: what a request's config means (its own values win)."""
    out: dict[str, Any] = {}
    for key, value in (base_settings(task, name) if task is not None else preset_settings(name)).items():
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
