"""A local DataSync-compatible service for tests, demos and benchmarks (`datasync mock-api`)."""

from .app import MockApp
from .config import MockConfig
from .counters import MockCounters
from .cursor import CursorPosition, decode_cursor, encode_cursor
from .routes import FEED_PATH, TOKEN_PATH
from .server import MockServer, running_mock, serve
from .truth import CHECKSUM_SQL, BadRecord, StreamTruth, TruthSummary, id_checksum

__all__ = [
    "CHECKSUM_SQL",
    "FEED_PATH",
    "TOKEN_PATH",
    "BadRecord",
    "CursorPosition",
    "MockApp",
    "MockConfig",
    "MockCounters",
    "MockServer",
    "StreamTruth",
    "TruthSummary",
    "decode_cursor",
    "encode_cursor",
    "id_checksum",
    "running_mock",
    "serve",
]
