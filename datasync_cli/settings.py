"""Typed settings read once (flag > environment > .env) and validated; secrets never printed.

`DEFAULTS` is the one table of default values: the CLI shows them as its defaults and every
layer takes them from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Literal
from urllib.parse import urlsplit

from .errors import ConfigError
from .redact import is_keyword_dsn, redact_url, secret_values

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
SECRET_FIELDS = ("api_key", "token")
# No USER:PASSWORD@ in it: output scrubbing would mask it as a password.
DSN_EXAMPLE = (
    "use --database-url postgresql://USER@HOST:5432/DBNAME, with USER:PASSWORD for a "
    "password, or libpq's form host=HOST port=5432 dbname=DBNAME"
)


@dataclass(frozen=True)
class Defaults:
    """Every default in one place (README "Settings")."""

    database_url: str = "postgresql://postgres:postgres@localhost:5432/ingestion"
    page_size: int = 5000
    max_page_size: int = 5000  # the service clamps larger limits to this
    workers: int = 8
    max_workers: int = 64
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0  # one socket read
    request_timeout_s: float = 120.0  # one whole exchange, however the bytes trickle in
    max_body_mb: int = 64  # one answer, after decompression (a page is about 2 MB)
    max_wait_s: float = 900.0  # the longest wait a server may ask for before the run stops
    max_attempts: int = 8  # per request, for failures (429s have their own allowance)
    token_ttl_s: float = 300.0  # the service's stream-token lifetime
    cursor_ttl_s: float = 117.0  # the service's cursor lifetime
    parse_slots: int = 2  # pages decoded at once across readers: bounds peak memory


DEFAULTS = Defaults()


@dataclass(frozen=True)
class Settings:
    """Everything a command needs; built by the CLI, passed down, never read from os.environ."""

    database_url: str = DEFAULTS.database_url
    api_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    workers: int | None = None
    page_size: int = DEFAULTS.page_size
    log_format: LogFormat = "text"
    progress: bool = True
    connect_timeout: float = DEFAULTS.connect_timeout_s
    read_timeout: float = DEFAULTS.read_timeout_s
    request_timeout: float = DEFAULTS.request_timeout_s
    max_body_mb: int = DEFAULTS.max_body_mb
    max_wait: float = DEFAULTS.max_wait_s
    max_attempts: int = DEFAULTS.max_attempts
    token_ttl: float = DEFAULTS.token_ttl_s

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            elif f.name in ("database_url", "api_url") and value:
                value = redact_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def secrets(self) -> list[str]:
        """Every secret value in play, so output layers can scrub them."""
        return secret_values(self.api_key, self.token, urls=(self.database_url, self.api_url))

    def require_api(self) -> str:
        """The API base URL, or a ConfigError that says how to set it."""
        if not self.api_url:
            raise ConfigError(
                "no API URL configured",
                "pass --api-url or set API_BASE_URL (for example http://127.0.0.1:8080/api/v1)",
            )
        return self.api_url

    def effective_workers(self) -> int:
        return self.workers if self.workers is not None else DEFAULTS.workers

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def validate(settings: Settings) -> Settings:
    """Reject malformed settings with one line that names the fix."""
    if settings.api_url is not None:
        url = settings.api_url.strip().rstrip("/")
        try:
            parts = urlsplit(url)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # an unclosed [IPv6] bracket, a port that is not a number
            usable = False
        if not usable:
            raise ConfigError(
                f"API URL {redact_url(url)!r} is not an http(s) URL",
                "use a base such as http://127.0.0.1:8080/api/v1",
            )
        settings = replace(settings, api_url=url)
    scheme = settings.database_url.split("://", 1)[0] if "://" in settings.database_url else ""
    if scheme not in ("postgresql", "postgres") and not is_keyword_dsn(settings.database_url):
        raise ConfigError(
            f"database URL {redact_url(settings.database_url)!r} is not a postgresql:// URL",
            DSN_EXAMPLE,
        )
    if settings.workers is not None and not 1 <= settings.workers <= DEFAULTS.max_workers:
        raise ConfigError(
            f"--workers must be between 1 and {DEFAULTS.max_workers}, not {settings.workers}",
            f"for example --workers {DEFAULTS.workers} or INGEST_WORKERS={DEFAULTS.workers}",
        )
    if not 1 <= settings.page_size <= DEFAULTS.max_page_size:
        raise ConfigError(
            f"--page-size must be between 1 and {DEFAULTS.max_page_size}, "
            f"not {settings.page_size}",
            f"for example --page-size {DEFAULTS.page_size} or "
            f"INGEST_PAGE_SIZE={DEFAULTS.page_size}",
        )
    for flag, value in (("--request-timeout", settings.request_timeout),
                        ("--max-wait", settings.max_wait)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{flag} must be a positive number of seconds, not {value:g}",
                              f"for example {flag} 120")
    if settings.max_body_mb < 1:
        raise ConfigError(f"--max-body-mb must be at least 1, not {settings.max_body_mb}",
                          "for example --max-body-mb 64")
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError(
            f"--log-format must be text or json, not {settings.log_format!r}",
            "for example --log-format json or LOG_FORMAT=json",
        )
    return settings
