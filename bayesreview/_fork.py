"""Forked helper processes, where the platform can fork and a second CPU is there to use."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any


def available_cpus() -> int:
    """CPUs this process may run on (its affinity where the platform reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def start_in_fork(work: Callable[[], Any]) -> int | None:
    """Run ``work`` in a forked process whose results reach the parent through files.

    Returns the child's pid, or None (nothing started) where the platform cannot fork, this
    process has a single CPU, or other Python threads are running: a fork copies only the
    calling thread, and a lock another thread holds (numba's compiler lock, say) would stay
    held in the child forever. The child never returns into the caller's code: it exits with
    0 after ``work``, or 1 if ``work`` raised.
    """
    if not hasattr(os, "fork") or available_cpus() < 2 or threading.active_count() > 1:
        return None
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def reap(pid: int | None, timeout: float = 60.0) -> int | None:
    """Wait for a child of :func:`start_in_fork` and return its exit code.

    None where nothing was started, or where the child was killed after ``timeout`` seconds.
    """
    if pid is None:
        return None
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)
