"""Who holds the ingest lease, and whether that process is certainly gone.

A crashed ingest cannot release its lease. When the rerun is on the same host and in the same
pid namespace it can look the holder up in /proc and take over at once instead of waiting for
the lease to expire. In another pid namespace of the same host (a restarted container, or
another container sharing the host name) the holder's pid means nothing here; anywhere else
(another host, no /proc) nothing can be known.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """A process as the lease records it. `start` is "<boot id> <pid namespace> <start ticks>"
    ("" where /proc is missing): the same pid with another start is another process."""

    host: str
    pid: int
    start: str

    def machine(self) -> str:
        """Boot and pid namespace: processes with the same machine see each other's pids."""
        return self.start.rsplit(" ", 1)[0] if self.start else ""


def this_process() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(socket.gethostname(), pid, _start_identity(pid))


def _start_identity(pid: int) -> str:
    try:
        boot = _BOOT_ID.read_text().strip()
        namespace = os.readlink(f"/proc/{pid}/ns/pid")
        _, started = _stat(pid)
    except (OSError, ValueError, IndexError):
        return ""
    return f"{boot} {namespace} {started}"


def _stat(pid: int) -> tuple[str, str]:
    """State and start time (clock ticks since boot) from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], fields[19]  # fields 3 and 22 of proc(5)


def process_gone(holder: ProcessIdentity, here: ProcessIdentity | None = None) -> bool:
    """True only when certain that `holder` no longer runs: it ran on this host, under this
    boot and in this pid namespace, and its pid is free, a zombie, or a later process."""
    here = here or this_process()
    if not holder.start or holder.host != here.host or holder.machine() != here.machine():
        return False
    if holder.pid == here.pid:
        return holder.start != here.start
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user
    try:
        state, started = _stat(holder.pid)
    except FileNotFoundError:
        return False  # hidden from us (hidepid), or exiting this instant: not certain
    except (OSError, ValueError, IndexError):
        return False
    if state in ("Z", "X"):
        return True  # killed, waiting only to be reaped
    return started != holder.start.rsplit(" ", 1)[-1]


def in_other_namespace_here(holder: ProcessIdentity, here: ProcessIdentity | None = None) -> bool:
    """Same host name and boot, another pid namespace: a restarted container, or another
    container with the same host name. Its pid cannot be looked up from here."""
    here = here or this_process()
    theirs, ours = holder.start.split(" "), here.start.split(" ")
    if holder.host != here.host or len(theirs) != 3 or len(ours) != 3:
        return False
    return theirs[0] == ours[0] and theirs[1] != ours[1]
