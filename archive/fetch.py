"""The one HTTP client for everything an import fetches: manifests, metadata files, images.

A source names URLs that the server then requests, so every fetch is checked like this:

- only ``http`` and ``https`` URLs are fetched (no ``file://``, ``ftp://``, ...);
- the host is resolved and refused when any of its addresses is loopback, private, link-local
  (cloud metadata services live at 169.254.169.254), shared, reserved or multicast, unless the
  ``FETCH_ALLOWED_HOSTS`` setting names the host or a network holding the address (an on-site
  IIIF server);
- the address actually connected to is checked again on the socket (a host that resolves to a
  public address for the check and to 127.0.0.1 for the connection is refused too);
- redirects are followed by hand, each target checked the same way, at most ``MAX_REDIRECTS``;
- the body is capped in bytes (per caller) and the whole transfer in seconds
  (``FETCH_MAX_SECONDS`` for headers and body together, enforced by a timer that shuts the socket
  down, so a server that drips a byte now and then is cut off too; ``HTTP_TIMEOUT`` bounds each
  connect and read);
- proxies and credentials from the environment are ignored (``trust_env`` off).

Errors are :class:`FetchError` (a ``ValueError``) with a message an operator can act on;
:class:`FetchRefused` when the policy refused the URL.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

MAX_REDIRECTS = 5
CHUNK = 1 << 16


class FetchError(ValueError):
    """A URL could not be fetched; ``str(exc)`` says why."""


class FetchRefused(FetchError):
    """The fetch policy refused a URL (scheme or address)."""


# --- the address policy ---------------------------------------------------------------------------

def _allowed_entries() -> tuple[set[str], list]:
    from django.conf import settings

    hosts, networks = set(), []
    for entry in getattr(settings, "FETCH_ALLOWED_HOSTS", ()) or ():
        entry = str(entry).strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry)
    return hosts, networks


def _plain(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_refused(address: str, host: str = "") -> str:
    """Why ``address`` (of ``host``) may not be fetched from, or "" when it may."""
    ip = _plain(address)
    hosts, networks = _allowed_entries()
    if host and host.lower().rstrip(".") in hosts:
        return ""
    if any(ip.version == net.version and ip in net for net in networks):
        return ""
    if ip.is_global and not ip.is_multicast:
        return ""
    kind = (
        "loopback" if ip.is_loopback else "link-local" if ip.is_link_local else "private" if ip.is_private
        else "multicast" if ip.is_multicast else "reserved"
    )
    return (
        f"{host or address} resolves to {ip}, a {kind} address; internal addresses are not fetched "
        "unless FETCH_ALLOWED_HOSTS names the host or its network"
    )


def check_url(url: str) -> None:
    """Refuse a URL whose scheme is not http(s) or whose host resolves to a refused address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"only http and https URLs are fetched, not {parts.scheme or 'a bare path'!r}: {url}")
    host = parts.hostname
    if not host:
        raise FetchRefused(f"the URL has no host: {url}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchRefused(f"the URL has an invalid port: {url}") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        reason = address_refused(info[4][0], host)
        if reason:
            raise FetchRefused(reason)


# --- connections that check the address they reached ----------------------------------------------

def _checked(sock: socket.socket, host: str) -> socket.socket:
    try:
        reason = address_refused(sock.getpeername()[0], host)
    except (OSError, ValueError):
        reason = f"cannot tell which address {host} connected to"
    if reason:
        sock.close()
        raise FetchRefused(reason)
    return sock


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self):
        return _checked(super()._new_conn(), self.host)

    def request(self, *args, **kwargs):
        _in_use(self)
        return super().request(*args, **kwargs)


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        return _checked(super()._new_conn(), self.host)

    def request(self, *args, **kwargs):
        _in_use(self)
        return super().request(*args, **kwargs)


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


_local = threading.local()


def _session() -> requests.Session:
    """One session per thread (requests sessions are not thread-safe), reusing connections."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxies, no .netrc from the environment
        adapter = _GuardedAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def _limits(timeout: float | None) -> tuple[float, float]:
    from django.conf import settings

    per_step = float(timeout if timeout is not None else getattr(settings, "HTTP_TIMEOUT", 30))
    total = float(getattr(settings, "FETCH_MAX_SECONDS", 600))
    return per_step, total


# --- fetching -----------------------------------------------------------------------------------------

class _Deadline:
    """FETCH_MAX_SECONDS for a whole fetch, headers and body: a server that drips a byte now and
    then never trips the per-read timeout, so a timer shuts the socket down when the time is up."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.started = time.monotonic()
        self.expired = False
        self.connection = None  # the connection sending the request (set in its thread)
        self.response: requests.Response | None = None
        self._timer = threading.Timer(seconds, self.expire)
        self._timer.daemon = True

    def __enter__(self):
        _local.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        _local.deadline = None

    def expire(self) -> None:
        self.expired = True
        for sock in (getattr(self.connection, "sock", None), _response_socket(self.response)):
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def message(self, url: str) -> str:
        return f"{url} took over {self.seconds:g} s to download (FETCH_MAX_SECONDS)"


def _in_use(connection) -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.connection = connection


def _response_socket(response: requests.Response | None):
    """urllib3 keeps the socket in the http.client response's file object (SocketIO._sock)."""
    if response is None:
        return None
    fp = getattr(getattr(response.raw, "_fp", None), "fp", None)
    return getattr(getattr(fp, "raw", None), "_sock", None)


@contextmanager
def open_url(url: str, *, headers: dict | None = None, timeout: float | None = None) -> Iterator[requests.Response]:
    """A streamed response for ``url`` after the policy checks and the redirects (each checked).
    Read its body with :func:`iter_body` so the size and time caps apply. Non-200 answers are
    returned as they are (the caller words the error)."""
    per_step, total = _limits(timeout)
    current = url
    with _Deadline(total) as deadline:
        for _hop in range(MAX_REDIRECTS + 1):
            check_url(current)
            try:
                response = _session().get(current, stream=True, allow_redirects=False, timeout=per_step, headers=headers)
            except requests.RequestException as exc:
                if deadline.expired:
                    raise FetchError(deadline.message(current)) from None
                raise FetchError(f"cannot download {current}: {exc.__class__.__name__}") from None
            if deadline.expired:  # cut off mid-headers: what was parsed is not an answer
                response.close()
                raise FetchError(deadline.message(current))
            if response.is_redirect:
                target = response.headers.get("Location", "")
                response.close()
                current = urljoin(current, target)
                continue
            deadline.response = response
            response.fetch_deadline = deadline
            try:
                yield response
            finally:
                response.close()
            return
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects from {url}")


def iter_body(response: requests.Response, *, max_bytes: int, what: str = "downloads", limit_name: str = "") -> Iterator[bytes]:
    """The (transfer-decoded) body in chunks; FetchError past ``max_bytes`` or ``FETCH_MAX_SECONDS``."""
    deadline = getattr(response, "fetch_deadline", None)
    size = 0
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and "Content-Encoding" not in response.headers and int(declared) > max_bytes:
        raise FetchError(_too_large(what, response.url, max_bytes, limit_name))
    try:
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(_too_large(what, response.url, max_bytes, limit_name))
            if deadline is not None and deadline.expired:
                raise FetchError(deadline.message(response.url))
            yield chunk
        if deadline is not None and deadline.expired:  # cut off: the end seen is not the body's end
            raise FetchError(deadline.message(response.url))
    except FetchError:
        raise
    except (requests.RequestException, OSError, ValueError) as exc:
        if deadline is not None and deadline.expired:
            raise FetchError(deadline.message(response.url)) from None
        raise FetchError(f"cannot download {response.url}: {exc.__class__.__name__}") from None


def _too_large(what: str, url: str, max_bytes: int, limit_name: str) -> str:
    hint = f" ({limit_name})" if limit_name else ""
    return f"{url} is larger than the {max_bytes:,}-byte limit for {what}{hint}"


def fetch_bytes(url: str, *, max_bytes: int, headers: dict | None = None, what: str = "downloads",
                limit_name: str = "", timeout: float | None = None) -> bytes:
    """The body of a 200 answer for ``url``; FetchError otherwise (HTTP status, policy, caps)."""
    with open_url(url, headers=headers, timeout=timeout) as response:
        if response.status_code != 200:
            raise FetchError(f"HTTP {response.status_code} for {url}")
        return b"".join(iter_body(response, max_bytes=max_bytes, what=what, limit_name=limit_name))
