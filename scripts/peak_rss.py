"""Run a command and write its own peak RSS (KiB) to a file: `peak_rss.py OUT CMD [ARG...]`.

Why a launcher: on Linux a child's ru_maxrss starts from the peak of the memory it was
exec'ed from, and subprocess.Popen execs from (a vfork of) the caller. A test runner that has
grown to 300 MB would see every child "peak" at 300 MB. This process is small; the command is
forked from it, so the figure is the command's own.

Signals sent to the launcher go on to the command; the launcher ends the way the command did
(the same exit status, or the same signal).
"""

from __future__ import annotations

import os
import signal
import sys

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGABRT, signal.SIGHUP, signal.SIGQUIT,
              signal.SIGUSR1, signal.SIGUSR2)


def main() -> None:
    out, command = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    for sig in _FORWARDED:
        signal.signal(sig, lambda number, _frame: os.kill(pid, number))
    _, status, usage = os.wait4(pid, 0)
    with open(out, "w") as f:
        f.write(f"{usage.ru_maxrss}\n")
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number in _FORWARDED:
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
