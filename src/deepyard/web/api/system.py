"""/api/v1: health, who am I, and the folder picker."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from deepyard import __version__
from deepyard.web.deps import SettingsDep, UserDep
from deepyard.web.files import list_folder

router = APIRouter(tags=["system"])


@router.get("/health")
async def health() -> dict[str, Any]:
    """Answered on the event loop with no I/O, so it answers while every worker thread is busy."""
    return {"ok": True, "version": __version__}


@router.get("/me")
def me(request: Request, user: UserDep) -> dict[str, Any]:
    """The signed-in user (null in single-user local mode), whether they are an admin and whether sign-in is on."""
    return {"user": user.name if user else None, "admin": bool(user and user.admin),
            "auth": bool(getattr(request.state, "auth_on", False))}  # fmt: skip


@router.get("/folders")
def folders(
    settings: SettingsDep,
    path: str | None = Query(None, max_length=4096, description="Absolute folder; absent: roots."),
) -> dict[str, Any]:
    """Sub-folders of `path` (inside the data roots and the home only) and its image count."""
    return list_folder(settings, path)
