"""The simulated Runtime: the blocking primitives the executor takes, on the virtual clock.

It offers the same surface as the executor's threaded runtime (now, utcnow, sleep, spawn,
Queue, Event), so the same executor code runs against a real cluster and in simulation.
Queue raises the standard library's ``queue.Empty`` so callers need not know which runtime
they were given.
"""

from __future__ import annotations

import queue
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from .engine import Kernel, Process

EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
"""Virtual time zero, as a wall-clock instant (fixed so traces are reproducible)."""


class SimQueue:
    """An unbounded FIFO whose ``get`` blocks in virtual time."""

    def __init__(self, kernel: Kernel, name: str = "queue"):
        self._kernel = kernel
        self._items: deque = deque()
        self._getters: deque = deque()
        self._name = name

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add an item (never blocks: the queue is unbounded) and wake the longest waiter."""
        self._items.append(item)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.triggered:
                getter.succeed()
                break

    put_nowait = put

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take the oldest item; block (in virtual time) up to ``timeout`` for one, else Empty."""
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        if not self._items and block:
            self._wait_for_item(timeout)
        if not self._items:
            raise queue.Empty
        return self._items.popleft()

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def _wait_for_item(self, timeout: float | None) -> None:
        kernel = self._kernel
        deadline = None if timeout is None else kernel.env.now + timeout
        while not self._items:
            left = None if deadline is None else max(0.0, deadline - kernel.env.now)
            getter = kernel.env.event()
            self._getters.append(getter)
            try:
                woken = kernel.wait(getter, left, f"{self._name}.get()")
            except BaseException:  # killed: a wake-up meant for us goes to the next in line
                if getter.triggered and self._items:
                    self._wake_one()
                raise
            finally:
                if getter in self._getters:  # timed out or killed: stop holding a place in line
                    self._getters.remove(getter)
            if not woken:
                return
            # woken by put(), but another process may have taken the item first: wait again
            # for what is left of the timeout (the loop re-checks)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def task_done(self) -> None:
        """Kept for queue.Queue compatibility; nothing joins on a SimQueue."""


class SimEvent:
    """threading.Event on the virtual clock."""

    def __init__(self, kernel: Kernel):
        self._kernel = kernel
        self._event = kernel.env.event()

    def set(self) -> None:
        if not self._event.triggered:
            self._event.succeed()

    def clear(self) -> None:
        if self._event.triggered:
            self._event = self._kernel.env.event()

    def is_set(self) -> bool:
        return self._event.triggered

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set (True) or ``timeout`` virtual seconds pass (False)."""
        return self.is_set() or self._kernel.wait(self._event, timeout, "Event.wait()")


class SimRuntime:
    """Blocking-style primitives on a simulated world's clock."""

    simulated = True

    def __init__(self, kernel: Kernel):
        self._kernel = kernel

    def now(self) -> float:
        """Virtual seconds since the simulation started (monotonic)."""
        return self._kernel.env.now

    def utcnow(self) -> datetime:
        return EPOCH + timedelta(seconds=self._kernel.env.now)

    def sleep(self, seconds: float) -> None:
        self._kernel.sleep(seconds)

    def spawn(self, fn: Callable, *args, name: str | None = None) -> Process:
        return self._kernel.spawn(fn, *args, name=name)

    def queue(self, name: str = "queue") -> SimQueue:
        return SimQueue(self._kernel, name)

    def event(self) -> SimEvent:
        return SimEvent(self._kernel)
