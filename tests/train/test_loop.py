"""The loop's validation under DDP: a metric that is no sum (a detector's mAP) is the whole split's on every rank,
as one process computes it, not the rank's own shard's. Two real processes on gloo (torchrun), each holding its
strided shard of the same validation predictions, as the trainer's validation batches give them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from deepyard.tasks.detection import DetectionMeter
from deepyard.train.loop import reduce_meter
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
