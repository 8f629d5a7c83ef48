"""One error hierarchy for everything a user can get wrong.

Every message names the bad value and, where there is a closed set, the valid ones. The CLI turns these into a
one-line message and exit code 2; the web layer (web/errors.py) maps them to one JSON error shape. Programming
errors are not DeepyardErrors and keep their tracebacks.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable


class DeepyardError(Exception):
    """Base class: a problem the user can act on."""


class InvalidValueError(DeepyardError, ValueError):
    """An option, setting or spec field has a value outside its valid range or set."""


class NotFoundError(DeepyardError, LookupError):
    """A named thing (dataset, file, folder, network) does not exist."""


class SourceError(DeepyardError):
    """Input data cannot be used as given (missing folder, no classes, malformed list file, bad IDX file)."""


class IntegrityError(DeepyardError):
    """Stored or downloaded data does not match what it claims to be (checksum, manifest)."""


class DamagedFileError(IntegrityError):
    """A file the user asked to use (a checkpoint, a weights file) is truncated or corrupt; the message names it.

    The web layer answers 422: the request named something that cannot be used, nothing failed on the server."""


class DatabaseError(DeepyardError):
    """The home's database cannot be used as it is (damaged, truncated, not SQLite, locked too long); never replaced.

    The web layer answers 503: the request was fine, the server cannot serve it until the file is restored.
    """


class Conflict(DeepyardError):
    """The request clashes with the current state: deleting a dataset that runs use, or a run that trains.

    The CLI exits with code 2 as for every DeepyardError; the web layer answers 409."""


class Forbidden(DeepyardError):
    """Allowed to see, not to change: another user's run, a path outside the readable roots, a failed CSRF check.

    The web layer answers 403."""


class DiskFullError(DeepyardError):
    """A write failed because the disk (or the user's quota) is full; what was half-written has been removed."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full(exc: BaseException, where: object = None) -> DiskFullError | None:
    """`exc` as a DiskFullError naming the path, when it is a full disk (an OSError, or torch's writer failing
    on one); else None."""
    if isinstance(exc, DiskFullError):
        return exc
    full = (isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS) or "No space left on device" in str(exc)
    if not full:
        return None
    path = getattr(exc, "filename", None) or where or "?"
    return DiskFullError(f"disk full at {str(path)!r}: free some space (or move the home to a larger disk), then retry")


def choices(valid: Iterable[object]) -> str:
    """Format a closed set of valid values for an error message: `'a', 'b' or 'c'`."""
    items = [repr(str(v)) for v in valid]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


class SpecError(InvalidValueError):
    """A network spec is invalid; the message names the layer and the problem."""
