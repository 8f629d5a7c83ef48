"""A sweep's trial inside its train job: report the objective at each validation, prune, tell the study the end.

A trial is an ordinary train job whose params carry `trial: {"sweep": ID, "number": N}`; the train runner adds
`TrialReporter` to its callbacks and calls `finish` with the result. At each validation the reporter records the
objective as the trial's intermediate value at step = the validation's number (1, 2, ...: counted in epochs, so
trials of different batch sizes compare at the same point) and asks the sweep's pruner; a pruned trial stops
after this step with a checkpoint (the Checkpointer keeps the work of a stopped run), its run ends "done" with
stop reason "pruned ...", and it can be resumed to the end like any run (`deepyard run resume ID`).

A resumed trial (its job interrupted by a server restart) reports only the validations not yet recorded.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from deepyard.config import Settings
from deepyard.errors import InvalidValueError, NotFoundError
from deepyard.train.callbacks import Callback

if TYPE_CHECKING:
    from deepyard.train.trainer import Run, RunResult

PRUNED = "pruned"


def check_trial_ref(settings: Settings, ref: Any) -> dict[str, Any]:
    """A train job's `trial` parameter: the sweep must exist and hold trial `number`."""
    if not isinstance(ref, dict) or set(ref) != {"sweep", "number"} or not isinstance(ref["number"], int):
        raise InvalidValueError(f'trial {ref!r} must be {{"sweep": SWEEP_ID, "number": N}}')
    from deepyard.sweeps.study import load_study

    study = load_study(settings, str(ref["sweep"]))
    if not 0 <= ref["number"] < len(study.trials):
        raise NotFoundError(f"sweep {ref['sweep']} has no trial {ref['number']}")
    return {"sweep": str(ref["sweep"]), "number": ref["number"]}


class TrialReporter(Callback):
    """Reports the objective to the study at each validation and stops the run when the pruner says so."""

    def __init__(self, settings: Settings, ref: dict[str, Any]) -> None:
        import optuna

        from deepyard.sweeps.study import load_study, pruner_for, spec_of

        study = load_study(settings, ref["sweep"])
        self.spec = spec_of(study)
        self.study = load_study(settings, ref["sweep"], pruner=pruner_for(self.spec))
        self.number = int(ref["number"])
        self.trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, self.number)
        self.trial = optuna.trial.Trial(self.study, self.trial_id)

    def _frozen(self) -> Any:
        return self.study._storage.get_trial(self.trial_id)

    def on_validation_end(self, run: Run, metrics: dict[str, float]) -> None:
        if not run.is_main or self._frozen().state.is_finished():
            return
        value = float(metrics[self.spec.objective])
        point = math.ceil(run.state.step / run.val_every)  # the validation's number
        if point not in self._frozen().intermediate_values:
            self.trial.report(value, point)
        if self.spec.prune != "none" and self.trial.should_prune():
            run.state.stop_reason = (
                f"{PRUNED} by the sweep's {self.spec.prune} pruner at validation {point} "
                f"({self.spec.objective} {value:.4g})"
            )

    def finish(self, result: RunResult) -> None:
        """Tell the study how the trial ended: pruned, its best objective, or failed when it never validated."""
        if self._frozen().state.is_finished() or result.stop_reason == "aborted":
            return
        tell(self.study, self.number, result.stop_reason, result.best)


def tell(study: Any, number: int, stop_reason: str | None, best: float | None) -> None:
    from optuna.trial import TrialState

    if stop_reason and stop_reason.startswith(PRUNED):
        study.tell(number, state=TrialState.PRUNED)
    elif best is None or not math.isfinite(best):
        study.tell(number, state=TrialState.FAIL)
    else:
        study.tell(number, best)
