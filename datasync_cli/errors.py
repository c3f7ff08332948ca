"""A few error families; the CLI maps each to one line and an exit status."""

from __future__ import annotations


class DatasyncError(Exception):
    """Base of every error the tool expects; `hint` says what the operator can do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(DatasyncError):
    """A setting is missing or malformed."""

    exit_code = 2


class SourceError(DatasyncError):
    """The API could not give us what we asked for."""

    exit_code = 3


class RetriableSourceError(SourceError):
    """A failure worth retrying: 5xx, timeout, dropped connection, truncated body, 429."""

    def __init__(
        self, message: str, hint: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class FatalSourceError(SourceError):
    """A failure retrying cannot fix: bad key, bad URL, retries exhausted."""


class AuthError(FatalSourceError):
    """The API refused the key (401)."""


class CursorExpired(SourceError):
    """The saved cursor outlived its TTL; the reader rebuilds a position instead."""


class TokenRejected(SourceError):
    """The stream token is unknown or expired (403 INVALID_STREAM_TOKEN)."""


class StreamAccessDenied(SourceError):
    """The service would not hand out a stream token."""


class DatabaseError(DatasyncError):
    """PostgreSQL is unreachable or refused an operation."""

    exit_code = 4


class LockHeld(DatabaseError):
    """Another ingest holds the database's ingest lock."""

    exit_code = 5


class Interrupted(DatasyncError):
    """Stopped by a signal; the exit status follows the shell convention 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}; checkpoint saved, rerun to continue")
        self.exit_code = 128 + signum
