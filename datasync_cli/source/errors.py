"""Errors only the source layer raises, on top of the shared families in `errors.py`."""

from __future__ import annotations

from ..errors import FatalSourceError, RetriableSourceError, SourceError


class AuthError(FatalSourceError):
    """The API refused the key (401)."""


class CursorExpiredError(SourceError):
    """The saved cursor outlived its TTL (or was refused); the reader rebuilds a position."""


class _CodedError(SourceError):
    """A refusal that carries the service's error code (for the operator's event log)."""

    def __init__(self, message: str, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


class TokenRejectedError(_CodedError):
    """The stream token is unknown or expired (403 INVALID_STREAM_TOKEN)."""


class StreamAccessDeniedError(_CodedError):
    """The service would not hand out a stream token, or the feed is not there."""


class RateLimitedError(RetriableSourceError):
    """A 429: the service is pacing us; retried separately from real failures."""


class StopRequestedError(Exception):
    """The stop flag was raised while waiting; nothing more was sent.

    Not a DatasyncError: the pipeline catches it and exits with the signal's status.
    """

    def __init__(self) -> None:
        super().__init__("stopped while waiting to call the API")


class RedirectRefusedError(FatalSourceError):
    """A redirect to another origin: following it would hand over the API key. Never a reason
    to fall back to another endpoint: the configured API itself is pointing elsewhere."""


class SourceNotAdvancingError(FatalSourceError):
    """The service keeps saying there is more but hands back nothing new."""


class WaitTooLongError(FatalSourceError):
    """The service asked for a wait beyond the cap: stop (and resume later) instead of sleeping
    for as long as a server says."""

    def __init__(self, seconds: float, limit: float, what: str) -> None:
        shown = "an unbounded time" if seconds == float("inf") else f"{seconds:,.0f} s"
        super().__init__(
            f"{what} asked us to wait {shown}, more than the {limit:,.0f} s allowed; stopping",
            "rerun later (ingest resumes from its checkpoint), or raise --max-wait / "
            "INGEST_MAX_WAIT if such waits are expected",
        )


def bounded_wait(seconds: float, limit: float, what: str) -> float:
    """`seconds`, or WaitTooLongError when a server asks for more than `limit`."""
    if seconds > limit:
        raise WaitTooLongError(seconds, limit, what)
    return seconds
