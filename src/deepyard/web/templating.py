"""The Jinja2 templates and the one function that renders a page, for the pages and for HTML error pages.

It lives apart from `pages` so that the error handlers (web/errors.py) render their page without importing the
page routes. What every template sees: the CSRF token, the signed-in user's name, the version, whether sign-in
is on, and the server's features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from deepyard import __version__
from deepyard.tasks import Task
from deepyard.tasks.base import TEMPLATES as TASK_TEMPLATES
from deepyard.web.security import Guard, csrf_token

TEMPLATES = Jinja2Templates(directory=[str(Path(__file__).parent / "templates"), str(TASK_TEMPLATES)])


def task_partial(task: Task, name: str, **context: Any) -> str:
    """A task's partial template (deepyard/tasks/templates/<task>/<name>) rendered to HTML: what the run page
    shows of a prediction or an evaluation. Autoescaped, as every template is."""
    return TEMPLATES.env.get_template(task.template(name)).render(task=task, **context)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    guard: Guard = request.app.state.guard
    user = getattr(request.state, "user", None)
    base = {
        "csrf": csrf_token(guard, request),
        "user": user.name if user else None,
        "version": __version__,
        "auth_on": getattr(request.state, "auth_on", False),
        "features": request.app.state.features,
    }
    return TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)
