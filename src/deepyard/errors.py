"""One error hierarchy for everything a user can get wrong.

Every message names the bad value and, where there is a closed set, the valid ones. The CLI turns these into a
one-line message and exit code 2; the web layer (web/errors.py) maps them to one JSON error shape. Programming
errors are not DeepyardErrors and keep their tracebacks.
"""

from __future__ import annotations

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


class DatabaseError(DeepyardError):
    """The home's database cannot be used as it is (damaged, truncated, not SQLite, locked too long); never replaced.

    The web layer answers 503: the request was fine, the server cannot serve it until the file is restored.
    """


def choices(valid: Iterable[object]) -> str:
    """Format a closed set of valid values for an error message: `'a', 'b' or 'c'`."""
    items = [repr(str(v)) for v in valid]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


class SpecError(InvalidValueError):
    """A network spec is invalid; the message names the layer and the problem."""
