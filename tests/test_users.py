"""Ownership in the real SQLite file: the record a job's worker makes, and the fallback to the creating job."""

from __future__ import annotations

from contextlib import closing

from deepyard import db, users
from deepyard.config import Settings
from deepyard.jobs import store


def test_owner_is_the_record_else_the_submitter_of_the_creating_job(settings: Settings) -> None:
    with closing(db.connect(settings)) as conn:
        ada, bob = users.create_user(conn, "ada", "correct horse"), users.create_user(conn, "bob", "battery staple")
        # a run made by ada's train job before owners were recorded for jobs' targets: only the job says so
        store.insert(conn, "j1", "train", {}, owner="ada", priority=0, slots={"cpu": 1}, target="run-1")
        store.insert(conn, "j2", "evaluate", {}, owner="bob", priority=0, slots={"cpu": 1}, target="run-2")
        assert users.owner_of(conn, "run", "run-1") == "ada"
        assert users.owner_of(conn, "run", "run-2") is None  # an evaluation does not make the run it reads
        assert users.owner_of(conn, "dataset", "run-1") is None
        assert users.may_change(conn, "run", "run-1", ada) and not users.may_change(conn, "run", "run-1", bob)
        users.claim(conn, "run", "run-2", "bob")
        users.claim(conn, "run", "run-2", "ada")  # a claim never takes over an owned thing
        assert users.owner_of(conn, "run", "run-2") == "bob"
        users.forget(conn, "run", "run-2")
        assert users.owner_of(conn, "run", "run-2") is None


def test_owners_of_is_owner_of_for_every_item_at_once(settings: Settings) -> None:
    with closing(db.connect(settings)) as conn:
        ada, bob = users.create_user(conn, "ada", "correct horse"), users.create_user(conn, "bob", "battery staple")
        store.insert(conn, "j1", "train", {}, owner="ada", priority=0, slots={"cpu": 1}, target="run-1")
        store.insert(conn, "j2", "train", {}, owner="bob", priority=0, slots={"cpu": 1}, target="run-1")  # a resume
        store.insert(conn, "j3", "evaluate", {}, owner="bob", priority=0, slots={"cpu": 1}, target="run-2")
        store.insert(conn, "j4", "train", {}, owner="ada", priority=0, slots={"cpu": 1}, target="run-3")
        users.set_owner(conn, "run", "run-3", bob)  # the record wins over the submitter
        users.set_owner(conn, "dataset", "set-1", ada)
        refs = ["run-1", "run-2", "run-3", "run-4", "set-1"]
        for kind in ("run", "dataset"):
            bulk = users.owners_of(conn, kind)
            assert {r: bulk.get(r) for r in refs} == {r: users.owner_of(conn, kind, r) for r in refs}
        assert users.owners_of(conn, "run") == {"run-1": "ada", "run-3": "bob"}
