"""bayesreview._fork: helper processes that hand results back through files."""

from __future__ import annotations

import os
import threading
import time

import pytest

from bayesreview._fork import available_cpus, reap, start_in_fork

needs_fork = pytest.mark.skipif(
    not hasattr(os, "fork") or available_cpus() < 2, reason="needs fork and two CPUs"
)


@pytest.fixture
def single_threaded():
    # start_in_fork refuses to fork beside other threads; an earlier test may leave some
    if threading.active_count() > 1:
        pytest.skip("other threads are running in this test process")


@needs_fork
def test_the_child_works_and_the_parent_goes_on(tmp_path, single_threaded):
    target = tmp_path / "done"
    pid = start_in_fork(lambda: target.write_text(str(os.getpid())))
    assert pid is not None and pid != os.getpid()
    assert reap(pid) == 0
    assert target.read_text() == str(pid)


@needs_fork
def test_a_failing_child_exits_with_1_instead_of_returning_into_the_caller(single_threaded):
    def work():
        raise RuntimeError("compile failed")

    pid = start_in_fork(work)
    assert reap(pid) == 1


@needs_fork
def test_a_hanging_child_is_killed_after_the_timeout(single_threaded):
    pid = start_in_fork(lambda: time.sleep(60))
    start = time.monotonic()
    assert reap(pid, timeout=0.3) is None
    assert time.monotonic() - start < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_nothing_is_started_beside_other_threads():
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert start_in_fork(lambda: None) is None
    finally:
        release.set()
        other.join()


def test_nothing_is_started_on_a_single_cpu(monkeypatch):
    monkeypatch.setattr("bayesreview._fork.available_cpus", lambda: 1)
    assert start_in_fork(lambda: None) is None
    assert reap(None) is None
