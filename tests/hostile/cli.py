"""`datasync` as a child process against a hostile server: bounded in time and in requests,
with the child's own peak memory measured (through scripts/peak_rss.py: a child exec'ed
straight from this process would report this process's peak as its own)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e import harness as h

from .server import HostileServer

PEAK_RSS = str(Path(__file__).resolve().parents[2] / "scripts" / "peak_rss.py")

Watch = Callable[[], str | None]


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float
    max_rss_mb: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return (f"exit {self.returncode} after {self.elapsed_s:.1f} s\n"
                f"--- stderr ---\n{self.stderr[-2500:]}\n--- stdout ---\n{self.stdout[-2500:]}")

    def summary(self) -> dict[str, Any]:
        return h.run_summary(self.stdout)


def run_cli(args: list[str], *, timeout: float = 45, env: dict[str, str] | None = None,
            watch: Watch | None = None) -> Run:
    """Run a child to its end. When it outlives `timeout`, or `watch` names a reason to stop
    it, it is made to dump its threads' stacks (SIGABRT) and the test fails with that."""
    child_env = {**h._env(env), "PYTHONFAULTHANDLER": "1"}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, PEAK_RSS, rss.name, *args], stdout=out,
                                stderr=err, env=child_env, start_new_session=True)
        reason: str | None = None
        status = _wait(proc, started + timeout, watch)
        if status is None:
            reason = (watch() if watch else None) or f"did not finish in {timeout:.0f} s"
            proc.send_signal(signal.SIGABRT)  # passed on: the child dumps its stacks
            status = _wait(proc, time.monotonic() + 10, None)
            if status is None:
                os.killpg(proc.pid, signal.SIGKILL)
                _, status = os.waitpid(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        peak_kib = int(rss.read().strip() or 0)
        run = Run(args, proc.returncode, out.read().decode(errors="replace"),
                  err.read().decode(errors="replace"), elapsed, peak_kib / 1024)
    if reason is not None:
        raise AssertionError(f"{' '.join(args[2:4])}: stopped: {reason}\n{run.describe()}")
    return run


def _wait(proc: subprocess.Popen[bytes], deadline: float, watch: Watch | None) -> int | None:
    while True:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            return status
        if time.monotonic() > deadline or (watch is not None and watch() is not None):
            return None
        time.sleep(0.05)


def ingest(server: HostileServer, dsn: str, *extra: str, page_size: int = 100,
           workers: int = 1, timeout: float = 45, env: dict[str, str] | None = None,
           watch: Watch | None = None, api_url: str | None = None) -> Run:
    """`datasync ingest --log-format json` against the hostile server."""
    key = server.service.api_key or "any-key"
    args = h.ingest_args(api_url or server.url, key, dsn, "--workers", str(workers),
                         "--page-size", str(page_size), *extra)
    return run_cli(args, timeout=timeout, env=env, watch=watch)


def command(server: HostileServer, dsn: str, name: str, *extra: str,
            timeout: float = 30) -> Run:
    """Another `datasync` command (verify, status) against the same server and database."""
    args = h.datasync(name, "--database-url", dsn, *extra)
    if name == "verify":
        args += ["--api-url", server.url, "--api-key", server.service.api_key or "any-key"]
    return run_cli(args, timeout=timeout)


def at_most(server: HostileServer, requests: int) -> Watch:
    """A watch that stops the child once the server has answered more than `requests` data
    requests: a run that loops is a failure, and there is no point in watching it longer."""
    def check() -> str | None:
        n = len(server.service.data_requests())
        return f"the source answered {n} data requests (bound: {requests})" if n > requests \
            else None
    return check


def repeats(server: HostileServer, times: int = 3) -> Watch:
    """A watch that stops the child once it asked for the same page more than `times` times:
    it is retrying something that will never succeed."""
    def check() -> str | None:
        asked = Counter((r.route, tuple(sorted(r.query.items())))
                        for r in server.service.data_requests())
        worst = max(asked.values(), default=0)
        return f"the same page was asked for {worst} times" if worst > times else None
    return check


def ok(run: Run, scenario: str) -> None:
    assert run.returncode == 0, f"{scenario}: expected exit 0\n{run.describe()}"


def no_crash(run: Run, scenario: str) -> None:
    """Nothing a server sends may end in the funnel of last resort (exit 1 'unexpected')."""
    assert "unexpected" not in run.stderr and "Traceback" not in run.output, (
        f"{scenario}: crashed\n{run.describe()}")


def error_line(run: Run, scenario: str) -> str:
    """The one `error: ...` line a failed command printed on stderr. In text mode the run's
    own lines share stderr: there the error line must be the last one, and the only one."""
    if "text" not in run.args:
        return h.error_line(subprocess.CompletedProcess(run.args, run.returncode, run.stdout,
                                                        run.stderr), scenario)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert "Traceback" not in run.output, f"{scenario}: traceback printed\n{run.describe()}"
    assert len(errors) == 1 and lines[-1] == errors[0], (
        f"{scenario}: expected one 'error: ...' line ending stderr, got {lines[-6:]}")
    return errors[0]


def accounted(run: Run, scenario: str) -> dict[str, Any]:
    """fetched = inserted + duplicates + rejected + conflicts in the run's summary."""
    s = run.summary()
    parts = s["inserted"] + s["duplicates"] + s["rejected"] + s.get("conflicts", 0)
    assert s["fetched"] == parts, (
        f"{scenario}: the summary does not add up: fetched {s['fetched']} != inserted "
        f"{s['inserted']} + duplicates {s['duplicates']} + rejected {s['rejected']} + "
        f"conflicts {s.get('conflicts', 0)}")
    return s
