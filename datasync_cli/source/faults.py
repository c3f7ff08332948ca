"""Failures that only the source layer raises, on top of the shared error families."""

from __future__ import annotations

from ..errors import RetriableSourceError


class RateLimited(RetriableSourceError):
    """A 429: the service is pacing us; retried separately from real failures."""


class Stopped(Exception):
    """The stop flag was raised while waiting; nothing more was sent.

    Not a DatasyncError: the pipeline catches it and exits with the signal's status.
    """

    def __init__(self) -> None:
        super().__init__("stopped while waiting to call the API")
