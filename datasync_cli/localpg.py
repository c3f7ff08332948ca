"""A private PostgreSQL cluster in a directory, started on demand for the demo and the tests.

initdb and pg_ctl refuse to run as root; as root they run as the `postgres` OS user, which
then owns the data directory. The cluster listens on 127.0.0.1 only, on a free port that is
remembered next to the data, and trades durability for speed (fsync off) unless asked not to.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
from pathlib import Path

from .errors import DatabaseError

SERVICE_USER = "postgres"
PORT_FILE = "datasync.port"
LOG_FILE = "datasync.log"
START_TIMEOUT_S = 60
# sockaddr_un.sun_path holds 107 bytes; the socket file name takes 16 of them.
_SOCKET_PATH_LIMIT = 107 - len("/.s.PGSQL.65535")
_FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")

_INSTALL_HINT = (
    "install the PostgreSQL server (for example `apt-get install postgresql`) or point "
    "--database-url at a running server"
)


def _version_key(path: Path) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", path.parent.name)
    return tuple(int(n) for n in numbers)


def _has_server_tools(folder: Path) -> bool:
    return (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()


def find_pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: pg_config --bindir, then PATH, then the usual
    Debian/Ubuntu and source-install locations (newest version first); None when absent."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_server_tools(Path(out)):
            return Path(out)
    on_path = shutil.which("pg_ctl")
    if on_path and _has_server_tools(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    candidates += [Path("/usr/local/pgsql/bin"), Path("/opt/homebrew/bin"), Path("/usr/bin")]
    for folder in candidates:
        if _has_server_tools(folder):
            return folder
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    """Whether PostgreSQL could listen on `port` now. Like PostgreSQL, set SO_REUSEADDR:
    connections of a server that just stopped linger in TIME_WAIT and do not stop it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


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
        self._bin_dir = bin_dir
        self._durable = durable
        self._as_service_user = os.geteuid() == 0

    # -- public -----------------------------------------------------------------------------
    def ensure_started(self) -> str:
        """Create the cluster if the directory is empty, start it unless already running, and
        return the DSN of its `postgres` database."""
        self._prepare_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        running = self._running_port()
        if running is not None:
            self._remember(running)
            return self.dsn()
        self._drop_stale_pid()
        fixed = self._port is not None
        port = self._port or self._remembered_free_port() or free_port()
        for _ in range(1 if fixed else 3):
            self._remember(port)
            failure = self._start(port)
            if failure is None:
                return self.dsn()
            if fixed or "in use" not in failure:
                break
            port = free_port()
        raise DatabaseError(
            f"could not start PostgreSQL in {self.data_dir}: {failure}",
            f"see {self.data_dir / LOG_FILE}",
        )

    def stop(self) -> None:
        """Stop the cluster (fast shutdown); nothing happens if it is not running."""
        if self._running_port() is None:
            return
        result = self._run(
            [self._tool("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w",
             "-t", str(START_TIMEOUT_S)]
        )
        if result.returncode != 0:
            raise DatabaseError(
                f"could not stop PostgreSQL in {self.data_dir}: {_last_line(result)}",
                f"see {self.data_dir / LOG_FILE}",
            )

    def is_running(self) -> bool:
        return self._running_port() is not None

    @property
    def port(self) -> int | None:
        running = self._running_port()
        if running is not None:
            return running
        return self._port or self._remembered_port()

    def dsn(self, dbname: str = "postgres") -> str:
        port = self.port
        if port is None:
            raise DatabaseError(f"PostgreSQL in {self.data_dir} was never started")
        return f"postgresql://{SERVICE_USER}@127.0.0.1:{port}/{dbname}"

    # -- steps ------------------------------------------------------------------------------
    def _prepare_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create {self.data_dir}: {exc.strerror}") from None
        if self._as_service_user:
            self._check_reachable_by_service_user()
            try:
                shutil.chown(self.data_dir, user=SERVICE_USER, group=None)
            except (LookupError, OSError) as exc:
                raise DatabaseError(
                    f"cannot hand {self.data_dir} to the {SERVICE_USER} OS user: {exc}",
                    "run as a non-root user, or create the postgres user",
                ) from None
        try:
            os.chmod(self.data_dir, 0o700)  # the server refuses a group- or world-readable dir
        except OSError as exc:
            raise DatabaseError(
                f"cannot use {self.data_dir} for PostgreSQL: {exc.strerror}",
                "choose a directory you own",
            ) from None

    def _check_reachable_by_service_user(self) -> None:
        import grp
        import pwd

        try:
            account = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise DatabaseError(
                f"running as root, but there is no {SERVICE_USER} OS user to run PostgreSQL as",
                "create the postgres user or run as a non-root user",
            ) from None
        groups = {account.pw_gid} | {g.gr_gid for g in grp.getgrall() if SERVICE_USER in g.gr_mem}
        for folder in self.data_dir.parents:
            info = folder.stat()
            if info.st_uid == account.pw_uid:
                allowed = info.st_mode & stat.S_IXUSR
            elif info.st_gid in groups:
                allowed = info.st_mode & stat.S_IXGRP
            else:
                allowed = info.st_mode & stat.S_IXOTH
            if not allowed:
                raise DatabaseError(
                    f"PostgreSQL runs as the {SERVICE_USER} OS user, which cannot enter {folder}",
                    "choose a data directory whose parents are searchable by others "
                    "(chmod o+x), for example under /tmp",
                )

    def _initdb(self) -> None:
        if any(self.data_dir.iterdir()):
            raise DatabaseError(
                f"{self.data_dir} is not empty and holds no PostgreSQL cluster",
                "point it at an empty or missing directory",
            )
        result = self._run(
            [self._tool("initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", SERVICE_USER,
             "--encoding", "UTF8", "--no-locale", *([] if self._durable else ["--no-sync"])]
        )
        if result.returncode != 0:
            raise DatabaseError(
                f"initdb failed in {self.data_dir}: {_last_line(result)}", _INSTALL_HINT
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
        log = self.data_dir / LOG_FILE
        offset = log.stat().st_size if log.exists() else 0
        result = self._run(
            [self._tool("pg_ctl"), "start", "-D", str(self.data_dir), "-w",
             "-t", str(START_TIMEOUT_S), "-l", str(log),
             "-o", " ".join(shlex.quote(o) for o in options)]
        )
        if result.returncode == 0:
            return None
        tail = _log_tail(log, offset)
        if "Address already in use" in tail:
            return f"port {port} is in use"
        return tail or _last_line(result)

    def _running_port(self) -> int | None:
        """The port of the server running on this directory, or None."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        if not _is_postmaster(pid):
            return None
        result = self._run([self._tool("pg_ctl"), "status", "-D", str(self.data_dir)])
        return port if result.returncode == 0 else None

    def _drop_stale_pid(self) -> None:
        # No server runs here: a leftover pid file (after a crash or a container restart) may
        # name a live, unrelated process, and the server would then refuse to start.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def _remembered_port(self) -> int | None:
        try:
            return int((self.data_dir / PORT_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def _remembered_free_port(self) -> int | None:
        port = self._remembered_port()
        return port if port is not None and _port_is_free(port) else None

    def _remember(self, port: int) -> None:
        (self.data_dir / PORT_FILE).write_text(f"{port}\n")

    # -- processes --------------------------------------------------------------------------
    def _tool(self, name: str) -> str:
        folder = self._bin_dir or find_pg_bin()
        if folder is None:
            raise DatabaseError("no PostgreSQL server programs (initdb, pg_ctl) found",
                                _INSTALL_HINT)
        self._bin_dir = folder
        return str(folder / name)

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if self._as_service_user:
            argv = ["runuser", "-u", SERVICE_USER, "--", *argv]
        try:
            return subprocess.run(
                argv,
                cwd=self.data_dir,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S + 30,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            name = Path(argv[0]).name
            raise DatabaseError(f"could not run {name}: {exc}", _INSTALL_HINT) from None


def _is_postmaster(pid: int) -> bool:
    """Whether `pid` is a live PostgreSQL server process (trusting any live pid where /proc
    is not available)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return b"postgres" in command or b"postmaster" in command


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


def _log_tail(log: Path, offset: int = 0) -> str:
    """The telling line of what the server logged since `offset`, without its prefix."""
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode("utf-8", "replace").splitlines()[-50:]
    except OSError:
        return ""
    for line in lines:
        if "Address already in use" in line:
            return "Address already in use"
    for line in reversed(lines):
        if "FATAL" in line or "ERROR" in line or "could not" in line:
            # Drop the "2026-01-27 19:19:13.629 UTC [1234] " prefix of the default log format.
            return re.sub(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] ", "", line.strip())
    return ""
