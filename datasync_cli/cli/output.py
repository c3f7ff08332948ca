"""Machine-readable output for `--json` flags."""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


def stdout_gone() -> None:
    """The reader of stdout went away (`| head`): send what is still buffered to /dev/null, so
    Python's flush at exit does not fail again with "Exception ignored ... BrokenPipeError"."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test runner's buffer): nothing is flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
