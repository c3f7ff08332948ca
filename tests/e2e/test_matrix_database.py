"""Database-side faults: the server restarts, sessions are killed, writes are refused.

Each test ends the same way: after the fault is gone, a rerun leaves exactly the source's set of
events. A fault the tool cannot ride out must end it with one clear line and exit status 4.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

from datasync_cli.localpg import LocalPostgres, find_pg_bin
from datasync_cli.mockapi.config import MockConfig

from . import harness as h

pytestmark = pytest.mark.e2e

RIDE_OUT_BOUND_S = 120.0
# Far above the few seconds the contract allows: only a hang fails it.
STOP_BOUND_S = 10.0


@pytest.fixture
def dsn(database_url: str) -> str:
    return h.dsn_url(database_url)


@pytest.fixture(scope="module")
def private_pg() -> Iterator[LocalPostgres]:
    """A cluster of our own, so restarting it or filling its disk touches nothing else."""
    if find_pg_bin() is None:
        pytest.skip("no PostgreSQL server programs (initdb, pg_ctl) to start a private cluster")
    # Under /tmp with mode 0755 so the postgres OS user can reach it when tests run as root.
    root = Path(tempfile.mkdtemp(prefix="datasync-matrix-pg-", dir="/tmp"))
    root.chmod(0o755)
    # A fixed port: a restarted cluster must come back where the running ingest looks for it.
    server = LocalPostgres(root / "data", port=h.free_port())
    server.ensure_started()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _admin(dsn: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(dsn, application_name="datasync-tests", connect_timeout=10)
    conn.autocommit = True
    return conn


def _dbname(dsn: str) -> str:
    return str(psycopg2.extensions.parse_dsn(dsn)["dbname"])


def _with_user(dsn: str, user: str) -> str:
    return h.dsn_url(psycopg2.extensions.make_dsn(dsn, user=user, password=None))


def _finish(proc: subprocess.Popen[bytes], log: Path, scenario: str) -> tuple[int, str]:
    try:
        code = proc.wait(RIDE_OUT_BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{scenario}: ingest hung: {h.log_text(log)[-2000:]}")
    return code, h.log_text(log)


def _ride_out_or_one_line(code: int, output: str, scenario: str) -> None:
    """Either the run carried on to the end, or it stopped with exit 4 and one clear line."""
    assert "Traceback" not in output, f"{scenario}: traceback printed: {output[-2500:]}"
    assert code in (0, 4), f"{scenario}: exit {code}: {output[-2000:]}"
    if code == 4:
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, f"{scenario}: expected one error line, got {errors}"


def test_postgres_restarted_mid_run_then_rerun_stores_exact_set(
    tmp_path: Path, private_pg: LocalPostgres
) -> None:
    scenario = "PostgreSQL restarted mid-run"
    dsn = private_pg.dsn(f"matrix_restart_{uuid.uuid4().hex[:8]}")
    port = private_pg.port
    config = MockConfig(events=30_000, latency_ms=80, seed=21)
    extra = ["--workers", "2", "--page-size", "1000"]
    with h.mock_for(tmp_path, config) as mock:
        log = tmp_path / "ingest-restart.log"
        proc = h.start(h.ingest_cmd(mock, dsn, *extra), log)
        try:
            for share in (0.15, 0.5):
                stored = h.wait_for_rows(dsn, int(config.events * share), proc)
                assert proc.poll() is None, (
                    f"{scenario}: ingest ended before the restart ({stored} rows): "
                    f"{h.log_text(log)[-1500:]}"
                )
                private_pg.stop()
                time.sleep(1.0)
                private_pg.ensure_started()
                assert private_pg.port == port, "the cluster came back on another port"
            code, output = _finish(proc, log, scenario)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        _ride_out_or_one_line(code, output, scenario)
        h.assert_checkpoints_consistent(dsn, f"{scenario} (first run exit {code})")
        result = h.run(h.ingest_cmd(mock, dsn, *extra))
        h.assert_ingest_ok(result, f"{scenario}, rerun")
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_verify(mock, dsn, scenario)


def test_sigterm_while_postgres_is_down_exits_promptly(
    tmp_path: Path, private_pg: LocalPostgres
) -> None:
    """StopRequestedError while the writer waits for a database that is gone: the process still ends
    within the bound, with 143 (stopped, as for any SIGTERM) and no traceback."""
    scenario = "SIGTERM while PostgreSQL is down"
    dsn = private_pg.dsn(f"matrix_down_{uuid.uuid4().hex[:8]}")
    config = MockConfig(events=30_000, latency_ms=80, seed=26)
    extra = ["--workers", "2", "--page-size", "1000"]
    with h.mock_for(tmp_path, config) as mock:
        log = tmp_path / "ingest-down.log"
        proc = h.start(h.ingest_cmd(mock, dsn, *extra), log)
        try:
            h.wait_for_rows(dsn, 3000, proc)
            assert proc.poll() is None, f"{scenario}: ingest ended early: {h.log_text(log)}"
            private_pg.stop()
            time.sleep(1.5)  # the writer is now retrying its connection
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{scenario}: ingest still running {STOP_BOUND_S} s after SIGTERM")
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            private_pg.ensure_started()
        output = h.log_text(log)
        assert "Traceback" not in output, f"{scenario}: traceback: {output[-2500:]}"
        assert code == 143, f"{scenario}: exit {code} after {took:.1f} s: {output[-1500:]}"
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, f"{scenario}: expected one error line, got {errors}"
        h.assert_checkpoints_consistent(dsn, scenario)
        h.assert_ingest_ok(h.run(h.ingest_cmd(mock, dsn, *extra)), f"{scenario}, rerun")
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_verify(mock, dsn, scenario)


def test_connections_killed_mid_run_then_rerun_stores_exact_set(
    tmp_path: Path, dsn: str
) -> None:
    scenario = "datasync backends terminated mid-run"
    config = MockConfig(events=30_000, latency_ms=80, seed=22)
    extra = ["--workers", "2", "--page-size", "1000"]
    kill_sql = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = %s AND application_name = 'datasync' AND pid <> pg_backend_pid()"
    )
    with h.mock_for(tmp_path, config) as mock:
        log = tmp_path / "ingest-terminate.log"
        proc = h.start(h.ingest_cmd(mock, dsn, *extra), log)
        terminated = 0
        try:
            for share in (0.1, 0.3, 0.5):
                h.wait_for_rows(dsn, int(config.events * share), proc)
                if proc.poll() is not None:
                    break
                terminated += int(h.query(dsn, kill_sql, (_dbname(dsn),))[0][0])
            code, output = _finish(proc, log, scenario)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert terminated > 0, f"{scenario}: no datasync session was terminated: {output[-1500:]}"
        _ride_out_or_one_line(code, output, scenario)
        h.assert_checkpoints_consistent(dsn, f"{scenario} (first run exit {code})")
        result = h.run(h.ingest_cmd(mock, dsn, *extra))
        h.assert_ingest_ok(result, f"{scenario}, rerun")
        h.assert_exact_set(dsn, h.expected_ids(config), scenario)
        h.assert_verify(mock, dsn, scenario)


def test_user_without_insert_privilege_fails_with_one_line(tmp_path: Path, dsn: str) -> None:
    scenario = "database user without INSERT on ingested_events"
    config = MockConfig(events=5_000, seed=23)
    role = f"matrix_noinsert_{uuid.uuid4().hex[:8]}"
    migrated = h.run([*h.DATASYNC, "migrate", "--database-url", dsn])
    assert migrated.returncode == 0, migrated.stderr
    admin = _admin(dsn)
    try:
        with admin.cursor() as cur:
            ident = sql.Identifier(role)
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
            cur.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(_dbname(dsn)), ident
                )
            )
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
            cur.execute(
                sql.SQL(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}"
                ).format(ident)
            )
            cur.execute(
                sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident)
            )
            cur.execute(sql.SQL("REVOKE INSERT ON ingested_events FROM {}").format(ident))
        with h.mock_for(tmp_path, config) as mock:
            result = h.run(h.ingest_cmd(mock, _with_user(dsn, role), "--workers", "1"))
            line = h.error_line(result, scenario)
            assert result.returncode == 4, f"{scenario}: exit {result.returncode}: {line}"
            assert "permission denied" in line and "ingested_events" in line, line
            assert h.count_rows(dsn) == 0
            h.assert_checkpoints_consistent(dsn, scenario)
            # The fix: run as a user that may write. The rerun completes exactly.
            result = h.run(h.ingest_cmd(mock, dsn, "--workers", "1"))
            h.assert_ingest_ok(result, f"{scenario}, rerun as the owner")
            h.assert_exact_set(dsn, h.expected_ids(config), scenario)
            h.assert_verify(mock, dsn, scenario)
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            cur.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                    sql.Identifier(_dbname(dsn)), sql.Identifier(role)
                )
            )
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()


def test_read_only_database_fails_with_one_line(tmp_path: Path, dsn: str) -> None:
    scenario = "read-only database (default_transaction_read_only)"
    config = MockConfig(events=5_000, seed=24)
    migrated = h.run([*h.DATASYNC, "migrate", "--database-url", dsn])
    assert migrated.returncode == 0, migrated.stderr
    name = sql.Identifier(_dbname(dsn))
    admin = _admin(dsn)
    try:
        with admin.cursor() as cur:
            cur.execute(
                sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(name)
            )
        with h.mock_for(tmp_path, config) as mock:
            result = h.run(h.ingest_cmd(mock, dsn, "--workers", "1"))
            line = h.error_line(result, scenario)
            assert result.returncode == 4, f"{scenario}: exit {result.returncode}: {line}"
            assert "read-only" in line, line
            assert h.count_rows(dsn) == 0
            with admin.cursor() as cur:
                cur.execute(
                    sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only").format(name)
                )
            result = h.run(h.ingest_cmd(mock, dsn, "--workers", "1"))
            h.assert_ingest_ok(result, f"{scenario}, rerun once writable")
            h.assert_exact_set(dsn, h.expected_ids(config), scenario)
            h.assert_verify(mock, dsn, scenario)
    finally:
        admin.close()


def _admin_run(dsn: str, statement: sql.Composable | str) -> None:
    conn = _admin(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture
def tiny_tablespace(private_pg: LocalPostgres) -> Iterator[str]:
    """A 2 MB tmpfs tablespace in the private cluster (needs root to mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tiny filesystem needs root")
    where = Path(tempfile.mkdtemp(prefix="datasync-matrix-full-", dir="/tmp"))
    where.chmod(0o755)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tiny filesystem here: {mounted.stderr.strip()}")
    name = f"matrix_tiny_{uuid.uuid4().hex[:8]}"
    try:
        shutil.chown(where, user="postgres", group=None)
        _admin_run(
            private_pg.dsn(),
            sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(
                sql.Identifier(name), sql.Literal(str(where))
            ),
        )
        yield name
    finally:
        _admin_run(
            private_pg.dsn(), sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(name))
        )
        subprocess.run(["umount", str(where)], check=False)
        where.rmdir()


def test_disk_full_fails_with_one_line(
    tmp_path: Path, private_pg: LocalPostgres, tiny_tablespace: str
) -> None:
    scenario = "disk full under ingested_events"
    dbname = f"matrix_full_{uuid.uuid4().hex[:8]}"
    dsn = private_pg.dsn(dbname)
    config = MockConfig(events=20_000, seed=25)
    extra = ["--workers", "1", "--page-size", "1000"]
    migrated = h.run([*h.DATASYNC, "migrate", "--database-url", dsn])
    assert migrated.returncode == 0, migrated.stderr
    try:
        _admin_run(
            dsn,
            sql.SQL("ALTER TABLE ingested_events SET TABLESPACE {}").format(
                sql.Identifier(tiny_tablespace)
            ),
        )
        with h.mock_for(tmp_path, config) as mock:
            result = h.run(h.ingest_cmd(mock, dsn, *extra))
            line = h.error_line(result, scenario)
            assert result.returncode == 4, f"{scenario}: exit {result.returncode}: {line}"
            assert "disk space" in line, line
            h.assert_checkpoints_consistent(dsn, scenario)
            # The fix: room for the table. The rerun completes exactly.
            _admin_run(dsn, "ALTER TABLE ingested_events SET TABLESPACE pg_default")
            result = h.run(h.ingest_cmd(mock, dsn, *extra))
            h.assert_ingest_ok(result, f"{scenario}, rerun with room")
            h.assert_exact_set(dsn, h.expected_ids(config), scenario)
            h.assert_verify(mock, dsn, scenario)
    finally:
        _admin_run(
            private_pg.dsn(),
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)),
        )
