"""Advice a user must see while a run trains, said plainly instead of a quiet bad number.

- A batch larger than the training split: each epoch is one step, the effective batch is the whole split.
- A model that gives nearly every validation example the same class (classification's `val_majority`, the share
  of the most predicted class) while the classes are not that unbalanced: the usual causes are named. Said once it
  persists: at two validations in a row, or at one in the second half of training (a model often starts by
  giving every example one class, and the first validation of a short run would cry wolf).

Each is worded by the task's input kind: images, texts or tokens (`InputKind.noun`), with the causes that fit it.

Each piece of advice is said once per run: appended to run.json's `advice` list (the run page shows it) and
handed to every callback's `on_advice` (the CLI prints it, a job logs it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepyard.config import Settings
from deepyard.train import runs
from deepyard.train.callbacks import Callback

if TYPE_CHECKING:
    from deepyard.train.trainer import Run

COLLAPSED = 95.0  # % of validation examples given one class, above which a model "predicts one class"
UNBALANCED = 80.0  # % of validation examples in the largest class, above which that is no surprise
CAUSES = "a learning rate too high (try a tenth) or too low, too few steps"  # of a collapse, for any input
MORE_CAUSES = {  # per input kind, after CAUSES
    "image": ", inputs not normalised (mean subtraction off), or a network too deep for the data without batch norm",
    "sequences": ", or texts that the dataset's length cuts before the words that tell the classes apart",
}


class Advice(Callback):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.said: set[str] = set()
        self.collapsed = 0  # validations in a row that found the model collapsed

    def say(self, run: Run, key: str, text: str) -> None:
        if key in self.said:
            return
        self.said.add(key)
        if run.is_main:
            info = runs.get_run(self.settings, run.run_id)
            if text not in info.get("advice", []):
                runs.update_run(self.settings, run.run_id, run.placement.rank, advice=[*info.get("advice", []), text])
        run.callbacks.on_advice(run, text)

    def on_train_start(self, run: Run) -> None:
        per_step = run.config.batch_size * run.config.batch_accumulation * run.world
        count, noun = run.train_data.count, _noun(run)
        if run.task.input_kind == "tokens":  # a language model's batch is of blocks of the context, its split tokens
            count, noun = count // max(1, run.manifest.shape[0]), f"blocks of {run.manifest.shape[0]} tokens"
        if per_step > count:
            self.say(run, "batch", f"the batch ({per_step:,} {noun} a step) is larger than the {count:,} training "
                     f"{noun}: each epoch is one step of {count // max(1, run.world) * run.world:,} {noun} (the "
                     "effective batch size); a smaller batch gives more steps per epoch")  # fmt: skip

    def on_validation_end(self, run: Run, metrics: dict[str, float]) -> None:
        majority = metrics.get("val_majority")
        val = run.manifest.splits.get("val")
        if majority is None or val is None or not val.per_class or majority < COLLAPSED:
            self.collapsed = 0
            return
        largest = 100 * max(val.per_class) / max(1, val.count)
        if largest >= UNBALANCED:
            return
        self.collapsed += 1
        if self.collapsed < 2 and 2 * run.state.step < run.total_steps:
            return  # once, early: it may still be learning
        causes = CAUSES + MORE_CAUSES.get(run.task.input_kind, "")
        self.say(run, "collapse", f"the model gives {majority:.0f}% of the validation {_noun(run)} the same class, "
                 f"while the largest class is {largest:.0f}% of them: it has collapsed to one class. Usual causes: "
                 f"{causes}")  # fmt: skip


def _noun(run: Run) -> str:
    from deepyard.tasks import get_input_kind

    return get_input_kind(run.task.input_kind).noun
