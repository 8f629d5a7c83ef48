"""Request dependencies as named types: the settings, a database connection, the current user."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from deepyard import db, users
from deepyard.config import Settings
from deepyard.web.errors import Forbidden


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_conn(request: Request) -> Iterator[sqlite3.Connection]:
    conn = db.connect(request.app.state.settings)
    try:
        yield conn
    finally:
        conn.close()


def get_user(request: Request) -> users.User | None:
    user: users.User | None = getattr(request.state, "user", None)
    return user


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[sqlite3.Connection, Depends(get_conn)]
UserDep = Annotated["users.User | None", Depends(get_user)]


def require_owner(conn: sqlite3.Connection, kind: str, ref: str, user: users.User | None) -> None:
    """Only the creator may change what they made (anything unowned is open)."""
    if not users.may_change(conn, kind, ref, user):
        owner = users.owner_of(conn, kind, ref)
        raise Forbidden(f"{kind} {ref!r} belongs to {owner!r}; only its creator may change it")
