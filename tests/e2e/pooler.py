"""A real PgBouncer in transaction pooling mode in front of the test server, as a child process.

Transaction pooling hands a server session to another client after every transaction, which is
what managed PostgreSQL services put in front of their databases: nothing that lives in a
session (advisory locks, SET, prepared statements, cursors across transactions) survives it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2.extensions
import pytest

from . import harness as h

INSTALL_HINT = "install Debian's pgbouncer package (apt-get install pgbouncer; .ci/run does)"
START_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Pooler:
    port: int
    user: str
    log: Path

    def url(self, dbname: str) -> str:
        """The DSN of `dbname` through the pooler."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"


def _binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    return "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None


def _run_as() -> list[str]:
    """PgBouncer refuses to run as root; as root it is told to switch to an unprivileged user."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["-u", user]
    pytest.skip("PgBouncer refuses to run as root and there is no postgres or nobody user")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _config(folder: Path, server_dsn: str, port: int) -> tuple[Path, str]:
    server = psycopg2.extensions.parse_dsn(server_dsn)
    user = server.get("user") or "postgres"
    target = [f"host={server.get('host', '127.0.0.1')}", f"port={server.get('port', '5432')}",
              f"user={user}"]
    if server.get("password"):
        target.append(f"password={_quote(server['password'])}")
    (folder / "userlist.txt").write_text(f'"{user}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"* = {' '.join(target)}\n"
        "\n[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {folder / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        # Fewer server sessions than clients: sessions really are shared between clients.
        "default_pool_size = 4\n"
        "max_client_conn = 200\n"
    )
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return ini, user


def _accepting(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def pgbouncer(server_dsn: str) -> Iterator[Pooler]:
    """PgBouncer (pool_mode = transaction) for every database of `server_dsn`'s server;
    skips the test when PgBouncer is missing or cannot start here."""
    binary = _binary()
    if binary is None:
        pytest.skip(f"PgBouncer is not installed: {INSTALL_HINT}")
    # Under /tmp and world-readable: as root, PgBouncer runs as another user.
    folder = Path(tempfile.mkdtemp(prefix="datasync-pgbouncer-", dir="/tmp"))
    port = h.free_port()
    ini, user = _config(folder, server_dsn, port)
    log = folder / "pgbouncer.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, *_run_as(), str(ini)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepting(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"PgBouncer did not start: {h.log_text(log)[-800:]}")
            time.sleep(0.05)
        yield Pooler(port, user, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
