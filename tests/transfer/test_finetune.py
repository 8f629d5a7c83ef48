"""Fine-tuning inside training runs: frozen parameters stay bit-identical, per-group rates, the head-first schedule
switching at its step, frozen BatchNorm in eval mode, exact resume, and the run's record of its start."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from deepyard.config import Settings
from deepyard.errors import InvalidValueError
from deepyard.networks import NetworkSpec, build_network, spec_from_data
from deepyard.train import Callback, get_run, make_config
from deepyard.train.checkpoint import load_checkpoint
from deepyard.train.config import FinetuneConfig
from deepyard.transfer import load_pretrained, resume_from, train_from
from deepyard.transfer.finetune import make_plan, optimizer_params
from tests.transfer.conftest import BASE


def cfg(**more: Any) -> Any:
    return make_config(**{**BASE, **more})


def weights_at(folder: Path, name: str) -> dict[str, torch.Tensor]:
    data: dict[str, torch.Tensor] = load_checkpoint(folder / "checkpoints" / name)["model"]
    return data


def last_weights(folder: Path) -> dict[str, torch.Tensor]:
    return weights_at(folder, sorted(p.name for p in (folder / "checkpoints").glob("step-*.pt"))[-1])


class Spy(Callback):
    """Records, after each step, which parameters train and each group's rate."""

    def __init__(self) -> None:
        self.steps: list[tuple[int, set[str], dict[str, float]]] = []

    def on_step_end(self, run: Any, info: Any) -> None:
        trainable = {n for n, p in run.bare_model().named_parameters() if p.requires_grad}
        rates = {g["name"]: g["lr"] for g in run.optimizer.param_groups}
        self.steps.append((run.state.step, trainable, rates))


def test_frozen_parameters_are_bit_identical_and_the_rest_changes(
    settings: Settings, tiny: str, pretrained_run: str
) -> None:
    start = load_pretrained(settings, f"run:{pretrained_run}")
    config = cfg(epochs=1, **{"finetune.freeze": ["conv"], "finetune.reset_head": "always",
                                              "solver.weight_decay": 0.01})  # fmt: skip
    result = train_from(settings, tiny, None, config, source=f"run:{pretrained_run}")
    after = last_weights(result.folder)
    assert torch.equal(after["layers.conv.weight"], start.state["layers.conv.weight"])
    assert torch.equal(after["layers.conv.bias"], start.state["layers.conv.bias"])
    assert not torch.equal(after["layers.fc.1.weight"], start.state["layers.fc.1.weight"])
    report = get_run(settings, result.run_id)["source"]["report"]
    assert report["loaded"] == 2 and set(report["reinitialised"]) == {"layers.fc.1.weight", "layers.fc.1.bias"}


def test_labels_that_match_keep_the_head(settings: Settings, tiny: str, pretrained_run: str) -> None:
    result = train_from(settings, tiny, None, cfg(epochs=0.1), source=f"run:{pretrained_run}")
    info = get_run(settings, result.run_id)
    assert info["source"]["report"]["loaded"] == 4 and info["source"]["report"]["reinitialised"] == {}
    assert info["source"]["ref"] == f"run:{pretrained_run}" and info["network"]["spec"]["name"] == "tiny"


def test_per_group_rates_and_the_head_first_schedule_switch_at_their_step(
    settings: Settings, tiny: str, pretrained_run: str
) -> None:
    spy = Spy()
    ft = {"finetune.head_epochs": 1, "finetune.body_lr_mult": 0.5, "finetune.head_lr_mult": 2,
          "finetune.unfreeze_lr_mult": 0.1}  # fmt: skip
    result = train_from(settings, tiny, None, cfg(**ft), callbacks=[spy], source=f"run:{pretrained_run}")
    per_epoch = result.steps // 2  # 108 images / batch 8 = 13 steps per epoch
    head = {"layers.fc.1.weight", "layers.fc.1.bias"}
    everything = head | {"layers.conv.weight", "layers.conv.bias"}
    for step, trainable, rates in spy.steps:
        # the step's own rates were set before it ran; the phase after it applies from the next step
        factor = 1.0 if step <= per_epoch else 0.1
        assert rates == pytest.approx({"body": 0.05 * 0.5 * factor, "head": 0.05 * 2 * factor}), step
        assert trainable == (head if step < per_epoch else everything), step
    before, after = weights_at(result.folder, "step-0000012.pt"), last_weights(result.folder)
    start = load_pretrained(settings, f"run:{pretrained_run}").state
    assert torch.equal(before["layers.conv.weight"], start["layers.conv.weight"])  # body frozen in the head epoch
    assert not torch.equal(after["layers.conv.weight"], start["layers.conv.weight"])


def test_a_fine_tune_resumes_exactly_across_the_phase_switch(
    settings: Settings, tiny: str, pretrained_run: str
) -> None:
    ft = {"finetune.head_epochs": 1, "finetune.unfreeze_lr_mult": 0.2, "finetune.reset_head": "always"}
    config, source = cfg(**ft), f"run:{pretrained_run}"
    straight = train_from(settings, tiny, None, config, source=source)
    stop = threading.Event()

    class AbortAt(Callback):
        def on_step_end(self, run: Any, info: Any) -> None:
            if run.state.step == 9:  # in the head phase, after the checkpoint at step 6
                stop.set()

    aborted = train_from(settings, tiny, None, config, callbacks=[AbortAt()], stop=stop, source=source)
    assert aborted.steps == 9
    # the source changing under the run does not matter any more: the run continues from its checkpoint
    resumed = resume_from(settings, aborted.run_id)
    assert resumed.steps == straight.steps
    a, b = last_weights(straight.folder), last_weights(resumed.folder)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.last_val == straight.last_val


def test_frozen_batchnorm_stays_in_eval_mode(settings: Settings, tiny: str) -> None:
    spec = spec_from_data({"name": "bn", "layers": [
        {"name": "conv", "type": "conv", "out_channels": 4, "kernel": 3},
        {"name": "bn", "type": "batch_norm"},
        {"name": "fc", "type": "linear", "out_features": "num_classes"},
    ]})  # fmt: skip
    pre = train_from(settings, tiny, spec, cfg(epochs=1))
    seen: list[bool] = []

    class Watch(Callback):
        def on_step_end(self, run: Any, info: Any) -> None:
            bn = run.bare_model().layers["bn"]
            bn(torch.zeros(1, 4, 10, 10))  # a forward in training mode, as the loop does
            seen.append(bn.training)

    config = cfg(epochs=1, **{"finetune.freeze": ["conv", "bn"]})
    result = train_from(settings, tiny, None, config, callbacks=[Watch()], source=f"run:{pre.run_id}")
    assert seen and not any(seen)
    a, b = weights_at(pre.folder, "best.pt"), last_weights(result.folder)
    assert torch.equal(a["layers.bn.running_mean"], b["layers.bn.running_mean"])


def test_freeze_settings_are_checked(tiny_net: NetworkSpec) -> None:
    model = build_network(tiny_net, (3, 12, 12), 3)
    with pytest.raises(InvalidValueError, match=r"pattern 'layer9' matches no parameter; layers: conv, fc\.1"):
        make_plan(model, FinetuneConfig(freeze=["layer9"]))
    with pytest.raises(InvalidValueError, match="train_last is 3 but the network has 2 parametrised layers"):
        make_plan(model, FinetuneConfig(train_last=3))
    with pytest.raises(InvalidValueError, match="freeze every parameter"):
        make_plan(model, FinetuneConfig(freeze=["*"]))
    groups = optimizer_params(model, FinetuneConfig(train_last=1, head_lr_mult=3))
    assert [(g["name"], g["lr_mult"], len(g["params"])) for g in groups] == [("head", 3, 2)]
    assert not model.layers["conv"].weight.requires_grad


def test_a_bare_weights_file_needs_a_network(settings: Settings, tiny: str, tmp_path: Path) -> None:
    from deepyard.transfer import save_safetensors

    save_safetensors(tmp_path / "w.safetensors", build_network("lenet", (1, 28, 28), 10).state_dict())
    with pytest.raises(InvalidValueError, match="holds weights only; give the network"):
        train_from(settings, tiny, None, cfg(), source=str(tmp_path / "w.safetensors"))


IMAGENET = {"kind": "normalize", "scale": "0-1", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.mark.parametrize(
    ("prep", "channels", "expected"),
    [
        (IMAGENET, 3, ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])),
        (IMAGENET, 1, ([pytest.approx(0.449)], [pytest.approx(0.226)])),  # a grayscale dataset: the average
        ({"kind": "normalize", "mean": [0.5], "std": [0.25]}, 3, ([0.5] * 3, [0.25] * 3)),  # repeated
        ({"kind": "deepyard", "input_mean": [0.1], "input_std": [0.3]}, 1, ([0.1], [0.3])),  # a fine-tuned run's
        ({"kind": "deepyard", "input_mean": None, "input_std": None, "mean": "image"}, 3, None),  # its own mean
        ({"kind": "normalize", "mean": [0.5, 0.5], "std": [0.2, 0.2]}, 3, "2 channels"),
    ],
)
def test_source_normalization(prep: dict[str, Any], channels: int, expected: Any) -> None:
    from deepyard.transfer.finetune import source_normalization

    if isinstance(expected, str):
        with pytest.raises(InvalidValueError, match=f"the source normalises {expected}; the dataset has {channels}"):
            source_normalization(prep, channels)
    else:
        assert source_normalization(prep, channels) == expected


def test_a_fine_tune_feeds_inputs_normalised_as_the_weights_expect(
    settings: Settings, tiny: str, pretrained_run: str
) -> None:
    """Weights stored with ImageNet's normalisation: the run takes the source's mean and std into its config, and
    training, classifying and the exported preprocessing all compute (pixels / 255 - mean) / std."""
    from deepyard.datasets import get_dataset
    from deepyard.infer import load_run_model
    from deepyard.infer.preprocess import to_batch
    from deepyard.transfer.store import save_model

    start = load_pretrained(settings, f"run:{pretrained_run}")
    save_model(settings, "imagenet-style", start.state, start.network or {}, list(start.labels or []),
               start.input_shape, IMAGENET, {"kind": "test"})  # fmt: skip
    channels = get_dataset(settings, tiny).shape[2]

    class Inputs(Callback):
        def on_train_start(self, run: Any) -> None:
            self.pixels = next(run.val_data.batches(0))[0][:4]
            self.seen = run.preprocess(self.pixels, train=False)

    seen = Inputs()
    result = train_from(settings, tiny, None, cfg(epochs=0.5), callbacks=[seen], source="store:imagenet-style")
    config = get_run(settings, result.run_id)["config"]
    mean, std = IMAGENET["mean"], IMAGENET["std"]
    if channels == 1:
        mean, std = [sum(mean) / 3], [sum(std) / 3]
    assert config["input_mean"] == pytest.approx(mean) and config["input_std"] == pytest.approx(std)
    m, s = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
    torch.testing.assert_close(seen.seen, (seen.pixels.float() / 255 - m) / s)
    clf = load_run_model(settings, result.run_id)
    assert clf.preprocessing.to_json()["input_std"] == pytest.approx(std)
    pixels = seen.pixels.permute(0, 2, 3, 1).numpy()
    torch.testing.assert_close(clf.transform(to_batch(list(pixels))), seen.seen)

    kept = train_from(
        settings, tiny, None, cfg(epochs=0.5, **{"finetune.normalize": "dataset"}), source="store:imagenet-style"
    )
    assert get_run(settings, kept.run_id)["config"]["input_mean"] is None  # the run's own mean subtraction


DDP_FINETUNE = """
import json, sys
from deepyard.config import load_settings
from deepyard.train import make_config
from deepyard.transfer import train_from
if __name__ == "__main__":
    home, dataset, source, config = sys.argv[1:5]
    train_from(load_settings(home), dataset, None, make_config(**json.loads(config)), source=source)
"""


def test_the_head_first_schedule_under_ddp(settings: Settings, tiny: str, pretrained_run: str, tmp_path: Path) -> None:
    """Two processes on gloo: the body stays as loaded through the head epoch, then trains; both ranks agree."""
    import json
    import subprocess
    import sys

    from tests.train.test_trainer import _free_port

    script = tmp_path / "ddp_finetune.py"
    script.write_text(DDP_FINETUNE)
    torchrun = Path(sys.executable).parent / "torchrun"
    config = json.dumps({**BASE, "device": "cpu", "finetune.head_epochs": 1, "finetune.reset_head": "always"})
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", str(_free_port()), str(script),
         str(settings.home), tiny, f"run:{pretrained_run}", config],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [r for r in (settings.home / "runs").iterdir() if r.name != pretrained_run]
    info = get_run(settings, run.name)
    assert info["status"] == "done" and info["placement"]["world"] == 2
    per_epoch = (108 // 2) // 8  # each rank: half of the 108 training images, batch 8
    start = load_pretrained(settings, f"run:{pretrained_run}").state
    head_end, end = weights_at(run, f"step-{per_epoch:07d}.pt"), last_weights(run)
    assert torch.equal(head_end["layers.conv.weight"], start["layers.conv.weight"])  # frozen in the head epoch
    assert not torch.equal(head_end["layers.fc.1.weight"], start["layers.fc.1.weight"])  # the head trained
    assert not torch.equal(end["layers.conv.weight"], start["layers.conv.weight"])  # then the body did
