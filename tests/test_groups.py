"""Groups in the real SQLite file: set, move, clear, names, forgetting, bad names, and an older database upgraded."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from deepyard import db, groups
from deepyard.config import Settings
from deepyard.errors import InvalidValueError
from deepyard.jobs import get_job, submit
from tests.jobs.conftest import bars_spec


def test_set_move_clear_and_list(settings: Settings) -> None:
    with closing(db.connect(settings)) as conn:
        assert groups.set_group(conn, "run", ["r1", "r2"], "  lab:   augmentation ") == "lab: augmentation"
        groups.set_group(conn, "dataset", ["d1"], "lab: augmentation")
        groups.set_group(conn, "run", ["r3"], "baselines")
        assert groups.groups_of(conn, "run") == {
            "r1": "lab: augmentation",
            "r2": "lab: augmentation",
            "r3": "baselines",
        }
        assert groups.group_names(conn) == ["baselines", "lab: augmentation"]
        groups.set_group(conn, "run", ["r2"], "baselines")  # moved, not added twice
        assert groups.group_of(conn, "run", "r2") == "baselines"
        assert groups.set_group(conn, "run", ["r1"], "   ") is None  # blank: out of its group
        groups.join_if_ungrouped(conn, "run", "r3", "other")  # r3 keeps the group it has
        groups.join_if_ungrouped(conn, "run", "r1", "other")
        groups.forget(conn, "dataset", "d1")
        assert groups.groups_of(conn, "run") == {"r1": "other", "r2": "baselines", "r3": "baselines"}
        assert groups.groups_of(conn, "dataset") == {}


def test_bad_kind_and_names_are_refused(settings: Settings) -> None:
    with closing(db.connect(settings)) as conn:
        with pytest.raises(InvalidValueError, match="kind 'job' cannot be grouped; valid: 'dataset' or 'run'"):
            groups.set_group(conn, "job", ["x"], "g")
        with pytest.raises(InvalidValueError, match="is 65 characters long; at most 64"):
            groups.set_group(conn, "run", ["x"], "g" * 65)
        with pytest.raises(InvalidValueError, match="must be text"):
            groups.check_name(7)  # type: ignore[arg-type]


def test_an_older_database_gains_groups_and_keeps_its_jobs(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    with closing(sqlite3.connect(settings.home / db.DB_FILE, isolation_level=None)) as old:
        old.row_factory = sqlite3.Row
        db.migrate(old, [m for m in db.MIGRATIONS if m[0] < "0200"])  # the database as the last release left it
    job = submit(settings, "dataset", bars_spec(settings))  # connect() upgrades it first
    assert get_job(settings, job.id).group is None
    grouped = submit(settings, "dataset", bars_spec(settings), group=" mnist  variants ")
    assert get_job(settings, grouped.id).group == "mnist variants"
    with pytest.raises(InvalidValueError, match="at most 64"):
        submit(settings, "dataset", bars_spec(settings), group="x" * 100)
