"""A private PostgreSQL cluster in a directory, started on demand for the demo and the tests.

initdb and pg_ctl refuse to run as root; as root they run as the `postgres` OS user, which
then owns the data directory. The cluster listens on 127.0.0.1 only, on a free port that is
remembered next to the data, and trades durability for speed (fsync off) unless asked not to.

The parts: `tools` (finding and running the server programs), `datadir` (the directory, its
remembered port, pid file and log), `ports` (free ports), `cluster` (LocalPostgres).
"""

from .cluster import LocalPostgres
from .datadir import LOG_FILE, PORT_FILE
from .ports import free_port
from .tools import SERVICE_USER, START_TIMEOUT_S, find_pg_bin

__all__ = [
    "LOG_FILE",
    "PORT_FILE",
    "SERVICE_USER",
    "START_TIMEOUT_S",
    "LocalPostgres",
    "find_pg_bin",
    "free_port",
]
