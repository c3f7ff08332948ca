"""End-to-end fixtures: the test database as the URL the CLI takes, and mock-api processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from datasync_cli.mockapi.config import MockConfig

from . import harness as h

StartMock = Callable[[MockConfig], h.MockProcess]


@pytest.fixture
def db_url(database_url: str) -> str:
    """The fresh per-test database as a postgresql:// URL (the only form --database-url takes)."""
    return h.dsn_url(database_url)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[StartMock]:
    """Start `datasync mock-api` processes serving a MockConfig (requests logged); all are
    stopped when the test ends."""
    with ExitStack() as stack:

        def start(config: MockConfig) -> h.MockProcess:
            return stack.enter_context(h.mock_logged(tmp_path, config))

        yield start
