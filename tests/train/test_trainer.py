"""Training runs end to end on a real (tiny) dataset: determinism, exact resume after a kill, NaN detection,
early stopping, abort, accumulation, the streaming data path, checkpoint safety, the finders."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch

from deepyard.config import Settings
from deepyard.errors import IntegrityError
from deepyard.networks import NetworkSpec
from deepyard.train import Callback, get_run, make_config, resume_run, train
from deepyard.train.checkpoint import load_checkpoint
from deepyard.train.finders import find_batch_size, lr_range_test
from deepyard.train.loop import TrainingDiverged

BASE = {"epochs": 4, "batch_size": 8, "solver.type": "momentum", "solver.lr": 0.05, "snapshot_interval": 0.5,
        "augment.flip": "ud", "augment.noise": 0.02, "precision": "fp32"}  # fmt: skip


def cfg(**more: object):
    return make_config(**{**BASE, **more})


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    last = sorted((folder / "checkpoints").glob("step-*.pt"))[-1]
    return load_checkpoint(last)["model"]


def metric_lines(folder: Path) -> list[dict[str, object]]:
    drop = {"wall", "images_per_s", "data_wait"}
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in lines]


def test_same_seed_same_result(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    a = train(settings, tiny, tiny_net, cfg(epochs=2))
    b = train(settings, tiny, tiny_net, cfg(epochs=2))
    c = train(settings, tiny, tiny_net, cfg(epochs=2, seed=1))
    wa, wb, wc = final_weights(a.folder), final_weights(b.folder), final_weights(c.folder)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert metric_lines(a.folder) == metric_lines(b.folder)


def test_it_learns_and_writes_metrics_checkpoints_and_events(
    settings: Settings, tiny: str, tiny_net: NetworkSpec
) -> None:
    result = train(settings, tiny, tiny_net, cfg(epochs=6, val_interval=0.5))
    assert result.last_val["val_top1"] > 90, result.last_val
    lines = metric_lines(result.folder)
    vals = [line for line in lines if "val_loss" in line]
    # 108 training images / batch 8 = 13 steps per epoch; half an epoch rounds to 6 steps
    assert [v["step"] for v in vals] == list(range(6, 79, 6)) and vals[-1]["epoch"] == 6.0
    trains = [line for line in lines if "train_loss" in line]
    assert trains[-1]["train_loss"] < trains[0]["train_loss"]
    assert {"step", "epoch", "train_loss", "lr"} <= set(trains[0])
    raw = json.loads((result.folder / "metrics.jsonl").read_text().splitlines()[0])
    assert raw["images_per_s"] > 0 and 0 <= raw["data_wait"] <= 1
    assert list((result.folder / "tb").glob("events.out.tfevents.*"))
    assert (result.folder / "checkpoints" / "best.pt").is_file()
    kept = sorted(p.name for p in (result.folder / "checkpoints").glob("step-*.pt"))  # 13 snapshots; the last 3 kept
    assert kept == ["step-0000066.pt", "step-0000072.pt", "step-0000078.pt"]
    info = get_run(settings, result.run_id)
    assert info["status"] == "done" and info["placement"]["precision"] == "fp32"


KILLER = """
import os, signal, sys
from deepyard.config import load_settings
from deepyard.networks import spec_from_data
from deepyard.train import Callback, make_config, train

class Kill(Callback):
    def on_step_end(self, run, info):
        if run.state.step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    spec = spec_from_data({spec!r})
    train(load_settings({home!r}), {dataset!r}, spec, make_config(**{config!r}), callbacks=[Kill()])
"""


def test_killed_run_resumes_exactly(settings: Settings, tiny: str, tiny_net: NetworkSpec, tmp_path: Path) -> None:
    straight = train(settings, tiny, tiny_net, cfg())
    steps_per_epoch = straight.steps / 4
    kill_at = int(steps_per_epoch * 2.5) + 3  # a few steps after the mid-epoch snapshot at 2.5 epochs
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(kill_at=kill_at, spec=tiny_net.to_data(), home=str(settings.home),
                                    dataset=tiny, config=BASE))  # fmt: skip
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    killed = sorted((settings.home / "runs").iterdir())[-1].name
    assert get_run(settings, killed)["status"] == "running"  # it died without a word
    resumed = resume_run(settings, killed)
    assert resumed.steps == straight.steps
    a, b = final_weights(straight.folder), final_weights(resumed.folder)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert metric_lines(resumed.folder) == metric_lines(straight.folder)


def test_nan_loss_stops_with_advice(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    with pytest.raises(TrainingDiverged, match="try a lower learning rate"):
        train(settings, tiny, tiny_net, cfg(**{"solver.lr": 100, "solver.type": "sgd"}))
    assert [r["status"] for r in [get_run(settings, p.name) for p in (settings.home / "runs").iterdir()]] == ["failed"]


def test_early_stopping(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    result = train(settings, tiny, tiny_net, cfg(epochs=20, val_interval=1, early_stopping=2, **{"solver.lr": 1e-9}))
    assert result.stop_reason and result.stop_reason.startswith("early stopping: val_loss did not improve")
    assert result.epochs < 20


def test_abort_finishes_the_step_and_checkpoints(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    stop = threading.Event()

    class AbortAt5(Callback):
        def on_step_end(self, run, info) -> None:
            if run.state.step == 5:
                stop.set()

    result = train(settings, tiny, tiny_net, cfg(), callbacks=[AbortAt5()], stop=stop)
    assert result.stop_reason == "aborted" and result.steps == 5
    assert (result.folder / "checkpoints" / "step-0000005.pt").is_file()
    assert get_run(settings, result.run_id)["status"] == "aborted"
    finished = resume_run(settings, result.run_id)
    assert finished.steps == 4 * (108 // 8) and finished.stop_reason is None  # the whole 4 epochs


def test_accumulation_matches_one_big_batch(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    plain = {"augment.flip": "none", "augment.noise": 0, "epochs": 0.2, "solver.type": "sgd"}
    data = tiny_net.to_data()
    no_dropout = NetworkSpec.model_validate({**data, "layers": [x for x in data["layers"] if x["type"] != "dropout"]})
    big = train(settings, tiny, no_dropout, cfg(batch_size=16, **plain))
    small = train(settings, tiny, no_dropout, cfg(batch_size=8, batch_accumulation=2, **plain))
    assert big.steps == small.steps
    a, b = final_weights(big.folder), final_weights(small.folder)
    # same images per step (the order of batch 8 i, i+1 is the order of batch 16 i): same update up to rounding
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_streaming_path_gives_the_same_run(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    memory = train(settings, tiny, tiny_net, cfg(epochs=1))
    streamed = train(settings, tiny, tiny_net, cfg(epochs=1, in_memory="off", workers=2))
    a, b = final_weights(memory.folder), final_weights(streamed.folder)
    assert all(torch.equal(a[k], b[k]) for k in a)


class Payload:
    def __reduce__(self):
        return (print, ("this ran",))


def test_a_checkpoint_carrying_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "extra": Payload()}, path)
    with pytest.raises(IntegrityError, match="not plain tensor data"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(IntegrityError):
        load_checkpoint(path)


def test_finders(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    result = lr_range_test(settings, tiny, tiny_net, cfg(), steps=60)
    assert 1e-6 <= result.suggestion <= 10 and len(result.lrs) == len(result.losses) >= 10
    assert result.lrs == sorted(result.lrs)
    size = find_batch_size(settings, tiny, tiny_net, cfg())
    assert size & (size - 1) == 0 and 1 <= size <= 64  # a power of two, capped by the 108 training images
    assert not (settings.home / ".scratch" / "runs").exists() or not any(
        (settings.home / ".scratch" / "runs").iterdir()
    )


DDP_SCRIPT = textwrap.dedent("""
    import json, sys
    from deepyard.config import load_settings
    from deepyard.networks import spec_from_data
    from deepyard.train import make_config, train
    if __name__ == "__main__":
        home, dataset, spec, config = sys.argv[1:5]
        train(load_settings(home), dataset, spec_from_data(json.loads(spec)), make_config(**json.loads(config)))
""")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ddp_two_cpu_processes_on_gloo(settings: Settings, tiny: str, tiny_net: NetworkSpec, tmp_path: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    torchrun = Path(sys.executable).parent / "torchrun"
    config = json.dumps({**BASE, "epochs": 2, "device": "cpu"})
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", str(_free_port()), str(script),
         str(settings.home), tiny, json.dumps(tiny_net.to_data()), config],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (settings.home / "runs").iterdir()
    info = get_run(settings, run.name)
    assert info["status"] == "done" and info["placement"]["world"] == 2
    single = train(settings, tiny, tiny_net, cfg(epochs=2))
    lines = metric_lines(run)
    # each rank takes half of the 108 training images per epoch; each point is written once
    assert max(line["step"] for line in lines) == 2 * ((108 // 2) // 8) and single.steps == 2 * (108 // 8)
    assert len({line["step"] for line in lines if "val_loss" in line}) == len([x for x in lines if "val_loss" in x])
    assert lines[-1]["val_top1"] > 50


def test_bf16_autocast_runs_and_learns_on_the_cpu(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    result = train(settings, tiny, tiny_net, cfg(epochs=4, precision="bf16", channels_last="off"))
    info = get_run(settings, result.run_id)
    assert info["placement"]["precision"] == "bf16" and info["placement"]["channels_last"] is False
    assert result.last_val["val_top1"] > 80, result.last_val


def test_input_normalisation_settings_are_checked(settings: Settings, tiny: str, tiny_net: NetworkSpec) -> None:
    from deepyard.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match=r"input_mean \[0.5\] and input_std None go together"):
        make_config(input_mean=[0.5])
    with pytest.raises(InvalidValueError, match=r"input_std \[0.0\] must be positive"):
        make_config(input_mean=[0.5], input_std=[0.0])
    wrong = make_config(epochs=1, device="cpu", input_mean=[0.5, 0.5], input_std=[0.2, 0.2])
    with pytest.raises(InvalidValueError, match="input_mean has 2 values; the dataset has 3 channel"):
        train(settings, tiny, tiny_net, wrong)
    assert not (settings.home / "runs").exists() or not any((settings.home / "runs").iterdir())  # no run left
