"""Crash matrix: the process dies or is stopped mid-run; a rerun must end with the exact set.

Every test runs real `datasync ingest` processes against a real `datasync mock-api` and a real
PostgreSQL, and checks the end state against the simulator's ground truth.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import subprocess
import time
from pathlib import Path

import psycopg2.errors
import pytest

from datasync_cli.mockapi.config import MockConfig

from . import harness as h

pytestmark = pytest.mark.e2e

# Far above the few seconds the contract allows: only a hang fails it, not a slow machine.
STOP_BOUND_S = 10.0
CURSOR_TTL_S = 1.0
DOWNTIME_S = 1.5  # longer than the cursor TTL: every saved cursor is expired on resume


@pytest.fixture
def dsn(database_url: str) -> str:
    return h.dsn_url(database_url)


def _kill_at_random_moments(
    mock: h.MockProcess, dsn: str, tmp_path: Path, total: int, seed: int, extra: list[str],
    kills: int = 3,
) -> list[int]:
    """Start ingest, SIGKILL it once a random share of the events is stored (plus a random
    delay), stay down longer than the cursor TTL, repeat; returns the row count after each."""
    rng = random.Random(seed)
    shares = sorted(rng.uniform(0.1, 0.8) for _ in range(kills))
    counts: list[int] = []
    for n, share in enumerate(shares):
        log = tmp_path / f"ingest-kill-{n}.log"
        proc = h.start(h.ingest_cmd(mock, dsn, *extra), log)
        try:
            h.wait_for_rows(dsn, max(int(total * share), counts[-1] + 1 if counts else 1), proc)
            time.sleep(rng.uniform(0.0, 0.3))
            alive = proc.poll() is None
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(30)
        assert alive, (
            f"kill {n} came too late: ingest had already exited {proc.returncode}: "
            f"{h.log_text(log)[-1500:]}"
        )
        counts.append(h.count_rows(dsn))
        time.sleep(DOWNTIME_S)
    return counts


@pytest.mark.parametrize("workers", [1, 4])
def test_sigkill_at_random_moments_then_rerun_stores_exact_set(
    tmp_path: Path, dsn: str, workers: int
) -> None:
    scenario = f"SIGKILL x3 with downtime > cursor TTL, --workers {workers}"
    config = MockConfig(events=40_000, latency_ms=50, cursor_ttl=CURSOR_TTL_S)
    extra = ["--workers", str(workers), "--page-size", "1000"]
    with h.mock_for(tmp_path, config) as mock:
        counts = _kill_at_random_moments(
            mock, dsn, tmp_path, config.events, seed=1000 + workers, extra=extra
        )
        # Each kill landed mid-run: something stored, not everything.
        assert all(0 < c < config.events for c in counts), f"{scenario}: rows after kills {counts}"
        h.assert_checkpoints_consistent(dsn, f"{scenario}, after the last kill")
        result = h.run(h.ingest_cmd(mock, dsn, *extra))
        h.assert_ingest_ok(result, scenario)
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_checkpoints_consistent(dsn, scenario)
        h.assert_verify(mock, dsn, scenario)


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_stop_signal_mid_batch_saves_checkpoint_and_rerun_completes(
    tmp_path: Path, dsn: str, signum: int, status: int
) -> None:
    name = signal.Signals(signum).name
    scenario = f"{name} mid-batch"
    config = MockConfig(events=30_000, latency_ms=150, seed=7)
    extra = ["--workers", "2", "--page-size", "2000"]
    with h.mock_for(tmp_path, config) as mock:
        log = tmp_path / "ingest-signal.log"
        proc = h.start(h.ingest_cmd(mock, dsn, *extra), log)
        try:
            stored = h.wait_for_rows(dsn, 4000, proc)
            assert proc.poll() is None and 0 < stored < config.events, (
                f"{scenario}: ingest was not mid-run when signalled ({stored} rows, "
                f"exit {proc.poll()}): {h.log_text(log)[-1500:]}"
            )
            sent = time.monotonic()
            proc.send_signal(signum)
            try:
                code = proc.wait(STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{scenario}: ingest still running {STOP_BOUND_S} s after {name}")
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        output = h.log_text(log)
        assert code == status, f"{scenario}: exit {code} (expected {status}): {output[-1500:]}"
        assert "Traceback" not in output, f"{scenario}: traceback: {output[-2000:]}"
        h.assert_checkpoints_consistent(dsn, f"{scenario}, {took:.1f} s to stop")
        runs = h.query(dsn, "SELECT status FROM ingest_runs ORDER BY run_id DESC LIMIT 1")
        assert runs == [("interrupted",)], f"{scenario}: last run recorded as {runs}"
        result = h.run(h.ingest_cmd(mock, dsn, *extra))
        h.assert_ingest_ok(result, f"{scenario}, rerun")
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_checkpoints_consistent(dsn, f"{scenario}, after the rerun")
        h.assert_verify(mock, dsn, scenario)


def test_second_concurrent_ingest_is_refused_and_first_completes(
    tmp_path: Path, dsn: str
) -> None:
    scenario = "two ingests against one database"
    config = MockConfig(events=20_000, latency_ms=100, seed=11)
    extra = ["--workers", "2", "--page-size", "1000"]
    with h.mock_for(tmp_path, config) as mock:
        log = tmp_path / "ingest-first.log"
        first = h.start(h.ingest_cmd(mock, dsn, *extra), log)
        try:
            stored = h.wait_for_rows(dsn, 1, first)
            assert first.poll() is None and stored < config.events, (
                f"{scenario}: first ingest not running: {h.log_text(log)[-1500:]}"
            )
            second = h.run(h.ingest_cmd(mock, dsn, *extra), timeout=60)
            first_code = first.wait(120)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        assert second.returncode == 5, (
            f"{scenario}: second ingest exited {second.returncode}, expected 5: "
            f"{second.stderr[-1500:]}"
        )
        line = h.error_line(second, f"{scenario}, second ingest")
        assert "another datasync ingest is already running" in line, line
        assert first_code == 0, f"{scenario}: first ingest exited {first_code}: {h.log_text(log)}"
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_checkpoints_consistent(dsn, scenario)
        h.assert_verify(mock, dsn, scenario)


def test_sigterm_while_waiting_for_rate_limit_window_exits_promptly(
    tmp_path: Path, dsn: str
) -> None:
    """SIGTERM while every reader waits out a 60 s rate-limit window: exit 143 at once."""
    scenario = "SIGTERM during a rate-limit wait"
    config = MockConfig(events=20_000, seed=12, no_stream_access=True, rate_limit=2,
                        rate_window=60.0)
    extra = ["--workers", "2", "--page-size", "1000"]
    with h.mock_for(tmp_path, config) as mock:
        log = tmp_path / "ingest-rate-wait.log"
        proc = h.start(h.ingest_cmd(mock, dsn, *extra), log)
        try:
            # Two pages use up the window; the readers then wait for about a minute.
            stored = h.wait_for_rows(dsn, 2000, proc)
            time.sleep(1.0)
            assert proc.poll() is None and stored < config.events, (
                f"{scenario}: ingest not waiting: {h.log_text(log)[-1500:]}"
            )
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{scenario}: ingest still running {STOP_BOUND_S} s after SIGTERM")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        output = h.log_text(log)
        assert code == 143 and "Traceback" not in output, f"{scenario}: exit {code}: {output}"
        h.assert_checkpoints_consistent(dsn, scenario)
    # The rerun, against the same stream without the tight limit, completes exactly.
    fast = dataclasses.replace(config, rate_limit=1000, rate_window=1.0)
    with h.mock_for(tmp_path, fast) as mock:
        h.assert_ingest_ok(h.run(h.ingest_cmd(mock, dsn, *extra)), f"{scenario}, rerun")
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_verify(mock, dsn, scenario)


def test_sessions_killed_then_second_ingest_still_refused(
    tmp_path: Path, dsn: str
) -> None:
    """The ingest lease is a row, not a session. When every session of a running ingest ends
    (pg_terminate_backend, a server restart, a network cut) the ingest reconnects and its lease
    is still there, so a second `datasync ingest` is still refused."""
    scenario = "every session of a running ingest terminated"
    config = MockConfig(events=30_000, latency_ms=150, seed=13)
    extra = ["--workers", "2", "--page-size", "1000"]
    sessions = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'datasync'"
    )
    with h.mock_for(tmp_path, config) as mock:
        log = tmp_path / "ingest-first.log"
        first = h.start(h.ingest_cmd(mock, dsn, *extra), log)
        try:
            h.wait_for_rows(dsn, 2000, first)
            assert first.poll() is None, f"{scenario}: first ingest ended: {h.log_text(log)}"
            killed = int(h.query(dsn, sessions)[0][0])
            assert killed >= 1, f"{scenario}: no datasync session to terminate"
            time.sleep(1.0)  # time enough to reconnect
            first_alive = first.poll() is None
            second = h.run(h.ingest_cmd(mock, dsn, *extra), timeout=120)
            first_code = first.wait(120)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        if not first_alive:
            h.assert_ingest_ok(second, f"{scenario}, ingest after the first stopped")
        # What two concurrent runs left behind is checked first: it says how bad it was.
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_checkpoints_consistent(dsn, scenario)
        h.assert_verify(mock, dsn, scenario)
        if first_alive:
            assert second.returncode == 5, (
                f"{scenario}: a second ingest ran alongside the first (exit "
                f"{second.returncode}) after its sessions were terminated; its summary: "
                f"{[line for line in second.stdout.splitlines() if 'summary' in line]}"
            )
            assert first_code == 0, f"{scenario}: first ingest exited {first_code}"


def test_crashed_ingest_on_another_host_is_taken_over_after_expiry(
    tmp_path: Path, dsn: str
) -> None:
    """A holder on another host cannot be looked up from here: its lease is taken over only
    once it expired (the server's clock; a crash there stops its renewals)."""
    scenario = "lease left by an ingest that crashed on another host"
    config = MockConfig(events=5_000, seed=14)
    extra = ["--workers", "2", "--page-size", "1000"]
    with h.mock_for(tmp_path, config) as mock:
        assert h.run(h.datasync("migrate", "--database-url", dsn)).returncode == 0
        h.query(
            dsn,
            "INSERT INTO ingest_lease (holder_id, host, pid, process_start, version, "
            "expires_at) VALUES ('crashed', 'ingest-7f3a', 4242, '', '0.1.0', "
            "now() + interval '3 seconds')",
        )
        refused = h.run(h.ingest_cmd(mock, dsn, *extra), timeout=60)
        assert refused.returncode == 5, f"{scenario}: exit {refused.returncode}: {refused.stderr}"
        line = h.error_line(refused, scenario)
        assert "already running" in line and "host ingest-7f3a, pid 4242, datasync 0.1.0" in line
        assert h.wait_until(
            lambda: h.query(dsn, "SELECT expires_at < now() FROM ingest_lease") == [(True,)], 10
        )
        result = h.run(h.ingest_cmd(mock, dsn, *extra))
        h.assert_ingest_ok(result, scenario)
        took = [r["message"] for r in h.json_lines(result.stdout)
                if "took over the ingest lease" in r.get("message", "")]
        assert len(took) == 1 and "host ingest-7f3a, pid 4242" in took[0] and "expired" in took[0]
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)


def _pause_outside_the_lease_row(proc: subprocess.Popen[bytes], dsn: str) -> None:
    """SIGSTOP `proc` at a moment it does not hold the lease row's lock, and expire its lease
    meanwhile, as if the pause had lasted longer than the lease."""
    for _ in range(50):
        proc.send_signal(signal.SIGSTOP)
        try:
            h.query(dsn, "SET LOCAL lock_timeout = '300ms'; "
                         "UPDATE ingest_lease SET expires_at = now() - interval '1 second'")
            return
        except psycopg2.errors.LockNotAvailable:
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
    pytest.fail("the ingest always held the lease row's lock")


def test_ingest_paused_past_its_lease_is_fenced_out_by_the_next(
    tmp_path: Path, dsn: str
) -> None:
    """A process paused (SIGSTOP, a frozen VM) longer than its lease: another ingest takes the
    lease over; when the first wakes, its next write finds the lease gone and it stops with
    exit 5 without writing anything, and the second completes."""
    scenario = "first ingest paused past its lease, second takes over"
    config = MockConfig(events=30_000, latency_ms=150, seed=15)
    extra = ["--workers", "2", "--page-size", "1000"]
    with h.mock_for(tmp_path, config) as mock:
        first_log, second_log = tmp_path / "ingest-first.log", tmp_path / "ingest-second.log"
        first = h.start(h.ingest_cmd(mock, dsn, *extra), first_log)
        second: subprocess.Popen[bytes] | None = None
        try:
            h.wait_for_rows(dsn, 3000, first)
            assert first.poll() is None, f"{scenario}: {h.log_text(first_log)[-1500:]}"
            _pause_outside_the_lease_row(first, dsn)
            second = h.start(h.ingest_cmd(mock, dsn, *extra), second_log)
            taken = h.wait_until(
                lambda: h.query(dsn, "SELECT pid FROM ingest_lease") == [(second.pid,)], 30
            )
            first.send_signal(signal.SIGCONT)
            assert taken, f"{scenario}: no takeover: {h.log_text(second_log)[-1500:]}"
            first_code = first.wait(30)
            second_code = second.wait(120)
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
                    proc.kill()
                    proc.wait()
        first_out = h.log_text(first_log)
        assert first_code == 5, f"{scenario}: first exited {first_code}: {first_out[-1500:]}"
        assert "this ingest lost its lease: another datasync ingest now holds it (host " in (
            first_out
        ) and f"pid {second.pid}," in first_out, first_out[-1500:]
        assert second_code == 0, f"{scenario}: second exited {second_code}: " + (
            h.log_text(second_log)[-1500:]
        )
        assert "took over the ingest lease from host " in h.log_text(second_log)
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_checkpoints_consistent(dsn, scenario)
        h.assert_verify(mock, dsn, scenario)
