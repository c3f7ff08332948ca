"""Hostile-server fixtures: a fresh database as the URL the CLI takes, and servers that are
stopped when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from e2e import harness as h

from .server import HostileServer, serving
from .service import Service

Serve = Callable[[Service], HostileServer]


@pytest.fixture
def dsn(database_url: str) -> str:
    return h.dsn_url(database_url)


@pytest.fixture
def serve() -> Iterator[Serve]:
    with ExitStack() as stack:

        def start(service: Service) -> HostileServer:
            return stack.enter_context(serving(service))

        yield start
