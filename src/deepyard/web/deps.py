"""Request dependencies as named types: the settings, a database connection, the current user; and the shared
shape of request bodies (`RequestModel`: unknown fields and non-finite numbers refused) and of ids in paths."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from pydantic import BaseModel, ConfigDict, model_validator

from deepyard import db, users
from deepyard.config import Settings
from deepyard.errors import Forbidden
from deepyard.limits import NAME_MAX, check_data


class RequestModel(BaseModel):
    """A JSON request body: a misspelt or unknown field is a 422 naming it, not silently ignored; so is an
    infinite or NaN number, data nested more than DEPTH_MAX levels and text that is not valid Unicode."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, data: Any) -> Any:
        check_data(data, "the request body")
        return data


IdPath = Annotated[str, Path(max_length=NAME_MAX, pattern=r"^[^\x00]*$", description="An id (or a dataset's name).")]


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
