"""The peak memory the hostile tests assert on is the child's own: not the test process's,
which a child exec'ed straight from it would report, and not blind to a real peak."""

from __future__ import annotations

import sys

from . import cli


def test_a_small_child_of_a_big_test_process_is_measured_small() -> None:
    ballast = bytearray(300 << 20)  # this process: 300 MB more, touched
    ballast[::4096] = b"x" * len(ballast[::4096])
    run = cli.run_cli([sys.executable, "-c", "pass"], timeout=20)
    assert run.returncode == 0, run.describe()
    assert run.max_rss_mb < 100, run.max_rss_mb
    del ballast


def test_a_big_child_is_measured_big() -> None:
    grow = "b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096])"
    run = cli.run_cli([sys.executable, "-c", grow], timeout=20)
    assert run.returncode == 0, run.describe()
    assert run.max_rss_mb >= 200, run.max_rss_mb


def test_the_childs_exit_status_and_death_by_signal_come_through() -> None:
    assert cli.run_cli([sys.executable, "-c", "raise SystemExit(5)"]).returncode == 5
    killed = cli.run_cli([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)"])
    assert killed.returncode == -9
