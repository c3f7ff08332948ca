"""The error families every layer shares, and the exit status each one maps to.

Errors only one layer raises live beside it (`source/errors.py`); these are the families the
CLI's error funnel turns into one line and an exit status.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit statuses of every command (README "Exit codes"; `datasync --help`)."""

    OK = 0
    FAILED = 1  # verify found a mismatch, a command was refused, or an unexpected error
    CONFIG = 2
    SOURCE = 3
    DATABASE = 4
    LOCK_HELD = 5
    SIGINT = 130
    SIGTERM = 143


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done (ingest: source exhausted; verify: all accounted for)",
    ExitCode.FAILED: "verify found missing or extra records, a command was refused, or an "
    "unexpected error",
    ExitCode.CONFIG: "a bad flag or setting",
    ExitCode.SOURCE: "the API failed or misbehaved (wrong key, bad URL, retries exhausted)",
    ExitCode.DATABASE: "the database failed (unreachable, refused, disk full, permission)",
    ExitCode.LOCK_HELD: "another datasync ingest is running against the same database",
    ExitCode.SIGINT: "stopped by SIGINT (Ctrl-C); checkpoint saved",
    ExitCode.SIGTERM: "stopped by SIGTERM; checkpoint saved",
}


class DatasyncError(Exception):
    """Base of every error the tool expects; `hint` says what the operator can do."""

    exit_code: int = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(DatasyncError):
    """A setting is missing or malformed."""

    exit_code = ExitCode.CONFIG


class SourceError(DatasyncError):
    """The API could not give us what we asked for."""

    exit_code = ExitCode.SOURCE


class RetriableSourceError(SourceError):
    """A failure worth retrying: 5xx, timeout, dropped connection, truncated body, 429."""

    def __init__(
        self, message: str, hint: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class FatalSourceError(SourceError):
    """A failure retrying cannot fix: bad key, bad URL, retries exhausted."""


class DatabaseError(DatasyncError):
    """PostgreSQL is unreachable or refused an operation."""

    exit_code = ExitCode.DATABASE


class LockHeldError(DatabaseError):
    """Another ingest holds the database's ingest lease (or took it from this run)."""

    exit_code = ExitCode.LOCK_HELD


class InterruptedRunError(DatasyncError):
    """Stopped by a signal; the exit status follows the shell convention 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}; checkpoint saved, rerun to continue")
        self.exit_code = 128 + signum
