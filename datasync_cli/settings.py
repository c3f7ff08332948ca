"""Typed settings read once (flag > environment > .env) and validated; secrets never printed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import ConfigError

DEFAULT_DATABASE_URL = "postgresql://postgres:postgres@localhost:5432/ingestion"
DEFAULT_PAGE_SIZE = 5000
MAX_PAGE_SIZE = 5000
DEFAULT_WORKERS = 8
SECRET_FIELDS = ("api_key", "token")

LogFormat = Literal["text", "json"]


# libpq's keyword form: host=... password=secret dbname=...; values may be single-quoted.
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def is_keyword_dsn(dsn: str) -> bool:
    return "://" not in dsn and "=" in dsn


def redact_url(url: str) -> str:
    """Hide the password of a URL or DSN so it can be shown to an operator."""
    if is_keyword_dsn(url):
        return _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + "***", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


def dsn_password(url: str) -> str | None:
    """The password inside a DSN, or None; used to scrub it from any output."""
    if is_keyword_dsn(url):
        match = _KEYWORD_PASSWORD.search(url)
        if not match:
            return None
        value = match.group(2)
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        return value or None
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def secret_values(api_key: str | None, token: str | None, database_url: str | None) -> list[str]:
    """The secrets among raw option values, longest first, for scrubbing output."""
    password = dsn_password(database_url) if database_url else None
    if password == dsn_password(DEFAULT_DATABASE_URL):
        password = None  # the documented default is no secret, and "postgres" is everywhere
    found = {s for s in (api_key, token, password) if s}
    return sorted(found, key=len, reverse=True)


@dataclass(frozen=True)
class Settings:
    """Everything a command needs; built by the CLI, passed down, never read from os.environ."""

    database_url: str = DEFAULT_DATABASE_URL
    api_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    workers: int | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    log_format: LogFormat = "text"
    progress: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 8
    token_ttl: float = 300.0
    debug: bool = False

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            elif f.name == "database_url":
                value = redact_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def secrets(self) -> list[str]:
        """Every secret value in play, so output layers can scrub them."""
        return secret_values(self.api_key, self.token, self.database_url)

    def require_api(self) -> str:
        """The API base URL, or a ConfigError that says how to set it."""
        if not self.api_url:
            raise ConfigError(
                "no API URL configured",
                "pass --api-url or set API_BASE_URL (for example http://127.0.0.1:8080/api/v1)",
            )
        return self.api_url

    def effective_workers(self) -> int:
        return self.workers if self.workers is not None else DEFAULT_WORKERS

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def validate(settings: Settings) -> Settings:
    """Reject malformed settings with one line that names the fix."""
    if settings.api_url is not None:
        url = settings.api_url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"API URL {url!r} is not an http(s) URL",
                "use a base such as http://127.0.0.1:8080/api/v1",
            )
        settings = replace(settings, api_url=url)
    db = urlsplit(settings.database_url)
    if db.scheme not in ("postgresql", "postgres") and not is_keyword_dsn(settings.database_url):
        raise ConfigError(
            f"database URL {redact_url(settings.database_url)!r} is not a postgresql:// URL",
            "use --database-url postgresql://USER:PASSWORD@HOST:PORT/DBNAME "
            "(or libpq's host=... dbname=... form)",
        )
    if settings.workers is not None and not 1 <= settings.workers <= 64:
        raise ConfigError(f"--workers must be between 1 and 64, not {settings.workers}")
    if not 1 <= settings.page_size <= MAX_PAGE_SIZE:
        raise ConfigError(
            f"--page-size must be between 1 and {MAX_PAGE_SIZE}, not {settings.page_size}"
        )
    if settings.log_format not in ("text", "json"):
        raise ConfigError(f"--log-format must be text or json, not {settings.log_format!r}")
    return settings
