"""The cluster's directory: made fit for the server, and what it remembers between runs (the
port), what the server leaves in it (the pid file) and says there (the log)."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

from ..errors import DatabaseError
from .ports import port_is_free
from .tools import SERVICE_USER

PORT_FILE = "datasync.port"
LOG_FILE = "datasync.log"
PID_FILE = "postmaster.pid"


class DataDir:
    """The PGDATA directory of one cluster."""

    def __init__(self, path: Path, as_service_user: bool) -> None:
        self.path = path
        self._as_service_user = as_service_user

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE

    def prepare(self) -> None:
        """Create the directory, hand it to the service user when we are root, and make it
        private (the server refuses a group- or world-readable directory)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create {self.path}: {exc.strerror}") from None
        if self._as_service_user:
            self._check_reachable_by_service_user()
            try:
                shutil.chown(self.path, user=SERVICE_USER, group=None)
            except (LookupError, OSError) as exc:
                raise DatabaseError(
                    f"cannot hand {self.path} to the {SERVICE_USER} OS user: {exc}",
                    "run as a non-root user, or create the postgres user",
                ) from None
        try:
            os.chmod(self.path, 0o700)
        except OSError as exc:
            raise DatabaseError(
                f"cannot use {self.path} for PostgreSQL: {exc.strerror}",
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
        for folder in self.path.parents:
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

    def has_cluster(self) -> bool:
        return (self.path / "PG_VERSION").exists()

    def check_empty(self) -> None:
        if any(self.path.iterdir()):
            raise DatabaseError(
                f"{self.path} is not empty and holds no PostgreSQL cluster",
                "point it at an empty or missing directory",
            )

    # -- the port between runs --------------------------------------------------------------
    def remembered_port(self) -> int | None:
        try:
            return int((self.path / PORT_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def remembered_free_port(self) -> int | None:
        port = self.remembered_port()
        return port if port is not None and port_is_free(port) else None

    def remember(self, port: int) -> None:
        (self.path / PORT_FILE).write_text(f"{port}\n")

    # -- what the server leaves behind ------------------------------------------------------
    def postmaster(self) -> tuple[int, int] | None:
        """(pid, port) from the pid file of a live server process, or None."""
        try:
            lines = (self.path / PID_FILE).read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        return (pid, port) if _is_postmaster(pid) else None

    def drop_stale_pid(self) -> None:
        # No server runs here: a leftover pid file (after a crash or a container restart) may
        # name a live, unrelated process, and the server would then refuse to start.
        (self.path / PID_FILE).unlink(missing_ok=True)

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_tail(self, offset: int = 0) -> str:
        """The telling line of what the server logged since `offset`, without its prefix."""
        try:
            with self.log.open("rb") as handle:
                handle.seek(offset)
                lines = handle.read().decode("utf-8", "replace").splitlines()[-50:]
        except OSError:
            return ""
        for line in lines:
            if "Address already in use" in line:
                return "Address already in use"
        for line in reversed(lines):
            if "FATAL" in line or "ERROR" in line or "could not" in line:
                # Drop the "2026-01-27 19:19:13.629 UTC [1234] " prefix of the default format.
                return re.sub(r"^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] ", "", line.strip())
        return ""


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
