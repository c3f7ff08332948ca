"""`datasync mock-api` as a child process on a free port, for end-to-end tests and benchmarks."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

COMMAND = [sys.executable, "-m", "datasync_cli", "mock-api"]


@dataclass(frozen=True)
class MockProcess:
    url: str
    api_key: str
    args: list[str]
    proc: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str, api_key: str) -> bool:
    request = urllib.request.Request(url, headers={"X-API-Key": api_key})
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, which is all we wait for
    except OSError:
        return False


@contextmanager
def mock_process(
    knobs: Sequence[str],
    api_key: str,
    output: IO[bytes] | int = subprocess.DEVNULL,
    env: Mapping[str, str] | None = None,
    start_timeout_s: float = 60.0,
) -> Iterator[MockProcess]:
    """Start the simulator with `knobs`, wait until it answers, stop it (SIGTERM) afterwards."""
    port = free_port()
    args = [*COMMAND, "--port", str(port), "--api-key", api_key, *knobs]
    proc = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + start_timeout_s
    while not _answers(url, api_key):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"datasync mock-api did not start (exit {proc.returncode})")
        time.sleep(0.1)
    try:
        yield MockProcess(url, api_key, args, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
