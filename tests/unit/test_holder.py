"""process_gone: a lease holder is presumed dead only when this host can prove it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from datasync_cli.sink.holder import (
    ProcessIdentity,
    in_other_namespace_here,
    process_gone,
    this_process,
)

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="needs Linux /proc"
)


def identity_of(pid: int) -> ProcessIdentity:
    here = this_process()
    ticks = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    return ProcessIdentity(here.host, pid, f"{here.machine()} {ticks}")


def test_this_process_is_alive_and_identified() -> None:
    me = this_process()
    assert me.pid == os.getpid() and me.host
    boot, namespace, ticks = me.start.split(" ")
    assert len(boot) == 36 and namespace.startswith("pid:[") and ticks.isdigit()
    assert not process_gone(me)


def test_a_live_child_is_not_gone_and_a_reaped_one_is() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = identity_of(child.pid)
        assert not process_gone(holder)
    finally:
        child.kill()
        child.wait()
    assert process_gone(holder)


def test_a_killed_child_not_yet_reaped_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    holder = identity_of(child.pid)
    child.kill()
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "child never became a zombie"
            time.sleep(0.01)
        assert process_gone(holder)
    finally:
        child.wait()


def test_a_pid_now_used_by_a_later_process_is_gone() -> None:
    me = this_process()
    assert process_gone(replace(me, start=f"{me.machine()} 1"))  # this pid, another start


def test_nothing_is_presumed_dead_without_proof() -> None:
    me = this_process()
    dead_pid = 2**22 + 17  # above pid_max's default, never in use
    boot, _, ticks = me.start.split(" ")
    cases = {
        "another host": ProcessIdentity("elsewhere", dead_pid, me.start),
        "no /proc where it ran": ProcessIdentity(me.host, dead_pid, ""),
        "another boot": ProcessIdentity(me.host, dead_pid, f"0-0-0 {me.start.split(' ')[1]} 5"),
        "another pid namespace": ProcessIdentity(me.host, dead_pid, f"{boot} pid:[1] {ticks}"),
    }
    assert {name: process_gone(holder) for name, holder in cases.items()} == dict.fromkeys(
        cases, False
    )
    assert process_gone(ProcessIdentity(me.host, dead_pid, me.start))


def test_another_pid_namespace_of_this_host_is_told_apart() -> None:
    me = this_process()
    boot, _, ticks = me.start.split(" ")
    container = ProcessIdentity(me.host, 7, f"{boot} pid:[1] {ticks}")
    assert in_other_namespace_here(container) and not process_gone(container)
    assert not in_other_namespace_here(me)
    assert not in_other_namespace_here(replace(container, host="elsewhere"))
    assert not in_other_namespace_here(replace(container, start=f"0-0 pid:[1] {ticks}"))
    assert not in_other_namespace_here(replace(container, start=""))
