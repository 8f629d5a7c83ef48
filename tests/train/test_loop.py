"""The loop's validation under DDP: a metric that is no sum (a detector's mAP) is the whole split's on every rank,
as one process computes it, not the rank's own shard's. Two real processes on gloo (torchrun), each holding its
strided shard of the same validation predictions, as the trainer's validation batches give them; and (slow) a
detector trained by two processes, whose reported mAP is the one a single process measures on its weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from deepyard.config import load_settings
from deepyard.datasets import create_dataset, make_spec, open_split
from deepyard.infer.evaluate import split_data
from deepyard.infer.model import load_run_model
from deepyard.tasks.detection import DetectionMeter
from deepyard.train import get_run
from deepyard.train.loop import reduce_meter
from tests.tasks.boxdata import make_scenes, write
from tests.train.test_trainer import _free_port

IMAGES, BATCH = 9, 2  # an odd count: the two shards differ in size (5 and 4 images)


def validation_set() -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs (N, 4, 6), targets (N, 3, 6)): every image has two objects of classes 0 and 1; on the even images
    (rank 0's shard) the predictions find both, on the odd ones they score high in the wrong places. Rank 0's
    shard alone has an mAP of 100 %, the whole split far less."""
    g = torch.Generator().manual_seed(0)
    outputs, targets = torch.full((IMAGES, 4, 6), -1.0), torch.full((IMAGES, 3, 6), -1.0)
    for i in range(IMAGES):
        for c in range(2):
            x, y = (float(v) for v in torch.randint(0, 40, (2,), generator=g))
            targets[i, c] = torch.tensor([x, y, x + 16, y + 12, c, 0])
            box = [x, y, x + 16, y + 12] if i % 2 == 0 else [x + 30, y + 30, x + 46, y + 42]
            outputs[i, c] = torch.tensor([*box, 0.9 - 0.1 * c if i % 2 == 0 else 0.95, c])
    return outputs, targets


def shard_metrics(rank: int, world: int) -> dict[str, float]:
    """What one rank's validation reports: its shard (images rank, rank + world, ...) in batches, then reduced."""
    outputs, targets = validation_set()
    mine = torch.arange(IMAGES)[rank::world]
    meter = DetectionMeter()
    for start in range(0, len(mine), BATCH):
        idx = mine[start : start + BATCH]
        meter.update(outputs[idx], targets[idx], torch.tensor(0.5 + rank))
    return reduce_meter(meter, torch.device("cpu"))


SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch.distributed as dist
    from tests.train.test_loop import shard_metrics
    if __name__ == "__main__":
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as f:
            json.dump({"shard": shard_metrics(rank, world), "world": world}, f)
        dist.destroy_process_group()
""")


def test_two_process_validation_map_is_the_one_process_map(tmp_path: Path) -> None:
    script = tmp_path / "ddp_map.py"
    script.write_text(SCRIPT)
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", str(_free_port()), str(script), str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    single = shard_metrics(0, 1)
    alone = DetectionMeter()  # rank 0's shard by itself: what validation reported before the gather
    outputs, targets = validation_set()
    alone.update(outputs[::2], targets[::2], torch.tensor(0.5))
    assert alone.compute(alone.sums())["val_map"] == 100.0 and single["val_map"] < 80  # the case tells them apart
    for got in ranks:
        assert got["world"] == 2
        assert got["shard"]["val_map"] == single["val_map"] and got["shard"]["val_map50"] == single["val_map50"]
        assert abs(got["shard"]["val_loss"] - (5 * 0.5 + 4 * 1.5) / 9) < 1e-9  # the loss: summed across ranks


TRAIN_SCRIPT = textwrap.dedent("""
    import json, sys
    from deepyard.config import load_settings
    from deepyard.train import make_config, train
    if __name__ == "__main__":
        home, dataset, config = sys.argv[1:4]
        train(load_settings(home), dataset, "fcos_small", make_config(**json.loads(config)))
""")


@pytest.mark.slow  # a detector trained by two torchrun processes on 2 CPU cores, then evaluated: 30-60 s
def test_a_ddp_detector_reports_the_map_one_process_measures_on_its_weights(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    settings = load_settings(tmp_path / "home", data_roots=[tmp_path / "data"])
    coco = write("coco", tmp_path / "data" / "coco", make_scenes(60, seed=5, sizes=(48, 48), most=2))
    dataset = create_dataset(settings, make_spec(name="shapes", task="detection", width=48, height=48, val_pct=25,
                                                 source={"kind": "detection", "train": coco}))  # fmt: skip
    val = open_split(settings, dataset, "val")
    assert len(val) % 2 == 1  # uneven shards: what torchmetrics' own sync could not gather
    config = {"epochs": 10, "batch_size": 8, "device": "cpu", "precision": "fp32", "val_interval": 10}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "--master_port", str(_free_port()),
         str(_script(tmp_path)), str(settings.home), dataset.id, json.dumps(config)],
        capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (settings.home / "runs").iterdir()
    assert get_run(settings, run.name)["placement"]["world"] == 2
    reported = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "val_map" in line]
    assert len(reported) == 1  # one validation, at the end: the weights of its checkpoint
    clf = load_run_model(settings, run.name)
    data = split_data(settings, clf, dataset.id, "val")
    meter = DetectionMeter()
    idx = np.arange(len(data.targets))
    outputs = clf.outputs(torch.from_numpy(data.pixels(idx)).permute(0, 3, 1, 2))
    meter.update(outputs, torch.from_numpy(np.ascontiguousarray(data.targets)), torch.tensor(float("nan")))
    single = meter.compute(meter.sums())
    shard = DetectionMeter()  # rank 0's images alone (0, 2, 4, ...): what validation reported before the gather
    shard.update(outputs[::2], torch.from_numpy(np.ascontiguousarray(data.targets[::2])), torch.tensor(float("nan")))
    apart = abs(shard.compute(shard.sums())["val_map50"] - single["val_map50"])
    assert single["val_map50"] > 0 and apart > 0.01  # a detector that finds something; the shards disagree
    for key in ("val_map", "val_map50"):  # the same weights, the same images: the same figure, up to float noise
        assert abs(reported[0][key] - single[key]) < 1e-3, (key, reported[0], single)


def _script(folder: Path) -> Path:
    path = folder / "ddp_train.py"
    path.write_text(TRAIN_SCRIPT)
    return path
