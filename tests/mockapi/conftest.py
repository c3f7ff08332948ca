"""Simulator fixtures: servers on free ports in this process, clients with the key set."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import requests

from datasync_cli.clock import Clock
from datasync_cli.mockapi import MockConfig, MockServer, running_mock

BASE = {"events": 2_000, "rate_limit": 10_000}

StartMock = Callable[..., MockServer]


@pytest.fixture
def start_mock() -> Iterator[StartMock]:
    """Start a simulator with BASE settings overridden by keyword arguments (and a clock)."""
    with contextlib.ExitStack() as stack:

        def start(clock: Clock | None = None, **overrides: Any) -> MockServer:
            config = MockConfig(**{**BASE, **overrides})
            return stack.enter_context(running_mock(config, clock))

        yield start


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def keyed(server: MockServer) -> dict[str, str]:
    return {"X-API-Key": server.api_key}


def dashboard_headers(server: MockServer) -> dict[str, str]:
    """What a browser on the dashboard sends to the stream-access endpoint."""
    return {
        "X-API-Key": server.api_key,
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
        "Origin": server.root_url,
        "Referer": server.root_url + "/dashboard",
        "Cookie": f"dashboard_api_key={server.api_key}",
    }


def stream_token(http: requests.Session, server: MockServer) -> str:
    r = http.post(server.root_url + "/internal/dashboard/stream-access",
                  headers=dashboard_headers(server), json={})
    assert r.status_code == 200, r.text
    token: str = r.json()["streamAccess"]["token"]
    return token


def forge_cursor(event_id: str, ts_ms: int, exp_ms: int, urlsafe: bool, padded: bool) -> str:
    """A client-built cursor; JSON whitespace is added so that the standard form needs padding."""
    raw = orjson.dumps({"id": event_id, "ts": ts_ms, "v": 2, "exp": exp_ms})
    if len(raw) % 3 == 0:
        raw += b" "
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return text if padded else text.rstrip("=")


def read_all(
    http: requests.Session,
    url: str,
    headers: dict[str, str],
    limit: int = 5000,
    params: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Follow nextCursor to the end; returns every record and every response body."""
    records: list[dict[str, Any]] = []
    bodies: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": limit, **(params or {})}
        if cursor:
            query["cursor"] = cursor
        r = http.get(url, headers=headers, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        bodies.append(body)
        records.extend(body["data"])
        if not body["pagination"]["hasMore"]:
            return records, bodies
        cursor = body["pagination"]["nextCursor"]
        assert cursor
