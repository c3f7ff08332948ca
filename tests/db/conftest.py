"""Helpers for the storage tests: plain SQL against the test database, records, batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest

Query = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def query(migrated_url: str) -> Iterator[Query]:
    """Run one statement in autocommit on the migrated test database; returns its rows."""
    conn = psycopg2.connect(migrated_url, application_name="datasync-tests")
    conn.autocommit = True

    def run(statement: str, params: tuple[Any, ...] | dict[str, Any] | None = None) -> list[
        tuple[Any, ...]
    ]:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []

    yield run
    conn.close()
