"""Requests and responses as the simulated service sees them, and its error bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """An HTTP request reduced to what the service looks at; header names in lower case."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass
class Response:
    """What to send back; `drop` closes the connection without sending anything."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False


Answer = tuple[int, Any, list[tuple[str, str]]]


class Refusal(Exception):
    """An error answer raised from deep inside a handler; the app turns it into a response."""

    def __init__(self, status: int, body: Any, headers: list[tuple[str, str]] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or []


def error(status: int, reason: str, message: str, code: str, **extra: Any) -> tuple[int, Any]:
    """The service's error body: `{"error", "message", "code"}` plus any extra fields."""
    return status, {"error": reason, "message": message, "code": code, **extra}


def unauthorized() -> Refusal:
    return Refusal(*error(401, "Unauthorized", "Invalid or missing API key", "UNAUTHORIZED"))


def bad_request(message: str, code: str) -> Refusal:
    return Refusal(*error(400, "Bad Request", message, code))


def seconds(value: float) -> int | float:
    """Whole seconds as an int (the live form); fractions kept for sub-second test settings."""
    return int(value) if float(value).is_integer() else round(value, 3)


def json_response(
    status: int, body: Any, request_id: str, extra: list[tuple[str, str]]
) -> Response:
    """A JSON answer with the headers every answer of the service carries."""
    headers = [
        ("Content-Type", JSON_TYPE),
        ("X-Powered-By", "Express"),
        ("X-Request-ID", request_id),
        *extra,
    ]
    return Response(status, orjson.dumps(body), headers)
