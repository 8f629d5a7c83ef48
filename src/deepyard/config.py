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
from deepyard.urls import UrlPolicy

HOME_ENV = "DEEPYARD_HOME"
DATA_ROOTS_ENV = "DEEPYARD_DATA_ROOTS"  # os.pathsep-separated list of folders
PYTHON_NETWORKS_ENV = "DEEPYARD_ALLOW_PYTHON_NETWORKS"  # "1" allows networks written as Python files
URL_ALLOW_ENV = "DEEPYARD_URL_ALLOW"  # comma-separated hosts ("*.example.com", "*") the server may download from
URL_PRIVATE_ENV = "DEEPYARD_URL_ALLOW_PRIVATE"  # "1": those hosts may have private/loopback addresses
DOWNLOAD_MB_ENV = "DEEPYARD_DOWNLOAD_MAX_MB"  # largest file a download may bring (MiB)
DOWNLOAD_S_ENV = "DEEPYARD_DOWNLOAD_DEADLINE_S"  # longest a download may take (seconds)
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
    url_allow: tuple[str, ...] = Field(
        default=(), description="Hosts weights may be downloaded from for a request; empty: URLs are off."
    )
    url_allow_private: bool = Field(
        default=False, description="Let allowed hosts resolve to loopback, private or link-local addresses."
    )
    download_max_bytes: int = Field(default=4 * 1024**3, gt=0, description="Largest file one download may bring.")
    download_deadline_s: float = Field(default=3600.0, gt=0, description="Longest one download may take (seconds).")

    def url_policy(self) -> UrlPolicy:
        """What the server and its jobs may download (deepyard.urls)."""
        return UrlPolicy(self.url_allow, self.url_allow_private, self.download_max_bytes, self.download_deadline_s)

    def trusting_urls(self) -> Settings:
        """These settings for the user at the keyboard (the CLI): any URL they type may be fetched."""
        return self.model_copy(update={"url_allow": ("*",), "url_allow_private": True})

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
        problem = self.unreadable(path, what)
        if problem is not None:
            raise InvalidValueError(problem)

    def unreadable(self, path: Path | str, what: str) -> str | None:
        """Why `path` may not be read (not absolute, or outside the home and the data roots), naming `what` and the
        configured roots; None when it may. The one text of every refusal of a path: the submit checks, the
        folder picker and the resize preview."""
        raw = str(path)
        if "\x00" in raw or not os.path.isabs(os.path.expanduser(raw)):
            return f"{what} {raw!r} must be an absolute path inside the data roots or the home ({self.roots_text()})"
        if not self.is_readable(Path(raw)):
            return f"{what} {raw!r} is outside the data roots and the home ({self.roots_text()})"
        return None

    def to_env(self) -> dict[str, str]:
        """The environment under which `load_settings()` in a child process (a job worker) gives these settings."""
        return {
            HOME_ENV: str(self.home),
            DATA_ROOTS_ENV: os.pathsep.join(str(r) for r in self.data_roots),
            PYTHON_NETWORKS_ENV: "1" if self.allow_python_networks else "0",
            URL_ALLOW_ENV: ",".join(self.url_allow),
            URL_PRIVATE_ENV: "1" if self.url_allow_private else "0",
            DOWNLOAD_MB_ENV: str(self.download_max_bytes / 1024**2),
            DOWNLOAD_S_ENV: str(self.download_deadline_s),
        }

    def roots_text(self) -> str:
        roots = ", ".join(str(r) for r in self.data_roots) or "none configured (set DEEPYARD_DATA_ROOTS)"
        return f"home: {str(self.home)!r}; data roots: {roots}"


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
        allow_python_networks = _flag(PYTHON_NETWORKS_ENV)
    return Settings(home=home_path, data_roots=roots, allow_python_networks=allow_python_networks, **_downloads())


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _downloads() -> dict[str, object]:
    """The download settings the environment sets (a bad number names the variable)."""
    out: dict[str, object] = {
        "url_allow": tuple(h.strip() for h in os.environ.get(URL_ALLOW_ENV, "").split(",") if h.strip()),
        "url_allow_private": _flag(URL_PRIVATE_ENV),
    }
    for env, key, scale in (
        (DOWNLOAD_MB_ENV, "download_max_bytes", 1024**2),
        (DOWNLOAD_S_ENV, "download_deadline_s", 1),
    ):
        raw = os.environ.get(env, "").strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not 0 < value < 1e12:
            raise InvalidValueError(f"{env}={raw!r} must be a positive number")
        out[key] = int(value * scale) if key == "download_max_bytes" else value
    return out
