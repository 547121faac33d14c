"""AnyEvent: one "any of several events" helper for the live sources and the per-stream controls."""

import threading

from streamtrt.sync import AnyEvent


def test_set_by_any_but_sets_only_its_own():
    own, run_stop, run_abort = threading.Event(), threading.Event(), threading.Event()
    ev = AnyEvent(own, run_stop, run_abort)
    assert not ev.is_set() and ev.wait(0.01) is False
    run_abort.set()
    assert ev.is_set() and ev.wait(0) is True
    run_abort.clear()
    ev.set()
    assert own.is_set() and not run_stop.is_set() and not run_abort.is_set()


def test_wait_wakes_when_another_event_is_set():
    own, shared = threading.Event(), threading.Event()
    ev = AnyEvent(own, shared)
    timer = threading.Timer(0.05, shared.set)
    timer.start()
    try:
        assert ev.wait(30.0) is True  # returns well before the timeout (30 s would fail the suite's time)
    finally:
        timer.cancel()


def test_nests():
    inner_own, shared = threading.Event(), threading.Event()
    outer = AnyEvent(threading.Event(), AnyEvent(inner_own, shared))
    shared.set()
    assert outer.is_set()
