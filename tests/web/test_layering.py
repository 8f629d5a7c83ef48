"""Pages and the JSON API share web/views.py instead of importing each other; the error handlers render their
HTML page through web/templating.py, not through the page routes. Read from the source with ast, so an import
inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "src" / "deepyard" / "web"


def imported(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file: `from a.b import c` gives both a.b and a.b.c."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("module", ["pages.py", "views.py", "templating.py", "errors.py"])
def test_pages_views_and_errors_import_no_api_module(module: str) -> None:
    assert sorted(m for m in imported(WEB / module) if m.startswith("deepyard.web.api")) == []


@pytest.mark.parametrize(
    "module", ["errors.py", "views.py", "templating.py", *(f"api/{p.name}" for p in (WEB / "api").glob("*.py"))]
)
def test_no_module_below_the_pages_imports_them(module: str) -> None:
    assert "deepyard.web.pages" not in imported(WEB / module)


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("def f():\n    from deepyard.web.pages import error_page\n")
    assert "deepyard.web.pages" in imported(tmp_path / "m.py")
