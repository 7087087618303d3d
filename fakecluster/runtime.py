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

from .kernel import Kernel, Process

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
        self._items.append(item)
        while self._getters:
            getter = self._getters.popleft()
            if not getter.triggered:
                getter.succeed()
                break

    put_nowait = put

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not self._items and block:
            self._wait_for_item(timeout)
        if not self._items:
            raise queue.Empty
        return self._items.popleft()

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def _wait_for_item(self, timeout: float | None) -> None:
        getter = self._kernel.env.event()
        self._getters.append(getter)
        if not self._kernel.wait(getter, timeout, f"{self._name}.get()"):
            self._getters.remove(getter)
        elif not self._items:  # another getter took it first; pass the wake-up on
            self._wait_for_item(timeout)

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
