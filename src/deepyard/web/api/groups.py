"""/api/v1/groups: the groups that gather datasets and runs on the home page; put things in a group or take them out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from deepyard import groups
from deepyard.datasets import get_dataset
from deepyard.limits import NAME_MAX
from deepyard.train import get_run
from deepyard.web.deps import ConnDep, RequestModel, SettingsDep, UserDep, require_owner

router = APIRouter(prefix="/groups", tags=["groups"])


@router.get("")
def list_(conn: ConnDep) -> dict[str, Any]:
    """Every group with the datasets and runs in it."""
    return {"groups": groups.members(conn)}


class GroupRequest(RequestModel):
    kind: Literal["dataset", "run"]
    ids: list[Annotated[str, Field(max_length=NAME_MAX)]] = Field(
        min_length=1, max_length=1000, description="Dataset or run ids (or dataset names)."
    )
    group: str | None = Field(
        None, max_length=NAME_MAX, description="The group name; null or blank takes them out of any group."
    )


@router.put("")
def set_(body: GroupRequest, settings: SettingsDep, conn: ConnDep, user: UserDep) -> dict[str, Any]:
    """Put datasets or runs in a group (their creator only); every id is checked before any is changed."""
    refs = [
        get_dataset(settings, ref).id if body.kind == "dataset" else get_run(settings, ref)["id"] for ref in body.ids
    ]
    for ref in refs:
        require_owner(conn, body.kind, ref, user)
    stored = groups.set_group(conn, body.kind, refs, body.group)
    return {"kind": body.kind, "ids": refs, "group": stored}
