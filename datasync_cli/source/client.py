"""The DataSync API's endpoints: what to send, and what each answer means (error families)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import __version__
from ..clock import Clock, SystemClock
from ..errors import FatalSourceError, RetriableSourceError
from ..models import Page
from ..redact import Scrubber, redact_url, server_text
from ..settings import DEFAULTS
from .envelope import ParseSlots, decode_body, parse_page
from .errors import (
    AuthError,
    CursorExpiredError,
    RateLimitedError,
    StreamAccessDeniedError,
    TokenRejectedError,
)
from .headers import header, retry_after
from .textpage import decode_page_body
from .token import StreamToken
from .transport import URL_HINT, Answer, ConnectionFailedError, Transport

STREAM_ACCESS_PATH = "/internal/dashboard/stream-access"
KEY_HINT = "check --api-key / TARGET_API_KEY"
# The service refuses token requests that do not look like its own dashboard.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)
CURSOR_CODES = frozenset({"CURSOR_EXPIRED", "CURSOR_INVALID_FORMAT"})

HeadersHook = Callable[[Mapping[str, str]], None]


class ApiClient:
    """Speaks HTTP to one API base; the key goes in a header, never in a URL or a message."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        connect_timeout: float = DEFAULTS.connect_timeout_s,
        read_timeout: float = DEFAULTS.read_timeout_s,
        request_timeout: float = DEFAULTS.request_timeout_s,
        max_body_bytes: int = DEFAULTS.max_body_mb << 20,
        pool_size: int = 64,
        clock: Clock | None = None,
        parse_slots: ParseSlots | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._parse_slots = parse_slots
        parts = urlsplit(self.base_url)
        # The dashboard's own origin, without any userinfo the configured URL may carry.
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        self.origin = urlunsplit((parts.scheme, netloc, "", "", ""))
        self._key = api_key
        self._clock: Clock = clock or SystemClock()
        self.scrub = Scrubber([api_key] if api_key else [])
        headers = {"User-Agent": f"datasync/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._transport = Transport(
            self.base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            deadline_s=request_timeout,
            max_body_bytes=max_body_bytes,
            pool_size=pool_size,
            headers=headers,
        )
        self._stream_access_path: str | None = None

    def close(self) -> None:
        self._transport.close()

    def page_done(self) -> None:
        if self._parse_slots is not None:
            self._parse_slots.done()

    def info(self) -> dict[str, Any]:
        """The API's self-description; proves the URL and the key before any real work."""
        shown = redact_url(self.base_url)
        try:
            answer = self._transport.exchange("GET", self.base_url, "GET /")
        except ConnectionFailedError as exc:
            raise FatalSourceError(
                f"cannot reach the API at {shown} ({exc.cause_name})", URL_HINT
            ) from exc
        if answer.status == 404:
            raise FatalSourceError(f"no DataSync API at {shown} (HTTP 404)", URL_HINT)
        body = self._check(answer, "GET /", feed=False)
        if not isinstance(body, dict):
            raise FatalSourceError(f"the answer at {shown} is not the DataSync API", URL_HINT)
        return body

    def events_page(
        self, cursor: str | None, limit: int, *, on_headers: HeadersHook | None = None
    ) -> Page:
        """One page of the standard endpoint, newest first."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        answer = self._send("GET", f"{self.base_url}/events", "GET /events", params=params,
                            on_headers=on_headers)
        return self._page(answer, "GET /events", feed=False)

    def feed_page(
        self,
        token: StreamToken,
        cursor: str | None,
        since_ms: int | None,
        until_ms: int | None,
        limit: int,
    ) -> Page:
        """One page of the feed; since/until bound event timestamps (inclusive)."""
        self.scrub.add(token.value)
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if since_ms is not None:
            params["since"] = since_ms
        if until_ms is not None:
            params["until"] = until_ms
        answer = self._send("GET", self._on_host(token.endpoint), "GET feed", params=params,
                            headers={token.header: token.value})
        return self._page(answer, "GET feed", feed=True)

    def request_stream_token(self) -> dict[str, Any]:
        """Ask for a stream token the way the service's dashboard does."""
        headers = {
            "User-Agent": BROWSER_USER_AGENT,
            "Origin": self.origin,
            "Referer": f"{self.origin}/",
            "Content-Type": "application/json",
        }
        if self._key:
            headers["Cookie"] = f"dashboard_api_key={self._key}"
        paths = (
            [self._stream_access_path]
            if self._stream_access_path
            else [f"{self.origin}{STREAM_ACCESS_PATH}", f"{self.base_url}{STREAM_ACCESS_PATH}"]
        )
        for number, url in enumerate(paths, start=1):
            answer = self._send("POST", url, "POST stream-access", headers=headers, data=b"{}")
            if answer.status == 404 and number < len(paths):
                continue  # documented at the host root; some deployments serve it under the base
            body = self._check(answer, "POST stream-access", feed=False, token_request=True)
            if not isinstance(body, dict):
                raise RetriableSourceError("the stream-access answer is not a JSON object")
            self._stream_access_path = url
            return body
        raise StreamAccessDeniedError("the API has no stream-access endpoint (HTTP 404)")

    def _page(self, answer: Answer, what: str, *, feed: bool) -> Page:
        """A data page; its decoding takes a parse slot, which the caller gives back once the
        page is handed on (see ParseSlots)."""
        slots = self._parse_slots if 200 <= answer.status < 300 else None
        if slots is not None:
            slots.hold()
        try:
            body = self._check(answer, what, feed=feed, decode=decode_page_body)
            return parse_page(body, "feed" if feed else "standard", _request_id(answer))
        except BaseException:
            if slots is not None:
                slots.done()
            raise

    def _on_host(self, endpoint: str) -> str:
        # An endpoint on another host would receive our key: keep only its path.
        parts = urlsplit(endpoint)
        path = parts.path or "/"
        if not path.startswith("/"):
            return f"{self.base_url}/{path}"
        return f"{self.origin}{path}"

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        on_headers: HeadersHook | None = None,
    ) -> Answer:
        answer = self._transport.exchange(
            method, url, what, params=params, headers=headers, data=data
        )
        if on_headers is not None:
            on_headers(answer.headers)
        return answer

    def _check(
        self,
        answer: Answer,
        what: str,
        *,
        feed: bool,
        token_request: bool = False,
        decode: Callable[[bytes], Any] = decode_body,
    ) -> Any:
        """The decoded body of a 2xx answer, or the error that the status and code call for."""
        status = answer.status
        body = decode(answer.body)
        if 200 <= status < 300:
            if body is None:
                raise RetriableSourceError(f"{what}: truncated or garbled JSON body")
            return body
        code, message = _error_fields(body)
        label = f"{what}: HTTP {status}" + (f" {code}" if code else "")
        detail = f"{label}: {self.scrub(message)}" if message else label
        if status == 401:
            raise AuthError(f"the API refused the key ({label})", KEY_HINT)
        if status == 429:
            wait = retry_after(answer.headers, body, self._clock.wall())
            raise RateLimitedError(f"{label} (rate limited)", retry_after=wait)
        if status == 400 and code in CURSOR_CODES:
            raise CursorExpiredError(detail)
        if status == 403:
            if code == "INVALID_STREAM_TOKEN" or (feed and code != "DASHBOARD_REQUIRED"):
                raise TokenRejectedError(detail, code=code)
            if code == "DASHBOARD_REQUIRED" or token_request:
                raise StreamAccessDeniedError(detail, code=code)
        if feed and status == 404:
            raise StreamAccessDeniedError(
                f"{detail} (the feed endpoint is not there)", code=code or "HTTP_404"
            )
        if status == 404:
            raise FatalSourceError(detail, URL_HINT)
        if status in (408, 425) or status >= 500:
            raise RetriableSourceError(detail)
        raise FatalSourceError(detail)


def _request_id(answer: Answer) -> str | None:
    rid = header(answer.headers, "X-Request-ID")
    return server_text(rid, 100) if rid else None


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    """The error body's code and message, escaped and shortened: server text is untrusted."""
    if not isinstance(body, dict):
        return None, None
    code, message = body.get("code"), body.get("message")
    nested = body.get("error")
    if isinstance(nested, dict):
        code = code or nested.get("code")
        message = message or nested.get("message")
    return (
        server_text(code, 60) if isinstance(code, str) else None,
        server_text(message) if isinstance(message, str) else None,
    )
