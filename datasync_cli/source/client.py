"""HTTP to the DataSync API: one keep-alive session, error mapping, liberal envelope parsing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

from .. import __version__
from ..clock import Clock, SystemClock
from ..errors import FatalSourceError, RetriableSourceError
from ..models import Endpoint, Page
from ..redact import Scrubber, redact_url
from ..settings import DEFAULTS
from .errors import (
    AuthError,
    CursorExpiredError,
    RateLimitedError,
    StreamAccessDeniedError,
    TokenRejectedError,
)
from .headers import header, retry_after
from .token import StreamToken

STREAM_ACCESS_PATH = "/internal/dashboard/stream-access"
KEY_HINT = "check --api-key / TARGET_API_KEY"
URL_HINT = "check --api-url / API_BASE_URL"
# The service refuses token requests that do not look like its own dashboard.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)
CURSOR_CODES = frozenset({"CURSOR_EXPIRED", "CURSOR_INVALID_FORMAT"})

HeadersHook = Callable[[Mapping[str, str]], None]


# 19 digits in a row may be an integer beyond 64 bits, which orjson turns into a float. Mapping
# every digit to 0 and searching for nineteen zeros is ten times faster than a regex.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19


def decode_json(content: bytes) -> Any:
    """Parse a body; stdlib json takes what orjson refuses (lone surrogates) or would round
    (integers beyond 64 bits), so every record reaches the transform as it was sent."""
    if _LONG_DIGITS not in content.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(content.decode("utf-8", errors="surrogateescape"))
    except ValueError:
        return None


def parse_page(body: Any, endpoint: Endpoint, request_id: str | None = None) -> Page:
    """The envelope, read liberally; a body without a `data` list is garbled and retriable."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise RetriableSourceError("the API sent a truncated or garbled page (no data list)")
    pagination = body.get("pagination")
    if not isinstance(pagination, dict):
        pagination = {}
    meta = body.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    cursor = pagination.get("nextCursor", body.get("nextCursor"))
    next_cursor = cursor if isinstance(cursor, str) and cursor else None
    has_more = _flag(pagination.get("hasMore", body.get("hasMore")))
    total = _number(meta.get("total", body.get("total")))
    expires = _number(pagination.get("cursorExpiresIn"))
    rid = meta.get("requestId")
    return Page(
        records=body["data"],
        next_cursor=next_cursor,
        has_more=next_cursor is not None if has_more is None else has_more,
        total=None if total is None else int(total),
        endpoint=endpoint,
        cursor_expires_in=expires,
        request_id=rid if isinstance(rid, str) else request_id,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


class ApiClient:
    """Speaks HTTP to one API base; the key goes in a header, never in a URL or a message."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        connect_timeout: float = DEFAULTS.connect_timeout_s,
        read_timeout: float = DEFAULTS.read_timeout_s,
        pool_size: int = 64,
        clock: Clock | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self.origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self._key = api_key
        self._timeout = (connect_timeout, read_timeout)
        self._clock: Clock = clock or SystemClock()
        self.scrub = Scrubber([api_key] if api_key else [])
        self._session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update(
            {"User-Agent": f"datasync/{__version__}", "Accept": "application/json"}
        )
        if api_key:
            self._session.headers["X-API-Key"] = api_key
        self._stream_access_path: str | None = None

    def close(self) -> None:
        self._session.close()

    def info(self) -> dict[str, Any]:
        """The API's self-description; proves the URL and the key before any real work."""
        shown = redact_url(self.base_url)
        try:
            response = self._session.get(self.base_url, timeout=self._timeout)
        except requests.Timeout as exc:
            raise RetriableSourceError(f"the API at {shown} did not answer in time") from exc
        except requests.RequestException as exc:
            raise FatalSourceError(
                f"cannot reach the API at {shown} ({type(exc).__name__})", URL_HINT
            ) from exc
        if response.status_code == 404:
            raise FatalSourceError(f"no DataSync API at {shown} (HTTP 404)", URL_HINT)
        body = self._check(response, "GET /", feed=False)
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
        response = self._send(
            "GET", f"{self.base_url}/events", "GET /events", params=params, on_headers=on_headers
        )
        body = self._check(response, "GET /events", feed=False)
        return parse_page(body, "standard", header(response.headers, "X-Request-ID"))

    def feed_page(
        self,
        token: StreamToken,
        cursor: str | None,
        since_ms: int | None,
        until_ms: int | None,
        limit: int,
        *,
        on_headers: HeadersHook | None = None,
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
        response = self._send(
            "GET",
            self._on_host(token.endpoint),
            "GET feed",
            params=params,
            headers={token.header: token.value},
            on_headers=on_headers,
        )
        body = self._check(response, "GET feed", feed=True)
        return parse_page(body, "feed", header(response.headers, "X-Request-ID"))

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
            response = self._send(
                "POST", url, "POST stream-access", headers=headers, data=b"{}", on_headers=None
            )
            if response.status_code == 404 and number < len(paths):
                continue  # documented at the host root; some deployments serve it under the base
            body = self._check(response, "POST stream-access", feed=False, token_request=True)
            if not isinstance(body, dict):
                raise RetriableSourceError("the stream-access answer is not a JSON object")
            self._stream_access_path = url
            return body
        raise StreamAccessDeniedError("the API has no stream-access endpoint (HTTP 404)")

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
        on_headers: HeadersHook | None,
    ) -> requests.Response:
        try:
            response = self._session.request(
                method, url, params=params, headers=headers, data=data, timeout=self._timeout
            )
        except requests.Timeout as exc:
            raise RetriableSourceError(f"{what}: no answer within {self._timeout[1]:g} s") from exc
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            raise RetriableSourceError(f"{what}: connection failed ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise FatalSourceError(
                f"{what}: request could not be sent ({type(exc).__name__})", URL_HINT
            ) from exc
        if on_headers is not None:
            on_headers(response.headers)
        return response

    def _check(
        self, response: requests.Response, what: str, *, feed: bool, token_request: bool = False
    ) -> Any:
        """The decoded body of a 2xx answer, or the error that the status and code call for."""
        status = response.status_code
        body = decode_json(response.content)
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
            wait = retry_after(response.headers, body, self._clock.wall())
            raise RateLimitedError(f"{label} (rate limited)", retry_after=wait)
        if status == 400 and code in CURSOR_CODES:
            raise CursorExpiredError(detail)
        if status == 403:
            if code == "INVALID_STREAM_TOKEN" or (feed and code != "DASHBOARD_REQUIRED"):
                raise TokenRejectedError(detail)
            if code == "DASHBOARD_REQUIRED" or token_request:
                raise StreamAccessDeniedError(detail)
        if feed and status == 404:
            raise StreamAccessDeniedError(f"{detail} (the feed endpoint is not there)")
        if status == 404:
            raise FatalSourceError(detail, URL_HINT)
        if status in (408, 425) or status >= 500:
            raise RetriableSourceError(detail)
        raise FatalSourceError(detail)


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, dict):
        return None, None
    code, message = body.get("code"), body.get("message")
    nested = body.get("error")
    if isinstance(nested, dict):
        code = code or nested.get("code")
        message = message or nested.get("message")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )
