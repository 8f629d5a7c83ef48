"""The "find" job kind: the LR range test or the batch-size finder (deepyard.train.finders) for a run about to be
trained, in a worker process, so the New run page's buttons never hold a request or the server's thread pool
while they train (as the train job, the check runs at submit: dataset, network, settings and a source's fit).

params: {"what": "lr" | "batch_size", "steps": N (the LR sweep's), and the train job's "dataset", "network",
"config", "source"}. Result: {"what": "lr", "suggestion", "lrs", "losses"} or {"what": "batch_size",
"batch_size"}. As `deepyard run lr-find` and `run batch-size`, the finders start from fresh weights with the
run's fine-tune settings (a source's network, frozen layers), not from the source's weights.
"""

from __future__ import annotations

from typing import Any

from deepyard.config import Settings
from deepyard.errors import InvalidValueError, choices
from deepyard.jobs.context import JobContext
from deepyard.jobs.kinds import Checked
from deepyard.jobs.runners import _flat, check_train

WHAT = ("lr", "batch_size")
STEPS = (10, 1000)  # the LR sweep's steps, at least and at most
FIND_KEYS = ("what", "steps", "dataset", "network", "config", "source")


def check_find(settings: Settings, params: dict[str, Any]) -> Checked:
    what, steps = params.get("what"), params.get("steps", 100)
    if what not in WHAT:
        raise InvalidValueError(f"find job 'what' {what!r} is not one of {choices(WHAT)}")
    if not isinstance(steps, int) or isinstance(steps, bool) or not STEPS[0] <= steps <= STEPS[1]:
        raise InvalidValueError(f"steps {steps!r} must be a whole number from {STEPS[0]} to {STEPS[1]}")
    unknown = sorted(set(params) - set(FIND_KEYS))
    if unknown:
        raise InvalidValueError(f"unknown find job parameter {unknown[0]!r}; valid: {choices(FIND_KEYS)}")
    train = check_train(settings, {k: v for k, v in params.items() if k not in ("what", "steps")})
    normal = {k: train.params[k] for k in ("dataset", "network", "config", "source")}
    return Checked({"what": what, "steps": steps, **normal}, train.slots)


def run_find(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    from deepyard.networks import spec_from_data
    from deepyard.train import finders, make_config
    from deepyard.transfer import start_new

    network = params["network"]
    ref: Any = spec_from_data(network) if isinstance(network, dict) else network
    config = make_config(**_flat(params["config"]))
    start = start_new(ctx.settings, None, ref, config)  # fine-tune settings freeze as in the run
    what = "the LR range test" if params["what"] == "lr" else "the batch-size finder"
    ctx.report(0.0, f"running {what}")
    if params["what"] == "lr":
        found = finders.lr_range_test(ctx.settings, params["dataset"], ref, config, steps=params["steps"],
                                      run_start=start)  # fmt: skip
        return {"what": "lr", "suggestion": found.suggestion, "lrs": found.lrs, "losses": found.losses}
    return {"what": "batch_size", "batch_size": finders.find_batch_size(ctx.settings, params["dataset"], ref, config,
                                                                        run_start=start)}  # fmt: skip
