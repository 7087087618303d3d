"""Real time: one simulation thread drives a world on the wall clock, optionally scaled.

Virtual time follows the wall clock: ``virtual = start + speed * (wall - wall_at_start)``. The
simulation stays single-threaded: only the driver's thread touches the kernel, the stores and
the greenlets. Other threads hand it work through one thread-safe inbox (``post`` a callable,
or ``call`` one and wait for its value); between jobs the driver sleeps on that inbox until
the next scheduled event is due, so a request wakes it at once.

simpy's own ``RealtimeEnvironment`` sleeps in ``step()`` with no way to be woken early, hence
this loop around ``Kernel.advance``.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from typing import Any, Callable

from .engine import Kernel

log = logging.getLogger("fakecluster.realtime")

_STOP = object()


class DriverStopped(RuntimeError):
    """The simulation thread is not running (stopped, or died of an error it logged)."""


class RealtimeDriver:
    """Owns a Kernel and runs it in a thread of its own, at ``speed`` virtual seconds per second."""

    def __init__(self, kernel: Kernel, speed: float = 1.0, clock: Callable[[], float] = time.monotonic):
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a finite number > 0, not {speed!r}")
        self.kernel, self.speed, self._clock = kernel, float(speed), clock
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._wall0 = self._virtual0 = 0.0
        self.error: BaseException | None = None
        self.jobs_run = 0
        self.peak_inbox = 0   # the most jobs ever waiting at once (bounded by the front door)

    # -- any thread ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the driver is already started")
        self._wall0, self._virtual0 = self._clock(), self.kernel.env.now
        self._thread = threading.Thread(target=self._main, name="kubesim-simulation", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def post(self, job: Callable[[], Any]) -> None:
        """Run ``job()`` in the simulation thread, between steps (it must not block)."""
        if not self.alive:
            raise DriverStopped("the simulation is not running")
        self._inbox.put(job)

    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``fn()`` in the simulation thread and return its value (or raise its error)."""
        answer: queue.SimpleQueue = queue.SimpleQueue()

        def job():
            try:
                answer.put((True, fn()))
            except Exception as exc:  # handed to the caller, not the simulation's problem
                answer.put((False, exc))

        self.post(job)
        try:
            ok, value = answer.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the simulation did not run {fn!r} within {timeout:g}s") from None
        if not ok:
            raise value
        return value

    def virtual_now(self) -> float:
        """Where virtual time stands by the wall clock (the thread catches up on its next turn)."""
        return self._virtual0 + self.speed * (self._clock() - self._wall0)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._inbox.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the simulation thread did not stop within %gs", timeout)

    # -- the simulation thread -----------------------------------------------------------------

    def _main(self) -> None:
        try:
            while True:
                self._catch_up()
                jobs = self._next_jobs()
                self._catch_up()  # a job acts at the time it arrived, not when the clock last moved
                for job in jobs:
                    if job is _STOP:
                        return
                    self._run(job)
        except BaseException as exc:  # the world is broken: say so once, answer 503 from now on
            self.error = exc
            log.exception("the simulation thread died at virtual time %gs", self.kernel.env.now)

    def _catch_up(self) -> None:
        """Run every event due by now (wall clock), and move the clock there even when idle."""
        self.kernel.advance(max(self.virtual_now(), self.kernel.env.now))

    def _next_jobs(self) -> list:
        """Wait for work until the next scheduled event is due; take every job already waiting."""
        due = self.kernel.env.peek()
        wait = None if due == math.inf else max(0.0, (due - self.virtual_now()) / self.speed)
        try:
            jobs = [self._inbox.get(timeout=wait)]
        except queue.Empty:
            return []
        while True:
            try:
                jobs.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        self.peak_inbox = max(self.peak_inbox, len(jobs))
        return jobs

    def _run(self, job: Callable[[], Any]) -> None:
        self.jobs_run += 1
        try:
            job()
        except Exception:  # one bad job must not take the world down with it
            log.exception("a job in the simulation thread failed")
