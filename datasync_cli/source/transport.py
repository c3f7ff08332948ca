"""HTTP exchanges with the API's origin, bounded: no redirect leaves the origin (the API key and
the stream token go nowhere else), every exchange has a deadline for the whole of it, and every
body has a size cap after decompression.

The only module that talks to `requests` directly; the client above it sees `Answer`s.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3 import exceptions as urllib3_errors
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..errors import FatalSourceError, RetriableSourceError
from ..redact import server_text
from .errors import RedirectRefusedError
from .inflate import ACCEPTED, EncodingError, Inflater

MAX_REDIRECTS = 5
_CHUNK = 1 << 16  # raw bytes per read; inflate.STEP bounds what each one becomes
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
URL_HINT = "check --api-url / API_BASE_URL"


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer: status, headers and the whole (decompressed) body."""

    status: int
    headers: CaseInsensitiveDict[str]
    body: bytes


class BodyTooLargeError(FatalSourceError):
    """A body above the size cap: refused rather than held in memory."""


class ConnectionFailedError(RetriableSourceError):
    """No connection, or one that broke: worth retrying, except for a first contact."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: connection failed ({type(cause).__name__})")
        self.cause_name = type(cause).__name__


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def shown_url(url: str) -> str:
    """scheme://host:port/path of a URL a server named: no userinfo, no query, escaped."""
    parts = urlsplit(url)
    scheme, host, port = origin_of(url)
    return server_text(f"{scheme}://{host}:{port}{parts.path}", 200)


class _Watch(threading.local):
    """The deadline of the request the current thread is sending, if any."""

    deadline: _Deadline | None = None


_watch = _Watch()


class _WatchedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        if _watch.deadline is not None:
            _watch.deadline.conn = conn
        return conn


class _WatchedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        if _watch.deadline is not None:
            _watch.deadline.conn = conn
        return conn


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose pools tell the deadline which connection a request uses."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


class _Deadline:
    """Cuts the current request's connection when the whole exchange outlives `seconds`:
    a server trickling a byte at a time never trips the per-read timeout, this does."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.conn: Any = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _watch.deadline = self
        self._timer.start()
        return self

    def _expire(self) -> None:
        self.expired = True
        sock = getattr(self.conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _watch.deadline = None


class Transport:
    """One keep-alive session to one API origin; session headers (the key) stay on it."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        deadline_s: float,
        max_body_bytes: int,
        pool_size: int,
        headers: Mapping[str, str],
        session: requests.Session | None = None,
    ) -> None:
        self.origin = origin_of(base_url)
        self._timeout = (connect_timeout, read_timeout)
        self._deadline_s = deadline_s
        self._max_body = max_body_bytes
        self._session = session or requests.Session()
        adapter = _WatchedAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["Accept-Encoding"] = ACCEPTED  # only what we undo, bounded
        self._session.headers.update(headers)

    def close(self) -> None:
        self._session.close()

    def exchange(
        self,
        method: str,
        url: str,
        what: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> Answer:
        """Send one request (following redirects only within the origin) and read it whole."""
        for _ in range(MAX_REDIRECTS + 1):
            with _Deadline(self._deadline_s) as deadline:
                try:
                    response = self._session.request(
                        method, url, params=params, headers=headers, data=data,
                        timeout=self._timeout, allow_redirects=False, stream=True,
                    )
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        target = urljoin(response.url, response.headers["location"])
                        response.close()
                        self._check_origin(target, what)
                        method, data = _redirected_method(response.status_code, method, data)
                        url, params = target, None
                        continue
                    body = self._read(response, what)
                except requests.RequestException as exc:
                    raise _transport_error(exc, what, deadline, self._timeout[1]) from exc
                except OSError as exc:  # a socket cut by the deadline, mid-read
                    raise _transport_error(exc, what, deadline, self._timeout[1]) from exc
            return Answer(response.status_code, response.headers, body)
        raise FatalSourceError(f"{what}: more than {MAX_REDIRECTS} redirects", URL_HINT)

    def _check_origin(self, target: str, what: str) -> None:
        if origin_of(target) != self.origin:
            raise RedirectRefusedError(
                f"{what}: the API redirected to {shown_url(target)}, which is not the "
                "configured API's origin; refusing to send the API key there",
                "check --api-url / API_BASE_URL; point it at the new address if you trust it",
            )

    def _read(self, response: requests.Response, what: str) -> bytes:
        """The whole body, decompressed, refused once it passes the size cap."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            response.close()
            raise self._too_large(what)
        try:
            inflater = Inflater(response.headers.get("content-encoding", ""))
        except EncodingError as exc:
            response.close()
            raise FatalSourceError(
                f"{what}: {exc}",
                "something between datasync and the API (a proxy?) re-encodes its answers",
            ) from exc
        chunks: list[bytes] = []
        size = 0
        try:
            for piece in inflater.body(_raw_chunks(response)):
                size += len(piece)
                if size > self._max_body:
                    raise self._too_large(what)
                chunks.append(piece)
        except EncodingError as exc:
            raise RetriableSourceError(f"{what}: the answer's body is damaged ({exc})") from exc
        finally:
            response.close()
        return b"".join(chunks)

    def _too_large(self, what: str) -> BodyTooLargeError:
        mb = self._max_body / (1 << 20)
        return BodyTooLargeError(
            f"{what}: the answer is larger than {mb:g} MB after decompression; refused",
            "the service's pages are about 2 MB; raise --max-body-mb / INGEST_MAX_BODY_MB "
            "only if it really sends more",
        )


def _raw_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it came off the socket (chunked framing undone, Content-Encoding not),
    with urllib3's errors turned into the requests errors the caller maps."""
    raw = response.raw
    try:
        while True:
            chunk = raw.read(_CHUNK, decode_content=False)
            if not chunk:
                return
            yield chunk
    except urllib3_errors.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from exc
    except (urllib3_errors.ProtocolError, urllib3_errors.SSLError) as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc


def _redirected_method(status: int, method: str, data: bytes | None) -> tuple[str, bytes | None]:
    """What a browser sends after a redirect: 303 (and 301/302 after a POST) becomes GET."""
    if status == 303 or (status in (301, 302) and method == "POST"):
        return "GET", None
    return method, data


def _transport_error(
    exc: BaseException, what: str, deadline: _Deadline, read_timeout: float
) -> RetriableSourceError | FatalSourceError:
    if deadline.expired:
        return RetriableSourceError(
            f"{what}: no complete answer within {deadline.seconds:g} s (the whole exchange)"
        )
    if isinstance(exc, requests.Timeout):
        return RetriableSourceError(f"{what}: no answer within {read_timeout:g} s")
    if isinstance(
        exc,
        (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            OSError,
        ),
    ):
        return ConnectionFailedError(what, exc)
    return FatalSourceError(f"{what}: request could not be sent ({type(exc).__name__})", URL_HINT)
