"""What a person or a script sees: the live display, JSON lines, status tables.

The only package that imports rich; every line it prints is scrubbed of secrets.
"""

from .figures import Snapshot, fmt_duration, summary_lines, token_warning
from .live import (
    JsonReporter,
    NullReporter,
    Reporter,
    ReporterLogHandler,
    RichReporter,
    TextReporter,
    make_reporter,
    package_logs_to,
)
from .status import render_status

__all__ = [
    "JsonReporter",
    "NullReporter",
    "Reporter",
    "ReporterLogHandler",
    "RichReporter",
    "Snapshot",
    "TextReporter",
    "fmt_duration",
    "make_reporter",
    "package_logs_to",
    "render_status",
    "summary_lines",
    "token_warning",
]
