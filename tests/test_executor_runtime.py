"""The production runtime (real threads, the wall clock), briefly: every wait here is bounded by
a fraction of a second, and nothing asserts on how long anything took beyond "it returned"."""

from __future__ import annotations

import queue
from datetime import timezone

import pytest

from executor.runtime import ThreadedRuntime

SHORT = 0.05   # seconds: the longest any test here waits for something that does not come
JOIN = 2.0     # an upper bound for threads that have their answer already (never reached)


@pytest.fixture
def runtime():
    return ThreadedRuntime()


def test_it_says_it_is_not_simulated_and_its_clocks_move_forward(runtime):
    assert runtime.simulated is False
    before = runtime.now()
    runtime.sleep(0.001)
    runtime.sleep(-1)                       # a negative sleep is no sleep, not an error
    assert runtime.now() >= before
    assert runtime.utcnow().tzinfo is timezone.utc


def test_spawn_runs_the_function_with_its_arguments_and_join_reports_the_end(runtime):
    results = runtime.queue()
    handle = runtime.spawn(lambda a, b: results.put(a + b), 2, 3, name="adder")
    assert handle.join(JOIN) is True
    assert not handle.is_alive() and handle.exception is None
    assert results.get(timeout=JOIN) == 5


def test_a_thread_that_raises_dies_alone_and_keeps_the_reason(runtime):
    def boom():
        raise ValueError("watcher failed")

    handle = runtime.spawn(boom, name="boom")
    assert handle.join(JOIN) is True
    assert isinstance(handle.exception, ValueError) and str(handle.exception) == "watcher failed"


def test_queue_get_with_a_timeout_raises_the_standard_empty(runtime):
    q = runtime.queue("results")
    with pytest.raises(queue.Empty):
        q.get(timeout=SHORT)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    q.put("x")
    assert q.get(timeout=SHORT) == "x" and q.empty()


def test_a_queue_hands_items_between_threads_in_order(runtime):
    q, out = runtime.queue(), runtime.queue()

    def consumer():
        for _ in range(3):
            out.put(q.get(timeout=JOIN))

    handle = runtime.spawn(consumer, name="consumer")
    for item in ("a", "b", "c"):
        q.put(item)
    assert handle.join(JOIN) is True and handle.exception is None
    assert [out.get_nowait() for _ in range(3)] == ["a", "b", "c"]


def test_event_wait_returns_false_on_timeout_and_true_once_set_by_another_thread(runtime):
    event = runtime.event()
    assert event.wait(SHORT) is False and not event.is_set()
    handle = runtime.spawn(event.set, name="setter")
    assert event.wait(JOIN) is True and event.is_set()
    assert handle.join(JOIN) is True


def test_join_with_a_timeout_returns_false_for_a_thread_still_running_and_kill_abandons_it(runtime):
    release = runtime.event()
    handle = runtime.spawn(release.wait, JOIN, name="blocked")
    assert handle.join(SHORT) is False and handle.is_alive()
    handle.kill()                           # Python threads cannot be killed: it is abandoned
    assert not handle.is_alive()
    release.set()                           # let the thread itself finish
    assert handle.join(JOIN) is True
