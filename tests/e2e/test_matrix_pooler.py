"""Through PgBouncer in transaction pooling mode: one writer per database, and every command works.

Real `datasync` processes, a real `datasync mock-api`, and a real PgBouncer between them and the
test server. A session-level lock does not survive this pooling (sessions change hands after
every transaction); the ingest lease is a row, so it does.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

from datasync_cli.mockapi.config import MockConfig

from . import harness as h
from .pooler import Pooler, pgbouncer

pytestmark = pytest.mark.e2e

EXTRA = ["--workers", "2", "--page-size", "1000"]


@pytest.fixture
def pooler(pg_dsn_base: str) -> Iterator[Pooler]:
    with pgbouncer(pg_dsn_base) as running:
        yield running


def _dbname(dsn: str) -> str:
    return str(psycopg2.extensions.parse_dsn(dsn)["dbname"])


def _status(dsn: str) -> dict[str, object]:
    result = h.run(h.datasync("status", "--json", "--database-url", dsn), timeout=60)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_second_ingest_through_the_pooler_exits_5_and_the_first_completes(
    tmp_path: Path, database_url: str, pooler: Pooler
) -> None:
    scenario = "two ingests through PgBouncer (pool_mode = transaction)"
    # Long enough (about 10 s) for a second ingest and a status to start while it runs.
    config = MockConfig(events=60_000, latency_ms=300, seed=21)
    direct = h.dsn_url(database_url)
    pooled = pooler.url(_dbname(database_url))
    migrated = h.run(h.datasync("migrate", "--database-url", pooled), timeout=60)
    assert migrated.returncode == 0, f"{scenario}: migrate: {migrated.stderr}"
    with h.mock_for(tmp_path, config) as mock:
        log = tmp_path / "ingest-first.log"
        first = h.start(h.ingest_cmd(mock, pooled, *EXTRA), log)
        try:
            stored = h.wait_for_rows(direct, 1, first)
            assert first.poll() is None and stored < config.events, (
                f"{scenario}: first ingest not running: {h.log_text(log)[-1500:]}"
            )
            second = h.run(h.ingest_cmd(mock, pooled, *EXTRA), timeout=60)
            status = _status(pooled)
            first_was_running = first.poll() is None
            first_code = first.wait(120)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        assert first_was_running, f"{scenario}: first ingest ended before status looked"
        holder = status["ingest_holder"]
        assert isinstance(holder, dict) and holder["pid"] == first.pid, status
        assert status["ingest_running"] is True and holder["live"] is True, status
        assert second.returncode == 5, (
            f"{scenario}: second ingest exited {second.returncode}, expected 5: "
            f"{second.stderr[-1500:]} {second.stdout[-1500:]}"
        )
        line = h.error_line(second, f"{scenario}, second ingest")
        assert "another datasync ingest is already running" in line, line
        assert f"host {holder['host']}, pid {first.pid}, datasync " in line and "since" in line
        assert first_code == 0, f"{scenario}: first ingest exited {first_code}: {h.log_text(log)}"
        h.assert_exact_set(direct, h.expected_ids(config), scenario)
        h.assert_checkpoints_consistent(direct, scenario)

        verify = h.run(h.datasync("verify", "--expected", str(config.events),
                                  "--database-url", pooled), timeout=60)
        assert verify.returncode == 0, f"{scenario}: verify: {verify.stdout} {verify.stderr}"
        exported = tmp_path / "ids.txt"
        export = h.run(h.datasync("export-ids", str(exported), "--database-url", pooled))
        assert export.returncode == 0, f"{scenario}: export-ids: {export.stderr}"
        assert exported.read_text().split() == sorted(h.expected_ids(config))
        after = _status(pooled)
        assert after["ingest_holder"] is None and after["run_completed"] is True, after


def test_stopped_and_crashed_ingests_through_the_pooler_then_a_rerun_completes(
    tmp_path: Path, database_url: str, pooler: Pooler
) -> None:
    scenario = "SIGTERM, then SIGKILL, then a rerun, through PgBouncer"
    config = MockConfig(events=30_000, latency_ms=100, seed=22)
    direct = h.dsn_url(database_url)
    pooled = pooler.url(_dbname(database_url))
    lease = "SELECT pid FROM ingest_lease"
    with h.mock_for(tmp_path, config) as mock:
        for n, signum in enumerate((signal.SIGTERM, signal.SIGKILL)):
            log = tmp_path / f"ingest-{n}.log"
            proc = h.start(h.ingest_cmd(mock, pooled, *EXTRA), log)
            try:
                h.wait_for_rows(direct, 3000 * (n + 1), proc)
                assert proc.poll() is None, f"{scenario}: ingest ended: {h.log_text(log)}"
                proc.send_signal(signum)
                code = proc.wait(10)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if signum == signal.SIGTERM:
                assert code == 143, f"{scenario}: exit {code}: {h.log_text(log)[-1500:]}"
                assert h.query(direct, lease) == [], f"{scenario}: lease kept after SIGTERM"
            else:
                assert h.query(direct, lease) == [(proc.pid,)], scenario
        started = time.monotonic()
        rerun = h.run(h.ingest_cmd(mock, pooled, *EXTRA))
        h.assert_ingest_ok(rerun, f"{scenario}, rerun")
        took_over = [r for r in h.json_lines(rerun.stdout)
                     if "took over the ingest lease from a dead holder" in r.get("message", "")]
        assert len(took_over) == 1 and f"pid {proc.pid}," in took_over[0]["message"], (
            rerun.stdout[-2000:]
        )
        assert time.monotonic() - started < 60
        h.assert_exact_set(direct, h.expected_ids(config), scenario)
        h.assert_checkpoints_consistent(direct, scenario)
        assert h.query(direct, lease) == []


def test_migrate_creates_a_missing_database_through_the_pooler(
    pg_dsn_base: str, pooler: Pooler
) -> None:
    """PgBouncer holds the next login to a database it just failed to reach for its
    server_login_retry (15 s by default); migrate waits for it instead of timing out."""
    name = f"datasync_pooled_{uuid.uuid4().hex[:12]}"
    try:
        result = h.run(h.datasync("migrate", "--database-url", pooler.url(name)), timeout=90)
        assert result.returncode == 0, result.stderr
        assert "0003" in result.stdout
        direct = psycopg2.extensions.make_dsn(pg_dsn_base, dbname=name)
        assert h.query(direct, "SELECT count(*) FROM ingest_lease") == [(0,)]
    finally:
        admin = psycopg2.connect(pg_dsn_base)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        admin.close()


def test_the_pooler_shares_sessions_between_clients(database_url: str, pooler: Pooler) -> None:
    """The premise of this file: through this pooler two clients run in the same server
    session, so a session-level advisory lock taken by one is granted to the other as well."""
    pooled = pooler.url(_dbname(database_url))
    clients = [psycopg2.connect(pooled) for _ in range(2)]
    try:
        seen = []
        for conn in clients:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid(), pg_try_advisory_lock(42)")
                seen.append(cur.fetchone())
    finally:
        for conn in clients:
            conn.close()
    assert seen[0] == seen[1] and seen[0][1] is True, seen
