"""LocalPostgres: create, start, find and stop one private cluster."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..errors import DatabaseError
from .datadir import DataDir
from .ports import free_port
from .tools import INSTALL_HINT, SERVICE_USER, START_TIMEOUT_S, PgTools, last_line

# sockaddr_un.sun_path holds 107 bytes; the socket file name takes 16 of them.
_SOCKET_PATH_LIMIT = 107 - len("/.s.PGSQL.65535")
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class LocalPostgres:
    """A cluster in `data_dir` (the PGDATA itself), created and started when needed."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        bin_dir: Path | None = None,
        durable: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._port = port
        self._durable = durable
        as_service_user = os.geteuid() == 0
        self._dir = DataDir(self.data_dir, as_service_user)
        self._tools = PgTools(self.data_dir, bin_dir, as_service_user)

    # -- public -----------------------------------------------------------------------------
    def ensure_started(self) -> str:
        """Create the cluster if the directory is empty, start it unless already running, and
        return the DSN of its `postgres` database."""
        self._dir.prepare()
        if not self._dir.has_cluster():
            self._initdb()
        running = self._running_port()
        if running is not None:
            self._dir.remember(running)
            return self.dsn()
        self._dir.drop_stale_pid()
        fixed = self._port is not None
        port = self._port or self._dir.remembered_free_port() or free_port()
        for _ in range(1 if fixed else 3):
            self._dir.remember(port)
            failure = self._start(port)
            if failure is None:
                return self.dsn()
            if fixed or "in use" not in failure:
                break
            port = free_port()
        raise DatabaseError(
            f"could not start PostgreSQL in {self.data_dir}: {failure}",
            f"see {self._dir.log}",
        )

    def stop(self) -> None:
        """Stop the cluster (fast shutdown); nothing happens if it is not running."""
        if self._running_port() is None:
            return
        result = self._tools.run(
            "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w",
            "-t", str(START_TIMEOUT_S),
        )
        if result.returncode != 0:
            raise DatabaseError(
                f"could not stop PostgreSQL in {self.data_dir}: {last_line(result)}",
                f"see {self._dir.log}",
            )

    def is_running(self) -> bool:
        return self._running_port() is not None

    @property
    def port(self) -> int | None:
        running = self._running_port()
        if running is not None:
            return running
        return self._port or self._dir.remembered_port()

    def dsn(self, dbname: str = "postgres") -> str:
        port = self.port
        if port is None:
            raise DatabaseError(f"PostgreSQL in {self.data_dir} was never started")
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{port}/{dbname}"

    # -- steps ------------------------------------------------------------------------------
    def _initdb(self) -> None:
        self._dir.check_empty()
        result = self._tools.run(
            "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", SERVICE_USER,
            "--encoding", "UTF8", "--no-locale", *([] if self._durable else ["--no-sync"]),
        )
        if result.returncode != 0:
            raise DatabaseError(
                f"initdb failed in {self.data_dir}: {last_line(result)}", INSTALL_HINT
            )

    def _start(self, port: int) -> str | None:
        """Start on `port`; None on success, else the reason from pg_ctl or the server log."""
        options = ["-p", str(port), "-c", "listen_addresses=127.0.0.1"]
        socket_dir = str(self.data_dir)
        options += ["-k", socket_dir] if len(socket_dir) <= _SOCKET_PATH_LIMIT else [
            "-c", "unix_socket_directories="
        ]
        if not self._durable:
            for setting in _FAST_SETTINGS:
                options += ["-c", setting]
        offset = self._dir.log_size()
        result = self._tools.run(
            "pg_ctl", "start", "-D", str(self.data_dir), "-w",
            "-t", str(START_TIMEOUT_S), "-l", str(self._dir.log),
            "-o", " ".join(shlex.quote(o) for o in options),
        )
        if result.returncode == 0:
            return None
        tail = self._dir.log_tail(offset)
        if "Address already in use" in tail:
            return f"port {port} is in use"
        return tail or last_line(result)

    def _running_port(self) -> int | None:
        """The port of the server running on this directory, or None."""
        found = self._dir.postmaster()
        if found is None:
            return None
        result = self._tools.run("pg_ctl", "status", "-D", str(self.data_dir))
        return found[1] if result.returncode == 0 else None
