"""Task processes as the runner sees them, whoever started them.

A task process may be a child of this server (``subprocess.Popen``), a child of the fork
server, or a survivor of a previous server that this one adopted. The runner only needs a pid
(which is also the process group id, every task process leads its own session), a way to wait
for the exit and a way to ask whether it has exited.

A pid alone does not identify a process across a server restart, because the kernel reuses
pids. The start time in ``/proc/<pid>/stat`` (clock ticks since boot) does: a pid with the
recorded start time is the very process that was recorded. Where there is no ``/proc`` (macOS),
no start time is recorded, so a restarted server adopts nothing: it finishes interrupted task
executions from the files they left, or fails them.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Protocol

# How often an adopted process, which is not our child and cannot be waited for, is checked.
ADOPTED_POLL_SECONDS = 0.1


class TaskProcess(Protocol):
    """The part of ``subprocess.Popen`` the runner uses."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int | None: ...


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` from the state on (the command name may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode(errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if it cannot be read."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])


def process_matches(pid: int, start_time: int | None) -> bool:
    """Whether ``pid`` is alive, not a zombie, and started at ``start_time``.

    Without a recorded start time the process cannot be told apart from a later one that got
    the same pid, so the answer is False.
    """
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20 or start_time is None:
        return False
    return fields[0] != "Z" and int(fields[19]) == start_time


class AdoptedProcess:
    """A task process started by a previous server; it can be watched but not waited for."""

    def __init__(self, pid: int, start_time: int | None) -> None:
        self.pid = pid
        self._start_time = start_time

    def poll(self) -> int | None:
        """None while the process runs; -1 once it has gone (its exit code is unknown)."""
        return None if process_matches(self.pid, self._start_time) else -1

    def wait(self, timeout: float | None = None) -> int | None:
        """Poll until the process has gone.

        Raises:
            subprocess.TimeoutExpired: if it still runs after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(ADOPTED_POLL_SECONDS)
        return None


def pid_exists(pid: int) -> bool:
    """Whether any process (zombies included) has ``pid``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = [
    "AdoptedProcess",
    "TaskProcess",
    "pid_exists",
    "process_matches",
    "process_start_time",
]
