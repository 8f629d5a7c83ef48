"""Downloads that a server may make on a user's behalf without becoming a port scanner: the URL policy.

A URL a request names (a run's weights `source`) is fetched only when its host is on the allow-list
(`DEEPYARD_URL_ALLOW`, empty by default: URLs off), never during the request (the training job downloads), and
under these rules, applied again on every redirect:
- the host name is resolved once and every address it resolves to must be public (no loopback, private,
  link-local, multicast or reserved address) unless `allow_private` is set; the connection goes to the address
  that was checked, so a second DNS answer cannot swap it (DNS rebinding);
- at most `max_redirects` redirects, each to an http(s) URL the policy allows;
- the body is streamed to a temporary file beside the target and refused once it passes `max_bytes`; the whole
  download (every connection and read) must finish within `deadline_s`; the file appears by one atomic rename.
The CLI, acting for the user at the keyboard, uses `UrlPolicy.anywhere()`: any host, the same caps.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from deepyard.errors import IntegrityError, InvalidValueError, SourceError

REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 1 << 16
READ_TIMEOUT_S = 30.0  # longest wait for one read, within the deadline


@dataclass(frozen=True)
class UrlPolicy:
    allow: tuple[str, ...] = ()  # host names, "*.example.com", or "*" (any host)
    allow_private: bool = False  # also loopback, private and link-local addresses (a lab's own model server)
    max_bytes: int = 4 * 1024**3
    deadline_s: float = 3600.0
    max_redirects: int = 5

    @classmethod
    def anywhere(cls) -> UrlPolicy:
        """What the user at the keyboard may fetch: any host, private ones included, with the same caps."""
        return cls(allow=("*",), allow_private=True)

    def check(self, url: str) -> urllib.parse.SplitResult:
        """The parsed URL when the policy lets it be fetched (before any DNS lookup); else InvalidValueError."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidValueError(f"{url!r} is not an http:// or https:// URL")
        if not self.allow:
            raise InvalidValueError(
                f"downloads from URLs are off on this server ({url!r}); an administrator can allow hosts with "
                "DEEPYARD_URL_ALLOW=host[,*.domain], or copy the file into a data root and give its path"
            )
        if not any(_host_matches(parts.hostname, pattern) for pattern in self.allow):
            raise InvalidValueError(
                f"host {parts.hostname!r} of {url!r} is not on this server's URL allow-list ({', '.join(self.allow)})"
            )
        return parts


def _host_matches(host: str, pattern: str) -> bool:
    host, pattern = host.lower().rstrip("."), pattern.lower().strip().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def public_address(host: str, port: int, policy: UrlPolicy) -> str:
    """One address of `host` after checking every address it resolves to; SourceError naming a refused one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SourceError(f"cannot resolve host {host!r}: {exc.strerror or exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not policy.allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global or ip.is_multicast:
                raise SourceError(
                    f"host {host!r} resolves to {address}, a loopback, private, link-local or reserved address; "
                    "downloads go to public addresses only"
                )
    if not addresses:
        raise SourceError(f"host {host!r} has no address")
    return addresses[0]


class _Pinned(http.client.HTTPConnection):
    """HTTP to an address checked beforehand (the Host header keeps the name)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    """HTTPS to an address checked beforehand; the certificate is checked against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def fetch(url: str, target: Path, policy: UrlPolicy, max_bytes: int | None = None) -> Path:
    """Download `url` into `target` atomically under `policy` (see the module docstring).

    `max_bytes`: a smaller cap for this file (the size a store index announces); IntegrityError when passed.
    """
    cap = min(policy.max_bytes, max_bytes) if max_bytes is not None else policy.max_bytes
    deadline = time.monotonic() + policy.deadline_s
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    current = url
    try:
        for _hop in range(policy.max_redirects + 1):
            location = _get(current, tmp, policy, cap, deadline, url)
            if location is None:
                os.replace(tmp, target)
                return target
            current = urllib.parse.urljoin(current, location)
        raise SourceError(f"cannot download {url!r}: more than {policy.max_redirects} redirects")
    finally:
        tmp.unlink(missing_ok=True)


def _get(url: str, tmp: Path, policy: UrlPolicy, cap: int, deadline: float, original: str) -> str | None:
    """One request: the redirect's Location, or None once the body is in `tmp`."""
    parts = policy.check(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = public_address(host, port, policy)
    kind = _PinnedTLS if parts.scheme == "https" else _Pinned
    conn = kind(host, port, address, timeout=min(READ_TIMEOUT_S, _remaining(deadline, original)))
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        conn.request("GET", path, headers={"User-Agent": "deepyard", "Accept-Encoding": "identity"})
        response = conn.getresponse()
        if response.status in REDIRECTS:
            location = response.getheader("Location")
            if not location:
                raise SourceError(f"cannot download {original!r}: redirect without a Location")
            return location
        if response.status != 200:
            raise SourceError(f"cannot download {original!r}: HTTP {response.status} {response.reason} from {url}")
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise IntegrityError(f"{original!r} is {int(declared):,} bytes, over the download limit of {cap:,}")
        _stream(response, tmp, cap, deadline, original)
        return None
    except (OSError, http.client.HTTPException) as exc:
        raise SourceError(f"cannot download {original!r}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        conn.close()


def _stream(response: http.client.HTTPResponse, tmp: Path, cap: int, deadline: float, original: str) -> None:
    """The body into `tmp`; each read waits at most the socket's timeout, and the deadline is checked between."""
    size = 0
    with tmp.open("wb") as fp:
        while True:
            _remaining(deadline, original)
            chunk = response.read1(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise IntegrityError(f"{original!r} is over the download limit of {cap:,} bytes; refused")
            fp.write(chunk)
        fp.flush()
        os.fsync(fp.fileno())


def _remaining(deadline: float, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise SourceError(f"cannot download {url!r}: it did not finish within the download deadline")
    return left
