"""`deepyard model ...` and `deepyard train --from ...` through the console script, on a real tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_datasets_cli import run
from tests.train.conftest import write_bars


def test_make_pretrained_list_show_fine_tune_and_delete(tmp_path: Path) -> None:
    write_bars(tmp_path / "bars", per_class=16)
    home = tmp_path / "home"
    assert run(home, "dataset", "create", str(tmp_path / "bars"), "--size", "12x12").returncode == 0
    net = tmp_path / "tiny.yaml"
    net.write_text("name: tiny\nlayers:\n  - {name: c, type: conv, out_channels: 4, kernel: 3}\n"
                   "  - {name: fc, type: linear, out_features: num_classes}\n")  # fmt: skip
    first = run(home, "train", "--dataset", "bars", "--network", str(net), "--epochs", "1", "--batch-size", "4",
                "--set", "precision=fp32", "--json")  # fmt: skip
    assert first.returncode == 0, first.stderr
    run_id = json.loads(first.stdout)["run"]
    made = run(home, "model", "make-pretrained", run_id, "--name", "tiny-bars", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["labels"] == ["class0", "class1", "class2"]
    listed = json.loads(run(home, "model", "list", "--json").stdout)
    assert [m["name"] for m in listed] == ["tiny-bars"]
    shown = run(home, "model", "show", "tiny-bars")
    assert "class0, class1, class2" in shown.stdout
    tuned = run(home, "train", "--dataset", "bars", "--from", "store:tiny-bars", "--freeze", "c", "--head-epochs",
                "0.5", "--epochs", "1", "--batch-size", "4", "--set", "finetune.reset_head=always",
                "--json")  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr
    assert "pretrained weights: loaded 2 tensors" in tuned.stderr and "classifier head, reset" in tuned.stderr
    info = json.loads(run(home, "run", "show", json.loads(tuned.stdout)["run"], "--json").stdout)
    assert info["source"]["ref"] == "store:tiny-bars" and info["config"]["finetune"]["freeze"] == ["c"]
    assert info["config"]["finetune"]["head_epochs"] == 0.5 and info["network"]["spec"]["name"] == "tiny"
    bad = run(home, "train", "--dataset", "bars", "--from", "store:nope")
    assert bad.returncode == 2 and "no model 'nope' in the store; stored: tiny-bars" in bad.stderr
    picked = run(home, "train", "--dataset", "bars", "--epochs", "1", "--batch-size", "36", "--json")
    assert picked.returncode == 0 and "network: resnet18, the default for 12x12 colour images" in picked.stderr
    bad = run(home, "train", "--dataset", "bars", "--from", "store:tiny-bars", "--set", "finetune.freez=[c]")
    assert bad.returncode == 2 and "unknown setting 'finetune.freez'" in bad.stderr
    assert json.loads(run(home, "model", "delete", "tiny-bars", "--json").stdout) == {"deleted": "tiny-bars"}
    assert json.loads(run(home, "model", "list", "--json").stdout) == []
