"""Settings: where Deepyard keeps its state and which folders it may read.

Settings are a typed value passed down explicitly; nothing reads the environment except `load_settings`.
Everything stored under `home` refers to other things under `home` by relative path, so a home can be moved.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from deepyard.errors import InvalidValueError

HOME_ENV = "DEEPYARD_HOME"
DATA_ROOTS_ENV = "DEEPYARD_DATA_ROOTS"  # os.pathsep-separated list of folders
PYTHON_NETWORKS_ENV = "DEEPYARD_ALLOW_PYTHON_NETWORKS"  # "1" allows networks written as Python files
DEFAULT_HOME = Path("~/.deepyard")


class Settings(BaseModel):
    """Where state lives and what may be read."""

    model_config = ConfigDict(frozen=True)

    home: Path = Field(description="Folder holding datasets, runs and the database (absolute).")
    data_roots: tuple[Path, ...] = Field(
        default=(), description="Folders the server may read images from; empty means only the home."
    )
    allow_python_networks: bool = Field(
        default=False, description="Allow networks given as Python files. They run arbitrary code: off by default."
    )

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def downloads_dir(self) -> Path:
        return self.home / "downloads"

    def is_readable(self, path: Path) -> bool:
        """True when `path` (symlinks resolved) lies inside the home or one of the data roots."""
        return self.readable()(str(path))

    def readable(self) -> Callable[[str], bool]:
        """`is_readable` for many paths: the roots are resolved once. A relative path is never readable (it
        would be resolved against the working directory of whichever process reads it)."""
        roots = [os.path.join(os.path.realpath(r), "") for r in (self.home, *self.data_roots)]

        def check(path: str) -> bool:
            if "\x00" in path or not os.path.isabs(os.path.expanduser(path)):
                return False
            real = os.path.join(os.path.realpath(os.path.expanduser(path)), "")
            return any(real.startswith(root) for root in roots)

        return check

    def check_readable(self, path: Path | str, what: str) -> None:
        """InvalidValueError naming `what` unless `path` is absolute and inside the home or a data root."""
        raw = str(path)
        if "\x00" in raw or not os.path.isabs(os.path.expanduser(raw)):
            raise InvalidValueError(f"{what} {raw!r} must be an absolute path (inside {self.roots_text()})")
        if not self.is_readable(Path(raw)):
            raise InvalidValueError(f"{what} {raw!r} is outside the data roots: {self.roots_text()}")

    def to_env(self) -> dict[str, str]:
        """The environment under which `load_settings()` in a child process (a job worker) gives these settings."""
        return {
            HOME_ENV: str(self.home),
            DATA_ROOTS_ENV: os.pathsep.join(str(r) for r in self.data_roots),
            PYTHON_NETWORKS_ENV: "1" if self.allow_python_networks else "0",
        }

    def roots_text(self) -> str:
        roots = ", ".join(str(r) for r in self.data_roots) or "none configured (set DEEPYARD_DATA_ROOTS)"
        return f"the home {str(self.home)!r} and the data roots ({roots})"


def load_settings(
    home: Path | str | None = None,
    data_roots: list[Path] | None = None,
    allow_python_networks: bool | None = None,
) -> Settings:
    """Build settings from explicit values, then the environment, then defaults."""
    raw_home = home if home is not None else os.environ.get(HOME_ENV) or DEFAULT_HOME
    home_path = Path(raw_home).expanduser().absolute()
    if home_path.exists() and not home_path.is_dir():
        raise InvalidValueError(f"home {str(home_path)!r} exists but is not a folder; give a folder path")
    if data_roots is None:
        env = os.environ.get(DATA_ROOTS_ENV, "")
        data_roots = [Path(p) for p in env.split(os.pathsep) if p]
    roots = tuple(Path(p).expanduser().absolute() for p in data_roots)
    for root in roots:
        if not root.is_dir():
            raise InvalidValueError(f"data root {str(root)!r} is not an existing folder")
    if allow_python_networks is None:
        allow_python_networks = os.environ.get(PYTHON_NETWORKS_ENV, "") in ("1", "true", "yes")
    return Settings(home=home_path, data_roots=roots, allow_python_networks=allow_python_networks)
