"""Language-model networks in `deepyard network list/view/check`: rows, parameters, the SVG drawing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepyard.text.networks import build_text_network
from deepyard.text.summary import summarize_text_network


def test_summary_counts_every_parameter_once_and_draws_gpt_inputs() -> None:
    s = summarize_text_network("gpt-mini", context=32, vocab=50)
    model = build_text_network("gpt-mini", (1, 32, 1), 50)
    assert s.params == sum(p.numel() for p in model.parameters())  # the tied head is not counted twice
    assert sum(r.params for r in s.rows) == s.params
    rows = {r.name: r for r in s.rows}
    assert rows["blocks.0"].inputs == ("tok", "pos") and rows["head"].output_shape == (32, 50)


@pytest.mark.slow  # network list summarises every image network too: over a minute here under load
def test_network_list_shows_language_models(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "deepyard", "--home", str(tmp_path / "home"), "network"]
    listed = subprocess.run([*cmd, "list", "--json"], capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    text = {n["name"]: n for n in json.loads(listed.stdout) if n["family"] == "text"}
    assert set(text) == {"char-lstm", "char-gru", "char-lstm-large", "gpt-mini", "gpt-small"}
    assert text["gpt-mini"]["params"] == 818_048


def test_network_view_and_check_draw_language_models(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "deepyard", "--home", str(tmp_path / "home"), "network"]
    out = tmp_path / "lstm.svg"
    view = subprocess.run([*cmd, "view", "char-lstm", "--input", "64", "--classes", "65", "--out", str(out),
                           "--json"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert view.returncode == 0, view.stderr
    doc = json.loads(view.stdout)
    assert doc["input"] == [64] and [r["name"] for r in doc["layers"]] == ["embed", "rnn", "head"]
    assert out.read_text().lstrip().startswith("<?xml") and "rnn" in out.read_text()
    from deepyard.cli.networks import _summary
    from deepyard.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match="a number of tokens"):
        _summary(None, "gpt-mini", "3x28x28", 65)  # type: ignore[arg-type]
