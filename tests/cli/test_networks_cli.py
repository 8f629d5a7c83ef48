"""`deepyard network` in a subprocess: list (and the README's generated table), show, check, view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_datasets_cli import run

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("verb", [["network"], ["network", "list"], ["network", "show"], ["network", "check"],
                                  ["network", "view"]])  # fmt: skip
def test_every_network_verb_has_help(tmp_path: Path, verb: list[str]) -> None:
    proc = run(tmp_path, *verb, "--help")
    assert proc.returncode == 0 and "Usage:" in proc.stdout


def test_readme_network_table_is_the_generated_one(tmp_path: Path) -> None:
    proc = run(tmp_path, "network", "list", "--markdown")
    assert proc.returncode == 0, proc.stderr
    readme = (REPO / "README.md").read_text()
    start, end = "<!-- network-table:start -->\n", "<!-- network-table:end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)].strip() == proc.stdout.strip()


def test_show_prints_a_spec_that_check_accepts(tmp_path: Path) -> None:
    shown = run(tmp_path, "network", "show", "lenet")
    assert shown.returncode == 0 and "out_channels: 20" in shown.stdout
    path = tmp_path / "mine.yaml"
    path.write_text(shown.stdout.replace("out_channels: 20", "out_channels: 75"))
    checked = run(tmp_path, "network", "check", str(path), "--input", "1x28x28", "--json")
    doc = json.loads(checked.stdout)
    assert doc["ok"] and doc["output"] == [10] and doc["params"] == 431_080 + 55 * 26 + 55 * 25 * 50


def test_check_reports_the_layer_that_fails(tmp_path: Path) -> None:
    proc = run(tmp_path, "network", "check", "alexnet", "--input", "1x28x28")
    assert proc.returncode == 2
    assert "layer 'pool2' (max_pool)" in proc.stderr and "shrinks below 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: b\nlayers:\n  - {name: c, type: convolution, out_channels: 3}\n")
    proc = run(tmp_path, "network", "check", str(bad), "--input", "1x28x28")
    assert proc.returncode == 2 and "unknown type 'convolution'; valid types: abs" in proc.stderr


def test_view_writes_an_svg_and_a_table(tmp_path: Path) -> None:
    out = tmp_path / "lenet.svg"
    proc = run(tmp_path, "network", "view", "lenet", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [layer["name"] for layer in doc["layers"]] == ["conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2"]
    assert doc["macs"] == 2_293_000
    assert out.read_text().lstrip().startswith("<?xml") and "conv1" in out.read_text()
