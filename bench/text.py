"""Language-model training benchmark: `deepyard train` with gpt-mini on tiny-shakespeare against the same GPT
written by hand in plain PyTorch with nanoGPT's loop, measured side by side in one run.

The baseline is what a PyTorch user writes after reading nanoGPT's `train.py`: the corpus's token array opened
memory-mapped (`np.memmap`), each batch `batch_size` random blocks of the context (`torch.randint` offsets,
`torch.stack` of `from_numpy` slices), a GPT module (pre-norm blocks, causal `scaled_dot_product_attention`, GELU
MLP, tied embeddings, GPT-2 init), AdamW, gradient clipping at 1, and the learning rate set by hand every step.
Both train the same architecture (4 layers, 4 heads, embedding 128, dropout 0.1) on the same stored tokens, with
the same optimizer settings (AdamW lr 0.003, weight decay 0.01, betas 0.9/0.999), the same schedule (one-cycle,
computed with `deepyard.train.lr_at` for both), batch 32 of 64-token blocks, the same number of steps, and
validate every 0.1 epoch on the same 1,024 validation blocks. One torch thread each, and the two run AT THE SAME
TIME (ours as a process, the loop in this one), so both meet the same machine: run one after the other, a change
in the shared machine's load between them showed in the ratio (0.58x in the median at load 6 against 1, where the
best windows were equal). On a machine with fewer than 2 cores they run one after the other.

Figures: training tokens/s (the median and the best of the per-interval rates, validation excluded; ours are
the trainer's own step times from metrics.jsonl; target: ours at least 0.9x the baseline), and the time to a
validation loss of 2.0 nats per character (wall clock from the first step, validations included, for both).
Run with `python bench/text.py [--epochs N]` (`make bench`); prints markdown tables. No assertions: the
figures are read, side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepyard.config import load_settings
from deepyard.datasets import create_dataset, make_spec
from deepyard.datasets.catalog import dataset_dir
from deepyard.train import lr_at, make_config

SHAKESPEARE = Path(os.environ.get("SHAKESPEARE", Path(__file__).resolve().parents[2] / "shared" / "data" /
                                  "tinyshakespeare" / "input.txt"))  # fmt: skip
CONTEXT, BATCH, TARGET = 64, 32, 2.0
SETTINGS = {"batch_size": BATCH, "solver.clip_grad_norm": 1.0, "val_interval": 0.1, "snapshot_interval": 100,
            "workers": 0, "device": "cpu", "precision": "fp32"}  # fmt: skip
DEEPYARD = [str(Path(sys.executable).parent / "deepyard")]


# ---- the baseline: nanoGPT's model and loop, by hand


class SelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.c_attn, self.c_proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
        self.n_head, self.dropout, self.resid_dropout = n_head, dropout, nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0, is_causal=True)
        out: torch.Tensor = self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))
        return out


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attn = SelfAttention(n_embd, n_head, dropout)
        self.c_fc, self.c_proj = nn.Linear(n_embd, 4 * n_embd), nn.Linear(4 * n_embd, n_embd)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        out: torch.Tensor = x + self.drop(self.c_proj(F.gelu(self.c_fc(self.ln_2(x)))))
        return out


class HandGPT(nn.Module):
    def __init__(self, vocab: int, block_size: int, n_layer: int = 4, n_head: int = 4, n_embd: int = 128,
                 dropout: float = 0.1) -> None:  # fmt: skip
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(n_layer))
        self.ln_f, self.lm_head = nn.LayerNorm(n_embd), nn.Linear(n_embd, vocab, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.size(1))))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def hand_loop(folder: Path, vocab: int, steps: int, val_every: int, log_every: int) -> dict[str, Any]:
    """nanoGPT's loop: random blocks from the memory-mapped training tokens, AdamW, clipping, lr set each step."""
    torch.manual_seed(0)
    model = HandGPT(vocab, CONTEXT)
    schedule = make_config(**SETTINGS).schedule
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    val = np.load(folder / "val" / "tokens.npy", mmap_mode="r")
    blocks = (len(val) - 1) // CONTEXT
    starts = (np.arange(blocks) * CONTEXT)[np.linspace(0, blocks - 1, min(blocks, 1024)).astype(np.int64)]

    def get_batch(offsets: Any) -> tuple[torch.Tensor, torch.Tensor]:
        data = np.load(folder / "train" / "tokens.npy", mmap_mode="r") if offsets is None else val
        ix = torch.randint(len(data) - CONTEXT, (BATCH,)) if offsets is None else offsets
        x = torch.stack([torch.from_numpy(data[i : i + CONTEXT].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + CONTEXT].astype(np.int64)) for i in ix])
        return x, y

    @torch.no_grad()
    def estimate_loss() -> float:
        model.eval()
        losses = [float(model(*get_batch(starts[i : i + BATCH]))) * len(starts[i : i + BATCH])
                  for i in range(0, len(starts), BATCH)]  # fmt: skip
        model.train()
        return sum(losses) / len(starts)

    rates: list[float] = []
    vals: list[tuple[int, float, float]] = []  # (step, val loss, wall)
    wall, mark, since = 0.0, time.perf_counter(), 0  # since: steps timed since `mark`
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(schedule, 0.003, 100 * step / steps)
        loss = model(*get_batch(None))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        since += 1
        if since == log_every:  # a rate over log_every training steps, validation never inside it
            now = time.perf_counter()
            rates.append(since * BATCH * CONTEXT / (now - mark))
            wall, mark, since = wall + now - mark, now, 0
        if (step + 1) % val_every == 0 or step + 1 == steps:
            now = time.perf_counter()
            wall += now - mark
            vals.append((step + 1, estimate_loss(), wall))
            mark = time.perf_counter()
            wall += mark - now
            since = 0  # the steps since the last rate are dropped: their clock was split by the validation
    return {"rates": rates, "vals": vals}


# ---- ours: the console script


def ours(home: Path, dataset: str, epochs: float) -> dict[str, Any]:
    sets = [x for k, v in SETTINGS.items() for x in ("--set", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [*DEEPYARD, "--home", str(home), "train", "--dataset", dataset, "--network", "gpt-mini", "--epochs",
           str(epochs), *sets, "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    done = json.loads(proc.stdout)
    points = [json.loads(line) for line in (Path(done["folder"]) / "metrics.jsonl").read_text().splitlines()]
    rates = [p["images_per_s"] * CONTEXT for p in points if "images_per_s" in p]
    vals = [(p["step"], p["val_loss"], p["wall"]) for p in points if "val_loss" in p]
    return {"rates": rates, "vals": vals, "steps": done["steps"]}


def first_below(vals: list[tuple[int, float, float]]) -> str:
    hit = next(((s, v, w) for s, v, w in vals if v <= TARGET), None)
    if hit is None:
        return f"not reached (best {min(v for _, v, _ in vals):.3f})"
    return f"{hit[2]:.0f} s (step {hit[0]}, val {hit[1]:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=2.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = load_settings(home)
        spec = make_spec(name="shakespeare", task="language-model", val_pct=10,
                         source={"kind": "text", "train": SHAKESPEARE, "context": CONTEXT})  # fmt: skip
        manifest = create_dataset(settings, spec)
        per_epoch = max(1, manifest.splits["train"].count // (BATCH * CONTEXT))  # the trainer's epoch of blocks
        steps = max(1, round(args.epochs * per_epoch))
        val_every, log_every = max(1, round(0.1 * per_epoch)), max(1, round(per_epoch / 20))
        done: dict[str, Any] = {}

        def run_ours() -> None:
            started = time.perf_counter()
            done["mine"] = ours(home, manifest.id, args.epochs)
            done["seconds"] = time.perf_counter() - started

        together = (os.cpu_count() or 1) >= 2
        thread = threading.Thread(target=run_ours)
        thread.start()
        if not together:
            thread.join()
        started = time.perf_counter()
        hand = hand_loop(dataset_dir(settings, manifest.id), len(manifest.classes), steps, val_every, log_every)
        hand_s = time.perf_counter() - started
        thread.join()
        if "mine" not in done:
            raise SystemExit("deepyard train failed (its error is above)")
        mine, ours_s = done["mine"], done["seconds"]
        if mine["steps"] != steps:
            raise SystemExit(f"deepyard train took {mine['steps']} steps, the loop by hand {steps}: not comparable")
    ours_rate, hand_rate = statistics.median(mine["rates"]), statistics.median(hand["rates"])
    load = os.getloadavg()
    cpu = platform.processor() or platform.machine()
    print(
        f"\n## Language-model training: `deepyard train` vs nanoGPT's loop by hand ({cpu}, {os.cpu_count()} "
        f"CPUs, one torch thread each, load average {load[0]:.1f} at the end, torch {torch.__version__})\n"
    )
    print(
        f"gpt-mini on tiny-shakespeare (characters), batch {BATCH} x {CONTEXT} tokens, {steps} steps "
        f"({args.epochs:g} epochs), validation every {val_every} steps on 1,024 blocks\n"
    )
    print("| | tokens/s (median) | best window | time to val loss 2.0 | final val loss | whole run |")
    print("|---|---:|---:|---|---:|---:|")
    for name, r, s in (("`deepyard train`", mine, ours_s), ("nanoGPT loop by hand", hand, hand_s)):
        print(f"| {name} | {statistics.median(r['rates']):,.0f} | {max(r['rates']):,.0f} | {first_below(r['vals'])} "
              f"| {r['vals'][-1][1]:.3f} | {s:.0f} s |")  # fmt: skip
    best = max(mine["rates"]) / max(hand["rates"])
    print(
        f"\nratio (ours / by hand): tokens/s median **{ours_rate / hand_rate:.2f}x**, best window **{best:.2f}x** "
        f"(target >= 0.9x; the two ran {'at the same time' if together else 'one after the other'})"
    )


if __name__ == "__main__":
    main()
