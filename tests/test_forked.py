"""Forked children: what `work()` returns comes back whole, and any failure is reported
as None so the caller does the work itself."""

from __future__ import annotations

import os

from feedservice.forked import Forked


def test_the_childs_bytes_come_back_whole_even_when_larger_than_a_pipe() -> None:
    payload = os.urandom(5 << 20)  # far beyond the pipe's buffer: no deadlock, no loss
    child = Forked(lambda: payload)
    assert child.pid not in (0, os.getpid())
    assert child.result() == payload
    assert child.pid == 0 and child.result() is None  # waited for once


def test_a_failing_child_gives_none() -> None:
    def fail() -> bytes:
        raise RuntimeError("boom")

    assert Forked(fail).result() is None


def test_the_work_runs_in_another_process() -> None:
    assert int(Forked(lambda: str(os.getpid()).encode()).result() or 0) not in (0, os.getpid())
