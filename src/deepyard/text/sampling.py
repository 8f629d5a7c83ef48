"""The validation sample: a callback that generates text at every validation and appends it to samples.jsonl.

The prompt is the start of the validation split; sampling uses its own seeded generator and the model in eval mode
(no dropout draws), so the training's random streams, and with them exact resume, are untouched.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from deepyard.tasks.languagemodel import SAMPLE_PROMPT, SAMPLE_TOKENS, SAMPLES
from deepyard.text.generate import generate
from deepyard.text.tokenizer import load_tokenizer
from deepyard.train.callbacks import Callback

if TYPE_CHECKING:
    from deepyard.train.trainer import Run


class ValidationSample(Callback):
    def on_train_start(self, run: Run) -> None:
        path = run.folder / SAMPLES
        if run.is_main and path.is_file():  # a resumed run: drop the samples after its checkpoint
            kept = [ln for ln in path.read_text(encoding="utf-8").splitlines() if _step(ln) <= run.state.step]
            path.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")

    def on_validation_end(self, run: Run, metrics: dict[str, float]) -> None:
        if not run.is_main:
            return
        data: Any = run.val_data or run.train_data
        tokenizer = load_tokenizer(data.store.folder.parent)  # the dataset's folder
        prompt = data.sample_prompt(SAMPLE_PROMPT)
        model = run.bare_model()
        ids = generate(model, prompt, SAMPLE_TOKENS, data.context, 0.8, None, seed=run.state.step, device=run.device)
        row = {"step": run.state.step, "val_loss": metrics.get("val_loss"), "prompt": tokenizer.decode(prompt),
               "text": tokenizer.decode(ids)}  # fmt: skip
        with (run.folder / SAMPLES).open("a", encoding="utf-8") as fp:
            fp.write(json.dumps(row) + "\n")


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62
