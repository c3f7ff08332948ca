"""LocalPostgres: a private cluster in a temp dir, started, reused, restarted, stopped."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from datasync_cli.errors import DatabaseError
from datasync_cli.localpg import PORT_FILE, LocalPostgres, find_pg_bin

pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server programs not installed"),
]


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Under /tmp with mode 0755: as root the cluster runs as the postgres user, who must get in.
    root = Path(tempfile.mkdtemp(prefix="datasync-localpg-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def server_setting(dsn: str, name: str) -> str:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting(%s)", (name,))
            row = cur.fetchone()
            assert row is not None
            return str(row[0])
    finally:
        conn.close()


def test_start_reuse_restart_stop(workdir: Path) -> None:
    server = LocalPostgres(workdir / "pg")
    try:
        dsn = server.ensure_started()
        assert dsn.startswith("postgresql://postgres@127.0.0.1:")
        assert server_setting(dsn, "server_encoding") == "UTF8"
        assert server_setting(dsn, "listen_addresses") == "127.0.0.1"
        assert server_setting(dsn, "fsync") == "off"
        assert server.ensure_started() == dsn  # already running: reused
        assert LocalPostgres(workdir / "pg").dsn() == dsn  # another handle finds it
        server.stop()
        assert not server.is_running()
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(dsn, connect_timeout=3)
        assert server.ensure_started() == dsn  # the remembered port is used again
        assert server_setting(dsn, "port") == (workdir / "pg" / PORT_FILE).read_text().strip()
    finally:
        server.stop()
    server.stop()  # stopping a stopped server is fine


def test_stale_pid_file_does_not_block_the_start(workdir: Path) -> None:
    server = LocalPostgres(workdir / "pg")
    try:
        dsn = server.ensure_started()
        server.stop()
        # As after a crash or container restart: the pid names a live process that is not
        # PostgreSQL (this test process).
        (workdir / "pg" / "postmaster.pid").write_text(f"{os.getpid()}\n{workdir / 'pg'}\n0\n1\n")
        assert not server.is_running()
        assert server.ensure_started() == dsn
        assert server_setting(dsn, "server_version_num")
    finally:
        server.stop()


def test_remembered_port_taken_by_someone_else(workdir: Path) -> None:
    server = LocalPostgres(workdir / "pg")
    try:
        first = server.ensure_started()
        port = server.port
        server.stop()
        with socket.socket() as squatter:
            assert port is not None
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            second = server.ensure_started()
        assert second != first
        assert server_setting(second, "port") != str(port)
    finally:
        server.stop()


def test_fixed_port_in_use_is_one_clear_line(workdir: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = LocalPostgres(workdir / "pg", port=port)
        try:
            with pytest.raises(DatabaseError) as caught:
                server.ensure_started()
        finally:
            server.stop()
    assert caught.value.message.startswith(f"could not start PostgreSQL in {workdir / 'pg'}")
    assert f"port {port} is in use" in caught.value.message


def test_foreign_files_are_not_overwritten(workdir: Path) -> None:
    target = workdir / "pg"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(DatabaseError) as caught:
        LocalPostgres(target).ensure_started()
    assert "is not empty and holds no PostgreSQL cluster" in caught.value.message
    assert (target / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to the postgres user")
def test_as_root_an_unreachable_parent_is_explained(workdir: Path) -> None:
    locked = workdir / "locked"
    locked.mkdir(mode=0o700)
    locked.chmod(0o700)
    with pytest.raises(DatabaseError) as caught:
        LocalPostgres(locked / "pg").ensure_started()
    assert "cannot enter" in caught.value.message
    assert caught.value.hint is not None and "/tmp" in caught.value.hint
