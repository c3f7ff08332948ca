"""What the CLI tests share: the datasync variables kept out of a test, an isolated working
directory and environment, and a DSN as the URL the CLI takes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg2.extensions
import pytest

SETTINGS_ENV = (
    "DATABASE_URL", "API_BASE_URL", "TARGET_API_KEY", "STREAM_TOKEN", "INGEST_WORKERS",
    "INGEST_PAGE_SIZE", "LOG_FORMAT",
)


def forget_settings() -> None:
    for name in SETTINGS_ENV:
        os.environ.pop(name, None)


def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """An empty cwd and no datasync variables; the environment is restored afterwards, since
    the app loads .env into os.environ. Used as an autouse fixture by the CLI test modules."""
    saved = dict(os.environ)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    forget_settings()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def url_of(dsn: str) -> str:
    """A keyword or URL DSN as the postgresql:// URL the CLI takes."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    p = psycopg2.extensions.parse_dsn(dsn)
    user = quote(p.get("user", ""), safe="")
    auth = f"{user}:{quote(p['password'], safe='')}@" if p.get("password") else f"{user}@"
    return (f"postgresql://{auth if user else ''}{p.get('host', 'localhost')}:"
            f"{p.get('port', '5432')}/{quote(p.get('dbname', ''), safe='')}")
