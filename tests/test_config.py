"""Settings: home from flag, environment or default; data roots checked; readable-path rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepyard.config import load_settings
from deepyard.errors import InvalidValueError


def test_home_comes_from_argument_then_environment_then_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DEEPYARD_HOME", str(tmp_path / "env"))
    assert load_settings(tmp_path / "arg").home == tmp_path / "arg"
    assert load_settings().home == tmp_path / "env"
    monkeypatch.delenv("DEEPYARD_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings().home == tmp_path / ".deepyard"


def test_data_roots_must_exist(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DEEPYARD_DATA_ROOTS", f"{tmp_path}:{tmp_path / 'missing'}")
    with pytest.raises(InvalidValueError, match="missing' is not an existing folder"):
        load_settings(tmp_path / "home")


def test_only_home_and_data_roots_are_readable(tmp_path: Path) -> None:
    (tmp_path / "data" / "cats").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "data" / "escape").symlink_to(tmp_path / "secret")
    s = load_settings(tmp_path / "home", data_roots=[tmp_path / "data"])
    assert s.is_readable(tmp_path / "data" / "cats")
    assert s.is_readable(tmp_path / "home" / "datasets")
    assert not s.is_readable(tmp_path / "secret")
    assert not s.is_readable(tmp_path / "data" / ".." / "secret")
    assert not s.is_readable(tmp_path / "data" / "escape")
