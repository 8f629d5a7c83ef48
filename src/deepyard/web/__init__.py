"""The web app: a FastAPI server with a REST API under /api/v1 (OpenAPI docs at /docs), server-rendered pages,
and Server-Sent Events for live updates. It is an adapter: every route calls the domain packages.

Public API: `create_app(settings, host=..., https=..., limits=...)`, `serve(settings, host, port)`.
"""

from __future__ import annotations

from deepyard.web.app import create_app, serve

__all__ = ["create_app", "serve"]
