"""The server programs (initdb, pg_ctl): where they are, and running them (as the postgres OS
user when we are root, since they refuse to run as root)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ..errors import DatabaseError

SERVICE_USER = "postgres"
START_TIMEOUT_S = 60
INSTALL_HINT = (
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


class PgTools:
    """Runs the server programs from one folder (found on first use) in one directory."""

    def __init__(self, cwd: Path, bin_dir: Path | None, as_service_user: bool) -> None:
        self._cwd = cwd
        self._bin_dir = bin_dir
        self._as_service_user = as_service_user

    def path(self, name: str) -> str:
        folder = self._bin_dir or find_pg_bin()
        if folder is None:
            raise DatabaseError("no PostgreSQL server programs (initdb, pg_ctl) found",
                                INSTALL_HINT)
        self._bin_dir = folder
        return str(folder / name)

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run program `name` with `args` to its end; DatabaseError when it cannot start."""
        argv = [self.path(name), *args]
        if self._as_service_user:
            argv = ["runuser", "-u", SERVICE_USER, "--", *argv]
        try:
            return subprocess.run(
                argv,
                cwd=self._cwd,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S + 30,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            program = Path(argv[0]).name
            raise DatabaseError(f"could not run {program}: {exc}", INSTALL_HINT) from None


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """The last thing a program said, or its exit status."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"
