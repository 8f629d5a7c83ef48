"""Files the server may touch: the folder picker (inside the data roots and the home only) and zip uploads.

Why this module exists: every path that comes from a request goes through `resolve_readable`, which resolves
symlinks and `..` first and then checks the result against the roots (`Settings.is_readable`), so neither an
absolute path, a `..`, an encoded separator (query strings arrive decoded) nor a symlink inside a root that
points outside can read anything else.

A zip upload is streamed to disk with a byte limit, then every entry is checked before anything is extracted:
no absolute paths, no `..`, no drive letters or backslashes, no symlinks or other special files, a cap on the
entry count, on the total uncompressed size and on each entry's compression ratio (zip bombs), and extraction
itself counts the bytes it writes, so a lying header cannot exceed the caps either. The result becomes
`<home>/uploads/<id>/` by one atomic rename.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deepyard.config import Settings
from deepyard.datasets.images import EXTENSIONS
from deepyard.errors import Forbidden, InvalidValueError, NotFoundError
from deepyard.files import new_id
from deepyard.uploads import uploads_dir
from deepyard.web.errors import TooLarge

# weights files and model archives, which the New run page's starting weights pick (deepyard.transfer.weights)
MODEL_FILES = (".safetensors", ".pt", ".pth", ".zip")


@dataclass(frozen=True)
class Limits:
    upload_bytes: int = 2 * 1024**3  # a zip upload's size on the wire
    unzipped_bytes: int = 8 * 1024**3  # the total size of its entries once extracted
    entries: int = 500_000  # files in one zip
    ratio: int = 200  # largest compression ratio of one entry (text compresses ~10x, images ~1x)


def roots(settings: Settings) -> list[Path]:
    return [settings.home.resolve(), *(r.resolve() for r in settings.data_roots)]


def resolve_readable(settings: Settings, raw: str) -> Path:
    """An absolute path that lies inside the home or a data root, symlinks resolved; else Forbidden (a relative
    path: InvalidValueError), with the same text as the submit check (`Settings.unreadable`)."""
    if not raw or "\x00" in raw:
        raise InvalidValueError(f"path {raw!r} is empty or has a NUL byte")
    path = Path(raw).expanduser()
    problem = settings.unreadable(raw, "folder")
    if problem is not None:
        raise Forbidden(problem) if path.is_absolute() else InvalidValueError(problem)
    return path.resolve()


def list_folder(settings: Settings, raw: str | None) -> dict[str, object]:
    """The picker: with no path the roots; else the sub-folders of `raw`, how many images it holds directly, and
    its weights files and model archives (`files`: name, path, bytes)."""
    if not raw:
        entries = [{"name": str(r), "path": str(r)} for r in roots(settings) if r.is_dir()]
        return {"path": None, "parent": None, "folders": entries, "images": 0}
    folder = resolve_readable(settings, raw)
    if not folder.is_dir():
        raise NotFoundError(f"folder {raw!r} does not exist")
    folders, images, files = [], 0, []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and settings.is_readable(Path(entry.path)):
            folders.append({"name": entry.name, "path": str(Path(entry.path).resolve())})
        elif Path(entry.name).suffix.lower() in EXTENSIONS:
            images += 1
        elif Path(entry.name).suffix.lower() in MODEL_FILES and settings.is_readable(Path(entry.path)):
            files.append({"name": entry.name, "path": str(Path(entry.path).resolve()), "bytes": entry.stat().st_size})
    parent = folder.parent if folder.parent != folder and settings.is_readable(folder.parent) else None
    return {"path": str(folder), "parent": str(parent) if parent else None, "folders": folders, "images": images,
            "files": files}  # fmt: skip


async def save_stream(chunks: AsyncIterator[bytes], target: Path, limit: int) -> int:
    """Write a request body to `target`, refusing (413) once it passes `limit` bytes."""
    size = 0
    with target.open("wb") as fp:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"upload is larger than the limit of {limit:,} bytes")
            fp.write(chunk)
    return size


def check_zip(zf: zipfile.ZipFile, limits: Limits) -> list[zipfile.ZipInfo]:
    """The entries to extract (files, not folders or macOS metadata), after checking every entry."""
    infos = zf.infolist()
    if len(infos) > limits.entries:
        raise InvalidValueError(f"zip has {len(infos):,} entries; the limit is {limits.entries:,}")
    total, keep = 0, []
    for info in infos:
        name = info.filename
        _check_name(name)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver recorded no Unix file type
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise InvalidValueError(f"zip entry {name!r} is a symlink or special file; only files and folders")
        if info.is_dir() or name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith("."):
            continue
        if info.compress_size and info.file_size / info.compress_size > limits.ratio:
            raise InvalidValueError(
                f"zip entry {name!r} expands {info.file_size / info.compress_size:,.0f} times "
                f"(over {limits.ratio}): refused as a zip bomb"
            )
        total += info.file_size
        if total > limits.unzipped_bytes:
            raise InvalidValueError(f"zip expands to more than {limits.unzipped_bytes:,} bytes; refused")
        keep.append(info)
    return keep


def _check_name(name: str) -> None:
    pure = PurePosixPath(name)
    if not pure.parts or "\\" in name or name.startswith("/") or ":" in pure.parts[0]:
        raise InvalidValueError(f"zip entry {name!r} has an absolute path, a drive or a backslash; refused")
    if any(part == ".." for part in pure.parts) or "\x00" in name:
        raise InvalidValueError(f"zip entry {name!r} points outside the archive ('..'); refused")


def extract_zip(settings: Settings, archive: Path, limits: Limits) -> dict[str, object]:
    """Check and extract an uploaded zip into `<home>/uploads/<id>/`; return its id and dataset folder."""
    upload_id = new_id()
    work = uploads_dir(settings) / f".extract-{upload_id}"
    work.mkdir(parents=True)
    try:
        try:
            zf = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise InvalidValueError("the upload is not a zip file") from None
        with zf:
            written = 0
            for info in check_zip(zf, limits):
                written = _extract_one(zf, info, work, written, limits)
        final = uploads_dir(settings) / upload_id
        os.rename(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    root = _dataset_root(final)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    return {"id": upload_id, "path": str(root), "classes": classes, "bytes": written}


def _extract_one(zf: zipfile.ZipFile, info: zipfile.ZipInfo, work: Path, written: int, limits: Limits) -> int:
    target = work.joinpath(*PurePosixPath(info.filename).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zf.open(info) as src, target.open("wb") as dst:
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > limits.unzipped_bytes:
                    raise InvalidValueError(f"zip expands to more than {limits.unzipped_bytes:,} bytes; refused")
                dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InvalidValueError(f"zip entry {info.filename!r} is damaged (corrupt data or a wrong size)") from exc
    return written


def _dataset_root(folder: Path) -> Path:
    """A zip of one folder holding the class folders is unwrapped to that folder."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and any(p.is_dir() for p in entries[0].iterdir()):
        return entries[0]
    return folder
