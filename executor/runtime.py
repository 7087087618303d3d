"""The Runtime the executor is given: time, sleep, background work and queues.

The executor never touches the clock, ``sleep`` or threads itself; it asks its Runtime. In
production that is ``ThreadedRuntime`` (threads and the wall clock); in simulation it is
fakecluster's ``SimRuntime`` (greenlets on a virtual clock), which offers the same methods.
Queues raise the standard ``queue.Empty`` in both.
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Protocol


class Handle(Protocol):
    def is_alive(self) -> bool: ...
    def join(self, timeout: float | None = None) -> bool: ...
    def kill(self) -> None: ...


class Runtime(Protocol):
    simulated: bool

    def now(self) -> float: ...
    def utcnow(self) -> datetime: ...
    def sleep(self, seconds: float) -> None: ...
    def spawn(self, fn: Callable, *args, name: str | None = None) -> Handle: ...
    def queue(self, name: str = "queue") -> Any: ...
    def event(self) -> Any: ...


class ThreadHandle:
    """A daemon thread that runs ``fn`` once; ``kill`` only marks it, as Python threads cannot be
    killed: the executor stops its watchers by closing their streams, then abandons stragglers."""

    def __init__(self, fn: Callable, args: tuple, name: str | None):
        self.exception: BaseException | None = None
        self.killed = False
        self._thread = threading.Thread(target=self._main, args=(fn, args), name=name, daemon=True)
        self._thread.start()

    def _main(self, fn, args):
        try:
            fn(*args)
        except BaseException as exc:  # a thread dies alone; keep why for the health check
            self.exception = exc

    def is_alive(self) -> bool:
        return self._thread.is_alive() and not self.killed

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def kill(self) -> None:
        self.killed = True


class ThreadedRuntime:
    """Production runtime: real threads and the wall clock."""

    simulated = False

    def now(self) -> float:
        return time.monotonic()

    def utcnow(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def spawn(self, fn: Callable, *args, name: str | None = None) -> ThreadHandle:
        return ThreadHandle(fn, args, name)

    def queue(self, name: str = "queue") -> queue.Queue:
        return queue.Queue()

    def event(self) -> threading.Event:
        return threading.Event()
